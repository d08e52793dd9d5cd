import { LOCAL_SCOPE, StoreAccess } from '../../../lib/token-lifecycle/store-access';
import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type { TransferTokenStoreLock } from '../../../lib/token-store/transfer-token-store.interface';
import { answer, flush, harness, outcome, type Harness } from '../support/stub-endpoint';
import { FAST_RETRY, useFakeClock } from './support';

/**
 * Review 18b: `close()` settles callers at once, then resolves when the store work under way has settled
 * (the renewal's lock given back), within the store's 2 s bound, so that an app may close its store
 * client after it. Before, the release was fire-and-forget: sent after the app had quit its Redis client,
 * it never arrived, and the fleet waited out the 4 s lease.
 */

/** An in-process store whose lock releases are held until the test lets them go (or forever). */
class HeldReleases extends InProcessTokenStore {
  readonly releases: { settle: () => void; settled: boolean }[] = [];
  override async lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    const lock = await super.lock(key, ttlMs);
    if (lock === undefined) return undefined;
    return {
      ...lock,
      release: () =>
        new Promise<void>((resolve) => {
          const entry = {
            settled: false,
            settle: () => {
              entry.settled = true;
              void Promise.resolve(lock.release()).then(() => resolve());
            },
          };
          this.releases.push(entry);
        }),
    };
  }
}

describe('close(): callers at once, the store work it leaves within 2 s', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);
  afterEach(() => {
    void h?.lifecycle.close();
    h = undefined;
  });

  async function renewalUnderWay(store: HeldReleases): Promise<{ h: Harness; caller: ReturnType<typeof outcome> }> {
    h = harness({ store, retry: FAST_RETRY, fetchOnStartup: false }, answer.pending());
    const caller = outcome(h.lifecycle.getAccessToken());
    for (let i = 0; i < 10 && h.stub.pending().length === 0; i++) await flush();
    expect(h.stub.pending()).toHaveLength(1); // the login is out, under the fleet lock
    return { h, caller };
  }

  it('waits for the aborted renewal to give its lock back, and no longer', async () => {
    const store = new HeldReleases();
    const { h: x, caller } = await renewalUnderWay(store);
    const closed = outcome(x.lifecycle.close());
    await flush();
    expect(caller.settled()).toBe(true); // SHUTDOWN at once
    expect(store.releases).toHaveLength(1); // the release is sent...
    await jest.advanceTimersByTimeAsync(300);
    expect(closed.settled()).toBe(false); // ...and waited for
    store.releases[0]?.settle();
    await flush();
    expect(closed.settled()).toBe(true);
    expect(await store.lock('token', 4_000)).toBeDefined(); // given back: the next holder need not wait
  });

  it('a release that never answers holds the shutdown 2 s at most', async () => {
    const store = new HeldReleases();
    const { h: x } = await renewalUnderWay(store);
    const closed = outcome(x.lifecycle.close());
    await jest.advanceTimersByTimeAsync(1_990);
    expect(closed.settled()).toBe(false);
    await jest.advanceTimersByTimeAsync(20);
    expect(closed.settled()).toBe(true);
    expect(store.releases[0]?.settled).toBe(false);
  });

  it('is idempotent: a second close() gets the same wait', async () => {
    const store = new HeldReleases();
    const { h: x } = await renewalUnderWay(store);
    const first = x.lifecycle.close();
    expect(x.lifecycle.close()).toBe(first);
  });

  it('without a store, resolves at once', async () => {
    h = harness({ retry: FAST_RETRY, fetchOnStartup: false }, answer.pending());
    const closed = outcome(h.lifecycle.close());
    await flush();
    expect(closed.settled()).toBe(true);
  });
});

describe('StoreAccess.settled(): the store calls a shutdown waits for', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('forgets a call that hangs past the store bound: an hour of a hung store piles nothing up', async () => {
    const inner = new InProcessTokenStore();
    let hang = true;
    const store = {
      read: (key: string) => (hang ? new Promise<never>(() => undefined) : inner.read(key)),
      write: inner.write.bind(inner),
      lock: inner.lock.bind(inner),
    };
    const access = new StoreAccess(store, Promise.resolve(LOCAL_SCOPE), () => undefined);
    for (let i = 0; i < 100; i++) {
      const read = access.read();
      await jest.advanceTimersByTimeAsync(2_100); // the caller gives up; the call itself never answers
      await read;
    }
    hang = false;
    const answering = access.read(); // one call under way, answering at once
    const settled = outcome(access.settled());
    await flush();
    await answering;
    await flush();
    // Waits for the call under way only: none of the 100 hung calls, each past its 2 s bound.
    expect(settled.settled()).toBe(true);
    access.close();
  });

  it('waits for a call still within its bound', async () => {
    const store = {
      read: () => new Promise<never>(() => undefined),
      write: () => Promise.resolve(true),
      lock: () => Promise.resolve(undefined),
    };
    const access = new StoreAccess(store, Promise.resolve(LOCAL_SCOPE), () => undefined);
    void access.read(50);
    const settled = outcome(access.settled());
    await jest.advanceTimersByTimeAsync(1_900);
    expect(settled.settled()).toBe(false);
    await jest.advanceTimersByTimeAsync(200);
    expect(settled.settled()).toBe(true);
    access.close();
  });
});

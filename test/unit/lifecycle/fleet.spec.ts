import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreLock,
} from '../../../lib/token-store/transfer-token-store.interface';
import { answer, flush, harness, outcome, upstreamError, type Harness } from '../support/stub-endpoint';
import { FAST_RETRY, STALE_AT, useFakeClock } from './support';

/** A shared store that can be wiped (a Redis restarted empty) and counts its calls. */
class WipeableStore implements TransferTokenStore {
  inner = new InProcessTokenStore();
  locks = 0;
  reads = 0;
  read(key: string): Promise<StoredTransferToken | undefined> {
    this.reads++;
    return this.inner.read(key);
  }
  write(key: string, entry: StoredTransferToken): Promise<boolean> {
    return this.inner.write(key, entry);
  }
  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    this.locks++;
    return this.inner.lock(key, ttlMs);
  }
  watch(key: string, onChange: () => void): () => void {
    return this.inner.watch(key, onChange);
  }
}

/** Lets the store's hints and the reads they start run to the end (a few promise hops each). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await flush();
}

/** Upstream calls of the whole fleet, after the first login. */
function renewals(...fleet: Harness[]): string[] {
  return fleet.flatMap((m) => m.stub.calls.map((c) => c.kind)).slice(1);
}

describe('TokenLifecycle in a fleet (shared store)', () => {
  let a: Harness;
  let fleet: Harness[] = [];
  useFakeClock(() => a);
  afterEach(() => {
    for (const member of fleet) member.lifecycle.close();
    fleet = [];
  });

  async function start(store: TransferTokenStore, n = 2): Promise<Harness[]> {
    fleet = Array.from({ length: n }, () => harness({ store, retry: FAST_RETRY }));
    a = fleet[0] as Harness;
    for (const member of fleet) await member.lifecycle.start();
    return fleet;
  }

  it('a token another member stored is adopted as soon as the store says so, without a call', async () => {
    const [x, y] = await start(new InProcessTokenStore());
    const before = await y!.lifecycle.getAccessToken();
    const renewed = await x!.lifecycle.forceRefresh();
    await settle();
    expect(renewed).not.toBe(before);
    expect(await y!.lifecycle.getAccessToken()).toBe(renewed); // y called nothing
    expect(y!.stub.count).toBe(0);
    expect(y!.hooks.events.map((e) => e.type)).toContain('token.acquired');
  });

  it('a 401 in one member drops the token fleet-wide after one renewal', async () => {
    const members = await start(new InProcessTokenStore(), 4);
    const refused = await a.lifecycle.getAccessToken();
    a.lifecycle.invalidate(refused);
    await settle();
    const served = await Promise.all(members.map((m) => m.lifecycle.getAccessToken()));
    expect(new Set(served).size).toBe(1);
    expect(served[0]).not.toBe(refused);
    expect(renewals(...members)).toEqual(['refresh']);
  });

  it('a member that starts while a fresh token is stored neither locks nor calls upstream', async () => {
    const store = new WipeableStore();
    await start(store, 1);
    const locksBefore = store.locks;
    const late = harness({ store, retry: FAST_RETRY });
    fleet.push(late);
    await late.lifecycle.start();
    expect(store.locks).toBe(locksBefore);
    expect(late.stub.count).toBe(0);
  });

  it('a store restarted empty: one upstream renewal for the whole fleet, the rest adopt it', async () => {
    const store = new WipeableStore();
    const members = await start(store, 4);
    for (let i = 0; i < 3; i++) await members[0]!.lifecycle.forceRefresh(); // versions move on
    await flush();
    store.inner = new InProcessTokenStore(); // wiped: versions count from 1 again
    await jest.advanceTimersByTimeAsync(STALE_AT);
    await jest.advanceTimersByTimeAsync(5_000); // followers poll
    expect(renewals(...members)).toEqual(['refresh', 'refresh', 'refresh', 'get']);
    const served = await Promise.all(members.map((m) => m.lifecycle.getAccessToken()));
    expect(new Set(served).size).toBe(1);
    expect((await store.inner.read('token'))?.version).toBe(1);
  });

  it('a refresh refused while another member renewed: the holder adopts that token, no login', async () => {
    const store = new InProcessTokenStore();
    const [x, y] = await start(store);
    let newer = '';
    x!.stub.responder = (call) => {
      if (call.kind !== 'refresh') return call.succeed();
      // Meanwhile y (its lock lapsed, say) renewed and stored a newer token; the upstream refuses ours.
      void y!.lifecycle
        .forceRefresh()
        .then((token) => (newer = token))
        .finally(() => call.fail(upstreamError('INVALID_CREDENTIALS', 401)));
    };
    const lock = jest.spyOn(store, 'lock').mockResolvedValueOnce({ release: () => Promise.resolve() });
    const result = outcome(x!.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(5_000);
    lock.mockRestore();
    expect(result.value()).toBe(newer);
    expect(x!.stub.kinds()).toEqual(['get', 'refresh']); // refused, then no Get token
  });

  it('a lock whose holder died lapses: a waiting member then takes it and renews once', async () => {
    const store = new InProcessTokenStore();
    const [x, y] = await start(store);
    await store.lock('token', 28_000); // a holder that never comes back (SIGKILL)
    const result = outcome(y!.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(27_000);
    expect(result.settled()).toBe(false);
    await jest.advanceTimersByTimeAsync(3_000);
    expect(renewals(x!, y!)).toEqual(['refresh']);
    await settle();
    expect(result.value()).toBe(await x!.lifecycle.getAccessToken()); // and x adopted it
    expect((await store.read('token'))?.version).toBeGreaterThan(1);
  });

  it('a store that failed gets 250 ms per call, not its renewal budget (1.5 s), until it answers again', async () => {
    const store = new WipeableStore();
    await start(store, 1);
    const read = jest.spyOn(store, 'read').mockImplementation(() => new Promise(() => undefined));
    const first = outcome(a.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(1_499);
    expect(first.settled()).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(first.settled()).toBe(true); // the budget, then alone
    await jest.advanceTimersByTimeAsync(500); // the store's own bound (2 s): now it counts as down
    const second = outcome(a.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(250);
    expect(second.settled()).toBe(true);
    read.mockRestore();
    a.stub.responder = answer.ok();
  });

  it('a refresh token never shared is used even when the store holds an entry without one', async () => {
    const store = new WipeableStore();
    await start(store, 1);
    await jest.advanceTimersByTimeAsync(10_000); // the stored token is now the older one
    const read = jest.spyOn(store, 'read').mockRejectedValue(new Error('down'));
    // Renewed alone, by a login (its first refresh token went through the store: not used with it down);
    // the new refresh token never went through the store.
    await a.lifecycle.forceRefresh();
    read.mockRestore();
    await settle();
    const stored = (await store.inner.read('token'))!;
    const older = { ...stored, accessToken: 'OTHER', staleAt: stored.staleAt - 60_000, version: stored.version + 1 };
    await store.inner.write('token', older); // an older token, and no refresh token: not adopted, nothing to spend
    await a.lifecycle.forceRefresh();
    expect(a.stub.kinds()).toEqual(['get', 'get', 'refresh']); // its own refresh token, not another login
  });
});

import type { TransferTokenStoreLock } from '../../../lib/token-store/transfer-token-store.interface';
import { flush, harness, outcome, type Harness } from '../support/stub-endpoint';
import { useFakeClock } from '../lifecycle/support';
import { ProxyStore } from '../support/test-stores';

/** Another process holds the lock; `watch` misbehaves in the way the test says. */
class HeldLockStore extends ProxyStore {
  constructor(private readonly watchImpl: (onChange: () => void) => () => void) {
    super();
  }
  override lock(): Promise<TransferTokenStoreLock | undefined> {
    return Promise.resolve(undefined);
  }
  watch(_key: string, onChange: () => void): () => void {
    return this.watchImpl(onChange);
  }
}

/**
 * A waiter gives up on a holder that never writes after a lease (4 s) and the longest renewal a live holder
 * may make (store budget 1.5 s, 3 attempts + 1 of 1 s, 2 waits of up to 5 s): 19.5 s.
 */
const WAITER_GIVES_UP_MS = 4_000 + 1_500 + 4 * 1_000 + 2 * 5_000 + 500;

describe('regression (0.2 review): Renewer.nap trusts store.watch (TDZ on `stop`, no minimum delay)', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('a watch() that throws (subscriber connection down) does not fail the caller', async () => {
    h = harness({
      store: new HeldLockStore(() => {
        throw new Error('subscriber down');
      }),
      requestTimeoutMs: 1_000,
    });
    const caller = outcome(h.lifecycle.getAccessToken());
    await jest.advanceTimersByTimeAsync(WAITER_GIVES_UP_MS).catch(() => undefined); // a lease and a live holder's renewal
    // Current code: the Promise executor throws -> the renewal fails at once with UPSTREAM_UNAVAILABLE
    // "Unexpected failure while renewing the token (Error)". Expected: the wait degrades to polling.
    expect(caller.value()).toMatch(/^ACCESS-/);
  });

  it('a watch() that throws leaves no timer that throws later (uncaughtException in production)', async () => {
    h = harness({
      store: new HeldLockStore(() => {
        throw new Error('subscriber down');
      }),
      requestTimeoutMs: 1_000,
    });
    h.lifecycle.getAccessToken().catch(() => undefined);
    await flush();
    // The nap's setTimeout(done, 25) was armed before watch() threw; done() then reads `stop`,
    // still in its temporal dead zone: "ReferenceError: Cannot access 'stop' before initialization".
    await expect(jest.advanceTimersByTimeAsync(100)).resolves.toBeUndefined();
  });

  it('a watch() that calls back synchronously (e.g. "current value on subscribe") does not fail the caller', async () => {
    h = harness({
      store: new HeldLockStore((onChange) => {
        onChange();
        return () => undefined;
      }),
      requestTimeoutMs: 1_000,
    });
    const caller = outcome(h.lifecycle.getAccessToken());
    await jest.advanceTimersByTimeAsync(WAITER_GIVES_UP_MS).catch(() => undefined);
    // Current code: done() runs inside watch() before `stop` is initialised -> ReferenceError -> the renewal
    // fails with UPSTREAM_UNAVAILABLE (ReferenceError).
    expect(caller.value()).toMatch(/^ACCESS-/);
  });

  it('a watch() that fires at once on every subscription does not spin the event loop on store reads', async () => {
    const store = new HeldLockStore((onChange) => {
      void Promise.resolve().then(onChange);
      return () => undefined;
    });
    // Safety valve so the test terminates: after 200 reads the store "fails", which ends the wait.
    const read = store.read.bind(store);
    store.read = (key) => (store.reads >= 200 ? Promise.reject(new Error('valve')) : read(key));
    h = harness({ store, requestTimeoutMs: 1_000 });
    h.lifecycle.getAccessToken().catch(() => undefined);
    await Promise.resolve();
    for (let i = 0; i < 5_000 && store.reads < 200; i++) await Promise.resolve(); // microtasks only, no time passes
    // Current code: 200 reads without a single macrotask or a millisecond passing (without the valve: a
    // microtask loop that starves the event loop for the whole lock lifetime; forever under fake timers).
    expect(store.reads).toBeLessThan(5);
  });

  it('an unsubscribe returning a rejected promise (ioredis/node-redis unsubscribe on a closed client) is not left unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const store = new HeldLockStore(() => () => Promise.reject(new Error('The client is closed')) as unknown as void);
      h = harness({ store, requestTimeoutMs: 1_000 });
      h.lifecycle.getAccessToken().catch(() => undefined);
      await jest.advanceTimersByTimeAsync(100); // a few naps end, each calls stop()
      h.lifecycle.close(); // and close() ends the last one
      h = undefined;
      jest.useRealTimers();
      await new Promise((r) => setTimeout(r, 50)); // let Node report unhandled rejections
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]); // before the fix: one per nap (each would crash a Node >= 15 process)
  });
});

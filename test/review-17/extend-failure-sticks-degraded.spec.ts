import type { TransferTokenStoreLock } from '../../lib/token-store/transfer-token-store.interface';
import { answer, flush, harness, outcome, type Harness } from '../unit/support/stub-endpoint';
import { ProxyStore } from '../unit/support/test-stores';
import { FAST_RETRY, useFakeClock } from '../unit/lifecycle/support';

/**
 * Review 17, finding: one failed lease extension leaves `getStatus().store` degraded for good.
 *
 * `StoreAccess` is degraded "while any kind of call fails" and a kind is cleared only when a call of that
 * kind answers (`answered(kind)`). A lease extension (`extend`) runs only while a renewal holds the lock
 * for more than leaseMs/3 (1.33 s). One extension that is refused (during a failover it reaches the demoted
 * primary: `READONLY`) puts 'extend' in `failing`; every later renewal of a healthy upstream ends well within
 * 1.33 s, so no extension runs again and 'extend' is never cleared: reads, locks and writes all answer,
 * yet the status (and the health details, and the `degraded` gauge an alert uses) says `degraded`
 * (`READONLY`) until a renewal happens to be slow again - possibly never. (The later edit of StoreAccess
 * clears socket/timeout codes when another kind answers, but keeps reply codes such as READONLY/NOPERM/OOM
 * "until that kind works", which for `extend` - and for `replicated` followed by login-only renewals - may
 * be never.)
 *
 * Fix: a failed extension (or replica check) is not a standing degradation of the store: clear it when the
 * lock is released / when the next call of any kind answers, or report it as a once-off warning.
 */
describe('review 17: the store state after a failed lease extension', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('is ok again once every later store call answers', async () => {
    const store = new ProxyStore();
    let refuseExtension = true;
    const lock = store.lock.bind(store);
    store.lock = async (key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> => {
      const held = await lock(key, ttlMs);
      if (held === undefined) return undefined;
      return {
        release: () => held.release(),
        extend: (leaseMs: number) => {
          if (refuseExtension) {
            refuseExtension = false;
            // A failover under way: the extension reached the demoted primary.
            return Promise.reject(new Error("READONLY You can't write against a read only replica."));
          }
          return held.extend!(leaseMs);
        },
      };
    };
    h = harness({ store, retry: FAST_RETRY });
    await h.lifecycle.start();
    await flush();
    expect(h.lifecycle.getStatus().store?.state).toBe('ok');

    // One slow upstream answer (1.5 s): the lease is extended once, and that extension is refused.
    h.stub.responder = (call) => void call.succeed({}, 1_500);
    const slow = outcome(h.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(1_600);
    expect(slow.value()).toMatch(/^ACCESS-/);
    expect(refuseExtension).toBe(false); // the extension ran, and was refused (today: degraded, READONLY)

    // The store is fine from here on: reads, locks, spent marks and writes all answer, renewals are quick.
    h.stub.responder = answer.ok();
    for (let i = 0; i < 3; i++) {
      await jest.advanceTimersByTimeAsync(1_000);
      await h.lifecycle.forceRefresh();
      await jest.advanceTimersByTimeAsync(50);
    }
    expect(store.calls).toBeGreaterThan(10);
    expect(h.lifecycle.getStatus().store?.state).toBe('ok');
  });
});

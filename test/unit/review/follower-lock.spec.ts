import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type { TransferTokenStoreLock } from '../../../lib/token-store/transfer-token-store.interface';
import { answer, drive, harness, outcome, upstreamError, type Harness } from '../support/stub-endpoint';
import { FAST_RETRY, useFakeClock } from '../lifecycle/support';
import { ProxyStore } from '../support/test-stores';

describe('regression (0.2 review): a follower polls the entry only, never the lock: it waits the whole lock lifetime', () => {
  let a: Harness | undefined;
  let b: Harness | undefined;
  useFakeClock(() => a);
  afterEach(() => b?.lifecycle.close());

  it("the leader fails fast and releases the lock: the follower's caller is not held for 22 s", async () => {
    const store = new InProcessTokenStore();
    a = harness({ store, retry: FAST_RETRY, fetchOnStartup: false }, answer.pending());
    b = harness({ store, retry: FAST_RETRY, fetchOnStartup: false }, answer.ok());
    const leader = outcome(a.lifecycle.getAccessToken()); // A holds the lock, its Get token in flight
    await jest.advanceTimersByTimeAsync(10);
    const follower = outcome(b.lifecycle.getAccessToken()); // B: lock held -> waits for A's write
    await jest.advanceTimersByTimeAsync(10);
    // A fails fast (its first attempt, then the others of its renewal, 75 + 150 ms apart), releases the lock.
    a.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503);
    a.stub.last().fail(upstreamError('UPSTREAM_UNAVAILABLE', 503));
    await jest.advanceTimersByTimeAsync(3_000);
    expect(leader.settled()).toBe(true);
    // Current: B keeps polling read() for a write that will never come, until 2 * 10 s + 2 s = 22 s after it
    // started, although the lock was free 20 ms in. Its caller waits 22 s + its own renewal.
    expect(follower.settled()).toBe(true);
  });

  it('a lock granted after the store timeout is released, not left to block this process for 22 s', async () => {
    class SlowLockOnce extends ProxyStore {
      slow = true;
      override lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
        if (!this.slow) return super.lock(key, ttlMs);
        this.slow = false;
        // Granted at the store, but the answer arrives after the 2 s store timeout.
        return super.lock(key, ttlMs).then((lock) => new Promise((r) => setTimeout(() => r(lock), 2_500)));
      }
    }
    a = harness({ store: new SlowLockOnce(), retry: FAST_RETRY });
    await drive(a.lifecycle.start()); // renews alone after the lock timed out
    await jest.advanceTimersByTimeAsync(1_000); // the late lock answer arrives, nobody releases it
    const forced = outcome(a.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(3_000);
    // Current: forceRefresh finds "another holder" (itself) and waits 22 s for a write nobody will make.
    expect(forced.settled()).toBe(true);
  });
});

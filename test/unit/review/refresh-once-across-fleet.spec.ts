import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type { TransferTokenStore } from '../../../lib/token-store/transfer-token-store.interface';
import { answer, drive, harness, upstreamError, type Harness } from '../support/stub-endpoint';
import { ProxyStore } from '../support/test-stores';
import { FAST_RETRY, useFakeClock } from '../lifecycle/support';

/** Refresh tokens sent upstream by any member of the fleet. */
function refreshTokensUsed(...fleet: Harness[]): string[] {
  return fleet.flatMap((m) => m.stub.calls.filter((c) => c.kind === 'refresh').map((c) => c.refreshToken ?? ''));
}

describe('regression (0.2 review): a refresh token shared through the store is used twice across the fleet', () => {
  let a: Harness;
  let b: Harness;
  useFakeClock(() => a);
  afterEach(() => b?.lifecycle.close());

  async function fleet(store: TransferTokenStore, options: object = {}, storeB = store): Promise<void> {
    a = harness({ store, retry: FAST_RETRY, ...options });
    b = harness({ store: storeB, retry: FAST_RETRY, ...options });
    await drive(a.lifecycle.start()); // Get token: T1/R1, stored as version 1
    await drive(b.lifecycle.start()); // adopts version 1, R1 included
    expect(b.stub.count).toBe(0);
  }

  it('after another member spent R1 in a failed renewal (the "spent" entry), R1 is not sent again', async () => {
    await fleet(new InProcessTokenStore());
    a.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503); // refresh R1 fails, Get token fails
    await drive(a.lifecycle.forceRefresh()).catch(() => undefined);
    await drive(b.lifecycle.forceRefresh()).catch(() => undefined);
    const used = refreshTokensUsed(a, b);
    // Current: ['REFRESH-1-bead5', 'REFRESH-1-bead5']. The spent entry {...stored} lost accessToken (non-
    // enumerable), so B cannot adopt it, and since its version (2) differs from B's (1), B ignores the
    // store's word and sends its own copy of R1.
    expect(used).toEqual([...new Set(used)]);
  });

  it('store down: every member "carries on alone" with the same stored R1', async () => {
    const store = new ProxyStore();
    await fleet(store);
    store.mode = 'throw';
    await drive(a.lifecycle.forceRefresh());
    await drive(b.lifecycle.forceRefresh());
    const used = refreshTokensUsed(a, b);
    expect(used).toEqual([...new Set(used)]); // before the fix: R1 twice
  });

  it('the leader is slow but within every timeout: its lock lapses and the follower reuses R1', async () => {
    const storeA = new ProxyStore();
    const storeB = new ProxyStore(storeA.inner); // same store; B has a fast path to it
    await fleet(storeA, { requestTimeoutMs: 10_000 }, storeB); // lock lifetime 2 * 10 s + 2 s = 22 s
    storeA.delayMs = 1_900; // A's store calls answer in 1.9 s: within the 2 s store timeout
    // A's refresh times out after 10 s, then its Get token takes 9.9 s: each within requestTimeoutMs.
    a.stub.responder = (call) => {
      if (call.kind === 'refresh') setTimeout(() => call.fail(upstreamError('UPSTREAM_UNAVAILABLE')), 10_000);
      else setTimeout(() => call.succeed(), 9_900);
    };
    b.stub.responder = (call) => {
      call.succeed();
    };
    const leader = a.lifecycle.forceRefresh().catch(() => undefined);
    await jest.advanceTimersByTimeAsync(2_000); // A holds the lock (taken at 1.9 s)
    const follower = b.lifecycle.forceRefresh().catch(() => undefined);
    await jest.advanceTimersByTimeAsync(40_000);
    await Promise.all([leader, follower]);
    const used = refreshTokensUsed(a, b);
    // Current: A's lock lives 22 s but A needs lock-to-write 1.9 + 10 + 9.9 + 1.9 s; B waits 22 s from its
    // own start, renews without the lock, reads version 1 (A has not written yet) and sends R1, which A
    // sent 20 s earlier. Nothing fences the use of the refresh token itself.
    expect(used).toEqual([...new Set(used)]);
  });
});

import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import { answer, flush, harness, outcome, type Harness } from '../unit/support/stub-endpoint';
import { ProxyStore } from '../unit/support/test-stores';
import { useFakeClock } from '../unit/lifecycle/support';

/**
 * Review 17, finding: a renewal that replaces an EXPIRED cached token gets the minimum store budget
 * (100 ms) instead of the whole one (1.5 s).
 *
 * `TokenLifecycle.storeBudgetMs()` says "the whole budget with no usable token (callers wait either
 * way), else a third of what is left", but only tests `this.token === undefined`. A token past its usable
 * end stays cached until a caller reads it (getAccessToken drops it), so the background renewals of an
 * idle process after an upstream outage, and `forceRefresh()`, compute `left < 0` and clamp to
 * STORE_BUDGET_MIN_MS = 100 ms. With a store that answers in 300 ms (docs/fleet.md tests 900 ms) the first
 * read already misses the budget: the process renews alone (a login of its own, the store marked
 * degraded TIMEOUT) instead of adopting the fresh token another member stored. After an outage longer than
 * a token lifetime that is one login per idle process, exactly when the upstream comes back.
 *
 * Fix: treat a token past its usable end like no token (`leftMs <= 0` -> STORE_BUDGET_MS).
 */
describe('review 17: the store budget of a renewal replacing an expired token', () => {
  let x: Harness | undefined;
  let y: Harness | undefined;
  useFakeClock(() => x);
  afterEach(() => y?.lifecycle.close());

  it('is the whole budget: a slow store (300 ms a call) still lets it adopt the fleet token', async () => {
    const inner = new InProcessTokenStore();
    const slow = new ProxyStore(inner);
    const noRetry = { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 };
    x = harness({ store: slow, retry: noRetry });
    y = harness({ store: new ProxyStore(inner), retry: noRetry, fetchOnStartup: false });
    await x.lifecycle.start();
    const first = await x.lifecycle.getAccessToken();
    // An upstream outage longer than the token: x, idle (no caller), keeps its expired token cached.
    x.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503);
    await jest.advanceTimersByTimeAsync(600_000);
    await flush();
    expect(x.lifecycle.getStatus().state).not.toBe('valid');
    // The upstream is back: another member logs in and stores a fresh token.
    const fleetToken = await y.lifecycle.forceRefresh();
    await flush();
    expect(fleetToken).not.toBe(first);
    // x renews now (forced, or its next scheduled retry) against a store answering in 300 ms a call.
    x.stub.responder = answer.ok();
    const upstreamCallsBefore = x.stub.count;
    slow.delayMs = 300;
    const renewed = outcome(x.lifecycle.forceRefresh());
    await jest.advanceTimersByTimeAsync(1_500);
    expect(renewed.value()).toBe(fleetToken); // adopted: read + lock + read = 900 ms < 1.5 s
    expect(x.stub.count).toBe(upstreamCallsBefore); // no login of its own
  });
});

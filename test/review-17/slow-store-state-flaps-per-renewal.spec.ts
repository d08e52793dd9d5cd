import { harness, type Harness } from '../unit/support/stub-endpoint';
import { ProxyStore } from '../unit/support/test-stores';
import { FAST_RETRY, useFakeClock } from '../unit/lifecycle/support';

/**
 * Review 17, finding: with a slow store (docs/fleet.md's own case, 900 ms a call) the store state flaps
 * once per renewal, and each renewal logs "failed" and then "answers again".
 *
 * A call that misses the renewal's budget is counted as a store failure (`failed(kind, 'TIMEOUT')`:
 * degraded, logged), and its late answer a moment later as the store's recovery (`answered(kind)`: ok
 * with a new `since`, "The token store answers again" logged). Renewals are more than a minute apart, so
 * the per-code throttle (60 s) never applies: every renewal writes two log lines and resets `since`,
 * while the status reads `ok` except for the second or so between the two. An operator sees a store that
 * "recovers" every few minutes and an `ok` state, while the whole fleet renews alone every time (the
 * budget always runs out). CONTRACT 0.3: the store's state is visible; StoreAccess's own doc: a partial
 * failure "neither hides nor flaps"; docs/fleet.md: "logged once per outage".
 *
 * Fix (either): do not count a budget cut as a store failure (the store answered within its own bound),
 * or do not let a late answer to a call that missed its budget count as the store's recovery (only an
 * answer in time ends the degradation). Either way: at most one "failed" line, no recovery line per
 * renewal.
 */
describe('review 17: a store that is always slower than the budget', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('does not log a failure and a recovery at every renewal', async () => {
    const store = new ProxyStore();
    h = harness({ store, retry: FAST_RETRY });
    h.stub.defaults = { lifetimeMs: 180_000 }; // 3 min: a renewal every ~2.4 min, > the 60 s log throttle
    store.delayMs = 900;
    const started = h.lifecycle.start();
    await jest.advanceTimersByTimeAsync(3_000);
    await started;
    for (let i = 0; i < 5; i++) await jest.advanceTimersByTimeAsync(150_000); // five scheduled renewals
    expect(h.stub.count).toBeGreaterThanOrEqual(5);
    const failed = h.hooks.logs.filter((l) => /token store failed/.test(l.message));
    const recovered = h.hooks.logs.filter((l) => /token store answers again/.test(l.message));
    expect(failed.length + recovered.length).toBeLessThanOrEqual(1);
  });
});

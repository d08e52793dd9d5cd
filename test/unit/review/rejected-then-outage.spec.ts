import { drive, harness, upstreamError, type Harness } from '../support/stub-endpoint';
import { FAST_RETRY, useFakeClock } from '../lifecycle/support';

describe('regression (0.2 review): after rejected credentials, transient failures get no backoff at all', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('a busy app in an outage that follows a 401 from Get token makes no more calls than an idle one', async () => {
    let n = 0;
    h = harness({ retry: FAST_RETRY, fetchOnStartup: false }, (call) =>
      // A gateway answered 401 during a deploy; since then the upstream is down (503).
      call.fail(n++ === 0 ? upstreamError('INVALID_CREDENTIALS', 401) : upstreamError('UPSTREAM_UNAVAILABLE', 503)),
    );
    await drive(h.lifecycle.getAccessToken()).catch(() => undefined); // 401: cool-down 1 s
    await jest.advanceTimersByTimeAsync(1_100); // cool-down over
    // A busy app: the first caller's renewal makes its attempts (driven through their waits), the others
    // are refused at once.
    for (let i = 0; i < 20; i++) await drive(h.lifecycle.getAccessToken()).catch(() => undefined);
    // Was: policy.failed() kept the `rejected` state (its `until` already past) for the 503, so nothing
    // refused the next caller and no background retry was scheduled: 1 + 20 renewals, all back to back.
    // Now: the 401, then one renewal of maxAttempts attempts.
    expect(h.stub.count).toBeLessThanOrEqual(1 + FAST_RETRY.maxAttempts);
  });
});

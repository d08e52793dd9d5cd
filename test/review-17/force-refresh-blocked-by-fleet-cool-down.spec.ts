import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import { blockedEntry } from '../../lib/token-lifecycle/cached-token';
import { harness, type Harness } from '../unit/support/stub-endpoint';
import { FAST_RETRY, useFakeClock } from '../unit/lifecycle/support';

/**
 * Review 17, finding: with a store, `forceRefresh()` no longer skips the credentials cool-down.
 *
 * CONTRACT ("TransferAuthService"/"Protecting the upstream"): `forceRefresh()` "bypasses cool-downs"; a
 * new login after rejected credentials is tried "at once after `forceRefresh()` or a changed secret".
 * README: "Skips the backoff, the credentials cool-down and the 401 spacing"; docs/failures.md:
 * "`forceRefresh()` skips the cool-down". The 0.3 fleet cool-down did not change that promise.
 *
 * `Renewer.loginBlocked()` ignores whether the renewal is forced ("Forced renewals respect it too"), in
 * `renewShared`, in `awaitHolder` and in `exchange`: once any member wrote a cool-down into the entry,
 * the operator's lever (unlock the agent account at Freedom Pay, then `forceRefresh()`) answers
 * INVALID_CREDENTIALS with no upstream call, for up to 5 minutes, on every process.
 *
 * Fix: pass `force` in the RenewalRequest and skip `loginBlocked` for forced renewals (one login per
 * forced renewal; its success lifts the cool-down for all), or change the contract, README and
 * docs/failures.md together.
 */
describe('review 17: forceRefresh() during the fleet cool-down', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('makes one login, as it does without a store', async () => {
    const store = new InProcessTokenStore();
    const blocked = blockedEntry(undefined, 1, Date.now() + 300_000, 10, 'a1b2c3d4');
    await store.write('token', blocked);
    h = harness({ store, retry: FAST_RETRY, fetchOnStartup: false });
    const forced = h.lifecycle.forceRefresh();
    forced.catch(() => undefined);
    await jest.advanceTimersByTimeAsync(100);
    await expect(forced).resolves.toMatch(/^ACCESS-/);
    expect(h.stub.kinds()).toEqual(['get']);
  });
});

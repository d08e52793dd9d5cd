import { InProcessTokenStore } from '../../lib/token-store/in-process-token-store';
import { blockedEntry } from '../../lib/token-lifecycle/cached-token';
import { harness, type Harness } from '../unit/support/stub-endpoint';
import { FAST_RETRY, useFakeClock } from '../unit/lifecycle/support';

/**
 * Review 17, finding: a rotated secret never lifts the fleet's login cool-down.
 *
 * CONTRACT 0.3 ("The agent's account sees one fleet"): "a new secret from any process's provider lifts it
 * for all"; docs/fleet.md: "A process whose secret has another tag (its provider answers the rotated
 * secret) logs in at once, and its token lifts the cool-down for all."
 *
 * `Renewer.loginBlocked()` asks `this.endpoint.secretTag?.()`, but the lifecycle now hands the Renewer a
 * `RetryingEndpoint` (lib/token-lifecycle/attempts.ts) wrapping the real client, and that wrapper forwards
 * `getToken`, `refreshToken`, `secretChanged`, `close`: never `secretTag`. So `secretTag` is always
 * undefined in production and every process obeys the fleet's cool-down (up to 5 minutes) whatever its
 * provider answers. test/unit/lifecycle/production-store.spec.ts "a member whose secret changed" only
 * passes because it waits out the first (1 s) cool-down before the rotated member logs in.
 *
 * Fix: forward `secretTag` in `RetryingEndpoint` (only when the wrapped endpoint has it).
 */
describe('review 17: a rotated secret lifts the fleet cool-down at once', () => {
  let h: Harness | undefined;
  useFakeClock(() => h);

  it('a member whose provider answers another secret logs in during a 5-minute fleet cool-down', async () => {
    const store = new InProcessTokenStore();
    // What a member wrote after the 10th rejected login in a row: no login before 5 minutes from now.
    const blocked = blockedEntry(undefined, 1, Date.now() + 300_000, 10, 'a1b2c3d4');
    await store.write('token', blocked);
    h = harness({ store, retry: FAST_RETRY, fetchOnStartup: false });
    // Its provider answers the rotated secret (the real client's secretTag() reads the provider).
    Object.assign(h.stub, { secretTag: () => Promise.resolve('feedbeef') });
    const token = h.lifecycle.getAccessToken();
    token.catch(() => undefined);
    await jest.advanceTimersByTimeAsync(100);
    await expect(token).resolves.toMatch(/^ACCESS-/);
    expect(h.stub.kinds()).toEqual(['get']);
    // ... and its token lifted the cool-down for all: the entry no longer blocks logins.
    const after = await store.read('token');
    expect(after?.loginBlockedUntil).toBeUndefined();
  });
});

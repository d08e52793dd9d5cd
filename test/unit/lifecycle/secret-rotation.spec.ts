import type { TokenEndpoint } from '../../../lib/upstream/token-endpoint';
import { answer, flush, harness, outcome, type Harness } from '../support/stub-endpoint';
import { codeOf, useFakeClock } from './support';

/**
 * After rejected credentials logins cool down (1 s, doubling); with a secret provider, a caller refused
 * meanwhile asks the endpoint (at most once a second) whether the secret changed, and a changed one is
 * tried at once, in the background, without forceRefresh().
 */
describe('TokenLifecycle: a rotated secret during the credentials cool-down', () => {
  let h: Harness;
  useFakeClock(() => h);

  function withSecretCheck(changed: () => boolean): jest.Mock<Promise<boolean>> {
    const check = jest.fn(() => Promise.resolve(changed()));
    (h.stub as TokenEndpoint).secretChanged = check;
    return check;
  }

  async function rejected(): Promise<void> {
    h.stub.responder = answer.fail('INVALID_CREDENTIALS', 401);
    expect(codeOf(await h.lifecycle.getAccessToken().catch((e: unknown) => e))).toBe('INVALID_CREDENTIALS');
    expect(h.stub.count).toBe(1);
  }

  it('a changed secret: the next refused caller starts a login at once; later callers get its token', async () => {
    h = harness({ fetchOnStartup: false });
    let rotated = false;
    const check = withSecretCheck(() => rotated);
    await rejected();
    h.stub.responder = answer.ok();
    rotated = true;
    const refused = outcome(h.lifecycle.getAccessToken());
    await flush();
    expect(codeOf(refused.error())).toBe('INVALID_CREDENTIALS'); // fail fast, as the contract says
    expect(check).toHaveBeenCalledTimes(1);
    expect(h.stub.count).toBe(2); // the login with the new secret, before the 1 s cool-down ended
    const token = await h.lifecycle.getAccessToken();
    expect(token).toMatch(/^ACCESS-/);
    expect(h.stub.count).toBe(2); // the token of that login: no other call
    expect(h.hooks.logs.map((l) => l.message)).toContainEqual(expect.stringMatching(/new secret; logging in/));
  });

  it('an unchanged secret: no login until the cool-down ends, and the provider is asked at most once a second', async () => {
    h = harness({ fetchOnStartup: false });
    const check = withSecretCheck(() => false);
    await rejected();
    for (let i = 0; i < 50; i++) await h.lifecycle.getAccessToken().catch(() => undefined);
    await flush();
    expect(check).toHaveBeenCalledTimes(1);
    expect(h.stub.count).toBe(1);
    await jest.advanceTimersByTimeAsync(500);
    await h.lifecycle.getAccessToken().catch(() => undefined);
    expect(check).toHaveBeenCalledTimes(1);
    expect(h.stub.count).toBe(1);
  });

  it('a static secret (no secretChanged): nothing is asked, the cool-down alone decides', async () => {
    h = harness({ fetchOnStartup: false });
    await rejected();
    for (let i = 0; i < 10; i++) await h.lifecycle.getAccessToken().catch(() => undefined);
    expect(h.stub.count).toBe(1);
  });
});

describe('TokenLifecycle: a provider that answers a new wrong secret each time', () => {
  let h: Harness;
  useFakeClock(() => h);

  it('lifts the cool-down once until a login succeeds: logins stay bounded by the doubling cool-down', async () => {
    h = harness({ fetchOnStartup: false }, answer.fail('INVALID_CREDENTIALS', 401));
    (h.stub as TokenEndpoint).secretChanged = () => Promise.resolve(true); // always "new"
    // A busy app: a caller every 100 ms for a minute.
    for (let i = 0; i < 600; i++) {
      await h.lifecycle.getAccessToken().catch(() => undefined);
      await jest.advanceTimersByTimeAsync(100);
    }
    // Without the rule: a login a second (60). With it: the skip once, then cool-downs of 1, 2, 4, 8,
    // 16, 32 s: 1 + 1 + 6 logins at most in 60 s.
    expect(h.stub.count).toBeLessThanOrEqual(8);
    expect(h.stub.count).toBeGreaterThanOrEqual(6);
  });
});

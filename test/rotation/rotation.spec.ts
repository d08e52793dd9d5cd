import { TransferAuthError, type TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { filter, firstValueFrom } from 'rxjs';
import type { AuthApp } from '../support/auth-app';
import { captureAuthError, sleep } from '../support/e2e';
import { failures, newSecret, rotationRig, turn, useFakeClock } from './support';

/** A secret manager the test controls: what `provider` answers, and how often it was asked. */
class SecretSource {
  calls = 0;
  constructor(public value: string) {}
  readonly provider = (): Promise<string> => {
    this.calls++;
    return Promise.resolve(this.value);
  };
}

/**
 * Rotation end to end: the real module (`TransferAuthModule.forRoot`) with `agentSecret` as a provider,
 * against a FakeTransferServer whose secret is changed at run time (`setAgentSecret`). Real sockets
 * always; the cool-down tests run the module's clocks and timers on Jest's fake clock.
 */
describe('agentSecret provider: rotation against the fake (e2e)', () => {
  const rig = rotationRig();
  const { boot, logins } = rig;

  /** An app reading its secret from a new {@link SecretSource} (answering the fake's secret now), its first token fetched. */
  async function bootWithToken(
    overrides?: Partial<TransferAuthModuleOptions>,
  ): Promise<{ source: SecretSource; app: AuthApp; token: string }> {
    const source = new SecretSource(rig.fake.agentSecret);
    const app = await boot(source.provider, overrides);
    return { source, app, token: await app.auth.getAccessToken() };
  }

  describe('the provider already answers the rotated secret', () => {
    it('the next login (forceRefresh) uses it: one attempt, no error, no restart', async () => {
      const { source, app, token: before } = await bootWithToken();

      const rotated = newSecret();
      rig.fake.setAgentSecret(rotated);
      source.value = rotated;
      const after = await app.auth.forceRefresh();

      expect(after).not.toBe(before);
      expect(rig.fake.isAccessTokenValid(after)).toBe(true);
      expect(logins()).toEqual([200, 200]);
      expect(source.calls).toBe(2); // one read per login
      expect(failures(app.events)).toEqual([]);
      expect(app.auth.getStatus().lastError).toBeUndefined();
    });

    it('the scheduled renewal at token expiry uses it while callers keep being served: no caller error', async () => {
      rig.fake.accessTtlMs = 3_000; // renewed in the background about 2.4 s after the login
      const { source, app, token: first } = await bootWithToken();

      const rotated = newSecret();
      rig.fake.setAgentSecret(rotated);
      source.value = rotated;

      const served: string[] = [];
      const errors: unknown[] = [];
      while (rig.fake.calls.auth < 2 || app.events.filter((e) => e.type === 'token.acquired').length < 2) {
        await app.auth.getAccessToken().then(
          (token) => served.push(token),
          (error: unknown) => errors.push(error),
        );
        await sleep(20);
        if (served.length + errors.length > 1_000) throw new Error('no background renewal within 20 s');
      }
      const second = await app.auth.getAccessToken();

      expect(errors).toEqual([]);
      expect(second).not.toBe(first);
      expect(rig.fake.isAccessTokenValid(second)).toBe(true);
      expect(new Set(served)).toEqual(new Set(served.includes(second) ? [first, second] : [first]));
      expect(logins()).toEqual([200, 200]);
      expect(source.calls).toBe(2);
      expect(failures(app.events)).toEqual([]);
    });

    it('with refresh tokens, a refresh reads no secret; a refused refresh falls back to a login with the new one', async () => {
      const { source, app } = await bootWithToken({ refresh: undefined }); // the default refresh

      const rotated = newSecret();
      rig.fake.setAgentSecret(rotated);
      source.value = rotated;
      await app.auth.forceRefresh(); // the refresh token still works upstream: no login, no read
      expect(rig.fake.calls).toMatchObject({ auth: 1, refresh: 1 });
      expect(source.calls).toBe(1);

      rig.fake.revokeRefreshTokens();
      const token = await app.auth.forceRefresh();
      expect(rig.fake.isAccessTokenValid(token)).toBe(true);
      expect(rig.fake.calls).toMatchObject({ auth: 2, refresh: 2 });
      expect(logins()).toEqual([200, 200]);
      expect(source.calls).toBe(2);
      expect(failures(app.events)).toEqual([]);
    });
  });

  describe('the provider answers the rotated secret only later', () => {
    it('callers get INVALID_CREDENTIALS meanwhile; the lifecycle follows within a second of the provider changing, without forceRefresh and without hammering', async () => {
      const { source, app } = await bootWithToken();
      useFakeClock();
      const rotated = newSecret();
      rig.fake.setAgentSecret(rotated); // upstream rotated; the secret manager does not have it yet
      const readsBefore = source.calls;

      // The app's own token is refused from now on (say a 401 from a Transfer call): it renews.
      const gapStarted = performance.now();
      app.auth.invalidate();
      const outcomes: { at: number; token?: string; code?: string }[] = [];
      // A caller every 50 ms; a renewal under way is waited for (real sockets) before the clock moves on.
      const call = async (): Promise<void> => {
        do {
          await app.auth.getAccessToken().then(
            (token) => outcomes.push({ at: performance.now(), token }),
            (error: unknown) => outcomes.push({ at: performance.now(), code: (error as TransferAuthError).code }),
          );
          await turn();
        } while (app.auth.getStatus().state === 'acquiring');
        jest.advanceTimersByTime(50);
      };
      // 1.5 s: past the login when the first cool-down (1 s) ends, well before the second (2 s) does.
      while (performance.now() - gapStarted < 1_500) await call();
      const duringGap = outcomes.length;
      const loginsInGap = logins().slice(1);
      const readsInGap = source.calls - readsBefore;

      source.value = rotated; // the secret manager catches up
      const changedAt = performance.now();
      while (outcomes.at(-1)?.token === undefined) {
        if (performance.now() - changedAt > 10_000) throw new Error('the rotated secret was not picked up in 10 s');
        await call();
      }
      const followedAfterMs = (outcomes.at(-1) as { at: number }).at - changedAt;

      // During the gap: only the upstream's refusal, and two logins for thirty calls: one at once, one
      // when the 1 s cool-down ended (the next would wait 2 s).
      expect(duringGap).toBeGreaterThanOrEqual(30);
      expect(new Set(outcomes.slice(0, duringGap).map((o) => o.code))).toEqual(new Set(['INVALID_CREDENTIALS']));
      expect(loginsInGap).toEqual([401, 401]);
      // Two reads per rejected login (the login, the re-read after the rejection), and one a second from
      // the refused callers (the cool-down check).
      expect(readsInGap).toBeGreaterThanOrEqual(4 + 1);
      expect(readsInGap).toBeLessThanOrEqual(4 + 2);

      // Then it follows by the cool-down check (the 2 s cool-down still runs), within a second of the
      // provider changing, by one login.
      expect(followedAfterMs).toBeLessThanOrEqual(1_000);
      const token = (outcomes.at(-1) as { token: string }).token;
      expect(rig.fake.isAccessTokenValid(token)).toBe(true);
      expect(logins()).toEqual([200, 401, 401, 200]);
      expect(app.events.filter((e) => e.type === 'token.acquired')).toHaveLength(2);
      expect(app.logger.lines).toContainEqual(
        expect.stringContaining('The agentSecret provider answers a new secret; logging in with it now.'),
      );
      expect(app.auth.getStatus()).toMatchObject({ state: 'valid' });
      expect(app.auth.getStatus().lastError).toBeUndefined();
    });

    it('on real timers too: the rotated secret is followed within about a second, callers refused meanwhile', async () => {
      const { source, app } = await bootWithToken();
      const rotated = newSecret();
      rig.fake.setAgentSecret(rotated);
      app.auth.invalidate();
      const codes = new Set<string>();
      const started = Date.now();
      while (Date.now() - started < 1_500) {
        codes.add(await captureAuthError(app.auth.getAccessToken()).then((e) => e.code));
        await sleep(50);
      }
      source.value = rotated;
      const changedAt = Date.now();
      let token: string | undefined;
      while (token === undefined && Date.now() - changedAt < 10_000) {
        token = await app.auth.getAccessToken().catch(() => undefined);
        if (token === undefined) await sleep(50);
      }
      expect(codes).toEqual(new Set(['INVALID_CREDENTIALS']));
      expect(Date.now() - changedAt).toBeLessThan(1_500);
      expect(rig.fake.isAccessTokenValid(token as string)).toBe(true);
      expect(logins()).toEqual([200, 401, 401, 200]);
    });

    it('an idle app is not woken: nothing asks the provider or the upstream until a caller comes', async () => {
      const { source, app } = await bootWithToken();
      useFakeClock();
      rig.fake.setAgentSecret(newSecret());
      app.auth.invalidate();
      await firstValueFrom(app.auth.events$.pipe(filter((e) => e.type === 'token.failed')));
      const reads = source.calls;
      source.value = rig.fake.agentSecret;
      // An hour: logins after a rejection never run in the background, whatever the provider says.
      for (let i = 0; i < 60; i++) {
        jest.advanceTimersByTime(60_000);
        await turn();
      }
      expect(logins()).toEqual([200, 401]);
      expect(source.calls).toBe(reads);

      const token = await app.auth.getAccessToken(); // the first caller logs in with what the provider says now
      expect(rig.fake.isAccessTokenValid(token)).toBe(true);
      expect(logins()).toEqual([200, 401, 200]);
      expect(source.calls).toBe(reads + 1);
    });
  });

  describe('a login rejected, and the provider changed by the time it is read again', () => {
    it('the same renewal logs in again with the new secret: the caller gets a token (one 401, one 200)', async () => {
      const { source, app } = await bootWithToken();
      const rotated = newSecret();
      rig.fake.setAgentSecret(rotated);
      // The secret manager is updated while the login with the old secret is on the wire.
      const updated = rig.fake.waitForCalls(2, 'auth').then(() => (source.value = rotated));

      app.auth.invalidate();
      const token = await app.auth.getAccessToken();
      await updated;

      expect(rig.fake.isAccessTokenValid(token)).toBe(true);
      expect(logins()).toEqual([200, 401, 200]);
      expect(source.calls).toBe(3); // startup; the rejected login; the re-read that found the new secret
      expect(failures(app.events)).toEqual([]);
      expect(app.auth.getStatus().lastError).toBeUndefined();
    });

    it('also at startup: init succeeds after one rejected login', async () => {
      const old = rig.fake.agentSecret;
      const source = new SecretSource(old);
      rig.fake.setAgentSecret(newSecret());
      const updated = rig.fake.waitForCalls(1, 'auth').then(() => (source.value = rig.fake.agentSecret));
      const app = await boot(source.provider);
      await updated;
      expect(logins()).toEqual([401, 200]);
      expect(source.calls).toBe(2);
      expect(app.auth.getStatus()).toMatchObject({ state: 'valid' });
      expect(failures(app.events)).toEqual([]);
    });
  });

  describe('a login rejected, and the provider still answers the same secret', () => {
    it('the error stands and the cool-down holds: no second login at once, then after 1 s, then after 2 s', async () => {
      const { source, app } = await bootWithToken();
      useFakeClock();
      rig.fake.setAgentSecret(newSecret());

      app.auth.invalidate();
      const first = await captureAuthError(app.auth.getAccessToken());
      expect(first).toMatchObject({ code: 'INVALID_CREDENTIALS', status: 401 });
      expect(logins()).toEqual([200, 401]); // not tried twice with the same secret
      expect(source.calls).toBe(3); // startup, the login, the re-read

      // Fifty callers at once: refused at once, no login; the provider asked once (the cool-down check).
      const refused = await Promise.all(Array.from({ length: 50 }, () => captureAuthError(app.auth.getAccessToken())));
      expect(new Set(refused.map((e) => e.code))).toEqual(new Set(['INVALID_CREDENTIALS']));
      await turn();
      expect(logins()).toEqual([200, 401]);
      expect(source.calls).toBe(4);

      // The cool-down is 1 s: refused without a login at 999 ms, a login at 1 s (rejected again).
      jest.advanceTimersByTime(999);
      expect(await captureAuthError(app.auth.getAccessToken())).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(logins()).toEqual([200, 401]);
      jest.advanceTimersByTime(1);
      expect(await captureAuthError(app.auth.getAccessToken())).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(logins()).toEqual([200, 401, 401]);

      // Then 2 s.
      jest.advanceTimersByTime(1_999);
      expect(await captureAuthError(app.auth.getAccessToken())).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(logins()).toEqual([200, 401, 401]);
      jest.advanceTimersByTime(1);
      expect(await captureAuthError(app.auth.getAccessToken())).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(logins()).toEqual([200, 401, 401, 401]);

      // forceRefresh() bypasses the cool-down, as with a string secret.
      expect(await captureAuthError(app.auth.forceRefresh())).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(logins()).toEqual([200, 401, 401, 401, 401]);
      expect(app.events.filter((e) => e.type === 'token.failed')).toHaveLength(4);
    });
  });

  describe('a provider that fails on the re-read after a rejection', () => {
    it('the rejection stands: callers get INVALID_CREDENTIALS, not SECRET_UNAVAILABLE, and the cool-down follows', async () => {
      let failNext = false;
      const source = new SecretSource(rig.fake.agentSecret);
      const provider = (): Promise<string> => {
        if (failNext) return Promise.reject(new Error('secret manager down'));
        failNext = rig.fake.calls.auth > 0 && source.value !== rig.fake.agentSecret; // fail the read after the login
        return source.provider();
      };
      const app = await boot(provider);
      rig.fake.setAgentSecret(newSecret());
      app.auth.invalidate();
      const error = await captureAuthError(app.auth.getAccessToken());
      expect(failNext).toBe(true);
      expect(error).toMatchObject({ code: 'INVALID_CREDENTIALS', status: 401 });
      expect(logins()).toEqual([200, 401]);
      expect(app.auth.getStatus().lastError).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(await captureAuthError(app.auth.getAccessToken())).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(logins()).toEqual([200, 401]);
    });
  });

  describe('the provider is read once per login, never on the cached path', () => {
    it('1,000 cached calls read nothing; each forced login reads it once', async () => {
      const source = new SecretSource(rig.fake.agentSecret);
      const app = await boot(source.provider);
      expect(source.calls).toBe(1);

      const token = await app.auth.getAccessToken();
      for (let i = 0; i < 1_000; i++) expect(await app.auth.getAccessToken()).toBe(token);
      expect(source.calls).toBe(1);
      expect(rig.fake.calls.auth).toBe(1);

      for (let i = 0; i < 3; i++) await app.auth.forceRefresh();
      await Promise.all(Array.from({ length: 20 }, () => app.auth.forceRefresh())); // one shared login
      expect(rig.fake.calls.auth).toBe(5);
      expect(source.calls).toBe(5);
    });
  });
});

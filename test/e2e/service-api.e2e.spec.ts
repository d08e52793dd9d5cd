import { createHash } from 'node:crypto';
import type { TokenFailedEvent } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, expectAuthError, leakedSecrets, secretsOf, waitFor } from '../support/e2e';

describe('TransferAuthService API (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
    app = await createAuthApp(fakeOptions(fake));
  });
  afterEach(async () => {
    await app.close();
    await fake.stop();
  });

  it('getAuthorizationHeader() is "Bearer <token>" with the cached token', async () => {
    const token = await app.auth.getAccessToken();
    expect(await app.auth.getAuthorizationHeader()).toBe(`Bearer ${token}`);
    expect(fake.calls.total).toBe(1);
  });

  it('forceRefresh() coalesces concurrent calls into one upstream call and returns a new token', async () => {
    const { auth } = app;
    const old = await auth.getAccessToken();
    fake.failNext('refresh', { kind: 'delay', ms: 50 });
    const tokens = await Promise.all(Array.from({ length: 25 }, () => auth.forceRefresh()));
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(old);
    expect(fake.isAccessTokenValid(tokens[0] as string)).toBe(true);
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 1, total: 2 });
    // Callers that were not forcing anything get the new token from the cache.
    expect(await auth.getAccessToken()).toBe(tokens[0]);
    expect(fake.calls.total).toBe(2);
  });

  it('forceRefresh() and getAccessToken() callers join the renewal already in flight: one upstream call', async () => {
    const { auth } = app;
    const old = await auth.getAccessToken();
    fake.resetCounters();
    auth.invalidate(old); // starts a renewal at once
    const [forced, ...plain] = await Promise.all([auth.forceRefresh(), auth.getAccessToken(), auth.getAccessToken()]);
    expect(forced).not.toBe(old);
    expect(plain).toEqual([forced, forced]);
    expect(fake.calls.total).toBe(1);
  });

  it('a failed forceRefresh() rejects, and callers keep the cached token while it is usable', async () => {
    const { auth, events } = app;
    const token = await auth.getAccessToken();
    fake.failAlways('any', { kind: 'status', status: 503 });
    expectAuthError(await captureAuthError(auth.forceRefresh()), 'UPSTREAM_UNAVAILABLE');
    expect(await auth.getAccessToken()).toBe(token);
    expect(auth.getStatus()).toMatchObject({
      state: 'valid',
      lastError: { code: 'UPSTREAM_UNAVAILABLE', status: 503 },
    });
    expect(events.at(-1)).toMatchObject({ type: 'token.failed', code: 'UPSTREAM_UNAVAILABLE', background: false });
  });

  it('invalidate(token) drops only a matching token', async () => {
    const { auth, events } = app;
    const first = await auth.getAccessToken();

    auth.invalidate('some-other-token');
    expect(events.map((e) => e.type)).toEqual(['token.acquired']);
    expect(await auth.getAccessToken()).toBe(first);
    expect(fake.calls.total).toBe(1);

    auth.invalidate(first);
    expect(events.map((e) => e.type)).toEqual(['token.acquired', 'token.invalidated']);
    const second = await auth.getAccessToken();
    expect(second).not.toBe(first);
    expect(fake.isAccessTokenValid(second)).toBe(true);
    expect(fake.calls.total).toBe(2);

    // The old token again (a late 401 from a request that used it): the new one stays.
    auth.invalidate(first);
    expect(await auth.getAccessToken()).toBe(second);
    expect(fake.calls.total).toBe(2);
    expect(events.filter((e) => e.type === 'token.invalidated')).toHaveLength(1);
  });

  it('invalidate() without a token drops whatever is cached', async () => {
    const first = await app.auth.getAccessToken();
    app.auth.invalidate();
    const second = await app.auth.getAccessToken();
    expect(second).not.toBe(first);
    expect(fake.calls.total).toBe(2);
  });

  it('invalidate(token) after the upstream rejected it: the next call gets a token the API accepts', async () => {
    const { auth } = app;
    const first = await auth.getAccessToken();
    fake.revokeAccessTokens();
    expect(fake.isAccessTokenValid(first)).toBe(false);
    auth.invalidate(first);
    expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
  });

  it('getStatus() describes the token and holds no secret', async () => {
    const { auth } = app;
    const token = await auth.getAccessToken();
    const status = auth.getStatus();
    expect(status).toEqual({
      state: 'valid',
      accessExpiresAt: expect.any(Date),
      refreshExpiresAt: expect.any(Date),
      lastRefreshAt: expect.any(Date),
      // The token's name, not the token: the first 8 hex of its SHA-256.
      accessTokenFingerprint: createHash('sha256').update(token).digest('hex').slice(0, 8),
    });
    expect(status.accessExpiresAt!.getTime()).toBeGreaterThan(Date.now());
    expect(status.refreshExpiresAt!.getTime()).toBeGreaterThan(status.accessExpiresAt!.getTime());
    expect(fake.isAccessTokenValid(token)).toBe(true);
    expect(leakedSecrets(JSON.stringify(status), secretsOf(fake))).toEqual([]);
  });

  it('events$ reports acquired, refreshed, invalidated and failed in order, with their details', async () => {
    const { auth, events } = app;
    await auth.forceRefresh();
    auth.invalidate();
    await auth.getAccessToken();
    fake.failAlways('any', { kind: 'status', status: 502 });
    await captureAuthError(auth.forceRefresh());

    expect(events.map((e) => e.type)).toEqual([
      'token.acquired', // init
      'token.refreshed', // forceRefresh, through the refresh endpoint
      'token.invalidated',
      'token.refreshed', // the renewal after invalidate
      'token.failed',
    ]);
    const status = auth.getStatus();
    const [acquired, refreshed, invalidated, renewed, failed] = events;
    const fingerprint = expect.stringMatching(/^[0-9a-f]{8}$/);
    expect(acquired).toEqual({
      type: 'token.acquired',
      at: expect.any(Date),
      accessExpiresAt: expect.any(Date),
      refreshExpiresAt: expect.any(Date),
      fingerprint,
    });
    expect(refreshed).toMatchObject({ type: 'token.refreshed', accessExpiresAt: expect.any(Date), fingerprint });
    // The token dropped is the one refreshed before: the same name in both events.
    expect(invalidated).toEqual({
      type: 'token.invalidated',
      at: expect.any(Date),
      fingerprint: (refreshed as { fingerprint: string }).fingerprint,
    });
    expect(renewed).toMatchObject({
      accessExpiresAt: status.accessExpiresAt,
      at: status.lastRefreshAt,
      fingerprint: status.accessTokenFingerprint,
    });
    expect(failed).toEqual<TokenFailedEvent>({
      type: 'token.failed',
      at: expect.any(Date),
      code: 'UPSTREAM_UNAVAILABLE',
      status: 502,
      message: expect.stringContaining('502'),
      background: false,
    });
    const times = events.map((e) => e.at.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(leakedSecrets(JSON.stringify(events), secretsOf(fake))).toEqual([]);
  });

  it('events$ marks failures of the schedule as background', async () => {
    const { auth, events } = app;
    fake.failAlways('any', { kind: 'status', status: 503 });
    auth.invalidate(); // the renewal it starts has nobody waiting
    await waitFor(() => events.some((e) => e.type === 'token.failed'), 'a background failure');
    expect(events.find((e) => e.type === 'token.failed')).toMatchObject({
      code: 'UPSTREAM_UNAVAILABLE',
      background: true,
    });
  });
});

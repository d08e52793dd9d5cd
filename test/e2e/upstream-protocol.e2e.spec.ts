import { DEFAULT_AUTH_PATH, type TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer, type FakeRequestRecord } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';

type RefreshShape = Exclude<TransferAuthModuleOptions['refresh'], false | undefined>;

function bearer(record: FakeRequestRecord | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(String(record?.headers['authorization'] ?? ''))?.[1];
}

function jsonBody(record: FakeRequestRecord | undefined): unknown {
  return record?.body ? JSON.parse(record.body) : undefined;
}

describe('upstream protocol (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  async function start(
    options: Partial<TransferAuthModuleOptions> = {},
    fakeInit: ConstructorParameters<typeof FakeTransferServer>[0] = {},
  ): Promise<AuthApp> {
    fake = await new FakeTransferServer(fakeInit).start();
    app = await createAuthApp(fakeOptions(fake, options));
    return app;
  }

  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake?.stop();
  });

  it('Get token is a POST to the auth path whose JSON body is exactly { agent_id, agent_secret }', async () => {
    await start();
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe(DEFAULT_AUTH_PATH);
    expect(request?.headers['content-type']).toMatch(/^application\/json/);
    expect(request?.headers['authorization']).toBeUndefined();
    const body = jsonBody(request) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['agent_id', 'agent_secret']);
    expect(body).toEqual({ agent_id: fake.agentId, agent_secret: fake.agentSecret });
    expect(request?.status).toBe(200);
  });

  it('refresh defaults to PATCH on the auth path with the refresh token in the Bearer header AND the body', async () => {
    const { auth } = await start();
    const first = await auth.getAccessToken();
    const second = await auth.forceRefresh();
    expect(second).not.toBe(first);
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 1, unknown: 0 });
    const refresh = fake.requests[1];
    expect(refresh?.method).toBe('PATCH');
    expect(refresh?.path).toBe(DEFAULT_AUTH_PATH);
    const token = bearer(refresh);
    expect(token).toBeDefined();
    expect(jsonBody(refresh)).toEqual({ refresh_token: token });
    expect(refresh?.status).toBe(200);
    expect(fake.isAccessTokenValid(second)).toBe(true);
  });

  it.each<[string, RefreshShape, (record: FakeRequestRecord) => void]>([
    [
      'POST to another path, token in the header only',
      { path: '/v5/partner/transfer/agent/refresh', method: 'POST', tokenIn: 'header' },
      (record) => {
        expect(bearer(record)).toMatch(/^fake-rt-/);
        expect(record.body).toBe('');
      },
    ],
    [
      'PUT, token in the body only',
      { path: '/custom/refresh', method: 'PUT', tokenIn: 'body' },
      (record) => {
        expect(record.headers['authorization']).toBeUndefined();
        expect(jsonBody(record)).toEqual({ refresh_token: expect.stringMatching(/^fake-rt-/) });
      },
    ],
    [
      'only tokenIn changed (partial refresh object merged with the defaults)',
      { tokenIn: 'body' },
      (record) => {
        expect(record.method).toBe('PATCH');
        expect(record.path).toBe(DEFAULT_AUTH_PATH);
        expect(record.headers['authorization']).toBeUndefined();
      },
    ],
  ])('custom refresh options: %s', async (_name, refresh, check) => {
    const { auth } = await start({ refresh }, { refresh });
    const token = await auth.forceRefresh();
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 1, unknown: 0 });
    const record = fake.requests[1] as FakeRequestRecord;
    expect(record.method).toBe(refresh.method ?? 'PATCH');
    expect(record.path).toBe(refresh.path ?? DEFAULT_AUTH_PATH);
    expect(record.status).toBe(200); // the fake, configured the same way, accepted it
    check(record);
    expect(fake.isAccessTokenValid(token)).toBe(true);
  });

  it('refresh: false never calls the refresh endpoint and always re-authenticates', async () => {
    const { auth, events } = await start({ refresh: false });
    const first = await auth.getAccessToken();
    const second = await auth.forceRefresh();
    auth.invalidate(second);
    const third = await auth.getAccessToken();
    expect(new Set([first, second, third]).size).toBe(3);
    expect(fake.calls).toMatchObject({ auth: 3, refresh: 0, unknown: 0 });
    expect(fake.requests.every((r) => r.method === 'POST')).toBe(true);
    expect(events.filter((e) => e.type === 'token.refreshed')).toHaveLength(0);
    expect(fake.isAccessTokenValid(third)).toBe(true);
  });

  it('uses the rotated refresh token: each refresh sends the token from the previous answer', async () => {
    const { auth } = await start();
    const tokens = [await auth.getAccessToken()];
    for (let i = 0; i < 3; i++) tokens.push(await auth.forceRefresh());
    // The fake makes a refresh token single-use: a stale one would get 401 and force a Get token.
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 3 });
    expect(fake.requests.slice(1).map((r) => r.status)).toEqual([200, 200, 200]);
    const sent = fake.requests.slice(1).map(bearer);
    expect(new Set(sent).size).toBe(3);
    expect(new Set(tokens).size).toBe(4);
    expect(fake.isAccessTokenValid(tokens[3] as string)).toBe(true);
  });

  it('a revoked refresh token falls back to Get token and the caller never sees an error', async () => {
    const { auth, events } = await start();
    const first = await auth.getAccessToken();
    fake.revokeRefreshTokens();
    const second = await auth.forceRefresh();
    expect(second).not.toBe(first);
    expect(fake.isAccessTokenValid(second)).toBe(true);
    expect(fake.calls).toMatchObject({ auth: 2, refresh: 1 });
    expect(fake.requests[1]?.status).toBe(401);
    expect(events.map((e) => e.type)).toEqual(['token.acquired', 'token.acquired']);

    // The same when a plain caller needs a new token (after invalidate): no error, one fallback.
    fake.revokeRefreshTokens();
    auth.invalidate(second);
    const third = await auth.getAccessToken();
    expect(fake.isAccessTokenValid(third)).toBe(true);
    expect(fake.calls).toMatchObject({ auth: 3, refresh: 2 });
    expect(events.some((e) => e.type === 'token.failed')).toBe(false);
  });

  it('1,000 concurrent getAccessToken() callers with no token share exactly one upstream call', async () => {
    const { auth } = await start({ fetchOnStartup: false });
    fake.failNext('auth', { kind: 'delay', ms: 50 }); // keep the call in flight while everyone joins
    const tokens = await Promise.all(Array.from({ length: 1000 }, () => auth.getAccessToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(fake.calls.total).toBe(1);
    expect(fake.isAccessTokenValid(tokens[0] as string)).toBe(true);
  });

  it('fetchOnStartup: false makes no call at init; the first getAccessToken() makes exactly one', async () => {
    const { auth } = await start({ fetchOnStartup: false });
    expect(fake.calls.total).toBe(0);
    expect(auth.getStatus().state).toBe('idle');
    const token = await auth.getAccessToken();
    expect(fake.calls).toMatchObject({ auth: 1, total: 1 });
    expect(await auth.getAccessToken()).toBe(token);
    expect(fake.calls.total).toBe(1);
    expect(auth.getStatus().state).toBe('valid');
  });
});

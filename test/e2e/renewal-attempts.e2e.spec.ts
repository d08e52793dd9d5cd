import type { Server } from 'node:http';
import type { TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, fakeUrl, sleep } from '../support/e2e';

/**
 * `retry.maxAttempts` over real HTTP: one renewal, shared by every caller, makes up to that many attempts
 * when Get token fails fast for a passing reason, so a blip is absorbed before anyone sees an error. The
 * unit spec (test/unit/lifecycle/attempts.spec.ts) covers every kind of failure on fake timers; these are
 * the cases where the socket matters. The only real wait is the 1 s `Retry-After`.
 */
describe('the attempts of one renewal (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  async function start(options: Partial<TransferAuthModuleOptions>): Promise<AuthApp> {
    app = await createAuthApp(fakeOptions(fake, options));
    return app;
  }

  /** Milliseconds between the fake's receipt of each request. */
  const gaps = (): number[] => fake.requests.slice(1).map((r, i) => r.at.getTime() - fake.requests[i]!.at.getTime());

  it('two 503s, then a good answer during startup: the first caller gets a token; exactly 3 logins', async () => {
    fake.failNext('auth', { kind: 'status', status: 503 }, 2);
    const { auth, events, logger } = await start({ fetchOnStartup: true });
    expect(fake.calls.auth).toBe(3);
    const token = await auth.getAccessToken();
    expect(fake.isAccessTokenValid(token)).toBe(true);
    expect(fake.calls.auth).toBe(3);
    expect(fake.requests.map((r) => r.status)).toEqual([503, 503, 200]);
    // A blip the attempts absorbed is no failure: no event, no warning.
    expect(events.map((e) => e.type)).toEqual(['token.acquired']);
    expect(logger.lines.filter((l) => l.startsWith('warn') || l.startsWith('error'))).toEqual([]);
    expect(auth.getStatus().lastError).toBeUndefined();
  });

  it('`Retry-After: 1` within maxDelayMs (3000): one retry at least 1 s later in the same renewal; the caller gets the token', async () => {
    fake.failNext('auth', { kind: 'status', status: 503, retryAfter: 1 });
    const { auth, events } = await start({
      fetchOnStartup: false,
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 3_000 },
    });
    const started = performance.now();
    const token = await auth.getAccessToken();
    const waitedMs = performance.now() - started;
    expect(fake.isAccessTokenValid(token)).toBe(true);
    expect(fake.calls.auth).toBe(2);
    expect(gaps()[0]).toBeGreaterThanOrEqual(1_000);
    expect(waitedMs).toBeGreaterThanOrEqual(1_000);
    expect(events.map((e) => e.type)).toEqual(['token.acquired']);
  });

  it('a reused keep-alive socket reset once, then a good answer: the renewal retries on a new one', async () => {
    // `refresh: false`: every renewal is Get token, so the reset meets the login made on a reused socket.
    const { auth } = await start({ fetchOnStartup: true, refresh: false });
    const server = (fake as unknown as { server: Server }).server;
    let connections = 0;
    server.on('connection', () => connections++);
    const first = await auth.getAccessToken();
    expect(fake.calls.auth).toBe(1);

    fake.failNext('auth', { kind: 'reset' });
    const second = await auth.forceRefresh();
    expect(second).not.toBe(first);
    expect(fake.isAccessTokenValid(second)).toBe(true);
    expect(fake.calls.auth).toBe(3);
    expect(fake.requests.map((r) => r.status)).toEqual([200, 'fault', 200]);
    // The reset request arrived on the startup login's socket (no new connection), the retry on a new one.
    expect(connections).toBe(1);
  });

  it('connection refused (the upstream restarting): the next attempt of the same renewal gets the token', async () => {
    const port = Number(new URL(fakeUrl(fake)).port);
    await fake.stop();
    // Waits of 250-500 ms between attempts: time enough to listen again on the port.
    const { auth } = await start({
      fetchOnStartup: false,
      retry: { maxAttempts: 3, baseDelayMs: 500, maxDelayMs: 500 },
    });
    const started = performance.now();
    const caller = auth.getAccessToken();
    await sleep(50); // the first attempt is refused at once
    await fake.start(port);
    expect(fake.isAccessTokenValid(await caller)).toBe(true);
    // From the second attempt, after its wait: not from a first attempt that came late.
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(fake.calls.auth).toBe(1); // the refused attempt never reached it
  });

  it('maxAttempts: 1: one login only, and the caller gets its error', async () => {
    fake.failAlways('auth', { kind: 'status', status: 503 });
    const { auth } = await start({
      fetchOnStartup: false,
      retry: { maxAttempts: 1, baseDelayMs: 500, maxDelayMs: 500 },
    });
    const error = await captureAuthError(auth.getAccessToken());
    expect(error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503 });
    expect(fake.calls.auth).toBe(1);
    // Within the failure policy's backoff (250-500 ms): refused at once, no other login.
    expect(await captureAuthError(auth.getAccessToken())).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503 });
    expect(fake.calls.auth).toBe(1);
  });
});

import { DEFAULT_AUTH_PATH, type TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer, type FakeFault } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import {
  captureAuthError,
  CountingServer,
  describeError,
  expectAuthError,
  leakedSecrets,
  secretsOf,
  sleep,
  waitFor,
} from '../support/e2e';

/**
 * Each test starts with `fetchOnStartup: false`, so that the first `getAccessToken()` makes the
 * renewal under test and the counters hold only that renewal when the caller gets its answer. A
 * renewal is one request (no refresh token is held here) per attempt: up to `retry.maxAttempts` of them
 * for a fast transient failure (connection refused or reset, 5xx, a `Retry-After` within `maxDelayMs`),
 * one for anything else; the background makes the next renewal after a backoff. More on the attempts:
 * renewal-attempts.e2e.spec.ts.
 */
describe('upstream faults (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;
  let elsewhere: CountingServer | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
    await elsewhere?.stop();
    elsewhere = undefined;
  });

  async function start(options: Partial<TransferAuthModuleOptions> = {}): Promise<AuthApp> {
    app = await createAuthApp(fakeOptions(fake, { fetchOnStartup: false, ...options }));
    return app;
  }

  describe('redirects', () => {
    it.each([301, 302, 307, 308])(
      'a %i is not followed: INVALID_RESPONSE, the other server gets nothing',
      async (status) => {
        elsewhere = await new CountingServer().start();
        fake.failAlways('auth', { kind: 'redirect', status, location: `${elsewhere.url}${DEFAULT_AUTH_PATH}` });
        const { auth } = await start();

        const error = await captureAuthError(auth.getAccessToken());
        expectAuthError(error, 'INVALID_RESPONSE');
        expect(error.status).toBe(status);
        expect(fake.calls.auth).toBe(1);
        // Background retries come and go: none of them follows the redirect either.
        await waitFor(() => fake.calls.auth >= 3, 'background retries');
        expect(elsewhere.hits).toBe(0);
      },
    );
  });

  describe('hangs and slow bodies', () => {
    it.each<[string, FakeFault]>([
      ['a hang', { kind: 'hang' }],
      ['a body dribbled out slower than the deadline', { kind: 'slow-body', ms: 5_000 }],
    ])(
      '%s is cut at requestTimeoutMs: UPSTREAM_UNAVAILABLE after one call (a timeout is not retried inside the renewal)',
      async (_name, fault) => {
        fake.failAlways('auth', fault);
        const { auth } = await start({
          requestTimeoutMs: 150,
          retry: { maxAttempts: 2, baseDelayMs: 1_000, maxDelayMs: 1_000 },
        });
        const error = await captureAuthError(auth.getAccessToken());
        expectAuthError(error, 'UPSTREAM_UNAVAILABLE');
        expect(error.message).toMatch(/timed out/);
        expect(fake.calls.auth).toBe(1);
        // The backoff (0.5-1 s) is pending: the next caller gets the same error at once, without a call.
        const again = await captureAuthError(auth.getAccessToken());
        expect(again).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: error.message });
        expect(fake.calls.auth).toBe(1);
      },
    );

    it('a delay shorter than requestTimeoutMs is simply waited out', async () => {
      fake.failNext('auth', { kind: 'delay', ms: 100 });
      const { auth } = await start({ requestTimeoutMs: 1_000 });
      expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
      expect(fake.calls.auth).toBe(1);
    });
  });

  describe('malformed answers: INVALID_RESPONSE, one call, retried in the background after a backoff', () => {
    const future = '2099-01-01T00:00:00.000000Z';
    const faults: [string, FakeFault][] = [
      ['HTML', { kind: 'body', body: '<html><body>Bad gateway</body></html>', contentType: 'text/html' }],
      ['truncated JSON', { kind: 'body', body: '{"access_token":"abc","refresh_token":"de' }],
      ['an empty body', { kind: 'body', body: '' }],
      ['a JSON array', { kind: 'body', body: '[]' }],
      ['JSON null', { kind: 'body', body: 'null' }],
      ['a missing access_token', { kind: 'fields', fields: { access_token: undefined } }],
      ['a missing refresh_token', { kind: 'fields', fields: { refresh_token: undefined } }],
      ['a missing access_expire_at', { kind: 'fields', fields: { access_expire_at: undefined } }],
      ['a missing refresh_expire_at', { kind: 'fields', fields: { refresh_expire_at: undefined } }],
      ['an empty access_token', { kind: 'fields', fields: { access_token: '' } }],
      ['a numeric access_token', { kind: 'fields', fields: { access_token: 123456 } }],
      ['an object refresh_token', { kind: 'fields', fields: { refresh_token: { value: 'x' } } }],
      ['an epoch number as access_expire_at', { kind: 'fields', fields: { access_expire_at: 4_102_444_800 } }],
      ['an unparsable date', { kind: 'fields', fields: { access_expire_at: 'tomorrow' } }],
      ['a date without a zone', { kind: 'fields', fields: { access_expire_at: '2099-01-01T00:00:00' } }],
      ['an impossible date', { kind: 'fields', fields: { access_expire_at: '2099-02-30T00:00:00.000000Z' } }],
      [
        'an access token expired on arrival',
        { kind: 'fields', fields: { access_expire_at: '2001-01-01T00:00:00.000000Z' } },
      ],
      [
        'an unparsable refresh_expire_at',
        { kind: 'fields', fields: { access_expire_at: future, refresh_expire_at: '31/12/2099' } },
      ],
      ['a body over 64 KiB', { kind: 'oversized' }],
      ['HTTP 400', { kind: 'status', status: 400 }],
      ['HTTP 404', { kind: 'status', status: 404 }],
      ['HTTP 422', { kind: 'status', status: 422 }],
    ];

    it.each(faults)('%s', async (_name, fault) => {
      fake.failAlways('auth', fault);
      const { auth } = await start();
      const error = await captureAuthError(auth.getAccessToken());
      expectAuthError(error, 'INVALID_RESPONSE');
      expect(fake.calls.auth).toBe(1);
      expect(leakedSecrets(describeError(error), secretsOf(fake))).toEqual([]);
      expect(auth.getStatus()).toMatchObject({ state: 'failed', lastError: { code: 'INVALID_RESPONSE' } });
    });

    it('recovers by the background retry once the upstream answers properly again', async () => {
      fake.failNext('auth', { kind: 'fields', fields: { access_token: 42 } });
      const { auth, events } = await start({ retry: { baseDelayMs: 200, maxDelayMs: 200 } });
      const error = await captureAuthError(auth.getAccessToken());
      expectAuthError(error, 'INVALID_RESPONSE');
      // Within the backoff (100-200 ms) a caller gets the same error at once; it starts no attempt.
      expect(await captureAuthError(auth.getAccessToken())).toMatchObject({
        code: 'INVALID_RESPONSE',
        message: error.message,
      });
      expect(fake.calls.auth).toBe(1);
      // The background retry, with nobody calling, gets the token; callers are then served from the cache.
      await waitFor(() => auth.getStatus().state === 'valid', 'the background retry');
      expect(fake.calls.auth).toBe(2);
      expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
      expect(fake.calls.auth).toBe(2);
      expect(events.map((e) => [e.type, 'background' in e ? e.background : undefined])).toEqual([
        ['token.failed', false],
        ['token.acquired', undefined],
      ]);
    });
  });

  describe('credentials rejected', () => {
    it.each([401, 403])('a %i on Get token is INVALID_CREDENTIALS after exactly one call', async (status) => {
      fake.failAlways('auth', { kind: 'status', status });
      const { auth } = await start();
      const error = await captureAuthError(auth.getAccessToken());
      expectAuthError(error, 'INVALID_CREDENTIALS');
      expect(error.status).toBe(status);
      expect(fake.calls.auth).toBe(1);
    });

    it('INVALID_CREDENTIALS is never retried in the background; after the 1 s cool-down a caller may log in once', async () => {
      fake.failAlways('auth', { kind: 'status', status: 401 });
      const { auth } = await start();
      expectAuthError(await captureAuthError(auth.getAccessToken()), 'INVALID_CREDENTIALS');
      // During the cool-down: the same error at once, no call.
      const again = await captureAuthError(auth.getAccessToken());
      expect(again).toMatchObject({ code: 'INVALID_CREDENTIALS', status: 401 });
      expect(fake.calls.auth).toBe(1);
      // maxDelayMs is 50: a background retry would have come many times in this window, and the
      // cool-down is over, yet nothing logs in until a caller asks.
      await sleep(1_200);
      expect(fake.calls.auth).toBe(1);
      expectAuthError(await captureAuthError(auth.getAccessToken()), 'INVALID_CREDENTIALS');
      expect(fake.calls.auth).toBe(2);
    });
  });

  describe('429 and Retry-After', () => {
    it('a Retry-After longer than maxDelayMs: the caller gets UPSTREAM_UNAVAILABLE, the background waits as asked', async () => {
      fake.failNext('auth', { kind: 'status', status: 429, retryAfter: 1 });
      const { auth } = await start({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
      const error = await captureAuthError(auth.getAccessToken());
      expectAuthError(error, 'UPSTREAM_UNAVAILABLE');
      expect(error.status).toBe(429);
      expect(fake.calls.auth).toBe(1); // one call: a Retry-After longer than maxDelayMs ends the renewal

      // Another caller within the Retry-After window is answered at once, without calling the upstream;
      // forceRefresh() skips a backoff, not a Retry-After.
      const again = await captureAuthError(auth.getAccessToken());
      expectAuthError(again, 'UPSTREAM_UNAVAILABLE');
      expect(again.message).toMatch(/Retry-After/);
      const forced = await captureAuthError(auth.forceRefresh());
      expectAuthError(forced, 'UPSTREAM_UNAVAILABLE');
      expect(forced.message).toMatch(/Retry-After/);
      await sleep(300);
      expect(fake.calls.auth).toBe(1);

      // After the second the upstream asked for, the background renewal obtains a token by itself.
      await waitFor(() => auth.getStatus().state === 'valid', 'the background renewal after Retry-After');
      expect(fake.calls.auth).toBe(2);
    });

    it('a Retry-After within maxDelayMs is waited inside the renewal: the caller gets the token from the retry', async () => {
      fake.failNext('auth', { kind: 'status', status: 429, retryAfter: 1 });
      const { auth, events } = await start({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 2_000 } });
      const started = performance.now();
      const token = await auth.getAccessToken();
      // Not after the 5-10 ms backoff alone: after the second the upstream asked for.
      expect(performance.now() - started).toBeGreaterThanOrEqual(1_000);
      expect(fake.isAccessTokenValid(token)).toBe(true);
      expect(fake.calls.auth).toBe(2);
      expect(events.map((e) => e.type)).toEqual(['token.acquired']);
    });

    it('a 429 without Retry-After is not retried inside the renewal; the background retries it with backoff', async () => {
      fake.failNext('auth', { kind: 'status', status: 429 }, 2);
      const { auth, events } = await start();
      const error = await captureAuthError(auth.getAccessToken());
      expect(error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 429 });
      expect(fake.calls.auth).toBe(1);
      // Nobody calls: the background's first retry meets the second 429, its next one gets the token.
      await waitFor(() => auth.getStatus().state === 'valid', 'the background retries');
      expect(fake.calls.auth).toBe(3);
      expect(events.map((e) => [e.type, 'background' in e ? e.background : undefined])).toEqual([
        ['token.failed', false],
        ['token.failed', true],
        ['token.acquired', undefined],
      ]);
    });
  });

  describe('transient failures: maxAttempts calls in one renewal, the next renewals made by the background with backoff', () => {
    it.each<[string, FakeFault]>([
      ['HTTP 500', { kind: 'status', status: 500 }],
      ['HTTP 502', { kind: 'status', status: 502 }],
      ['HTTP 503', { kind: 'status', status: 503 }],
      ['HTTP 504', { kind: 'status', status: 504 }],
      ['a connection reset', { kind: 'reset' }],
      ['a connection reset mid-body', { kind: 'reset-mid-body' }],
    ])(
      '%s every time: UPSTREAM_UNAVAILABLE after exactly maxAttempts calls, then the background keeps retrying',
      async (_name, fault) => {
        fake.failAlways('auth', fault);
        const { auth } = await start({ retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 200 } });
        const error = await captureAuthError(auth.getAccessToken());
        expectAuthError(error, 'UPSTREAM_UNAVAILABLE');
        expect(fake.calls.auth).toBe(4); // one renewal's attempts, 50-100, 100-200, 100-200 ms apart
        expect(leakedSecrets(describeError(error), secretsOf(fake))).toEqual([]);
        // Within the backoff (50-100 ms): the same error at once, no call.
        const again = await captureAuthError(auth.getAccessToken());
        expect(again).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: error.status, message: error.message });
        expect(fake.calls.auth).toBe(4);
        // With nobody calling, the background goes on: its renewal makes its own attempts.
        await waitFor(() => fake.calls.auth >= 6, 'the attempts of a background renewal');
        const status = auth.getStatus(); // 'acquiring' while its renewal goes on
        expect(['failed', 'acquiring']).toContain(status.state);
        expect(status.lastError?.code).toBe('UPSTREAM_UNAVAILABLE');
      },
    );

    it('HTTP 408 every time: one call (a timeout answered by the upstream is not retried inside the renewal)', async () => {
      fake.failAlways('auth', { kind: 'status', status: 408 });
      const { auth } = await start({ retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 200 } });
      expect(await captureAuthError(auth.getAccessToken())).toMatchObject({
        code: 'UPSTREAM_UNAVAILABLE',
        status: 408,
      });
      expect(fake.calls.auth).toBe(1);
      await waitFor(() => fake.calls.auth >= 3, 'two background retries');
    });

    it('two 503s then success: the caller gets the token from the third attempt of its renewal', async () => {
      fake.failNext('auth', { kind: 'status', status: 503 }, 2);
      const { auth, events } = await start();
      const token = await auth.getAccessToken();
      expect(fake.isAccessTokenValid(token)).toBe(true);
      expect(fake.calls.auth).toBe(3);
      expect(fake.requests.map((r) => r.status)).toEqual([503, 503, 200]);
      // The failed attempts are no failed renewal: no token.failed event.
      expect(events.map((e) => e.type)).toEqual(['token.acquired']);
    });

    it('three 503s then success: the renewal fails with the third; the background renewal gets the token', async () => {
      fake.failNext('auth', { kind: 'status', status: 503 }, 3);
      const { auth, events } = await start();
      expect(await captureAuthError(auth.getAccessToken())).toMatchObject({
        code: 'UPSTREAM_UNAVAILABLE',
        status: 503,
      });
      expect(fake.calls.auth).toBe(3);
      await waitFor(() => auth.getStatus().state === 'valid', 'the background renewal');
      expect(fake.calls.auth).toBe(4);
      expect(events.map((e) => [e.type, 'background' in e ? e.background : undefined])).toEqual([
        ['token.failed', false],
        ['token.acquired', undefined],
      ]);
    });

    it('maxAttempts: 1 makes a single call, and the caller gets its error', async () => {
      fake.failAlways('auth', { kind: 'status', status: 503 });
      const { auth } = await start({ retry: { maxAttempts: 1 } });
      expect(await captureAuthError(auth.getAccessToken())).toMatchObject({
        code: 'UPSTREAM_UNAVAILABLE',
        status: 503,
      });
      expect(fake.calls.auth).toBe(1);
    });
  });
});

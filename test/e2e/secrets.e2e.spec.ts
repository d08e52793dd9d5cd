import { inspect } from 'node:util';
import {
  TRANSFER_AUTH_MODULE_OPTIONS,
  TransferAuthService,
  type TransferAuthError,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, describeError, leakedSecrets, secretsOf } from '../support/e2e';

/**
 * Drives the module through success, refresh, rotation, fallbacks and every kind of failure, with an
 * upstream that echoes the secret and tokens back in its error bodies, then looks for the agent secret
 * and every token the fake issued in everything the module showed: log lines, events, errors (message,
 * stack, cause, JSON, inspect), status, and the inspect output of the service, the options and the app.
 */
describe('no secret or token leaks (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer({ agentSecret: `s3cr3t-${Math.random().toString(36).slice(2)}-agent` }).start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  it('across a full life of successes and failures', async () => {
    app = await createAuthApp(
      fakeOptions(fake, { requestTimeoutMs: 200, retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 } }),
    );
    const { auth, logger, events } = app;
    const errors: TransferAuthError[] = [];
    const shown: string[] = [];

    const first = await auth.getAccessToken();
    await auth.forceRefresh(); // refresh endpoint, rotation
    fake.revokeRefreshTokens();
    await auth.forceRefresh(); // refused refresh, falls back to Get token (logged)
    const echo = (): string => `${fake.agentSecret} ${fake.issuedTokens().join(' ')}`;

    // Upstream answers that quote the secret and the tokens back at us.
    const faults = [
      () => fake.failAlways('any', { kind: 'body', body: `<html>${echo()}</html>`, contentType: 'text/html' }),
      () => fake.failAlways('any', { kind: 'body', body: `{"access_token":"${first}","refresh_token":"${echo()}"` }),
      () => fake.failAlways('any', { kind: 'fields', fields: { access_expire_at: first, refresh_expire_at: echo() } }),
      () => fake.failAlways('any', { kind: 'fields', fields: { access_token: 'x'.repeat(9000) + first } }),
      () => fake.failAlways('any', { kind: 'status', status: 503, body: echo() }),
      () => fake.failAlways('any', { kind: 'status', status: 401, body: echo() }),
      () => fake.failAlways('any', { kind: 'status', status: 400, body: echo() }),
      () => fake.failAlways('any', { kind: 'status', status: 429, retryAfter: 0, body: echo() }),
      () => fake.failAlways('any', { kind: 'redirect', location: `${fake.url}/?token=${first}` }),
      () => fake.failAlways('any', { kind: 'oversized' }),
      () => fake.failAlways('any', { kind: 'reset' }),
      () => fake.failAlways('any', { kind: 'reset-mid-body' }),
      () => fake.failAlways('any', { kind: 'hang' }),
    ];
    for (const inject of faults) {
      fake.clearFaults();
      inject();
      errors.push(await captureAuthError(auth.forceRefresh()));
      shown.push(inspect(auth.getStatus(), { depth: 5 }), JSON.stringify(auth.getStatus()));
    }
    fake.clearFaults();
    await auth.forceRefresh();
    expect(auth.getStatus().lastError).toBeUndefined();
    auth.invalidate();
    await auth.getAccessToken();

    expect(errors.map((e) => e.code)).toEqual([
      'INVALID_RESPONSE',
      'INVALID_RESPONSE',
      'INVALID_RESPONSE',
      'INVALID_RESPONSE',
      'UPSTREAM_UNAVAILABLE',
      'INVALID_CREDENTIALS',
      'INVALID_RESPONSE',
      'UPSTREAM_UNAVAILABLE',
      'INVALID_RESPONSE',
      'INVALID_RESPONSE',
      'UPSTREAM_UNAVAILABLE',
      'UPSTREAM_UNAVAILABLE',
      'UPSTREAM_UNAVAILABLE',
    ]);
    expect(logger.lines.length).toBeGreaterThan(0);
    expect(events.length).toBeGreaterThan(10);

    shown.push(
      ...errors.map(describeError),
      ...logger.lines,
      JSON.stringify(events),
      inspect(events, { depth: 5 }),
      inspect(auth, { depth: 5 }),
      inspect(app.app.get(TransferAuthService), { depth: 5, showHidden: true }),
      inspect(app.app.get(TRANSFER_AUTH_MODULE_OPTIONS), { depth: 5 }),
      JSON.stringify(app.app.get(TRANSFER_AUTH_MODULE_OPTIONS)),
      inspect(app.app, { depth: 8 }),
    );
    const secrets = secretsOf(fake);
    expect(secrets.length).toBeGreaterThan(6);
    expect(leakedSecrets(shown.join('\n'), secrets)).toEqual([]);
  });

  it('when the credentials are wrong at startup', async () => {
    const wrong = `wrong-${fake.agentSecret}`;
    fake.failNext('auth', { kind: 'status', status: 401, body: wrong });
    const error = await captureAuthError(createAuthApp(fakeOptions(fake, { agentSecret: wrong })));
    expect(error.code).toBe('INVALID_CREDENTIALS');
    expect(leakedSecrets(describeError(error), [wrong, fake.agentSecret])).toEqual([]);
  });

  it('when an option is invalid and the secret is the only good one', async () => {
    const error = await captureAuthError(
      createAuthApp(fakeOptions(fake, { baseUrl: `ftp://${fake.agentSecret}.example` })),
    );
    expect(error.code).toBe('INVALID_CONFIG');
    expect(leakedSecrets(describeError(error), [fake.agentSecret])).toEqual([]);
  });
});

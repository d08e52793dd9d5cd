import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import {
  TRANSFER_AUTH_MODULE_OPTIONS,
  TransferAuthModule,
  type TransferAuthModuleOptions,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer, type FakeFault } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { SecretGuard } from '../support/secret-guard';
import { FAULTS, MATRIX_OPTIONS, type FaultCase } from './fault-table';
import { clearFault, eventually, injectFault, nextEvent } from './support';

/**
 * Runs many scenarios (success, refresh, every failure, hostile upstream answers, bad config, shutdown)
 * and checks that neither the agent secret nor any token the fake issued shows up in anything the
 * package produced: log lines, events, errors (message, stack, causes, inspect, JSON), getStatus(),
 * console output, and inspect of the service, the options provider, the module and the whole app.
 */
const SECRET = `test-secret-${randomBytes(16).toString('hex')}`;

let fake: FakeTransferServer;
let guard: SecretGuard;
const apps: AuthApp[] = [];

async function boot(where: string, overrides: Partial<TransferAuthModuleOptions> = {}): Promise<AuthApp> {
  const app = await createAuthApp(fakeOptions(fake, { ...MATRIX_OPTIONS, ...overrides }));
  apps.push(app);
  guard.watch(where, app);
  return app;
}

/** The objects a user might print: the service, the options provider, the module, the whole context. */
function recordObjects(where: string, { app, auth }: AuthApp): void {
  guard.value(`${where} service`, auth);
  guard.value(`${where} options provider`, app.get(TRANSFER_AUTH_MODULE_OPTIONS));
  guard.value(`${where} module`, app.get(TransferAuthModule));
  guard.value(`${where} app`, app);
}

const latestToken = (): string => fake.issuedTokens().at(-1) ?? 'none';

const hostile = (name: string, fault: (fake: FakeTransferServer) => FakeFault): FaultCase => ({
  name,
  fault,
  outcome: 'INVALID_RESPONSE',
  retry: 'backoff',
  detail: '',
});

/** Upstream answers that quote the secret or a token back: none of it may travel further. */
const HOSTILE: readonly FaultCase[] = [
  hostile('400 quoting the secret', () => ({ kind: 'status', status: 400, body: `{"message":"bad ${SECRET}"}` })),
  hostile('401 quoting a token', () => ({ kind: 'status', status: 401, body: `bad token ${latestToken()}` })),
  hostile('401 with a token in WWW-Authenticate', () => ({
    kind: 'status',
    status: 401,
    headers: { 'WWW-Authenticate': `Bearer ${latestToken()}` },
  })),
  hostile('503 with the secret as Retry-After', () => ({ kind: 'status', status: 503, retryAfter: SECRET })),
  hostile('HTML page quoting the secret', () => ({ kind: 'body', body: `<html>${SECRET}</html>` })),
  hostile('redirect to a URL holding the secret', (f) => ({
    kind: 'redirect',
    location: `${f.url}/x?s=${SECRET}&t=${latestToken()}`,
  })),
  hostile('access_token too long', () => ({ kind: 'fields', fields: { access_token: SECRET.repeat(400) } })),
  hostile('secret as access_expire_at', () => ({ kind: 'fields', fields: { access_expire_at: SECRET } })),
  hostile('token as a number field', () => ({ kind: 'fields', fields: { refresh_token: 42 } })),
];

beforeEach(async () => {
  fake = await new FakeTransferServer({ agentSecret: SECRET }).start();
  guard = new SecretGuard();
  guard.captureConsole();
});

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  guard.stopCapturingConsole();
  const secrets = [SECRET, ...fake.issuedTokens()];
  await fake.stop();
  expect(guard.leaks(secrets)).toEqual([]);
  expect(guard.size).toBeGreaterThan(20);
});

it('success: init, cached calls, status, and what inspect shows of the service, options and module', async () => {
  const app = await boot('success');
  const { auth } = app;
  await Promise.all(Array.from({ length: 20 }, () => auth.getAccessToken()));
  await auth.getAuthorizationHeader();
  recordObjects('success', app);

  expect(inspect(auth)).toContain('[redacted]');
  expect(inspect(auth, { showHidden: true, depth: Infinity })).not.toContain(SECRET);
  const options = app.app.get(TRANSFER_AUTH_MODULE_OPTIONS);
  expect(inspect(options)).toContain("agentSecret: '[redacted]'");
  expect(JSON.stringify(options)).toContain('"agentSecret":"[redacted]"');
  expect(inspect(app.app.get(TransferAuthModule), { showHidden: true, depth: Infinity })).not.toContain(SECRET);
  expect(fake.issuedTokens().length).toBeGreaterThan(0);
});

it('refresh: scheduled, then a revoked refresh token falling back to Get token, then invalidate()', async () => {
  fake.accessTtlMs = 2_500;
  const app = await boot('refresh', { refreshMarginMs: 60_000 });
  const { auth } = app;
  await nextEvent(auth, fake, ['token.refreshed']);
  fake.revokeRefreshTokens();
  await auth.forceRefresh();
  auth.invalidate(await auth.getAccessToken());
  await auth.getAccessToken();
  recordObjects('refresh', app);
  expect(app.logger.lines.some((line) => line.includes('falling back to Get token'))).toBe(true);
  expect(app.events.map((e) => e.type)).toEqual(
    expect.arrayContaining(['token.acquired', 'token.refreshed', 'token.invalidated']),
  );
});

it('every failure kind of the fault matrix, and upstream answers that quote secrets back', async () => {
  const app = await boot('failures');
  const { auth } = app;
  let expectedFailures = 0;
  for (const fault of [...FAULTS, ...HOSTILE]) {
    await injectFault(fake, fault);
    await guard.settle(`${fault.name}: forceRefresh`, auth.forceRefresh()); // Refresh token, then Get token
    // Get token: the refresh token was spent (forceRefresh skips the backoff, not a Retry-After).
    await guard.settle(`${fault.name}: forceRefresh again`, auth.forceRefresh());
    await guard.settle(`${fault.name}: getAccessToken`, auth.getAccessToken()); // the cached token
    guard.value(`${fault.name}: status`, auth.getStatus());
    if (fault.outcome !== 'ok') expectedFailures += fault.retry === 'retry-after' ? 1 : 2;

    // With no token: a caller's attempt (Get token), then a caller answered at once from the failure.
    const cold = await boot(`${fault.name}: no token`, { fetchOnStartup: false });
    await guard.settle(`${fault.name}: getAccessToken, no token`, cold.auth.getAccessToken());
    await guard.settle(`${fault.name}: getAccessToken during the backoff`, cold.auth.getAccessToken());
    guard.value(`${fault.name}: status, no token`, cold.auth.getStatus());
    await cold.close(); // its events and log lines are still checked: the guard holds the app
    apps.splice(apps.indexOf(cold), 1);

    await clearFault(fake, fault);
    await eventually(() => auth.forceRefresh());
  }
  recordObjects('failures', app);
  const failed = app.events.filter((e) => e.type === 'token.failed').length;
  // Two failed attempts per fault, but none for the one that is served and only one within a Retry-After
  // (the second forceRefresh is refused at once). With a valid token cached nothing runs in the background.
  expect(failed).toBe(expectedFailures);
  expect(app.logger.lines.length).toBeGreaterThan(0);
});

it('startup failures: credentials rejected, and an unusable upstream', async () => {
  fake.failNext('auth', { kind: 'status', status: 401, body: `{"error":"bad secret ${SECRET}"}` });
  await guard.settle('init 401', boot('init 401'));
  fake.failNext('auth', { kind: 'body', body: `{"access_token":"${SECRET}"` }, 1);
  const app = await boot('init invalid');
  await guard.settle('after init', app.auth.getAccessToken());
  recordObjects('init invalid', app);
});

it('invalid options never quote the value (the secret put where it does not belong)', async () => {
  const bad: Partial<TransferAuthModuleOptions>[] = [
    { baseUrl: `http://agent:${SECRET}@127.0.0.1:1` },
    { baseUrl: `https://example.com/?key=${SECRET}` },
    { baseUrl: `ftp://${SECRET}.example.com` },
    { baseUrl: SECRET },
    { authPath: `/auth?secret=${SECRET}` },
    { refresh: { method: SECRET as 'PATCH' } },
    { refresh: { tokenIn: SECRET as 'body' } },
    { agentId: '' },
    { agentSecret: 42 as unknown as string },
    { requestTimeoutMs: -1 },
  ];
  for (const [i, overrides] of bad.entries()) {
    await expect(guard.settle(`config #${i}`, boot(`config #${i}`, overrides))).resolves.toBeUndefined();
  }
});

it('shutdown with 20 callers waiting on a hung upstream', async () => {
  const app = await boot('shutdown', { fetchOnStartup: false });
  fake.failAlways('any', { kind: 'hang' });
  const waiting = Array.from({ length: 20 }, (_, i) => guard.settle(`waiter #${i}`, app.auth.getAccessToken()));
  await fake.waitForCalls(1);
  await app.close();
  apps.splice(apps.indexOf(app), 1);
  await Promise.all(waiting);
  await guard.settle('after close', app.auth.forceRefresh());
  guard.value('closed status', app.auth.getStatus());
  guard.value('closed service', app.auth);
  expect(app.auth.getStatus().state).toBe('closed');
});

it('the guard itself finds a planted secret or token, whole or in pieces', async () => {
  const { auth } = await boot('self-test');
  const token = await auth.getAccessToken();
  recordObjects('self-test', apps[0] as AuthApp);
  const planted = new SecretGuard();
  planted.error('cause chain', new Error('outer', { cause: new Error(`inner ${SECRET.slice(14, 30)}`) }));
  planted.value('object', { deep: { deeper: { deepest: { token } } } });
  planted.text('log', 'nothing here');
  const leaks = planted.leaks([SECRET, token]);
  expect(leaks).toContainEqual(expect.stringMatching(/^cause chain cause#1 \(message\)/));
  expect(leaks).toContainEqual(expect.stringMatching(/^object \(inspect\)/));
  expect(leaks).toContainEqual(expect.stringMatching(/^object \(JSON\)/));
  expect(leaks.filter((leak) => leak.startsWith('log'))).toEqual([]);
  expect(leaks.join('\n')).not.toContain(SECRET.slice(14, 30));
});

import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError } from '../support/e2e';
import { A, M, TelemetryHarness } from './support';

/** What the first review of the metrics found, as tests. */
describe('OpenTelemetry metrics: review findings (e2e)', () => {
  let harness: TelemetryHarness;
  let fake: FakeTransferServer;
  const apps: AuthApp[] = [];

  async function boot(...args: Parameters<typeof createAuthApp>): Promise<AuthApp> {
    const app = await createAuthApp(...args);
    apps.push(app);
    return app;
  }

  beforeEach(async () => {
    harness = TelemetryHarness.install();
    fake = await new FakeTransferServer().start();
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await fake.stop();
    await harness.teardown();
  });

  it('the startup fetch is the app initialising, not a caller: no wait recorded for it', async () => {
    const { auth } = await boot(fakeOptions(fake)); // fetchOnStartup: true
    await auth.getAccessToken();
    const c = await harness.collect();
    expect(c.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'ok' })).toBe(1);
    expect(c.count(M.waitDuration)).toBe(0);
  });

  it('refresh: false keeps no refresh token: no refresh time-left point, the access one as usual', async () => {
    const { auth } = await boot(fakeOptions(fake, { refresh: false }));
    await auth.getAccessToken();
    const c = await harness.collect();
    expect(c.gauge(M.refreshTimeLeft)).toEqual([]);
    expect(c.gauge(M.accessTimeLeft)[0]).toBeGreaterThan(0);
  });

  it('after invalidate() the refresh token is still held: its time left stays, the access one is 0', async () => {
    const { auth } = await boot(fakeOptions(fake));
    fake.failAlways('any', { kind: 'status', status: 503 }); // the renewal after invalidate fails
    auth.invalidate(await auth.getAccessToken());
    await captureAuthError(auth.getAccessToken());
    const c = await harness.collect();
    expect(c.gauge(M.accessTimeLeft)).toEqual([0]);
    expect(c.gauge(M.refreshTimeLeft)[0]).toBeGreaterThan(0);
  });

  it('a login the secret provider kept from being sent counts as a renewal SECRET_UNAVAILABLE, with no duration', async () => {
    const { auth } = await boot(
      fakeOptions(fake, {
        fetchOnStartup: false,
        agentSecret: () => Promise.reject(new Error('vault down')),
      }),
    );
    expect((await captureAuthError(auth.getAccessToken())).code).toBe('SECRET_UNAVAILABLE');
    const c = await harness.collect();
    expect(c.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'SECRET_UNAVAILABLE' })).toBe(1);
    expect(c.count(M.renewalDuration)).toBe(0); // nothing was sent: no upstream duration
    expect(c.count(M.waitDuration, { [A.outcome]: 'SECRET_UNAVAILABLE' })).toBe(1);
    expect(fake.calls.auth).toBe(0);
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, secretsOf } from '../support/e2e';
import { SecretGuard } from '../support/secret-guard';
import { TelemetryHarness } from '../telemetry/support';

/**
 * Guarantee (passes now): the objects issue 12 added behind the service (the client that remembers the
 * hash of a rejected secret, the telemetry with its meter, tracer and instruments, the caller-wait
 * timing, the rotation check, the renewer that sizes the lock by the provider) print no secret, no
 * rejected secret, no hash of one and no token, under `inspect` with hidden fields, `String` and JSON,
 * after a rotation with a rejected login, a 401-driven invalidation and a refused caller.
 */

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

describe('review 12: internal objects reachable from the service print no secret', () => {
  let harness: TelemetryHarness;
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  beforeEach(async () => {
    harness = TelemetryHarness.install();
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
    await harness.teardown();
  });

  it('after a rotation, a rejected login, an invalidation and a refused caller', async () => {
    const first = fake.agentSecret;
    let current = first;
    app = await createAuthApp(fakeOptions(fake, { agentSecret: () => current, refresh: false }), 'billing');
    const token = await app.auth.getAccessToken();
    const rotated = `rotated-${randomBytes(16).toString('hex')}`;
    fake.setAgentSecret(rotated); // the upstream rotated, the provider still answers the old one
    const refused = await captureAuthError(app.auth.forceRefresh());
    expect(refused.code).toBe('INVALID_CREDENTIALS');
    app.auth.invalidate(token); // the old token is refused too (a 401): dropped
    const again = await captureAuthError(app.auth.getAccessToken()); // refused at once: the check runs
    expect(again.code).toBe('INVALID_CREDENTIALS');
    current = rotated;
    await app.auth.forceRefresh();

    const lifecycle = (app.auth as unknown as { lifecycle: Record<string, unknown> }).lifecycle;
    const renewer = lifecycle['renewer'] as Record<string, unknown>;
    const guard = new SecretGuard();
    guard.watch('app', app);
    guard.error('forceRefresh refused', refused);
    guard.error('caller refused', again);
    for (const field of ['telemetry', 'waits', 'rotation', 'renewer', 'policy', 'flight']) {
      guard.value(`lifecycle.${field}`, lifecycle[field]);
    }
    guard.value('renewer.endpoint', renewer['endpoint']);
    guard.value('renewer.options', renewer['options']);
    guard.value('service', app.auth);
    guard.value('lifecycle', lifecycle);
    const secrets = [...secretsOf(fake), first, rotated, sha256(first), sha256(rotated)];
    expect(guard.leaks(secrets)).toEqual([]);
    expect(guard.size).toBeGreaterThan(30);
  });
});

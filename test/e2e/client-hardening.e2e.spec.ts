import { TransferAuthError } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';

describe('upstream client hardening (e2e)', () => {
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

  it('a body that does not decompress is INVALID_RESPONSE, not a retried network fault', async () => {
    fake.failAlways('auth', {
      kind: 'status',
      status: 200,
      body: 'definitely not gzip',
      headers: { 'Content-Encoding': 'gzip' },
    });
    app = await createAuthApp(fakeOptions(fake, { fetchOnStartup: false }));
    await expect(app.auth.getAccessToken()).rejects.toMatchObject({ code: 'INVALID_RESPONSE' });
    expect(fake.calls.auth).toBe(1);
  });

  it('a requestTimeoutMs that setTimeout cannot hold is INVALID_CONFIG, not a 1 ms timeout', async () => {
    const error: unknown = await createAuthApp(fakeOptions(fake, { requestTimeoutMs: 2 ** 31 })).catch((e) => e);
    expect(TransferAuthError.is(error, 'INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain('`requestTimeoutMs`');
    expect(fake.calls.total).toBe(0);
  });
});

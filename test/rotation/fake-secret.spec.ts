import { request } from 'node:http';
import { DEFAULT_AUTH_PATH } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

/** Get token on a raw socket: the status and body the fake answered. */
function login(fake: FakeTransferServer, secret: string): Promise<{ status: number; json: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${fake.url}${DEFAULT_AUTH_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, string> }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ agent_id: fake.agentId, agent_secret: secret }));
  });
}

/** The testing kit's secret rotation: `setAgentSecret()` changes what Get token accepts, at run time. */
describe('FakeTransferServer.setAgentSecret()', () => {
  let fake: FakeTransferServer;

  beforeEach(async () => {
    fake = await new FakeTransferServer({ agentSecret: 'first-secret' }).start();
  });
  afterEach(async () => {
    await fake.stop();
  });

  it('from the next request on, Get token accepts the new secret only; issued tokens stay valid', async () => {
    const before = await login(fake, 'first-secret');
    expect(before.status).toBe(200);

    expect(fake.setAgentSecret('second-secret')).toBe(fake);
    expect(fake.agentSecret).toBe('second-secret');

    expect((await login(fake, 'first-secret')).status).toBe(401);
    const after = await login(fake, 'second-secret');
    expect(after.status).toBe(200);
    expect(fake.isAccessTokenValid(before.json['access_token'] as string)).toBe(true);
    expect(fake.refreshTokenState(before.json['refresh_token'] as string)).toBe('unused');
    expect(fake.requests.map((r) => r.status)).toEqual([200, 401, 200]);
    expect(fake.calls.auth).toBe(3);
  });

  it('can go back to an earlier secret, and survives a restart of the fake', async () => {
    fake.setAgentSecret('second-secret').setAgentSecret('first-secret');
    await fake.stop();
    await fake.start();
    expect((await login(fake, 'second-secret')).status).toBe(401);
    expect((await login(fake, 'first-secret')).status).toBe(200);
  });

  it.each([[''], [undefined], [42]])('refuses %p and keeps the secret it had', (bad) => {
    expect(() => fake.setAgentSecret(bad as unknown as string)).toThrow(
      'FakeTransferServer.setAgentSecret() expects a non-empty string.',
    );
    expect(fake.agentSecret).toBe('first-secret');
  });

  it('a fake with the default (random) secret rotates alike', async () => {
    const other = await new FakeTransferServer().start();
    try {
      const old = other.agentSecret;
      expect(old).toMatch(/^fake-secret-[0-9a-f]{24}$/);
      other.setAgentSecret(`${old}-next`);
      expect((await login(other, old)).status).toBe(401);
      expect((await login(other, `${old}-next`)).status).toBe(200);
    } finally {
      await other.stop();
    }
  });
});

import { type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getTransferAuthToken, TransferAuthError, type TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { AppModule, type AppModuleOptions } from '../../sample-app/src/app.module';
import { installCapturingLogger, type CapturingLogger } from '../support/auth-app';
import { leakedSecrets, secretsOf } from '../support/e2e';

const ENV_KEYS = ['FREEDOMPAY_AGENT_ID', 'FREEDOMPAY_AGENT_SECRET', 'FREEDOMPAY_BASE_URL'] as const;

describe('sample app (sample-app/src) over HTTP', () => {
  let fake: FakeTransferServer;
  let app: INestApplication | undefined;
  let logger: CapturingLogger;
  const savedEnv: Partial<Record<(typeof ENV_KEYS)[number], string>> = {};

  beforeEach(async () => {
    for (const key of ENV_KEYS) {
      savedEnv[key] = process.env[key];
      delete process.env[key];
    }
    logger = installCapturingLogger();
    fake = await new FakeTransferServer().start();
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
    for (const key of ENV_KEYS) {
      if (savedEnv[key] === undefined) delete process.env[key];
      else process.env[key] = savedEnv[key];
    }
  });

  /** Boots `AppModule.forRoot(options)` as main.ts does, on a free port; returns its base URL. */
  async function boot(options: AppModuleOptions = {}): Promise<string> {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(options)] }).compile();
    app = moduleRef.createNestApplication({ logger });
    await app.listen(0, '127.0.0.1');
    return app.getUrl();
  }

  it('serves GET /auth/status from the embedded fake: a valid token, no secrets', async () => {
    const url = await boot({ embeddedFake: fake });

    const response = await fetch(`${url}/auth/status`);
    const text = await response.text();

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(body).toMatchObject({ state: 'valid' });
    expect(body).not.toHaveProperty('lastError');
    expect(Date.parse(String(body['accessExpiresAt']))).toBeGreaterThan(Date.now());
    expect(Date.parse(String(body['refreshExpiresAt']))).toBeGreaterThan(Date.now());
    expect(fake.calls.auth).toBe(1); // fetched once at startup, served from the cache since
    expect(fake.requests[0]?.body).toContain(`"agent_id":"${fake.agentId}"`);
    expect(leakedSecrets(text, secretsOf(fake))).toEqual([]);
    expect(leakedSecrets(logger.lines.join('\n'), secretsOf(fake))).toEqual([]);
  });

  it('stops the embedded fake when the app shuts down', async () => {
    const url = await boot({ embeddedFake: fake });
    const fakeUrl = fake.url;
    expect((await fetch(`${fakeUrl}/v5/partner/transfer/agents`)).status).toBe(401); // up, no token sent

    await app?.close();
    app = undefined;

    await expect(fetch(`${fakeUrl}/v5/partner/transfer/agents`)).rejects.toThrow();
    await expect(fetch(`${url}/auth/status`)).rejects.toThrow();
  });

  it('without an embedded fake, uses the freedompay config from FREEDOMPAY_* variables', async () => {
    const other = await new FakeTransferServer({ agentId: 'env-agent' }).start();
    try {
      process.env.FREEDOMPAY_AGENT_ID = other.agentId;
      process.env.FREEDOMPAY_AGENT_SECRET = other.agentSecret;
      process.env.FREEDOMPAY_BASE_URL = other.url;

      const url = await boot();
      const body = (await (await fetch(`${url}/auth/status`)).json()) as Record<string, unknown>;

      expect(body['state']).toBe('valid');
      expect(other.calls.auth).toBe(1);
      expect(fake.calls.total).toBe(0);
      expect(leakedSecrets(logger.lines.join('\n'), secretsOf(other))).toEqual([]);
    } finally {
      await app?.close();
      app = undefined;
      await other.stop();
    }
  });

  it('refuses to start with a wrong secret in the config (INVALID_CREDENTIALS), without printing it', async () => {
    process.env.FREEDOMPAY_AGENT_ID = fake.agentId;
    process.env.FREEDOMPAY_AGENT_SECRET = 'not-the-secret';
    process.env.FREEDOMPAY_BASE_URL = fake.url;

    const error = await boot().then(
      () => undefined,
      (caught: unknown) => caught,
    );

    expect(TransferAuthError.is(error, 'INVALID_CREDENTIALS')).toBe(true);
    expect(String((error as Error).message)).not.toContain('not-the-secret');
    expect(logger.lines.join('\n')).not.toContain('not-the-secret');
    expect(fake.calls.auth).toBe(1); // never retried
  });

  it('serves GET /agents through the authenticated client, per agent, and GET /health for both', async () => {
    const usd = await new FakeTransferServer({ agentId: 'usd-agent' }).start();
    try {
      const url = await boot({ embeddedFake: fake, embeddedUsdFake: usd });

      const agents = await fetch(`${url}/agents`);
      expect(agents.status).toBe(200);
      expect(await agents.json()).toEqual({ data: [expect.objectContaining({ agent_id: fake.agentId })] });
      const usdAgents = await fetch(`${url}/agents?agent=usd`);
      expect(await usdAgents.json()).toEqual({ data: [expect.objectContaining({ agent_id: 'usd-agent' })] });
      expect((await fetch(`${url}/agents?agent=eur`)).status).toBe(404);
      expect([fake.calls.auth, fake.calls.agents, usd.calls.auth, usd.calls.agents]).toEqual([1, 1, 1, 1]);

      const health = await fetch(`${url}/health`);
      const text = await health.text();
      expect(health.status).toBe(200);
      expect(JSON.parse(text)).toMatchObject({
        status: 'ok',
        info: { freedompay: { status: 'up', state: 'valid' }, freedompay_usd: { status: 'up', state: 'valid' } },
      });
      expect(leakedSecrets(text, [...secretsOf(fake), ...secretsOf(usd)])).toEqual([]);

      // The API refusing a call is a 502; no token to be had is a 503 with the code. Either way it is
      // that agent's alone, and shows on /health.
      usd.failNext('agents', { kind: 'status', status: 500 });
      expect((await fetch(`${url}/agents?agent=usd`)).status).toBe(502);
      usd.failAlways('auth', { kind: 'status', status: 503 }).failAlways('refresh', { kind: 'status', status: 503 });
      app?.get<TransferAuthService>(getTransferAuthToken('usd')).invalidate();
      const failed = await fetch(`${url}/agents?agent=usd`);
      expect(failed.status).toBe(503);
      expect(await failed.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      const degraded = await fetch(`${url}/health`);
      expect(degraded.status).toBe(503);
      expect(await degraded.json()).toMatchObject({
        info: { freedompay: { status: 'up' } },
        error: { freedompay_usd: { status: 'down', code: 'UPSTREAM_UNAVAILABLE' } },
      });
    } finally {
      await app?.close();
      app = undefined;
      await usd.stop();
    }
  });
});

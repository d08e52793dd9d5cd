import { Logger, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { AppModule, type AppModuleOptions } from '../../sample-app/src/app.module';
import { CapturingLogger } from '../support/auth-app';
import { leakedSecrets, secretsOf } from '../support/e2e';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/** `/auth/status` of the sample app with `REDIS_URL` set: what `npm run start:fleet` runs, four times over. */
describe('sample app with REDIS_URL: one token for several app instances', () => {
  let redis: RedisProcess;
  let fake: FakeTransferServer;
  let logger: CapturingLogger;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });
  beforeEach(async () => {
    logger = new CapturingLogger();
    Logger.overrideLogger(logger);
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await fake.stop();
  });

  async function boot(options: AppModuleOptions): Promise<string> {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(options)] }).compile();
    const app = moduleRef.createNestApplication({ logger });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    return app.getUrl();
  }

  async function status(url: string): Promise<Record<string, unknown>> {
    const response = await fetch(`${url}/auth/status`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(leakedSecrets(text, secretsOf(fake))).toEqual([]);
    return JSON.parse(text) as Record<string, unknown>;
  }

  it('three instances: one login, the same fingerprint everywhere, the store named', async () => {
    const urls = [];
    for (let i = 0; i < 3; i++) urls.push(await boot({ embeddedFake: fake, redisUrl: redis.url }));
    const bodies = await Promise.all(urls.map(status));
    expect(bodies.map((b) => b['storeKind'])).toEqual(['redis', 'redis', 'redis']);
    for (const body of bodies) expect(body['store']).toMatchObject({ state: 'ok' }); // the library's view of it
    expect(bodies.map((b) => b['state'])).toEqual(['valid', 'valid', 'valid']);
    const prints = new Set(bodies.map((b) => b['accessTokenFingerprint']));
    expect(prints.size).toBe(1);
    expect([...prints][0]).toMatch(/^[0-9a-f]{8}$/);
    expect(fake.calls.auth + fake.calls.refresh).toBe(1);
    expect(await redis.command('--scan', '--pattern', 'freedompay-transfer-auth:*')).toMatch(/:token$/m);
  });

  it('a forced renewal in one instance is served by the others at once (the store tells them)', async () => {
    await boot({ embeddedFake: fake, redisUrl: redis.url });
    const second = await boot({ embeddedFake: fake, redisUrl: redis.url });
    const before = (await status(second))['accessTokenFingerprint'];
    await apps[0]!.get(TransferAuthService).forceRefresh();
    const renewed = apps[0]!.get(TransferAuthService).getStatus().accessTokenFingerprint;
    expect(renewed).not.toBe(before);
    // Real Redis, real pub/sub: poll until the hint has landed (it takes a few ms).
    let seen = before;
    for (const deadline = Date.now() + 2_000; seen !== renewed && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = (await status(second))['accessTokenFingerprint'];
    }
    expect(seen).toBe(renewed);
    expect([fake.calls.auth, fake.calls.refresh, fake.calls.refreshReused]).toEqual([1, 1, 0]);
  });

  it('without REDIS_URL each instance keeps its own token (the default): the store says in-process', async () => {
    const url = await boot({ embeddedFake: fake });
    const body = await status(url);
    expect(body['storeKind']).toBe('in-process');
    expect(body['store']).toBeUndefined(); // no store given: none in the status
    expect(body['accessTokenFingerprint']).toMatch(/^[0-9a-f]{8}$/);
  });
});

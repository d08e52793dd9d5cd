import type { INestApplication } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { filter, firstValueFrom } from 'rxjs';
import { ProbesModule } from './probes.controller';

/**
 * The probes recipe of docs/probes.md over HTTP: liveness and readiness stay 200 through a Freedom Pay
 * outage; the dependency check says `down` only once no usable token is held.
 */
describe('probes.controller.ts: liveness and readiness apart from the Freedom Pay dependency check', () => {
  let fake: FakeTransferServer;
  let app: INestApplication | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  async function boot(): Promise<string> {
    @Module({
      imports: [
        ProbesModule,
        TransferAuthModule.forRoot({
          agentId: fake.agentId,
          agentSecret: fake.agentSecret,
          baseUrl: fake.url,
          retry: { baseDelayMs: 10, maxDelayMs: 50 },
        }),
      ],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    return app.getUrl();
  }

  async function probe(url: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${url}/health/${path}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('an outage while a token is held: everything 200, the dependency check still up', async () => {
    const url = await boot();
    fake.failAlways('any', { kind: 'status', status: 503 });
    expect((await probe(url, 'live')).status).toBe(200);
    expect((await probe(url, 'ready')).status).toBe(200);
    expect(await probe(url, 'dependencies')).toMatchObject({
      status: 200,
      body: { status: 'ok', info: { freedompay: { status: 'up', state: 'valid' } } },
    });
  });

  it('an outage with no token (a start during it): live and ready 200, the dependency check 503 until it ends', async () => {
    fake.failAlways('any', { kind: 'status', status: 503 });
    const url = await boot(); // an unreachable upstream does not fail the start
    expect((await probe(url, 'live')).status).toBe(200);
    expect((await probe(url, 'ready')).status).toBe(200);
    const down = await probe(url, 'dependencies');
    expect(down).toMatchObject({
      status: 503,
      body: { status: 'error', error: { freedompay: { status: 'down', code: 'UPSTREAM_UNAVAILABLE' } } },
    });
    expect(JSON.stringify(down.body)).not.toContain(fake.agentSecret);

    const auth = (app as INestApplication).get(TransferAuthService);
    const acquired = firstValueFrom(auth.events$.pipe(filter((event) => event.type === 'token.acquired')));
    fake.clearFaults();
    await acquired; // the background renewal, within retry.maxDelayMs
    expect(await probe(url, 'dependencies')).toMatchObject({
      status: 200,
      body: { info: { freedompay: { status: 'up' } } },
    });
  });
});

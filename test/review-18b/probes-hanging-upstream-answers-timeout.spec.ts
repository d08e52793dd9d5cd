import type { INestApplication } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { ProbesModule } from '../recipes/probes.controller';

/**
 * Review finding: docs/probes.md named only `UPSTREAM_UNAVAILABLE` for an outage, but its recipe probes
 * with `timeoutMs: 1_000`, below the default `requestTimeoutMs` (10 s): when Freedom Pay does not answer
 * at all (the commonest outage) and no usable token is held, the probe joins the hanging renewal and
 * answers `TIMEOUT`. The doc now names both; this shows the hanging case (the answered case is in
 * test/recipes/probes.spec.ts). The token is dropped with `invalidate()`, as a 401 would: no wait for
 * an expiry on the wall clock.
 */
describe('review-18b: the probes recipe when Freedom Pay hangs and no token is held', () => {
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

  it('answers /health/dependencies 503 with code TIMEOUT while no token is held, as docs/probes.md says', async () => {
    @Module({
      imports: [
        ProbesModule,
        TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url }),
      ],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const url = await app.getUrl();
    const auth = app.get(TransferAuthService);
    fake.failAlways('any', { kind: 'hang' });

    auth.invalidate(await auth.getAccessToken()); // no usable token now; its renewal hangs
    expect(auth.getStatus().accessTokenFingerprint).toBeNull();

    const response = await fetch(`${url}/health/dependencies`);
    const body = (await response.json()) as { error?: { freedompay?: { code?: string } } };
    expect({ status: response.status, code: body.error?.freedompay?.code }).toEqual({
      status: 503,
      code: 'TIMEOUT',
    });
    // Readiness and liveness of the recipe stay up: the outage is the dependency's, not the pod's.
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
  });
});

import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { CapturingLogger, fakeOptions } from '../support/auth-app';
import { TransferErrorsModule } from './transfer-errors.module';

/**
 * docs/recipes.md, "Errors as HTTP answers": the TransferErrorsModule recipe, imported by an app, answers
 * a route's TransferAuthError over HTTP (test/e2e/error-filter.e2e.spec.ts tries every code and binding).
 */
describe('the TransferErrorsModule recipe (transfer-errors.module.ts)', () => {
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

  it('an upstream 503 with Retry-After becomes 503 with Retry-After; other routes are untouched', async () => {
    @Controller()
    class PaymentsController {
      constructor(private readonly auth: TransferAuthService) {}
      @Get('pay')
      async pay(): Promise<{ paid: true }> {
        await this.auth.getAccessToken();
        return { paid: true };
      }
    }
    @Module({
      imports: [TransferAuthModule.forRoot(fakeOptions(fake, { fetchOnStartup: false })), TransferErrorsModule],
      controllers: [PaymentsController],
    })
    class AppModule {}
    const logger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .setLogger(logger)
      .compile();
    app = moduleRef.createNestApplication({ logger });
    await app.listen(0, '127.0.0.1');
    const url = await app.getUrl();
    fake.failNext('auth', { kind: 'status', status: 503, retryAfter: 45 });

    const refused = await fetch(`${url}/pay`);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(40);
    expect(await refused.json()).toEqual({
      statusCode: 503,
      message: 'Temporarily unavailable; try again later.',
      error: 'Service Unavailable',
    });
    expect(fake.calls.auth).toBe(1);
    const missing = await fetch(`${url}/nowhere`); // not a TransferAuthError: Nest's own 404
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
  });
});

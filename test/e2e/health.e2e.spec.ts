import { Controller, Get, Logger, Module, type INestApplication, type INestApplicationContext } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import {
  getTransferAuthToken,
  InProcessTokenStore,
  TransferAuthModule,
  type TransferTokenStore,
  type TransferAuthModuleOptions,
  type TransferAuthService,
} from 'nestjs-freedompay-transfer-auth';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { CapturingLogger, fakeOptions } from '../support/auth-app';
import { captureAuthError, leakedSecrets, secretsOf } from '../support/e2e';

const UNKNOWN_DOWN = { status: 'down', state: 'unknown', accessExpiresAt: null, code: 'UNKNOWN_REGISTRATION' };

describe('TransferAuthHealthIndicator (finding 3)', () => {
  let fake: FakeTransferServer;
  let app: INestApplicationContext | undefined;
  let logger: CapturingLogger;

  beforeEach(async () => {
    logger = new CapturingLogger();
    Logger.overrideLogger(logger); // the lifecycle's failure logs and terminus' "Health Check has failed!"
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  /** An application context with the module (unnamed, or `name`d), terminus and the indicator. */
  async function boot(
    overrides: Partial<TransferAuthModuleOptions> = {},
    name?: string,
  ): Promise<{ indicator: TransferAuthHealthIndicator; auth: TransferAuthService }> {
    const options = fakeOptions(fake, overrides);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TerminusModule,
        name === undefined ? TransferAuthModule.forRoot(options) : TransferAuthModule.forRoot({ ...options, name }),
      ],
      providers: [TransferAuthHealthIndicator],
    })
      .setLogger(logger)
      .compile();
    app = await moduleRef.init();
    const indicator = app.get(TransferAuthHealthIndicator);
    const auth = app.get<TransferAuthService>(getTransferAuthToken(name));
    return { indicator, auth };
  }

  describe('an unknown name', () => {
    it('is down with state unknown and UNKNOWN_REGISTRATION, and does not throw', async () => {
      const { indicator } = await boot();
      // 0.2.0: threw Nest's "not found" error, so a terminus check answered 500.
      await expect(indicator.isHealthy('freedompay', { name: 'typo' })).resolves.toEqual({ freedompay: UNKNOWN_DOWN });
      await expect(indicator.isHealthy('other', { name: 'payouts-typo' })).resolves.toEqual({ other: UNKNOWN_DOWN });
    });

    it('with only a named registration, the unnamed one is unknown and the named one up', async () => {
      const { indicator } = await boot({}, 'payouts');
      await expect(indicator.isHealthy('freedompay')).resolves.toEqual({ freedompay: UNKNOWN_DOWN });
      await expect(indicator.isHealthy('payouts', { name: 'payouts' })).resolves.toEqual({
        payouts: { status: 'up', state: 'valid', accessExpiresAt: expect.any(String) },
      });
    });

    it('GET /health over HTTP answers 503 with the down report, not 500', async () => {
      @Controller('health')
      class HealthController {
        constructor(
          private readonly health: HealthCheckService,
          private readonly transferAuth: TransferAuthHealthIndicator,
        ) {}
        @Get()
        @HealthCheck()
        check(): Promise<HealthCheckResult> {
          return this.health.check([
            () => this.transferAuth.isHealthy('freedompay'),
            () => this.transferAuth.isHealthy('freedompay_typo', { name: 'typo' }),
          ]);
        }
      }
      @Module({ imports: [TerminusModule], controllers: [HealthController], providers: [TransferAuthHealthIndicator] })
      class HealthModule {}

      const moduleRef = await Test.createTestingModule({
        imports: [TransferAuthModule.forRoot(fakeOptions(fake)), HealthModule],
      })
        .setLogger(logger)
        .compile();
      const http: INestApplication = moduleRef.createNestApplication({ logger });
      app = http;
      await http.listen(0, '127.0.0.1');
      const response = await fetch(`${await http.getUrl()}/health`);
      expect(response.status).toBe(503);
      const body = (await response.json()) as Record<string, unknown>;
      expect(body).toMatchObject({
        status: 'error',
        info: { freedompay: { status: 'up', state: 'valid' } },
        error: { freedompay_typo: UNKNOWN_DOWN },
      });
      // terminus logs the failed check: captured, and it names no token or secret.
      const failed = logger.lines.filter((line) => line.includes('Health Check has failed!'));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatch(/^error /);
      expect(failed[0]).toContain('UNKNOWN_REGISTRATION');
      expect(leakedSecrets([JSON.stringify(body), ...logger.lines].join('\n'), secretsOf(fake))).toEqual([]);
    });
  });

  describe('the shared store in the details (issue 17)', () => {
    it('no store: no `store` detail; a store: its state; a degraded store with a usable token is still up', async () => {
      const { indicator: plain } = await boot();
      expect((await plain.isHealthy('freedompay'))['freedompay']).not.toHaveProperty('store');
      await app?.close();
      let failing = false;
      const inner = new InProcessTokenStore();
      const store: TransferTokenStore = {
        read: (key) =>
          failing
            ? Promise.reject(new Error('READONLY You can not write against a read only replica.'))
            : inner.read(key),
        write: (key, entry) => inner.write(key, entry),
        lock: (key, ttlMs) => inner.lock(key, ttlMs),
      };
      const { indicator, auth } = await boot({ store });
      expect(await indicator.isHealthy('freedompay')).toEqual({
        freedompay: {
          status: 'up',
          state: 'valid',
          accessExpiresAt: expect.any(String),
          store: { state: 'ok', since: expect.any(String) },
        },
      });
      failing = true;
      await auth.forceRefresh(); // renewed alone: the store's read failed
      expect(await indicator.isHealthy('freedompay')).toEqual({
        freedompay: {
          status: 'up',
          state: 'valid',
          accessExpiresAt: expect.any(String),
          store: { state: 'degraded', since: expect.any(String), error: 'READONLY' },
        },
      });
    });
  });

  describe('probes never start an upstream call while a renewal is in flight or backing off', () => {
    it('in flight: probes join the renewal (TIMEOUT while it lasts, up when it lands), one upstream call', async () => {
      fake.failNext('auth', { kind: 'delay', ms: 1_000 });
      const { indicator, auth } = await boot({ fetchOnStartup: false });
      const first = auth.getAccessToken();
      await fake.waitForCalls(1, 'auth');
      const early = await Promise.all(
        Array.from({ length: 5 }, () => indicator.isHealthy('freedompay', { timeoutMs: 50 })),
      );
      for (const result of early) {
        expect(result).toEqual({
          freedompay: { status: 'down', state: 'acquiring', accessExpiresAt: null, code: 'TIMEOUT' },
        });
      }
      await expect(indicator.isHealthy('freedompay', { timeoutMs: 5_000 })).resolves.toMatchObject({
        freedompay: { status: 'up', state: 'valid' },
      });
      await first;
      expect(fake.calls.total).toBe(1);
    });

    it('backing off after a failure: probes are answered at once with the last error, no upstream call', async () => {
      fake.failAlways('any', { kind: 'status', status: 503 });
      // One renewal of one attempt at startup (more would wait 15-30 s between them); the next background
      // renewal is far away. This is about the failure policy's backoff, not the attempts of a renewal.
      const { indicator } = await boot({ retry: { maxAttempts: 1, baseDelayMs: 30_000, maxDelayMs: 30_000 } });
      expect(fake.calls.total).toBe(1);
      const results = await Promise.all(
        Array.from({ length: 10 }, () => indicator.isHealthy('freedompay', { timeoutMs: 5_000 })),
      );
      for (const result of results) {
        // Not TIMEOUT: the probe did not wait for an attempt of its own.
        expect(result).toEqual({
          freedompay: { status: 'down', state: 'failed', accessExpiresAt: null, code: 'UPSTREAM_UNAVAILABLE' },
        });
      }
      expect(fake.calls.total).toBe(1);
      expect(logger.lines.some((line) => line.startsWith('error') || line.startsWith('warn'))).toBe(true);
      expect(leakedSecrets(logger.lines.join('\n'), secretsOf(fake))).toEqual([]);
    });

    it('rejected credentials: probes during the cool-down make no login attempt', async () => {
      fake.failAlways('auth', { kind: 'status', status: 401 });
      const { indicator, auth } = await boot({ fetchOnStartup: false });
      expect((await captureAuthError(auth.getAccessToken())).code).toBe('INVALID_CREDENTIALS');
      const results = await Promise.all(Array.from({ length: 10 }, () => indicator.isHealthy('freedompay')));
      for (const result of results)
        expect(result['freedompay']).toMatchObject({ status: 'down', code: 'INVALID_CREDENTIALS' });
      expect(fake.calls.auth).toBe(1);
    });
  });
});

import { Logger, type INestApplicationContext, type LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  getTransferAuthToken,
  TransferAuthModule,
  type TransferAuthEvent,
  type TransferAuthModuleOptions,
  type TransferAuthService,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import type { Subscription } from 'rxjs';
import { fakeUrl } from './e2e';

/** Every line any Nest logger printed while installed. */
export class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private record(level: string, message: unknown, rest: unknown[]): void {
    this.lines.push(
      [level, message, ...rest].map((part) => (typeof part === 'string' ? part : JSON.stringify(part))).join(' '),
    );
  }
  log(message: unknown, ...rest: unknown[]): void {
    this.record('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.record('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.record('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.record('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.record('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.record('fatal', message, rest);
  }
}

/** A {@link CapturingLogger} installed as every Nest logger's output: lines asserted on, not printed. */
export function installCapturingLogger(): CapturingLogger {
  const logger = new CapturingLogger();
  Logger.overrideLogger(logger);
  return logger;
}

export interface AuthApp {
  app: INestApplicationContext;
  auth: TransferAuthService;
  logger: CapturingLogger;
  events: TransferAuthEvent[];
  close(): Promise<void>;
}

/** Options pointing at `fake`, with fast retries so failure tests stay quick; `overrides` win. */
export function fakeOptions(
  fake: FakeTransferServer,
  overrides: Partial<TransferAuthModuleOptions> = {},
): TransferAuthModuleOptions {
  return {
    agentId: fake.agentId,
    agentSecret: fake.agentSecret,
    baseUrl: fakeUrl(fake), // also once the fake is stopped: tests of a refused connection
    requestTimeoutMs: 2_000,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
    ...overrides,
  };
}

/**
 * Boots a real Nest application context with `TransferAuthModule.forRoot(options)` (init included, so
 * `fetchOnStartup` runs), a capturing logger and an event recorder. With `name`, the registration is
 * named (`forRoot({ ...options, name })`) and `auth` is its service. Always `await close()` it.
 */
export async function createAuthApp(options: TransferAuthModuleOptions, name?: string): Promise<AuthApp> {
  const logger = installCapturingLogger();
  const moduleRef = await Test.createTestingModule({
    imports: [TransferAuthModule.forRoot({ ...options, ...(name === undefined ? {} : { name }) })],
  }).compile();
  moduleRef.useLogger(logger);
  const auth = moduleRef.get<TransferAuthService>(getTransferAuthToken(name));
  const events: TransferAuthEvent[] = [];
  const subscription: Subscription = auth.events$.subscribe((event) => events.push(event));
  try {
    await moduleRef.init();
  } catch (error) {
    subscription.unsubscribe();
    await moduleRef.close().catch(() => undefined);
    throw error;
  }
  return {
    app: moduleRef,
    auth,
    logger,
    events,
    close: async () => {
      subscription.unsubscribe();
      await moduleRef.close();
    },
  };
}

export type FakeServerOptions = ConstructorParameters<typeof FakeTransferServer>[0];

/** What {@link trackFakesAndApps} hands a describe block. */
export interface FakesAndApps {
  /** A started fake, stopped after the test. */
  fakeServer(options?: FakeServerOptions): Promise<FakeTransferServer>;
  /** `app`, closed after the test (before the fakes are stopped). */
  track(app: AuthApp): AuthApp;
  /** Closes a tracked `app` now (and not again after the test). */
  close(app: AuthApp): Promise<void>;
}

/**
 * For a describe block: after each test, every app given to `track` is closed, then `afterApps` runs,
 * then every fake started through `fakeServer` is stopped.
 */
export function trackFakesAndApps(afterApps?: () => void): FakesAndApps {
  const fakes: FakeTransferServer[] = [];
  const apps: AuthApp[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    afterApps?.();
    for (const fake of fakes.splice(0)) await fake.stop();
  });
  return {
    async fakeServer(options = {}) {
      const fake = await new FakeTransferServer(options).start();
      fakes.push(fake);
      return fake;
    },
    track(app) {
      apps.push(app);
      return app;
    },
    async close(app) {
      apps.splice(apps.indexOf(app), 1);
      await app.close();
    },
  };
}

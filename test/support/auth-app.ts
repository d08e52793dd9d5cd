import { Logger, type INestApplicationContext, type LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  TransferAuthModule,
  TransferAuthService,
  type TransferAuthEvent,
  type TransferAuthModuleOptions,
} from 'nestjs-freedompay-transfer-auth';
import type { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
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
 * `fetchOnStartup` runs), a capturing logger and an event recorder. Always `await close()` it.
 */
export async function createAuthApp(options: TransferAuthModuleOptions): Promise<AuthApp> {
  const logger = new CapturingLogger();
  Logger.overrideLogger(logger);
  const moduleRef = await Test.createTestingModule({ imports: [TransferAuthModule.forRoot(options)] }).compile();
  moduleRef.useLogger(logger);
  const auth = moduleRef.get(TransferAuthService);
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

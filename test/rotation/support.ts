import { randomBytes } from 'node:crypto';
import type {
  AgentSecretProvider,
  TransferAuthEvent,
  TransferAuthModuleOptions,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';

/** A fresh agent secret, shaped as the secret guard recognises test secrets. */
export const newSecret = (): string => `test-secret-${randomBytes(12).toString('hex')}`;

/** One turn of the event loop (`setImmediate` is left real under the fake clock). */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Jest's fake clock for the module's timers and clocks (`setTimeout`, `performance.now()`, `Date`),
 * while sockets stay real: the fake's answers arrive as I/O, whatever the fake time.
 */
export function useFakeClock(): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
}

/** The `token.failed` events of `events`. */
export const failures = (events: TransferAuthEvent[]): TransferAuthEvent[] =>
  events.filter((e) => e.type === 'token.failed');

/** What {@link rotationRig} hands a describe block. */
export interface RotationRig {
  /** The current test's fake, started with a random agent secret (rotate it with `setAgentSecret`). */
  readonly fake: FakeTransferServer;
  /** The current test's app, closed after the test. */
  app: AuthApp | undefined;
  /**
   * Boots the test's app with `agentSecret: provider` against the fake: renewals are logins
   * (`refresh: false`) unless `overrides` say otherwise.
   */
  boot(provider: AgentSecretProvider, overrides?: Partial<TransferAuthModuleOptions>): Promise<AuthApp>;
  /** Statuses of the fake's Get token answers, oldest first. */
  logins(): (number | 'fault')[];
}

/**
 * For a describe block: a fake with a random agent secret started before each test; after it, real
 * timers back, the app closed and the fake stopped.
 */
export function rotationRig(): RotationRig {
  let fake: FakeTransferServer | undefined;
  const rig: RotationRig = {
    get fake(): FakeTransferServer {
      if (fake === undefined) throw new Error('no fake outside a test');
      return fake;
    },
    app: undefined,
    async boot(provider, overrides = {}) {
      rig.app = await createAuthApp(fakeOptions(rig.fake, { agentSecret: provider, refresh: false, ...overrides }));
      return rig.app;
    },
    logins: () => rig.fake.requests.filter((r) => r.endpoint === 'auth').map((r) => r.status),
  };
  beforeEach(async () => {
    fake = await new FakeTransferServer({ agentSecret: newSecret() }).start();
  });
  afterEach(async () => {
    jest.useRealTimers();
    await rig.app?.close();
    rig.app = undefined;
    await fake?.stop();
    fake = undefined;
  });
  return rig;
}

import { TransferAuthError } from '../../lib/errors/transfer-auth.error';
import type { TransferAuthModuleOptions } from '../../lib/interfaces/transfer-auth-module-options.interface';
import { resolveTransferAuthOptions } from '../../lib/upstream/resolve-options';
import { NO_TELEMETRY, type ObservedState, type Telemetry } from '../../lib/telemetry/telemetry';
import { TokenLifecycle } from '../../lib/token-lifecycle/token-lifecycle';
import type { TransferTokenStore } from '../../lib/token-store/transfer-token-store.interface';
import { TransferApiClient } from '../../lib/upstream/transfer-api.client';
import type { UpstreamTokenResponse } from '../../lib/upstream/token-endpoint';
import { T0 } from '../unit/lifecycle/support';
import { recorder, type Recorder } from '../unit/support/stub-endpoint';

/**
 * For a describe block: each test on Jest's fake clock from T0; after it, every lifecycle given to the
 * returned `closeAfterTest` is closed, then the real timers are back.
 */
export function fakeClockPerTest(): <T extends { close(): void }>(lifecycle: T) => T {
  const open: { close(): void }[] = [];
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => {
    for (const lifecycle of open.splice(0)) lifecycle.close();
    jest.useRealTimers();
  });
  return (lifecycle) => {
    open.push(lifecycle);
    return lifecycle;
  };
}

/** The contract's credentials cool-down: 1 s, doubling, at most 5 minutes. */
export function coolDownLogins(windowMs: number): number {
  let logins = 0;
  for (let at = 0, coolDown = 1_000; at < windowMs; at += coolDown, coolDown = Math.min(coolDown * 2, 300_000)) {
    logins++;
  }
  return logins;
}

/** A Telemetry that records nothing but keeps what the lifecycle hands to `observe` (the gauges' reads). */
export function gaugeProbe(): { telemetry: Telemetry; state: () => ObservedState } {
  let observed: ObservedState | undefined;
  const telemetry: Telemetry = {
    ...NO_TELEMETRY,
    observe: (state) => {
      observed = state;
      return () => undefined;
    },
  };
  return {
    telemetry,
    state: () => {
      if (observed === undefined) throw new Error('the lifecycle registered no gauges');
      return observed;
    },
  };
}

/**
 * The real `TransferApiClient` (its secret reads, its re-read after a rejected login, `secretChanged`)
 * with the HTTP exchange of Get token replaced by `login`: every login the upstream would see is
 * recorded with the secret it carried.
 */
export interface ClientRig {
  lifecycle: TokenLifecycle;
  client: TransferApiClient;
  hooks: Recorder;
  /** The secret of every login sent, in order. */
  logins: string[];
}

export function clientRig(
  options: Partial<TransferAuthModuleOptions> & Pick<TransferAuthModuleOptions, 'agentSecret'>,
  login: (secret: string) => Promise<UpstreamTokenResponse>,
  store?: TransferTokenStore,
): ClientRig {
  const resolved = resolveTransferAuthOptions({
    agentId: 'agent-1',
    fetchOnStartup: false,
    refresh: false,
    ...options,
  });
  const client = new TransferApiClient(resolved);
  const logins: string[] = [];
  // A private method of the client, replaced for the test: the HTTP exchange is not under review here.
  (client as unknown as { login: (secret: string) => Promise<UpstreamTokenResponse> }).login = (secret) => {
    logins.push(secret);
    return login(secret);
  };
  const hooks = recorder();
  const lifecycle = new TokenLifecycle(resolved, {
    endpoint: client,
    hooks,
    random: () => 0.5,
    ...(store === undefined ? {} : { store }),
  });
  return { lifecycle, client, hooks, logins };
}

/** What Get token answers when the upstream refuses the credentials. */
export function refused(): Promise<never> {
  return Promise.reject(
    new TransferAuthError('INVALID_CREDENTIALS', 'Get token was refused: HTTP 401 (check agentId and agentSecret).', {
      status: 401,
    }),
  );
}

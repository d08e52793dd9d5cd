import type { TransferAuthEvent } from '../interfaces/transfer-auth-event.interface';
import type { ResolvedTransferAuthOptions } from '../upstream/resolve-options';
import type { StoreScope } from '../token-store/store-key';
import type { TransferTokenStore } from '../token-store/transfer-token-store.interface';
import type { TokenEndpoint } from '../upstream/token-endpoint';
import type { Clock } from './clock';
import type { LogFn } from './failure-log';
import type { Telemetry } from '../telemetry/telemetry';

/** @internal Where the lifecycle reports; the Nest layer plugs in its Logger and Subject. */
export interface LifecycleHooks {
  log: LogFn;
  emit(event: TransferAuthEvent): void;
}

/** @internal */
export interface LifecycleDeps {
  endpoint: TokenEndpoint;
  hooks: LifecycleHooks;
  clock?: Clock;
  random?: () => number;
  /** Where the current token is shared; default: this lifecycle only. */
  store?: TransferTokenStore;
  /** The agent's key in the store and its encryption key (derived with a slow KDF, so it may take a moment). */
  storeScope?: Promise<StoreScope>;
  /** Metrics and spans; default: none. */
  telemetry?: Telemetry;
}

/** @internal */
export type LifecycleOptions = Pick<
  ResolvedTransferAuthOptions,
  'refresh' | 'refreshMarginMs' | 'retry' | 'fetchOnStartup' | 'requestTimeoutMs'
> &
  Partial<Pick<ResolvedTransferAuthOptions, 'agentSecret'>>;

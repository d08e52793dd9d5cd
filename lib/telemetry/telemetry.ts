import type { TransferAuthErrorCode } from '../errors/transfer-auth.error';

/** @internal Which upstream call: Get token (`login`) or Refresh token (`refresh`). */
export type UpstreamKind = 'login' | 'refresh';

/** @internal What became of an `invalidate(token)`: dropped the cached token, or ignored it. */
export type InvalidationResult = 'dropped' | 'stale' | 'spaced';

/** @internal What a lock attempt on the shared store got. */
export type LockOutcome = 'acquired' | 'busy' | 'down';

/** @internal A store call that failed or timed out. */
export type StoreOperation = 'read' | 'write' | 'lock';

/** @internal The answer of one upstream call, as far as telemetry sees it. */
export interface UpstreamOutcome {
  /** HTTP status, when an answer came. */
  readonly status: number | undefined;
  /** `undefined` when the call gave a usable token. */
  readonly code: TransferAuthErrorCode | undefined;
}

/** @internal What the observable gauges read, at collection time. */
export interface ObservedState {
  /** Seconds until the cached access / refresh token expires; `undefined`: nothing to report. */
  accessSecondsLeft(): number | undefined;
  refreshSecondsLeft(): number | undefined;
  /**
   * When the cached access token stops being served: Unix time in seconds on the local wall clock it was
   * placed on (from the upstream's `Date` header); 0 with none cached; `undefined`: nothing to report.
   */
  accessExpiresAt(): number | undefined;
  /** 1 while a shared store is not answering; `undefined` without a shared store. */
  degraded(): number | undefined;
}

/** @internal An HTTP request, as the span of an upstream call names it. */
export interface UpstreamRequest {
  readonly kind: UpstreamKind;
  readonly method: string;
  readonly url: string;
}

/**
 * @internal Where the lifecycle reports what it does, one per registration. Nothing passed here is a
 * token or a secret: kinds, outcomes (error codes), durations. The default records nothing.
 */
export interface Telemetry {
  /** The caller's trace context (opaque), captured when a caller starts a renewal. */
  activeContext(): unknown;
  /**
   * Runs one upstream call in a span (a child of `parent`), counts it and records its duration.
   * `outcomeOf` names the outcome of what `call` settled with.
   */
  upstream<T>(
    request: UpstreamRequest,
    parent: unknown,
    call: () => Promise<T>,
    outcomeOf: (result: { value: T } | { error: unknown }) => UpstreamOutcome,
  ): Promise<T>;
  /** A login that was never sent: the secret provider failed (`code`). Counted with the renewals. */
  loginNotSent(code: string): void;
  /** Whether waits are recorded at all: without it, the lifecycle does not time its callers. */
  readonly timesWaits: boolean;
  /** Callers that waited these many seconds each for a renewal that ended in `outcome`. */
  callersWaited(seconds: readonly number[], outcome: string): void;
  invalidated(result: InvalidationResult): void;
  adopted(): void;
  lock(outcome: LockOutcome): void;
  storeFailed(operation: StoreOperation, errorType: string): void;
  /** Registers the gauges' callback; the function returned removes it (at shutdown). */
  observe(state: ObservedState): () => void;
}

/** @internal Records nothing: `@opentelemetry/api` is not installed. */
export const NO_TELEMETRY: Telemetry = {
  activeContext: () => undefined,
  upstream: (_request, _parent, call) => call(),
  loginNotSent: () => undefined,
  timesWaits: false,
  callersWaited: () => undefined,
  invalidated: () => undefined,
  adopted: () => undefined,
  lock: () => undefined,
  storeFailed: () => undefined,
  observe: () => () => undefined,
};

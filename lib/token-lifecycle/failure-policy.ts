import { TransferAuthError } from '../errors/transfer-auth.error';
import type { ResolvedTransferAuthOptions } from '../upstream/resolve-options';
import { CREDENTIALS_COOLDOWN_MAX_MS, CREDENTIALS_COOLDOWN_MIN_MS } from '../internal.constants';
import { backoffDelay } from './backoff';

/**
 * @internal What failed renewals left behind, as one named state:
 * - `ready`: nothing holds a renewal back.
 * - `backoff`: a renewal failed for a transient reason (network, timeout, 408, 429, 5xx) or got an
 *   answer it could not use. The background tries again at `dueAt`; until then a caller with no usable
 *   token gets `error` at once. `Retry-After` (until `retryAfterUntil`) holds back even `forceRefresh()`.
 * - `rejected`: Get token refused the credentials. No login before `until` (a cool-down doubling from
 *   1 s to 5 min), and never one in the background: only a usable refresh token may be tried there.
 * - `closed`: for good.
 * Times are monotonic milliseconds.
 */
export type FailureState =
  | { readonly kind: 'ready' }
  | {
      readonly kind: 'backoff';
      readonly error: TransferAuthError;
      readonly dueAt: number;
      readonly retryAfterUntil: number;
    }
  | { readonly kind: 'rejected'; readonly error: TransferAuthError; readonly until: number }
  | { readonly kind: 'closed' };

const READY: FailureState = { kind: 'ready' };

/**
 * @internal A rejection that came with the fleet's cool-down (from the shared store): what is left of it,
 * by error. The fleet's count of rejections, not this process', sets how long no login is tried.
 */
export const fleetCoolDowns = new WeakMap<object, number>();

/** @internal The failure policy: decides when renewals may run after failures, and who is told what. */
export class FailurePolicy {
  private current: FailureState = READY;
  /** Transient failures in a row: the backoff grows with them. */
  private failures = 0;
  /** Rejected logins in a row: the cool-down doubles with them. */
  private rejections = 0;
  /** A changed secret lifted a cool-down since the last success. */
  private secretSkipUsed = false;

  constructor(
    private readonly retry: ResolvedTransferAuthOptions['retry'],
    private readonly random: () => number,
  ) {}

  get state(): FailureState {
    return this.current;
  }

  /**
   * Why no renewal may start now (`force`: for `forceRefresh()`, which skips the backoff and the
   * cool-down but not `Retry-After`), or `undefined` when one may. A caller gets this error at once.
   */
  refusal(now: number, force: boolean): TransferAuthError | undefined {
    const state = this.current;
    switch (state.kind) {
      case 'closed':
        return shutdownError();
      case 'backoff':
        if (now < state.retryAfterUntil) {
          const leftMs = state.retryAfterUntil - now;
          // The wait left goes with the error, so that an HTTP answer can pass it on as its own Retry-After.
          return new TransferAuthError(
            'UPSTREAM_UNAVAILABLE',
            `The upstream asked not to be called for another ${Math.ceil(leftMs / 1000)} s (Retry-After).`,
            { status: state.error.status, retryAfterMs: leftMs },
          );
        }
        return !force && now < state.dueAt ? again(state.error) : undefined;
      case 'rejected':
        return !force && now < state.until ? again(state.error) : undefined;
      default:
        return undefined;
    }
  }

  /** Whether a renewal nobody waits for may log in with the credentials (else: a refresh token only). */
  get backgroundLogin(): boolean {
    return this.current.kind === 'ready' || this.current.kind === 'backoff';
  }

  /**
   * When the background should renew (monotonic ms), or `undefined`: at the token's `staleAt` (none:
   * now, unless nothing failed), never before the backoff is over, and never a login after rejected
   * credentials (only a usable refresh token, `canRefresh`).
   */
  backgroundDue(now: number, staleAt: number | undefined, canRefresh: boolean): number | undefined {
    const state = this.current;
    if (state.kind === 'closed' || (state.kind === 'rejected' && !canRefresh)) return undefined;
    const due = staleAt ?? (state.kind === 'ready' ? undefined : now);
    return due !== undefined && state.kind === 'backoff' ? Math.max(due, state.dueAt) : due;
  }

  /**
   * The secret provider answers a secret not rejected yet: the cool-down no longer applies, once until a
   * login succeeds (its length still grows if the new secret is rejected too), so that a provider that
   * answers a new wrong secret each time cannot log in faster than the cool-down. Returns whether it lifted it.
   */
  credentialsChanged(): boolean {
    if (this.current.kind !== 'rejected' || this.secretSkipUsed) return false;
    this.secretSkipUsed = true;
    this.current = READY;
    return true;
  }

  /** A renewal succeeded. Resolves whether it ended a failure. */
  succeeded(): boolean {
    if (this.current.kind === 'closed') return false;
    const wasFailing = this.current.kind !== 'ready';
    this.current = READY;
    this.failures = 0;
    this.rejections = 0;
    this.secretSkipUsed = false;
    return wasFailing;
  }

  /** A renewal failed at monotonic `now`. Returns what happens next, for the log line. */
  failed(error: TransferAuthError, now: number): string {
    if (this.current.kind === 'closed' || error.code === 'SHUTDOWN') return 'shutting down';
    if (error.code === 'INVALID_CREDENTIALS') {
      const own = Math.min(CREDENTIALS_COOLDOWN_MAX_MS, CREDENTIALS_COOLDOWN_MIN_MS * 2 ** this.rejections++);
      const coolDownMs = fleetCoolDowns.get(error) ?? own;
      this.current = { kind: 'rejected', error, until: now + coolDownMs };
    } else if (this.current.kind !== 'rejected' || now >= this.current.until) {
      // (A refresh that fails during the cool-down after rejected credentials leaves them rejected.)
      const retryAfterMs = error.retryAfterMs;
      const retryAfterUntil = now + (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) ? retryAfterMs : 0);
      const delay = backoffDelay(this.failures++, this.retry.baseDelayMs, this.retry.maxDelayMs, this.random);
      this.current = { kind: 'backoff', error, dueAt: Math.max(now + delay, retryAfterUntil), retryAfterUntil };
    }
    const state = this.current;
    const seconds = (until: number): number => Math.max(1, Math.ceil((until - now) / 1000));
    return state.kind === 'rejected'
      ? `not retried in the background; no login for ${seconds(state.until)} s`
      : `retrying in the background in ${seconds(state.kind === 'backoff' ? state.dueAt : now)} s`;
  }

  close(): void {
    this.current = { kind: 'closed' };
  }
}

/** Each caller gets an error of its own: the same code, status and message, no shared stack or cause. */
function again(error: TransferAuthError): TransferAuthError {
  return new TransferAuthError(error.code, error.message, { status: error.status });
}

/** @internal */
export function shutdownError(): TransferAuthError {
  return new TransferAuthError('SHUTDOWN', 'The token provider is shut down.');
}

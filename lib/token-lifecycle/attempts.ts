import { inspect } from 'node:util';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type { ResolvedTransferAuthOptions } from '../upstream/resolve-options';
import type { TokenEndpoint, UpstreamTokenResponse } from '../upstream/token-endpoint';
import { shutdownError, type Call } from '../upstream/upstream-answer';
import { backoffDelay } from './backoff';

type Retry = ResolvedTransferAuthOptions['retry'];

/** A wait between two attempts; `stop` ends it early (shutdown). */
interface Pause {
  readonly timer: ReturnType<typeof setTimeout>;
  stop(): void;
}

/**
 * @internal The attempts of one renewal: Get token is tried up to `retry.maxAttempts` times when it fails
 * fast and for a passing reason (connection refused or reset, 5xx, a 429/503 whose `Retry-After` is no
 * longer than `maxDelayMs`), waiting `baseDelayMs` doubling to `maxDelayMs` (with jitter, or the
 * `Retry-After` if longer) in between. Everything else ends the renewal at once and is left to the
 * failure policy: a timeout (it already took `requestTimeoutMs`), a bad answer, rejected credentials, an
 * unavailable secret, shutdown, a longer `Retry-After` (which everyone then obeys).
 *
 * Refresh token is not retried: a refresh token may be single-use, and a refresh that may have reached
 * the upstream may have spent it; a refused one has the renewal fall back to Get token, which is retried
 * (so a renewal is at most one refresh and `maxAttempts` logins).
 *
 * It sits under the single-flight, so every caller shares these attempts: a busy app makes no more upstream
 * calls than an idle one. Each attempt is one upstream call to telemetry (a span, a `renewals` count).
 */
export class RetryingEndpoint implements TokenEndpoint {
  private readonly pauses = new Set<Pause>();
  private closed = false;

  constructor(
    private readonly endpoint: TokenEndpoint,
    private readonly retry: Retry,
    private readonly random: () => number,
  ) {}

  async getToken(parent?: unknown): Promise<UpstreamTokenResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.endpoint.getToken(parent);
      } catch (error) {
        const delay = this.delayBeforeRetry(error, attempt);
        if (delay === undefined) throw error;
        await this.pause(delay, 'Get token');
      }
    }
  }

  refreshToken(refreshToken: string, parent?: unknown): Promise<UpstreamTokenResponse> {
    return this.endpoint.refreshToken(refreshToken, parent);
  }

  secretChanged(): Promise<boolean> {
    return this.endpoint.secretChanged?.() ?? Promise.resolve(false);
  }

  /** The wrapped endpoint's, if it has one (the fleet's login cool-down compares it). */
  get secretTag(): (() => Promise<string>) | undefined {
    const endpoint = this.endpoint;
    return endpoint.secretTag === undefined ? undefined : () => endpoint.secretTag!();
  }

  /** Ends the waits between attempts (they reject with `SHUTDOWN`, no timer left) and closes the endpoint. */
  close(): void {
    this.closed = true;
    for (const pause of this.pauses) pause.stop();
    this.pauses.clear();
    this.endpoint.close();
  }

  /** Names what it wraps, nothing it holds. */
  [inspect.custom](): string {
    return `RetryingEndpoint { maxAttempts: ${this.retry.maxAttempts} }`;
  }

  /** How long to wait before the next attempt after `error`, or `undefined` when the renewal ends with it. */
  private delayBeforeRetry(error: unknown, attempt: number): number | undefined {
    if (this.closed || attempt >= this.retry.maxAttempts || !isTransient(error)) return undefined;
    const { baseDelayMs, maxDelayMs } = this.retry;
    const backoff = backoffDelay(attempt - 1, baseDelayMs, maxDelayMs, this.random);
    const retryAfterMs = error.retryAfterMs;
    if (retryAfterMs === undefined) return backoff;
    // A longer Retry-After ends the renewal: the failure policy then holds everyone back for it.
    return retryAfterMs > maxDelayMs ? undefined : Math.max(retryAfterMs, backoff);
  }

  /** A real timer, unref'd (the callers' flight keeps the process alive), that `close()` cuts short. */
  private pause(ms: number, call: Call): Promise<void> {
    return new Promise((resolve, reject) => {
      const pause: Pause = {
        timer: setTimeout(() => {
          this.pauses.delete(pause);
          resolve();
        }, ms),
        stop: () => {
          clearTimeout(pause.timer);
          reject(shutdownError(call));
        },
      };
      pause.timer.unref?.();
      this.pauses.add(pause);
    });
  }
}

/**
 * A failure worth another attempt at once: it came fast and says the upstream may answer the next one.
 * A 429 without `Retry-After` is not: a fast retry adds to the load the upstream complains of, and 408
 * is a timeout.
 */
function isTransient(error: unknown): error is TransferAuthError {
  if (!TransferAuthError.is(error, 'UPSTREAM_UNAVAILABLE')) return false;
  const status = error.status;
  if (status === undefined) return error.connection !== undefined; // refused or reset; not a timeout
  if (error.retryAfterMs !== undefined) return status === 429 || status >= 500;
  return status >= 500;
}

import { TransferAuthError } from '../errors/transfer-auth.error';
import type { TransferAuthEvent } from '../interfaces/transfer-auth-event.interface';
import type { TransferAuthLastError, TransferAuthStatus } from '../interfaces/transfer-auth-status.interface';
import type { ResolvedTransferAuthOptions } from '../resolve-options';
import type { TokenEndpoint } from '../transfer-api.client';
import { FAILURE_LOG_INTERVAL_MS, MAX_TIMER_DELAY_MS } from '../transfer-auth.constants';
import { backoffDelay } from './backoff';
import { instant, systemClock, type Clock } from './clock';
import { isBefore, toCachedToken, type CachedToken, type RefreshCredential } from './cached-token';

/** @internal Where the lifecycle reports; the Nest layer plugs in its Logger and Subject. */
export interface LifecycleHooks {
  log(level: 'log' | 'warn' | 'error', message: string): void;
  emit(event: TransferAuthEvent): void;
}

/** @internal */
export interface LifecycleDeps {
  endpoint: TokenEndpoint;
  hooks: LifecycleHooks;
  clock?: Clock;
  random?: () => number;
}

type Options = Pick<ResolvedTransferAuthOptions, 'refresh' | 'refreshMarginMs' | 'retry' | 'fetchOnStartup'>;

interface Renewed {
  token: CachedToken;
  refresh: RefreshCredential | undefined;
  /** Obtained with the refresh token (else with Get token). */
  refreshed: boolean;
}

interface Sleep {
  timer: ReturnType<typeof setTimeout>;
  cancel(error: TransferAuthError): void;
}

const FATAL_AT_STARTUP = new Set(['INVALID_CREDENTIALS', 'INVALID_CONFIG']);

/**
 * @internal The token lifecycle, free of Nest: one cached token, one renewal at a time shared by every
 * caller, a timer that renews the token when it goes stale, and retries with backoff. All waiting is on
 * timers that Jest's fake timers drive.
 */
export class TokenLifecycle {
  private token: CachedToken | undefined;
  /** `token.promise` while the clocks, read earlier in this event-loop turn, said it was fresh. */
  private freshThisTurn: Promise<string> | undefined;
  private turnEndScheduled = false;
  private refreshCredential: RefreshCredential | undefined;
  /** The renewal under way; every caller that needs a token joins it. */
  private inflight: Promise<CachedToken> | undefined;
  /** The access token of `inflight`: one promise shared by all its callers, not one (and two closures) each. */
  private inflightAccessToken: Promise<string> | undefined;
  /** Callers waiting on `inflight`; all of them are released together when it settles. */
  private waiters = 0;
  /** The one background timer: the stale-time schedule or the backoff before the next retry. */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerIsBackoff = false;
  private sleep: Sleep | undefined;
  /** The upstream asked (Retry-After) not to be called before this monotonic time. */
  private notBefore = 0;
  private failures = 0;
  private failingSince: number | undefined;
  private lastFailureLog = 0;
  private suppressedFailures = 0;
  private lastError: TransferAuthLastError | undefined;
  /**
   * Get token refused the credentials: retrying cannot fix them and could lock the agent out. Until a
   * token is obtained again nothing renews in the background (but a usable refresh token), and until
   * `until` (monotonic) callers get `error` at once.
   */
  private credentialsRejected: { error: TransferAuthError; until: number } | undefined;
  /** The refresh endpoint answered 404/405: it is not there, so renewals go straight to Get token. */
  private refreshUnsupported = false;
  private closed = false;
  private readonly endpoint: TokenEndpoint;
  private readonly hooks: LifecycleHooks;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(
    private readonly options: Options,
    deps: LifecycleDeps,
  ) {
    this.endpoint = deps.endpoint;
    this.hooks = deps.hooks;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
  }

  /**
   * The hot path. The clocks cost more than the rest of a cached call (~35 ns a read on a VM), so they
   * are read once per event-loop turn: a token found fresh is served without a read until the turn
   * ends (`process.nextTick`). Time cannot move past a deadline within one turn unless the loop is blocked
   * for longer than the safety window, and the scheduled timer could not fire then either.
   */
  getAccessToken(): Promise<string> {
    return this.freshThisTurn ?? this.checkCache();
  }

  private checkCache(): Promise<string> {
    const token = this.token;
    if (token !== undefined) {
      const mono = this.clock.mono();
      const wall = this.clock.wall();
      if (mono < token.staleAt.mono && wall < token.staleAt.wall) {
        this.freshThisTurn = token.promise;
        if (!this.turnEndScheduled) {
          this.turnEndScheduled = true;
          // A tick, not an immediate: it runs as soon as the current callback and its promise jobs are
          // done, before the loop can wait on anything, and costs less than an Immediate per request.
          process.nextTick(this.endTurn);
        }
        return token.promise;
      }
      if (mono < token.usableUntil.mono && wall < token.usableUntil.wall) {
        this.renewInBackground();
        return token.promise;
      }
      // Past its usable end: drop it, so that the callers that follow go straight to the renewal.
      this.setToken(undefined);
    }
    return this.acquire(false);
  }

  private readonly endTurn = (): void => {
    this.turnEndScheduled = false;
    this.freshThisTurn = undefined;
  };

  /** Every change of the cached token goes through here, so the per-turn shortcut never outlives it. */
  private setToken(token: CachedToken | undefined): void {
    this.token = token;
    this.freshThisTurn = undefined;
  }

  /** A new token now, whatever the cache holds; concurrent calls share one renewal. */
  forceRefresh(): Promise<string> {
    return this.acquire(true);
  }

  /** Drops the cached access token (only if it is still `accessToken`, when given) and renews it. */
  invalidate(accessToken?: string): void {
    const token = this.token;
    if (this.closed || token === undefined || (accessToken !== undefined && accessToken !== token.accessToken)) return;
    this.setToken(undefined);
    this.hooks.emit({ type: 'token.invalidated', at: new Date(this.clock.wall()) });
    this.renewInBackground();
  }

  /** Startup: fetch a token if asked to. Bad credentials or config throw; an unreachable upstream does not. */
  async start(): Promise<void> {
    if (!this.options.fetchOnStartup || this.closed || this.token !== undefined) return;
    try {
      // One attempt, not a renewal's retries: a hanging upstream must not hold the boot for
      // maxAttempts x requestTimeoutMs. A failure is retried in the background like any other.
      await this.join(this.inflight ?? this.startRenewal(0, 1));
    } catch (error) {
      if (error instanceof TransferAuthError && FATAL_AT_STARTUP.has(error.code)) {
        this.close();
        throw error;
      }
      // Logged and scheduled for a retry by the renewal itself.
    }
  }

  getStatus(): TransferAuthStatus {
    const token = this.token;
    const now = instant(this.clock);
    let state: TransferAuthStatus['state'];
    if (this.closed) state = 'closed';
    else if (token !== undefined && isBefore(token.usableUntil, now))
      state = isBefore(token.staleAt, now) ? 'valid' : 'stale';
    else if (this.inflight !== undefined) state = 'acquiring';
    else state = this.lastError === undefined ? 'idle' : 'failed';
    const status: TransferAuthStatus = {
      state,
      accessExpiresAt: copy(token?.accessExpiresAt),
      refreshExpiresAt: copy(token?.refreshExpiresAt),
      lastRefreshAt: copy(token?.obtainedAt),
    };
    if (this.lastError !== undefined) status.lastError = { ...this.lastError, at: new Date(this.lastError.at) };
    return status;
  }

  /** Stops everything: timers cleared, requests aborted, waiting callers settled with `SHUTDOWN`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.sleep?.cancel(shutdownError());
    this.endpoint.close();
    this.setToken(undefined);
    this.refreshCredential = undefined;
  }

  private acquire(force: boolean): Promise<string> {
    if (this.closed) return Promise.reject(shutdownError());
    if (this.inflight !== undefined) return this.join(this.inflight);
    const rejected = this.credentialsRejected;
    if (!force && rejected !== undefined && this.clock.mono() < rejected.until) {
      const { message, status } = rejected.error;
      return Promise.reject(new TransferAuthError('INVALID_CREDENTIALS', message, { status }));
    }
    const waitMs = this.notBefore - this.clock.mono();
    if (waitMs > this.options.retry.maxDelayMs) {
      return Promise.reject(
        new TransferAuthError(
          'UPSTREAM_UNAVAILABLE',
          `The upstream asked not to be called for another ${Math.ceil(waitMs / 1000)} s (Retry-After)${force ? '' : ' and no usable token is cached'}.`,
        ),
      );
    }
    // A caller never waits out our own backoff: the pending retry starts now.
    return this.join(this.startRenewal(Math.max(0, waitMs)));
  }

  private join(renewal: Promise<CachedToken>): Promise<string> {
    this.waiters++;
    // Someone is waiting now: the process must stay alive for the backoff sleep they are waiting on.
    this.sleep?.timer.ref?.();
    return (this.inflightAccessToken ??= renewal.then((token) => token.accessToken));
  }

  /** Every caller of `renewal` is answered now: a later caller starts or joins another one. */
  private settled(renewal: Promise<CachedToken>): void {
    if (this.inflight !== renewal) return;
    this.inflight = undefined;
    this.inflightAccessToken = undefined;
    this.waiters = 0;
  }

  /** Starts a renewal unless one is running, the backoff after a failure is pending, or we are closed. */
  private renewInBackground(): void {
    if (this.closed || this.inflight !== undefined || this.timerIsBackoff || !this.backgroundAllowed()) return;
    const waitMs = this.notBefore - this.clock.mono();
    if (waitMs > 0) this.arm(waitMs, true);
    else this.startRenewal(0);
  }

  private startRenewal(initialDelayMs: number, maxAttempts = this.options.retry.maxAttempts): Promise<CachedToken> {
    this.clearTimer();
    const renewal = this.renew(initialDelayMs, maxAttempts).then(
      (token) => {
        this.settled(renewal);
        return token;
      },
      (error: unknown) => {
        const awaited = this.waiters > 0;
        this.settled(renewal);
        throw this.failed(toError(error), awaited);
      },
    );
    renewal.catch(() => undefined); // a background renewal may have nobody listening
    this.inflight = renewal;
    this.inflightAccessToken = undefined;
    return renewal;
  }

  /** One renewal: up to `maxAttempts` tries, refresh endpoint first when a refresh token is usable. */
  private async renew(initialDelayMs: number, maxAttempts: number): Promise<CachedToken> {
    const { baseDelayMs, maxDelayMs } = this.options.retry;
    if (initialDelayMs > 0) await this.pause(initialDelayMs);
    let refreshFailed = false;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw shutdownError();
      const useRefresh = !refreshFailed && this.usableRefreshToken() !== undefined;
      try {
        return this.accept(await this.attempt(useRefresh));
      } catch (caught) {
        const error = toError(caught);
        if (useRefresh && error.code === 'UPSTREAM_UNAVAILABLE') refreshFailed = true; // next try: Get token
        if (error.code !== 'UPSTREAM_UNAVAILABLE' || attempt >= maxAttempts || this.closed) throw error;
        if (error.retryAfterMs !== undefined && error.retryAfterMs > maxDelayMs) throw error;
        await this.pause(
          Math.max(backoffDelay(attempt - 1, baseDelayMs, maxDelayMs, this.random), error.retryAfterMs ?? 0),
        );
      }
    }
  }

  private async attempt(useRefresh: boolean): Promise<Renewed> {
    const credential = useRefresh ? this.usableRefreshToken() : undefined;
    if (credential !== undefined) {
      try {
        // Converted inside the try: a refreshed token that is unusable (e.g. expired on arrival) is
        // as good as a rejection, and falls back to Get token like one.
        const response = await this.endpoint.refreshToken(credential.refreshToken);
        return { ...toCachedToken(response, this.options.refreshMarginMs), refreshed: true };
      } catch (caught) {
        const error = toError(caught);
        if (error.code === 'SHUTDOWN' || error.code === 'UPSTREAM_UNAVAILABLE') throw error;
        // Rejected (401/403, other 4xx, or an answer we cannot use): forget it and authenticate afresh.
        if (this.refreshCredential === credential) this.refreshCredential = undefined;
        if (error.status === 404 || error.status === 405) {
          // Not there at all (the endpoint's shape is an assumption): stop paying a doomed call per renewal.
          this.refreshUnsupported = true;
          this.hooks.log(
            'warn',
            `The refresh endpoint answered HTTP ${error.status}; renewing with Get token from now on. Set the \`refresh\` option (path, method) or \`refresh: false\`.`,
          );
        } else {
          this.hooks.log('warn', `Refresh token failed (${error.code}: ${error.message}); falling back to Get token.`);
        }
      }
    }
    const response = await this.endpoint.getToken();
    return { ...toCachedToken(response, this.options.refreshMarginMs), refreshed: false };
  }

  private accept({ token, refresh, refreshed }: Renewed): CachedToken {
    if (this.closed) throw shutdownError();
    this.setToken(token);
    if (this.options.refresh !== false) this.refreshCredential = refresh;
    this.lastError = undefined;
    this.credentialsRejected = undefined;
    this.notBefore = 0;
    this.failures = 0;
    this.arm(token.staleAt.mono - this.clock.mono(), false);
    if (this.failingSince !== undefined) {
      const seconds = Math.round((this.clock.mono() - this.failingSince) / 1000);
      this.hooks.log('log', `Token renewal recovered after ${seconds} s.`);
      this.failingSince = undefined;
    }
    // Last: a subscriber that calls back into us sees the new state, not half of it.
    this.hooks.emit({
      type: refreshed ? 'token.refreshed' : 'token.acquired',
      at: new Date(token.obtainedAt),
      accessExpiresAt: new Date(token.accessExpiresAt),
      refreshExpiresAt: new Date(token.refreshExpiresAt),
    });
    return token;
  }

  /** Records a failed renewal (`awaited`: callers were waiting on it), logs it and schedules the next try. */
  private failed(error: TransferAuthError, awaited: boolean): TransferAuthError {
    if (this.closed || error.code === 'SHUTDOWN') return this.closed ? shutdownError() : error;
    const now = instant(this.clock);
    const { baseDelayMs, maxDelayMs } = this.options.retry;
    this.lastError = { code: error.code, message: error.message, at: new Date(now.wall) };
    if (error.status !== undefined) this.lastError.status = error.status;
    if (error.retryAfterMs !== undefined) this.notBefore = Math.max(this.notBefore, now.mono + error.retryAfterMs);
    if (error.code === 'INVALID_CREDENTIALS') {
      // Never retried: nothing renews in the background but a usable refresh token, and callers get this
      // error at once for a growing cool-down (baseDelayMs to maxDelayMs), so that a busy app cannot
      // hammer (and lock out) the agent with logins the upstream has just refused.
      const coolDownMs = backoffDelay(this.failures++, baseDelayMs, maxDelayMs, this.random);
      this.credentialsRejected = { error, until: now.mono + coolDownMs };
      this.hooks.log('error', `${error.message} Not retrying in the background.`);
      this.failingSince ??= now.mono;
    } else {
      this.logFailure(error, now.mono);
    }
    const token = this.token;
    if (token !== undefined && isBefore(token.staleAt, now)) {
      this.arm(token.staleAt.mono - now.mono, false); // e.g. a failed forceRefresh: the token is still fresh
    } else if (this.backgroundAllowed()) {
      const delay = backoffDelay(this.failures++, baseDelayMs, maxDelayMs, this.random);
      this.arm(Math.max(delay, this.notBefore - now.mono), true);
    } else {
      this.clearTimer();
    }
    this.hooks.emit({
      type: 'token.failed',
      at: new Date(now.wall),
      code: error.code,
      ...(error.status === undefined ? {} : { status: error.status }),
      message: error.message,
      background: !awaited,
    });
    return error;
  }

  /** After a credentials rejection only the refresh token, which needs no credentials, may be tried. */
  private backgroundAllowed(): boolean {
    return this.credentialsRejected === undefined || this.usableRefreshToken() !== undefined;
  }

  private logFailure(error: TransferAuthError, now: number): void {
    const what = `${error.code}: ${error.message}`;
    if (this.failingSince === undefined) {
      this.failingSince = now;
      this.lastFailureLog = now;
      this.suppressedFailures = 0;
      const next = this.backgroundAllowed() ? 'retrying in the background' : 'not retried in the background';
      this.hooks.log('warn', `Token renewal failed (${what}); ${next}.`);
    } else if (now - this.lastFailureLog >= FAILURE_LOG_INTERVAL_MS) {
      const seconds = Math.round((now - this.failingSince) / 1000);
      this.hooks.log(
        'warn',
        `Token renewal still failing after ${seconds} s (${this.suppressedFailures + 1} more failures; last ${what}).`,
      );
      this.lastFailureLog = now;
      this.suppressedFailures = 0;
    } else {
      this.suppressedFailures++;
    }
  }

  private usableRefreshToken(): RefreshCredential | undefined {
    const credential = this.refreshCredential;
    if (this.options.refresh === false || this.refreshUnsupported || credential === undefined) return undefined;
    return isBefore(credential.usableUntil, instant(this.clock)) ? credential : undefined;
  }

  /** Arms the background timer; waits longer than setTimeout can take are chained. */
  private arm(delayMs: number, isBackoff: boolean): void {
    this.clearTimer();
    if (this.closed) return;
    this.timerIsBackoff = isBackoff;
    const due = this.clock.mono() + Math.max(0, delayMs);
    const tick = (): void => {
      this.timer = undefined;
      const left = due - this.clock.mono();
      if (left > 1) {
        this.timer = setTimeout(tick, Math.min(left, MAX_TIMER_DELAY_MS));
        this.timer.unref?.();
        return;
      }
      this.timerIsBackoff = false;
      this.onTimer();
    };
    this.timer = setTimeout(tick, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS));
    this.timer.unref?.();
  }

  private onTimer(): void {
    if (this.closed || this.inflight !== undefined) return;
    const token = this.token;
    const now = instant(this.clock);
    if (token !== undefined && isBefore(token.staleAt, now)) {
      this.arm(token.staleAt.mono - now.mono, false); // the wall clock went back: not due yet
      return;
    }
    this.renewInBackground();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerIsBackoff = false;
  }

  /** A backoff sleep inside a renewal: ref'd while someone waits on it, cut short by `close()`. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.sleep = undefined;
          resolve();
        },
        Math.min(ms, MAX_TIMER_DELAY_MS),
      );
      if (this.waiters === 0) timer.unref?.();
      this.sleep = {
        timer,
        cancel: (error) => {
          clearTimeout(timer);
          this.sleep = undefined;
          reject(error);
        },
      };
    });
  }
}

/** Status and events get their own Date objects: a caller that mutates one cannot move our deadlines. */
function copy(date: Date | undefined): Date | null {
  return date === undefined ? null : new Date(date);
}

function shutdownError(): TransferAuthError {
  return new TransferAuthError('SHUTDOWN', 'The token provider is shut down.');
}

function toError(error: unknown): TransferAuthError {
  if (error instanceof TransferAuthError) return error;
  // Not expected: every path above throws TransferAuthError. Keep the name only, never the message.
  const name = error instanceof Error ? error.name : typeof error;
  return new TransferAuthError('UPSTREAM_UNAVAILABLE', `Unexpected failure while renewing the token (${name}).`);
}

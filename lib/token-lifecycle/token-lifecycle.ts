import { TransferAuthError } from '../errors/transfer-auth.error';
import type { TransferAuthEvent } from '../interfaces/transfer-auth-event.interface';
import type { TransferAuthLastError, TransferAuthStatus } from '../interfaces/transfer-auth-status.interface';
import type { ResolvedTransferAuthOptions } from '../resolve-options';
import { InProcessTokenStore } from '../token-store/in-process-token-store';
import type { TransferTokenStore } from '../token-store/transfer-token-store.interface';
import type { TokenEndpoint } from '../transfer-api.client';
import { MAX_TIMER_DELAY_MS } from '../transfer-auth.constants';
import { isBefore, type CachedToken, type RefreshCredential } from './cached-token';
import { instant, systemClock, type Clock, type Instant } from './clock';
import { FailureLog, type LogFn } from './failure-log';
import { FailurePolicy, shutdownError } from './failure-policy';
import { Renewer, toError, type Renewed } from './renewal';
import { Schedule } from './schedule';
import { UnauthorizedSpacing } from './unauthorized-spacing';

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
  /** The agent's key in the store. */
  storeKey?: string;
}

type Options = Pick<
  ResolvedTransferAuthOptions,
  'refresh' | 'refreshMarginMs' | 'retry' | 'fetchOnStartup' | 'requestTimeoutMs'
>;
/** Why a renewal runs: who waits for it and what it may do follow from this. */
type Cause = 'caller' | 'force' | 'schedule' | 'unauthorized';

/** One renewal in flight, shared by every caller that needs a token meanwhile. */
interface Flight {
  promise: Promise<CachedToken>;
  /** Its access token: one promise for all its callers. */
  access: Promise<string> | undefined;
  waiters: number;
  /** A ref'd timer while someone waits: the renewal's own timers and sockets are unref'd. */
  keeper: ReturnType<typeof setTimeout> | undefined;
}

const FATAL_AT_STARTUP = new Set(['INVALID_CREDENTIALS', 'INVALID_CONFIG']);
const noop = (): void => undefined;

/**
 * @internal The token lifecycle, free of Nest. It holds the cached token and orchestrates the rooms
 * that keep it: the renewal (one at a time, through the store), the schedule (one timer), the failure
 * policy (backoff, cool-downs, Retry-After) and the spacing of 401-driven renewals.
 */
export class TokenLifecycle {
  private token: CachedToken | undefined;
  private refresh: RefreshCredential | undefined;
  /** Store version of `token`; 0 when it is not in the store. */
  private version = 0;
  private flight: Flight | undefined;
  private lastError: TransferAuthLastError | undefined;
  private closed = false;
  /** Rejects at `close()`: callers waiting on a renewal stuck in a slow store are released at once. */
  private readonly closing: Promise<never>;
  private rejectClosing: (error: TransferAuthError) => void = noop;
  private readonly hooks: LifecycleHooks;
  private readonly clock: Clock;
  private readonly policy: FailurePolicy;
  private readonly failureLog: FailureLog;
  private readonly spacing = new UnauthorizedSpacing();
  private readonly schedule: Schedule;
  private readonly renewer: Renewer;

  constructor(
    private readonly options: Options,
    deps: LifecycleDeps,
  ) {
    this.hooks = deps.hooks;
    this.clock = deps.clock ?? systemClock;
    this.policy = new FailurePolicy(options.retry, deps.random ?? Math.random);
    this.failureLog = new FailureLog(deps.hooks.log);
    this.schedule = new Schedule(this.clock, () => this.onDue());
    const store = deps.store ?? new InProcessTokenStore();
    this.renewer = new Renewer(options, deps.endpoint, store, deps.storeKey ?? 'token', deps.hooks.log, this.clock);
    this.closing = new Promise<never>((_, reject) => (this.rejectClosing = reject));
    this.closing.catch(noop);
  }

  /**
   * The hot path: both clocks are read on every call, so no token is served past its usable end at the
   * moment of the call, however long the code before it ran or whatever timers are faked.
   */
  getAccessToken(): Promise<string> {
    const token = this.token;
    if (token !== undefined) {
      const mono = this.clock.mono();
      const wall = this.clock.wall();
      if (mono < token.staleAt.mono && wall < token.staleAt.wall) return token.promise;
      if (mono < token.usableUntil.mono && wall < token.usableUntil.wall) {
        this.renewInBackground();
        return token.promise;
      }
      this.token = undefined; // past its usable end: the callers that follow go straight to a renewal
    }
    return this.acquire(false);
  }

  /** A new token now, whatever the cache holds; concurrent calls share one renewal. */
  forceRefresh(): Promise<string> {
    return this.acquire(true);
  }

  /** Drops the cached token (only if it is still `accessToken`, when given) and renews it, spaced. */
  invalidate(accessToken?: string): void {
    const token = this.token;
    if (this.closed || token === undefined || (accessToken !== undefined && accessToken !== token.accessToken)) return;
    if (!this.spacing.allow(token.accessToken, this.clock.mono())) return; // a 401 storm: not again so soon
    this.token = undefined;
    this.hooks.emit({ type: 'token.invalidated', at: new Date(this.clock.wall()) });
    if (this.flight === undefined && this.policy.refusal(this.clock.mono(), false) === undefined) {
      this.renew('unauthorized');
    } else this.reschedule();
  }

  /** Startup: fetch a token if asked to. Bad credentials or config throw; an unreachable upstream does not. */
  async start(): Promise<void> {
    if (!this.options.fetchOnStartup || this.closed || this.token !== undefined) return;
    try {
      await this.acquire(false);
    } catch (error) {
      if (error instanceof TransferAuthError && FATAL_AT_STARTUP.has(error.code)) {
        this.close();
        throw error;
      }
      // Logged and scheduled for a retry by the failure policy.
    }
  }

  getStatus(): TransferAuthStatus {
    const token = this.token;
    const now = instant(this.clock);
    let state: TransferAuthStatus['state'];
    if (this.closed) state = 'closed';
    else if (token !== undefined && isBefore(token.usableUntil, now))
      state = isBefore(token.staleAt, now) ? 'valid' : 'stale';
    else if (this.flight !== undefined) state = 'acquiring';
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

  /** Whether a caller with no usable token would wait for a renewal already under way or due now. */
  get renewing(): boolean {
    return this.flight !== undefined;
  }

  /** Stops everything: timer cleared, requests aborted, waiting callers settled with `SHUTDOWN`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.policy.close();
    this.schedule.clear();
    this.renewer.close();
    this.rejectClosing(shutdownError());
    if (this.flight?.keeper !== undefined) clearTimeout(this.flight.keeper);
    this.token = undefined;
    this.refresh = undefined;
  }

  private acquire(force: boolean): Promise<string> {
    if (this.flight !== undefined) return this.join(this.flight);
    const refusal = this.policy.refusal(this.clock.mono(), force);
    if (refusal !== undefined) return Promise.reject(refusal); // fail fast: no extra upstream call
    return this.join(this.renew(force ? 'force' : 'caller'));
  }

  private join(flight: Flight): Promise<string> {
    flight.waiters++;
    if (flight.keeper === undefined) flight.keeper = setTimeout(noop, MAX_TIMER_DELAY_MS);
    return (flight.access ??= Promise.race([flight.promise.then((token) => token.accessToken), this.closing]));
  }

  /** A stale token was served: renew it now unless a renewal runs or the failure policy says later. */
  private renewInBackground(): void {
    if (this.flight !== undefined || this.closed) return;
    const now = instant(this.clock);
    const due = this.backgroundDue(now);
    if (due !== undefined && due <= now.mono) this.renew('schedule');
  }

  private renew(cause: Cause): Flight {
    this.schedule.clear();
    const awaited = cause === 'caller' || cause === 'force';
    const refresh = this.usableRefresh();
    this.refresh = undefined; // a refresh token is used once, whatever the outcome
    const renewal = this.renewer.renew({
      replacing: this.version,
      refresh,
      allowLogin: awaited || this.policy.backgroundLogin,
    });
    const flight: Flight = {
      promise: renewal.then(
        (renewed) => this.accept(flight, renewed, cause),
        (error: unknown) => {
          throw this.failed(flight, toError(error));
        },
      ),
      access: undefined,
      waiters: 0,
      keeper: undefined,
    };
    flight.promise.catch(noop); // a background renewal may have nobody listening
    this.flight = flight;
    return flight;
  }

  private land(flight: Flight): void {
    if (flight.keeper !== undefined) clearTimeout(flight.keeper);
    if (this.flight === flight) this.flight = undefined;
  }

  private accept(flight: Flight, renewed: Renewed, cause: Cause): CachedToken {
    this.land(flight);
    if (this.closed) throw shutdownError();
    const { token } = renewed;
    this.token = token;
    this.refresh = this.options.refresh === false ? undefined : renewed.refresh;
    this.version = renewed.version;
    this.lastError = undefined;
    this.spacing.replaced(token.accessToken, cause === 'unauthorized');
    if (this.policy.succeeded()) this.failureLog.recovered(this.clock.mono());
    this.reschedule();
    // Last: a subscriber that calls back into us sees the new state, not half of it.
    this.hooks.emit({
      type: renewed.via === 'refresh' ? 'token.refreshed' : 'token.acquired',
      at: new Date(token.obtainedAt),
      accessExpiresAt: new Date(token.accessExpiresAt),
      refreshExpiresAt: new Date(token.refreshExpiresAt),
    });
    return token;
  }

  /** Records a failed renewal, logs it (throttled) and schedules what comes next. */
  private failed(flight: Flight, error: TransferAuthError): TransferAuthError {
    const awaited = flight.waiters > 0;
    this.land(flight);
    if (this.closed || error.code === 'SHUTDOWN') return this.closed ? shutdownError() : error;
    const now = instant(this.clock);
    this.lastError = { code: error.code, message: error.message, at: new Date(now.wall) };
    if (error.status !== undefined) this.lastError.status = error.status;
    const waitMs = this.policy.failed(error, now.mono);
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const next =
      this.policy.state.kind === 'rejected'
        ? `not retried in the background; no login for ${seconds} s`
        : `retrying in the background in ${seconds} s`;
    this.failureLog.failed(error, now.mono, next);
    this.reschedule();
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

  /**
   * When the background should renew (monotonic ms), or `undefined` when it should not: the token's
   * stale time (on the earlier clock), no earlier than the backoff; never a login after rejected credentials.
   */
  private backgroundDue(now: Instant): number | undefined {
    const state = this.policy.state;
    if (state.kind === 'closed') return undefined;
    if (state.kind === 'rejected' && this.usableRefresh() === undefined) return undefined;
    const token = this.token;
    let due: number | undefined;
    if (token !== undefined) due = Math.min(token.staleAt.mono, now.mono + token.staleAt.wall - now.wall);
    else if (state.kind !== 'ready') due = now.mono;
    if (due !== undefined && state.kind === 'backoff') due = Math.max(due, state.dueAt);
    return due;
  }

  private reschedule(): void {
    const due = this.closed ? undefined : this.backgroundDue(instant(this.clock));
    if (due === undefined) this.schedule.clear();
    else this.schedule.at(due);
  }

  private onDue(): void {
    if (this.closed || this.flight !== undefined) return;
    const now = instant(this.clock);
    const due = this.backgroundDue(now);
    if (due === undefined) return;
    if (due > now.mono)
      this.schedule.at(due); // e.g. the wall clock went back
    else this.renew('schedule');
  }

  private usableRefresh(): RefreshCredential | undefined {
    const refresh = this.refresh;
    if (this.options.refresh === false || refresh === undefined) return undefined;
    return isBefore(refresh.usableUntil, instant(this.clock)) ? refresh : undefined;
  }
}

/** Status and events get their own Date objects: a caller that mutates one cannot move our deadlines. */
function copy(date: Date | undefined): Date | null {
  return date === undefined ? null : new Date(date);
}

import { inspect } from 'node:util';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type { TransferAuthLastError, TransferAuthStatus } from '../interfaces/transfer-auth-status.interface';
import { statusOf } from './status';
import { isBefore, type CachedToken, type Deadline, type RefreshCredential } from './cached-token';
import { instant, systemClock, type Clock, type Instant } from './clock';
import { FailureLog } from './failure-log';
import { FailurePolicy, shutdownError } from './failure-policy';
import { Flight } from './flight';
import { beats, Renewer, toError, type Renewed, type Replacing } from './renewal';
import { Schedule } from './schedule';
import { LOCAL_SCOPE, StoreAccess } from './store-access';
import type { LifecycleDeps, LifecycleHooks, LifecycleOptions } from './lifecycle-deps';
import { UnauthorizedSpacing } from './unauthorized-spacing';
import { NO_TELEMETRY, type Telemetry } from '../telemetry/telemetry';
import { CallerWaits } from './caller-waits';
import { SecretRotationCheck } from './secret-rotation-check';
import { STORE_BUDGET_MIN_MS, STORE_BUDGET_MS, STORE_BUDGET_SHARE, STORE_TIMEOUT_MS } from '../internal.constants';
import { RetryingEndpoint } from './attempts';
import { promiseTimeout } from '../utils/promise-timeout';

export type { LifecycleDeps, LifecycleHooks } from './lifecycle-deps';

/** Why a renewal runs: who waits for it and what it may do follow from this. */
type Cause = 'caller' | 'force' | 'schedule' | 'unauthorized';

const FATAL_AT_STARTUP = new Set(['INVALID_CREDENTIALS', 'INVALID_CONFIG']);

/**
 * @internal The token lifecycle, free of Nest. It holds the cached token and orchestrates the rooms
 * that keep it: the renewal (one at a time, through the store), the schedule (one timer), the failure
 * policy (backoff, cool-downs, Retry-After) and the spacing of 401-driven renewals.
 */
export class TokenLifecycle {
  private token: CachedToken | undefined;
  private refresh: RefreshCredential | undefined;
  /** The last access token cached, kept after an invalidation dropped it: never adopted back from the store. */
  private served: string | undefined;
  /** Its stale point (wall ms): a stored token is adopted only if it goes stale later. */
  private servedStaleAt = 0;
  /** A read of the store is under way because it said the entry changed. */
  private peeking = false;
  /** ... and it said so again meanwhile. */
  private changedWhilePeeking = false;
  /** Usable end of the refresh token got with the last token, kept after it is used: for the gauge. */
  private refreshUsableUntil: Deadline | undefined;
  /** Store version of `token`; 0 when it is not known to be in the store. */
  private version = 0;
  /** Whether `refresh` may be in the store: then only the lock holder may use it. */
  private shared = false;
  private flight: Flight | undefined;
  private lastError: TransferAuthLastError | undefined;
  /** A token was held once: from then on, none held means it was dropped (the gauges then read 0). */
  private hadToken = false;
  private closed = false;
  /** Set by `close()`: the end of the store work it let finish. */
  private drained: Promise<void> | undefined;
  private readonly hooks: LifecycleHooks;
  private readonly clock: Clock;
  private readonly policy: FailurePolicy;
  private readonly failureLog: FailureLog;
  private readonly spacing = new UnauthorizedSpacing();
  private readonly schedule: Schedule;
  private readonly renewer: Renewer;
  private readonly telemetry: Telemetry;
  private readonly stopObserving: () => void;
  private readonly waits: CallerWaits;
  private readonly rotation: SecretRotationCheck;
  private readonly store: StoreAccess | undefined;

  constructor(
    private readonly options: LifecycleOptions,
    deps: LifecycleDeps,
  ) {
    this.hooks = deps.hooks;
    this.clock = deps.clock ?? systemClock;
    this.policy = new FailurePolicy(options.retry, deps.random ?? Math.random);
    this.failureLog = new FailureLog(deps.hooks.log);
    this.schedule = new Schedule(this.clock, () => this.onDue());
    // No store given: this process alone, as an in-process store would be, without its calls in the way.
    this.telemetry = deps.telemetry ?? NO_TELEMETRY;
    this.waits = new CallerWaits(this.telemetry, this.clock);
    this.rotation = new SecretRotationCheck(deps.endpoint, this.clock);
    const store =
      deps.store &&
      new StoreAccess(deps.store, deps.storeScope ?? Promise.resolve(LOCAL_SCOPE), deps.hooks.log, this.telemetry, () =>
        this.clock.wall(),
      );
    this.store = store;
    // Retries sit under the single-flight: every caller shares one renewal's attempts.
    const endpoint = new RetryingEndpoint(deps.endpoint, options.retry, deps.random ?? Math.random);
    this.renewer = new Renewer(options, endpoint, store, deps.hooks.log, this.clock);
    this.stopObserving = this.telemetry.observe({
      accessSecondsLeft: () => (this.unobserved() ? undefined : this.accessSecondsLeft()),
      refreshSecondsLeft: () => (this.unobserved() ? undefined : this.refreshSecondsLeft()),
      accessExpiresAt: () => (this.unobserved() ? undefined : (this.token?.usableUntil.wall ?? 0) / 1000),
      degraded: () => (store === undefined || this.closed ? undefined : Number(store.degraded)),
    });
    // Another process renewed (or replaced a token refused with a 401): take its token now, not at our
    // own stale point, so that the whole fleet drops a refused token and serves the same one.
    store?.follow(() => this.onStoreChange());
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
    if (this.closed) return;
    if (token === undefined || (accessToken !== undefined && accessToken !== token.accessToken)) {
      this.telemetry.invalidated('stale'); // already replaced (the rest of a 401 storm) or none cached
      return;
    }
    if (!this.spacing.allow(token.accessToken, this.clock.mono())) {
      this.telemetry.invalidated('spaced'); // a 401 storm: not again so soon
      return;
    }
    this.token = undefined;
    this.telemetry.invalidated('dropped');
    this.hooks.log('warn', `Access token fp=${token.fingerprint} was invalidated (refused with a 401?); renewing it.`);
    this.hooks.emit({ type: 'token.invalidated', at: new Date(this.clock.wall()), fingerprint: token.fingerprint });
    if (this.flight === undefined && this.policy.refusal(this.clock.mono(), false) === undefined) {
      this.renew('unauthorized');
    } else this.reschedule();
  }

  /** Startup: fetch a token if asked to. Bad credentials or config throw; an unreachable upstream does not. */
  async start(): Promise<void> {
    if (!this.options.fetchOnStartup || this.closed || this.token !== undefined) return;
    try {
      await this.acquire(false, false); // the app's init, not a caller: not a wait
    } catch (error) {
      if (error instanceof TransferAuthError && FATAL_AT_STARTUP.has(error.code)) {
        void this.close();
        throw error;
      }
      // Logged and scheduled for a retry by the failure policy.
    }
  }

  getStatus(): TransferAuthStatus {
    const status = statusOf(this.token, instant(this.clock), {
      closed: this.closed,
      renewing: this.flight !== undefined,
      lastError: this.lastError,
    });
    if (this.store !== undefined) status.store = this.store.status();
    return status;
  }

  /** Names the state only: no token, ever. */
  toJSON(): { state: string } {
    return { state: this.getStatus().state };
  }

  /** Names the state only: no token, ever. */
  [inspect.custom](): string {
    return `TokenLifecycle { state: '${this.getStatus().state}' }`;
  }

  /**
   * Stops everything at once: timer cleared, requests aborted, waiting callers settled with `SHUTDOWN`.
   * Resolves when the store work under way has settled (the renewal's lock given back, a write answered),
   * at most {@link STORE_TIMEOUT_MS} later: the app may close its store client then. Idempotent.
   */
  close(): Promise<void> {
    if (this.drained !== undefined) return this.drained;
    this.closed = true;
    const renewal = this.flight?.promise;
    this.stopObserving();
    this.policy.close();
    this.schedule.clear();
    this.renewer.close();
    this.flight?.abort(shutdownError()); // at once, even if the renewal is stuck in a slow store
    this.token = undefined;
    this.refresh = undefined;
    this.drained = this.store === undefined ? Promise.resolve() : this.drain(renewal);
    return this.drained;
  }

  /** The aborted renewal's end (its lock release comes with it), then every store call it left. */
  private async drain(renewal: Promise<unknown> | undefined): Promise<void> {
    const settled = (async () => {
      await renewal?.catch(() => undefined);
      await this.renewer.storeSettled();
    })();
    await promiseTimeout(STORE_TIMEOUT_MS, settled, true).catch(() => undefined); // a store that never answers
  }

  private acquire(force: boolean, caller = true): Promise<string> {
    if (this.closed) return Promise.reject(shutdownError());
    const flight = this.flight;
    if (flight !== undefined) {
      const joined = caller ? this.waits.join(flight) : flight.join();
      // A background renewal after rejected credentials may not log in: a forced one then tries itself.
      return force && !flight.canLogIn ? joined.catch(() => this.acquire(true)) : joined;
    }
    const refusal = this.policy.refusal(this.clock.mono(), force);
    if (refusal !== undefined) {
      // Fail fast: no extra upstream call (a wait of 0 s, for the histogram).
      if (caller) this.waits.refused(refusal.code);
      if (refusal.code === 'INVALID_CREDENTIALS') this.rotation.check(() => this.onSecretChanged());
      return Promise.reject(refusal);
    }
    const started = this.renew(force ? 'force' : 'caller');
    return caller ? this.waits.join(started) : started.join();
  }

  /** The secret provider answers a new secret during the cool-down: a login with it, now. */
  private onSecretChanged(): void {
    if (this.closed || this.flight !== undefined || !this.policy.credentialsChanged()) return;
    this.hooks.log('log', 'The agentSecret provider answers a new secret; logging in with it now.');
    this.renew('schedule');
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
    const allowLogin = awaited || this.policy.backgroundLogin;
    // The span of whoever started it (a caller, or the request answered 401 whose retry waits for it) is
    // the parent of the upstream calls; a scheduled renewal starts a trace of its own.
    const parent = cause === 'schedule' ? undefined : this.telemetry.activeContext();
    const renewal = this.renewer.renew({
      replacing: this.replacing(),
      refresh,
      allowLogin,
      parent,
      storeBudgetMs: this.storeBudgetMs(),
      force: cause === 'force',
    });
    const flight: Flight = new Flight(
      allowLogin,
      renewal.then(
        (renewed) => this.accept(flight, renewed, cause),
        (error: unknown) => {
          throw this.failed(flight, toError(error));
        },
      ),
    );
    this.flight = flight;
    return flight;
  }

  private land(flight: Flight): void {
    flight.land();
    if (this.flight === flight) this.flight = undefined;
  }

  private accept(flight: Flight, renewed: Renewed, cause: Cause): CachedToken {
    this.land(flight);
    if (this.closed) throw shutdownError();
    return this.install(renewed, cause);
  }

  /** Caches a renewed (or adopted) token and schedules its renewal. */
  private install(renewed: Renewed, cause: Cause): CachedToken {
    const { token } = renewed;
    this.token = token;
    this.served = token.accessToken;
    this.servedStaleAt = token.staleAt.wall;
    this.refresh = this.options.refresh === false ? undefined : renewed.refresh;
    this.refreshUsableUntil = this.refresh?.usableUntil;
    this.version = renewed.version;
    this.shared = renewed.shared;
    // Written after the callers got it: its version and whether it is shared come with the write.
    renewed.stored?.then(({ version, shared }) => {
      if (this.token !== token) return;
      this.version = version;
      this.shared = shared;
    });
    this.lastError = undefined;
    this.hadToken = true;
    this.spacing.replaced(token.accessToken, cause === 'unauthorized');
    if (this.policy.succeeded()) this.failureLog.recovered(this.clock.mono());
    if (renewed.via === 'store') this.telemetry.adopted();
    this.reschedule();
    this.hooks.log(
      'debug',
      `Access token fp=${token.fingerprint} ${renewed.via === 'store' ? 'adopted from the store' : `obtained (${renewed.via})`}; expires ${token.accessExpiresAt.toISOString()}.`,
    );
    // Last: a subscriber that calls back into us sees the new state, not half of it.
    this.hooks.emit({
      type: renewed.via === 'refresh' ? 'token.refreshed' : 'token.acquired',
      at: new Date(token.obtainedAt),
      fingerprint: token.fingerprint,
      accessExpiresAt: new Date(token.accessExpiresAt),
      refreshExpiresAt: new Date(token.refreshExpiresAt),
    });
    return token;
  }

  /** Records a failed renewal, logs it (throttled) and schedules what comes next. */
  private failed(flight: Flight, error: TransferAuthError): TransferAuthError {
    const awaited = flight.awaited;
    this.land(flight);
    if (this.closed || error.code === 'SHUTDOWN') return this.closed ? shutdownError() : error;
    const now = instant(this.clock);
    this.lastError = { code: error.code, message: error.message, at: new Date(now.wall) };
    if (error.status !== undefined) this.lastError.status = error.status;
    this.failureLog.failed(error, now.mono, this.policy.failed(error, now.mono));
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

  /** When the background should renew (monotonic ms), if it should: the failure policy decides. */
  private backgroundDue(now: Instant): number | undefined {
    const token = this.token;
    const staleAt = token && Math.min(token.staleAt.mono, now.mono + token.staleAt.wall - now.wall);
    return this.policy.backgroundDue(now.mono, staleAt, this.usableRefresh() !== undefined);
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

  /**
   * What the renewal's store calls may take before its upstream call: the whole budget with no usable token
   * (callers wait either way), else a third of what is left of the token, so that a slow store never
   * lets it lapse (short tokens have short margins).
   */
  private storeBudgetMs(): number {
    const token = this.token;
    if (token === undefined) return STORE_BUDGET_MS;
    const now = instant(this.clock);
    const leftMs = Math.min(token.usableUntil.mono - now.mono, token.usableUntil.wall - now.wall);
    if (!(leftMs > 0)) return STORE_BUDGET_MS; // past its usable end (not dropped yet): as none
    return Math.min(STORE_BUDGET_MS, Math.max(STORE_BUDGET_MIN_MS, leftMs * STORE_BUDGET_SHARE));
  }

  private replacing(): Replacing {
    return { version: this.version, shared: this.shared, token: this.served, staleAt: this.servedStaleAt };
  }

  /** The store says the entry changed: adopt it if it beats ours and no renewal is under way. */
  private onStoreChange(): void {
    if (this.closed || this.flight !== undefined) return;
    if (this.peeking) {
      this.changedWhilePeeking = true; // read again when this read is done: it may predate the change
      return;
    }
    this.peeking = true;
    this.changedWhilePeeking = false;
    const done = (): void => {
      this.peeking = false;
      if (this.changedWhilePeeking) this.onStoreChange();
    };
    this.renewer.peek(this.replacing()).then((renewed) => {
      if (renewed !== undefined && !this.closed && this.flight === undefined) {
        // Ours may have changed meanwhile: only a token that still beats it.
        const { accessToken, staleAt } = renewed.token;
        if (beats({ accessToken, staleAt: staleAt.wall, version: renewed.version }, this.replacing())) {
          this.install(renewed, 'schedule');
        }
      }
      done();
    }, done);
  }

  /**
   * Seconds until the usable end of the refresh token this process got with its last token (it outlives
   * an invalidated access token); 0 with none; nothing with `refresh: false`.
   */
  private refreshSecondsLeft(): number | undefined {
    if (this.options.refresh === false) return undefined;
    return secondsUntil(this.refreshUsableUntil, instant(this.clock));
  }

  /**
   * Seconds until the cached access token's usable end (expiry less the safety window), on the local
   * clocks it was placed on from the upstream's `Date` header, as the hot path counts it: a skewed host
   * clock does not move it. 0 with none cached.
   */
  private accessSecondsLeft(): number {
    return secondsUntil(this.token?.usableUntil, instant(this.clock));
  }

  /**
   * Whether the token gauges have nothing to say: once closed, and before the first token while nothing
   * has failed (`fetchOnStartup: false`, nobody asked yet). A 0 would read as "no token": an alert.
   */
  private unobserved(): boolean {
    return this.closed || (!this.hadToken && this.lastError === undefined);
  }

  private usableRefresh(): RefreshCredential | undefined {
    const refresh = this.refresh;
    if (this.options.refresh === false || refresh === undefined) return undefined;
    return isBefore(refresh.usableUntil, instant(this.clock)) ? refresh : undefined;
  }
}

/** Seconds until `deadline` on both clocks (the earlier); 0 without one or once past. */
function secondsUntil(deadline: Deadline | undefined, now: Instant): number {
  if (deadline === undefined) return 0;
  return Math.max(0, Math.min(deadline.mono - now.mono, deadline.wall - now.wall)) / 1000;
}

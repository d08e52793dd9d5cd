import { TransferAuthError } from '../errors/transfer-auth.error';
import type { StoredTransferToken, TransferTokenStoreLock } from '../token-store/transfer-token-store.interface';
import type { TokenEndpoint } from '../transfer-api.client';
import { STORE_TIMEOUT_MS } from '../internal.constants';
import {
  fromStored,
  isBefore,
  spentEntry,
  toCachedToken,
  toStored,
  type CachedToken,
  type RefreshCredential,
} from './cached-token';
import { instant, type Clock } from './clock';
import type { LogFn } from './failure-log';
import type { LifecycleOptions } from './lifecycle-deps';
import { DOWN, type Down, type StoreAccess } from './store-access';

/** @internal What a renewal brings: a token to cache, from the upstream or adopted from the store. */
export interface Renewed {
  readonly token: CachedToken;
  readonly refresh: RefreshCredential | undefined;
  /** Its version in the store; 0 when it is not there. */
  readonly version: number;
  /** Whether its refresh token may be in the store (also when a write's answer was lost): never used alone. */
  readonly shared: boolean;
  readonly via: 'login' | 'refresh' | 'store';
}

/** @internal What a stored token must beat to be adopted instead of the one this process holds. */
export interface Replacing {
  /** Store version of the token being replaced (0: it is not known to be there). */
  readonly version: number;
  /** Whether the refresh token held may be in the store: then only the lock holder may use it. */
  readonly shared: boolean;
  /** The access token being replaced (also after an invalidation dropped it): never adopted back. */
  readonly token: string | undefined;
  /**
   * Its stale point (wall-clock epoch ms; 0: none, or dropped after a 401).
   */
  readonly staleAt: number;
}

/**
 * @internal Whether a stored token should replace the one held: another token, and newer: a higher version
 * (written after ours), or one that goes stale no earlier (versions start again at 1 in a store restarted
 * empty).
 */
export function beats(
  stored: { accessToken: string; staleAt: number; version: number },
  replacing: Replacing,
): boolean {
  if (stored.accessToken === replacing.token) return false; // e.g. refused with a 401
  return stored.staleAt >= replacing.staleAt || (replacing.version > 0 && stored.version > replacing.version);
}

/** @internal What the lifecycle asks of one renewal. */
export interface RenewalRequest {
  readonly replacing: Replacing;
  /** The refresh token this process holds; used only if it was never shared through the store. */
  readonly refresh: RefreshCredential | undefined;
  /** May log in with the credentials (else: refresh token only). */
  readonly allowLogin: boolean;
  /** The trace context of the caller who waits for it (opaque), if one does. */
  readonly parent?: unknown;
}

/**
 * A waiter polls the store at most this far apart (watch hints wake it sooner): a dead holder's lapsed lock
 * is noticed within this, for a few cheap calls a second while a process waits.
 */
const MAX_POLL_MS = 250;

type Options = Pick<LifecycleOptions, 'refresh' | 'refreshMarginMs' | 'requestTimeoutMs' | 'agentSecret'>;

/**
 * @internal One renewal: under the store's lock, adopt a token another holder stored, or make one
 * attempt upstream (the refresh token first, then Get token) and store the result fenced by its
 * version. A refresh token is used at most once: one that was shared through the store only under the
 * lock and after the store recorded it as spent. A store that is down is skipped: the process renews alone.
 */
export class Renewer {
  /** The refresh endpoint answered 404/405: it is not there, so renewals go straight to Get token. */
  private refreshAbsent = false;

  constructor(
    private readonly options: Options,
    private readonly endpoint: TokenEndpoint,
    /** None: this process alone (the default), with no store calls in the way. */
    private readonly store: StoreAccess | undefined,
    private readonly log: LogFn,
    private readonly clock: Clock,
  ) {}

  /**
   * Lives longer than a whole renewal under it: a refresh and a login, each bounded, the four store calls
   * around them (read, spent write, re-read after a refused refresh, write) and one more of margin.
   */
  get lockTtlMs(): number {
    // A secret provider adds a read (bounded alike) before a login, and a login again after a rejection.
    const calls = typeof this.options.agentSecret === 'function' ? 5 : 2;
    return calls * this.options.requestTimeoutMs + 5 * STORE_TIMEOUT_MS;
  }

  renew(request: RenewalRequest): Promise<Renewed> {
    if (this.store === undefined) {
      // Called synchronously: the request is on its way before the caller that started it returns.
      return this.exchange(this.usable(request.refresh), request).then((renewed) => ({
        ...renewed,
        version: 0,
        shared: false,
      }));
    }
    return this.renewShared(request, this.store);
  }

  /**
   * A token another process stored that beats the one being replaced, if the store has one: one read, no
   * lock, no upstream call (a process that starts, or hears that the entry changed).
   */
  async peek(replacing: Replacing): Promise<Renewed | undefined> {
    const stored = this.store === undefined ? undefined : await this.store.read();
    return stored === DOWN ? undefined : this.adoptable(stored, replacing);
  }

  private async renewShared(request: RenewalRequest, store: StoreAccess): Promise<Renewed> {
    // First a plain read: a token fresh in the store is taken without contending for the lock (a fleet
    // that starts together, or a process that wakes after another renewed).
    const first = await store.read();
    if (first === DOWN) return this.renewUpstream(request, DOWN, store); // no more of its timeouts
    const early = this.adoptable(first, request.replacing);
    if (early !== undefined && isBefore(early.token.staleAt, instant(this.clock))) return early;
    let lock = await store.lock(this.lockTtlMs);
    if (lock === undefined) {
      const waited = await this.awaitHolder(request, store);
      if (waited !== undefined && 'token' in waited) return waited;
      lock = waited ?? DOWN; // the holder never wrote: carry on alone
    }
    try {
      // A store that failed to lock is down: no more of its timeouts in this renewal.
      const stored = lock === DOWN ? DOWN : await store.read();
      const adopted = stored === DOWN ? undefined : this.adoptable(stored, request.replacing);
      if (adopted !== undefined) return adopted;
      return await this.renewUpstream(request, stored, store);
    } finally {
      if (lock !== DOWN) store.release(lock);
    }
  }

  close(): void {
    this.store?.close();
    this.endpoint.close();
  }

  /** Called under the lock (or with the store down, `stored` then `DOWN`). */
  private async renewUpstream(
    request: RenewalRequest,
    stored: StoredTransferToken | undefined | Down,
    store: StoreAccess,
  ): Promise<Renewed> {
    let version = stored === DOWN ? undefined : (stored?.version ?? 0);
    let refresh: RefreshCredential | undefined;
    const shared = stored === DOWN || stored === undefined ? undefined : fromStored(stored, instant(this.clock));
    const sharedRefresh = this.usable(shared?.refresh);
    if (sharedRefresh !== undefined && stored !== DOWN && stored !== undefined) {
      if ((await store.write(spentEntry(stored))) === true) {
        refresh = sharedRefresh;
        version = stored.version + 1;
      }
    } else if (!request.replacing.shared) {
      refresh = this.usable(request.refresh); // never in the store: no other process has it
    }
    // A refresh token refused (e.g. as already used: a holder whose lock lapsed used it) may mean that
    // another process renewed meanwhile: its token is taken before logging in again.
    const beforeLogin = refresh === undefined || version === undefined ? undefined : () => this.peek(request.replacing);
    const renewed = await this.exchange(refresh, request, beforeLogin);
    if (renewed.via === 'store') return { version: 0, shared: true, ...renewed };
    if (version === undefined) return { ...renewed, version: 0, shared: false }; // store down: never written
    const written = await store.write(toStored(renewed.token, renewed.refresh, version + 1));
    // No answer is not "not written": the write may land all the same, and others adopt it.
    return { ...renewed, version: written === true ? version + 1 : 0, shared: written !== false };
  }

  /** One attempt: the refresh token (if any), falling back to Get token when it fails. */
  private async exchange(
    refresh: RefreshCredential | undefined,
    { allowLogin, parent }: RenewalRequest,
    beforeLogin?: () => Promise<Renewed | undefined>,
  ): Promise<Omit<Renewed, 'version' | 'shared'> & { version?: number; shared?: boolean }> {
    if (refresh !== undefined) {
      try {
        // Converted inside the try: a refreshed token that is unusable (e.g. expired on arrival) is as
        // good as a rejection, and falls back to Get token like one.
        const response = await this.endpoint.refreshToken(refresh.refreshToken, parent);
        return { ...toCachedToken(response, this.options.refreshMarginMs), via: 'refresh' };
      } catch (caught) {
        const error = toError(caught);
        // Spent either way (even a lost answer may have used it up): Get token is the only way left.
        // A Retry-After is obeyed by the policy's backoff; the next attempt logs in.
        if (error.code === 'SHUTDOWN' || error.retryAfterMs !== undefined || !allowLogin) throw error;
        if (error.status === 404 || error.status === 405) {
          // Not there at all (the endpoint's shape is an assumption): stop paying a doomed call per renewal.
          this.refreshAbsent = true;
          this.log(
            'warn',
            `The refresh endpoint answered HTTP ${error.status}; renewing with Get token from now on. Set the \`refresh\` option (path, method) or \`refresh: false\`.`,
          );
        } else {
          this.log('warn', `Refresh token failed (${error.code}: ${error.message}); falling back to Get token.`);
        }
      }
      const renewed = await beforeLogin?.();
      if (renewed !== undefined) return renewed;
    } else if (!allowLogin) {
      throw new TransferAuthError('INVALID_CREDENTIALS', 'No usable refresh token, and logins wait out a cool-down.');
    }
    const response = await this.endpoint.getToken(parent);
    return { ...toCachedToken(response, this.options.refreshMarginMs), via: 'login' };
  }

  /**
   * Another holder renews: wait for its token (woken by the store, or polling), or for the lock to come
   * free (the holder failed), a lock's lifetime and a request's, then one last try: a dead holder's lock
   * has lapsed by then, and the waiter that took it has had the time of one request to renew.
   * `undefined`: the store went down or the lock is still taken.
   */
  private async awaitHolder(
    request: RenewalRequest,
    store: StoreAccess,
  ): Promise<Renewed | TransferTokenStoreLock | undefined> {
    // A lock's lifetime, and then a request's: the waiters of a holder that died all reach the lapse
    // together; one takes the lock, and the others wait for its token instead of each logging in.
    const deadline = this.clock.mono() + this.lockTtlMs + this.options.requestTimeoutMs;
    for (let delay = 25, last = false; !last; delay = Math.min(delay * 2, MAX_POLL_MS)) {
      const left = deadline - this.clock.mono();
      last = left <= delay;
      await store.pause(Math.max(0, Math.min(delay, left)));
      const stored = await store.read();
      if (stored === DOWN) return undefined;
      const adopted = this.adoptable(stored, request.replacing);
      if (adopted !== undefined) return adopted;
      const lock = await store.lock(this.lockTtlMs);
      if (lock !== undefined) return lock === DOWN ? undefined : lock;
    }
    return undefined;
  }

  /** `refresh`, unless refresh tokens are off or the endpoint turned out to be absent. */
  private usable(refresh: RefreshCredential | undefined): RefreshCredential | undefined {
    return this.options.refresh === false || this.refreshAbsent ? undefined : refresh;
  }

  private adoptable(stored: StoredTransferToken | undefined, replacing: Replacing): Renewed | undefined {
    if (stored === undefined || !beats(stored, replacing)) return undefined;
    const placed = fromStored(stored, instant(this.clock));
    if (placed?.token === undefined) return undefined;
    return { token: placed.token, refresh: placed.refresh, version: stored.version, shared: true, via: 'store' };
  }
}

/** @internal */
export function toError(error: unknown): TransferAuthError {
  if (error instanceof TransferAuthError) return error;
  // Not expected: every path throws TransferAuthError. Keep the name only, never the message.
  const name = error instanceof Error ? error.name : typeof error;
  return new TransferAuthError('UPSTREAM_UNAVAILABLE', `Unexpected failure while renewing the token (${name}).`);
}

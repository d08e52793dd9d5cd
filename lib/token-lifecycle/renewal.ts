import { TransferAuthError } from '../errors/transfer-auth.error';
import type { StoredTransferToken } from '../token-store/transfer-token-store.interface';
import type { TokenEndpoint } from '../upstream/token-endpoint';
import {
  CREDENTIALS_COOLDOWN_MAX_MS,
  CREDENTIALS_COOLDOWN_MIN_MS,
  LOCK_LEASE_MS,
  REPLICA_WAIT_MS,
  STORE_BUDGET_MS,
} from '../internal.constants';
import { rejectedSecretTags } from '../upstream/agent-secret';
import { tokenFingerprint } from '../telemetry/fingerprint';
import { fleetCoolDowns } from './failure-policy';
import {
  fromStored,
  isBefore,
  blockedEntry,
  spentEntry,
  toCachedToken,
  toStored,
  type CachedToken,
  type RefreshCredential,
} from './cached-token';
import { instant, type Clock } from './clock';
import type { LogFn } from './failure-log';
import type { LifecycleOptions } from './lifecycle-deps';
import { DOWN, type Down, type HeldLock, type StoreAccess } from './store-access';

/** @internal What a renewal brings: a token to cache, from the upstream or adopted from the store. */
export interface Renewed {
  readonly token: CachedToken;
  readonly refresh: RefreshCredential | undefined;
  /** Its version in the store; 0 when it is not there (yet: see `stored`). */
  readonly version: number;
  /** Whether its refresh token may be in the store (also when a write's answer was lost): never used alone. */
  readonly shared: boolean;
  readonly via: 'login' | 'refresh' | 'store';
  /**
   * A token from the upstream is handed to the callers at once and written to the store after: this
   * settles with its version and whether it is shared once the write is done (until then: version 0,
   * shared, so that its refresh token is used only under the lock).
   */
  readonly stored?: Promise<{ version: number; shared: boolean }>;
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
  /**
   * What the store calls before the upstream call may take, all together (ms): less than what is left of
   * the token being replaced, so that a slow store never lets it lapse. @default STORE_BUDGET_MS
   */
  readonly storeBudgetMs?: number;
  /** `forceRefresh()`: logs in even during the fleet's cool-down (the operator's lever, as in one process). */
  readonly force?: boolean;
}

/**
 * A waiter polls the store at most this far apart (watch hints wake it sooner): a dead holder's lapsed lock
 * is noticed within this, for a few cheap calls a second while a process waits.
 */
const MAX_POLL_MS = 250;

/** How many of the refresh tokens this process sent it remembers (by fingerprint), never to send them again. */
const SENT_REMEMBERED = 16;

type Options = Pick<LifecycleOptions, 'refresh' | 'refreshMarginMs' | 'requestTimeoutMs' | 'agentSecret' | 'retry'>;

/** Something said once per process: a fact about the store that does not change renewal by renewal. */
type Once = 'vanished' | 'regressed' | 'unreplicated';

/**
 * @internal One renewal: under the store's lock (a short lease, extended while held), adopt a token
 * another holder stored, or renew upstream (the refresh token first, then Get token), hand the token to
 * the callers, then store it fenced by its version. A refresh token is used at most once: one that was
 * shared through the store only under the lock, after the store recorded it as spent (held by a replica,
 * where there are replicas), and only from an entry no older than what this process has seen. A store
 * that is down or slow is skipped: the process renews alone. A rejected login starts a cool-down that the
 * whole fleet keeps, through the store.
 */
export class Renewer {
  /** The refresh endpoint answered 404/405: it is not there, so renewals go straight to Get token. */
  private refreshAbsent = false;
  /**
   * The latest `access_expire_at` seen, from the upstream or the store (the upstream's clock: the same for
   * every process): an entry older than this comes from a store that went back in time, and its refresh
   * token has been used (or replaced) already.
   */
  private newest = 0;
  /** Fingerprints of the refresh tokens this process sent (the last 16): never sent again, whatever the store says. */
  private readonly sent = new Set<string>();
  private readonly said = new Set<Once>();

  constructor(
    private readonly options: Options,
    private readonly endpoint: TokenEndpoint,
    /** None: this process alone (the default), with no store calls in the way. */
    private readonly store: StoreAccess | undefined,
    private readonly log: LogFn,
    private readonly clock: Clock,
  ) {}

  /**
   * The longest a live holder's renewal may take: its store budget, every attempt with the waits between
   * them, and with a secret provider a read before each login and one after a rejection.
   */
  get holderBoundMs(): number {
    const { maxAttempts, maxDelayMs } = this.options.retry;
    const reads = typeof this.options.agentSecret === 'function' ? 2 : 0;
    return STORE_BUDGET_MS + (maxAttempts + reads + 1) * this.options.requestTimeoutMs + (maxAttempts - 1) * maxDelayMs;
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
    if (stored === DOWN) return undefined;
    this.observe(stored, replacing);
    return this.adoptable(stored, replacing);
  }

  private async renewShared(request: RenewalRequest, store: StoreAccess): Promise<Renewed> {
    let deadline = this.clock.mono() + (request.storeBudgetMs ?? STORE_BUDGET_MS);
    const left = (): number => deadline - this.clock.mono();
    // First a plain read: a token fresh in the store is taken without contending for the lock (a fleet
    // that starts together, or a process that wakes after another renewed).
    const first = await store.read(left());
    if (first === DOWN) return this.renewUpstream(request, DOWN, store, left); // no more of its timeouts
    this.observe(first, request.replacing);
    const early = this.adoptable(first, request.replacing);
    if (early !== undefined && isBefore(early.token.staleAt, instant(this.clock))) return early;
    const blocked = await this.loginBlocked(first, request);
    if (blocked !== undefined) throw blocked; // the fleet's cool-down: no lock, no login
    let lock = await store.lock(LOCK_LEASE_MS, left());
    if (lock === undefined) {
      const waited = await this.awaitHolder(request, store);
      if (waited !== undefined && 'token' in waited) return waited;
      lock = waited ?? DOWN; // the holder never wrote: carry on alone
      deadline = this.clock.mono() + (request.storeBudgetMs ?? STORE_BUDGET_MS); // a budget of its own
    }
    const held: HeldLock | undefined = lock === DOWN ? undefined : lock;
    // A store that failed to lock is down: no more of its timeouts in this renewal.
    const stored = held === undefined ? DOWN : await store.read(left());
    if (stored !== DOWN) this.observe(stored, request.replacing);
    const adopted = stored === DOWN ? undefined : this.adoptable(stored, request.replacing);
    if (adopted !== undefined) {
      held?.release();
      return adopted;
    }
    // The lock is renewUpstream's from here: released once the token (or the cool-down) is written.
    return this.renewUpstream(request, stored, store, left, held);
  }

  /** Once closed: resolves when the store calls and lock releases under way have settled. */
  storeSettled(): Promise<void> {
    return this.store?.settled() ?? Promise.resolve();
  }

  close(): void {
    this.store?.close();
    this.endpoint.close();
  }

  /**
   * Called under the lock (or with the store down, `stored` then `DOWN`); `left` is what remains of the
   * store budget. The token is handed back as soon as the upstream answers; its write (and the lock's
   * release) follow in the background.
   */
  private async renewUpstream(
    request: RenewalRequest,
    stored: StoredTransferToken | undefined | Down,
    store: StoreAccess,
    left: () => number,
    lock?: HeldLock,
  ): Promise<Renewed> {
    let version = stored === DOWN ? undefined : (stored?.version ?? 0);
    let refresh: RefreshCredential | undefined;
    const entry = stored === DOWN ? undefined : stored;
    const sharedRefresh = this.usable(entry && fromStored(entry, instant(this.clock))?.refresh);
    if (sharedRefresh !== undefined && entry !== undefined) {
      if (
        this.trusted(entry, sharedRefresh, request.replacing) &&
        (await store.write(spentEntry(entry), left())) === true
      ) {
        version = entry.version + 1;
        // Held by a replica before it leaves the process: a failover cannot bring it back unspent.
        if (await store.replicated(Math.min(left(), REPLICA_WAIT_MS))) refresh = sharedRefresh;
        else
          this.once(
            'unreplicated',
            'The spent mark of the shared refresh token was not confirmed by a replica of the store in time; logging in instead of refreshing.',
          );
      }
    } else if (!request.replacing.shared) {
      refresh = this.usable(request.refresh); // never in the store: no other process has it
      if (refresh !== undefined && this.sent.has(tokenFingerprint(refresh.refreshToken))) refresh = undefined;
    }
    // A refresh token refused (e.g. as already used: a holder whose lock lapsed used it) may mean that
    // another process renewed meanwhile: its token is taken before logging in again.
    const beforeLogin = refresh === undefined || version === undefined ? undefined : () => this.peek(request.replacing);
    let renewed: Omit<Renewed, 'version' | 'shared'> & { version?: number; shared?: boolean };
    try {
      renewed = await this.exchange(refresh, request, beforeLogin, entry);
    } catch (error) {
      if (version !== undefined) this.startCoolDown(error, entry, version, store, lock);
      else lock?.release();
      throw error;
    }
    if (renewed.via === 'store') {
      lock?.release();
      return { version: 0, shared: true, ...renewed };
    }
    if (version === undefined) {
      lock?.release();
      return { ...renewed, version: 0, shared: false }; // store down: never written
    }
    const next = version + 1;
    const written = store.write(toStored(renewed.token, renewed.refresh, next)).then((answer) => {
      lock?.release();
      // No answer is not "not written": the write may land all the same, and others adopt it.
      return { version: answer === true ? next : 0, shared: answer !== false };
    });
    return { ...renewed, version: 0, shared: true, stored: written };
  }

  /** One attempt: the refresh token (if any), falling back to Get token when it fails. */
  private async exchange(
    refresh: RefreshCredential | undefined,
    request: RenewalRequest,
    beforeLogin?: () => Promise<Renewed | undefined>,
    entry?: StoredTransferToken,
  ): Promise<Omit<Renewed, 'version' | 'shared'> & { version?: number; shared?: boolean }> {
    const { allowLogin, parent } = request;
    if (refresh !== undefined) {
      this.remember(refresh);
      try {
        // Converted inside the try: a refreshed token that is unusable (e.g. expired on arrival) is as
        // good as a rejection, and falls back to Get token like one.
        const response = await this.endpoint.refreshToken(refresh.refreshToken, parent);
        return this.seen({ ...toCachedToken(response, this.options.refreshMarginMs), via: 'refresh' as const });
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
    const blocked = await this.loginBlocked(entry, request);
    if (blocked !== undefined) throw blocked;
    const response = await this.endpoint.getToken(parent);
    return this.seen({ ...toCachedToken(response, this.options.refreshMarginMs), via: 'login' as const });
  }

  /**
   * The fleet's cool-down after a rejected login, if it stands for the secret this process would send:
   * the error to answer instead of logging in. A process whose secret is another (rotated) logs in, and
   * lifts it for all when that works. `forceRefresh()` skips it, as it skips this process' own.
   */
  private async loginBlocked(
    entry: StoredTransferToken | undefined,
    request: RenewalRequest,
  ): Promise<TransferAuthError | undefined> {
    const until = entry?.loginBlockedUntil;
    if (until === undefined || !request.allowLogin || request.force === true) return undefined;
    const leftMs = until - this.clock.wall();
    if (!(leftMs > 0)) return undefined;
    if (entry?.rejectedSecret !== undefined && this.endpoint.secretTag !== undefined) {
      const tag = await this.endpoint.secretTag().catch(() => undefined);
      if (tag !== undefined && tag !== entry.rejectedSecret) {
        this.log('log', 'The agent secret differs from the one the fleet saw rejected; logging in with it now.');
        return undefined;
      }
    }
    const error = new TransferAuthError(
      'INVALID_CREDENTIALS',
      `Get token rejected these credentials in this fleet (${entry?.rejectedLogins ?? 1} in a row); no login for ${Math.ceil(leftMs / 1000)} s.`,
    );
    fleetCoolDowns.set(error, leftMs);
    return error;
  }

  /**
   * A login was rejected: the whole fleet waits out the cool-down, through the store (written in the
   * background, the lock released after it). Anything else only releases the lock.
   */
  private startCoolDown(
    caught: unknown,
    entry: StoredTransferToken | undefined,
    version: number,
    store: StoreAccess,
    lock: HeldLock | undefined,
  ): void {
    const tag = typeof caught === 'object' && caught !== null ? rejectedSecretTags.get(caught) : undefined;
    if (!(caught instanceof TransferAuthError) || caught.code !== 'INVALID_CREDENTIALS' || tag === undefined) {
      lock?.release();
      return;
    }
    const rejections = (entry?.rejectedLogins ?? 0) + 1;
    const coolDownMs = Math.min(CREDENTIALS_COOLDOWN_MAX_MS, CREDENTIALS_COOLDOWN_MIN_MS * 2 ** (rejections - 1));
    fleetCoolDowns.set(caught, coolDownMs);
    const blocked = blockedEntry(entry, version + 1, this.clock.wall() + coolDownMs, rejections, tag);
    void store.write(blocked).finally(() => lock?.release());
  }

  /**
   * Another holder renews: wait for its token (woken by the store, or polling), or for the lock to come
   * free (the holder failed or died: its lease lapses within seconds), as long as a live holder's renewal
   * may take. `undefined`: the store went down or the lock is still taken.
   */
  private async awaitHolder(request: RenewalRequest, store: StoreAccess): Promise<Renewed | HeldLock | undefined> {
    const deadline = this.clock.mono() + LOCK_LEASE_MS + this.holderBoundMs;
    for (let delay = 25, last = false; !last; delay = Math.min(delay * 2, MAX_POLL_MS)) {
      const left = deadline - this.clock.mono();
      last = left <= delay;
      await store.pause(Math.max(0, Math.min(delay, left)));
      const stored = await store.read();
      if (stored === DOWN) return undefined;
      this.observe(stored, request.replacing);
      const adopted = this.adoptable(stored, request.replacing);
      if (adopted !== undefined) return adopted;
      const blocked = await this.loginBlocked(stored, request);
      if (blocked !== undefined) throw blocked; // the holder's login was rejected: the fleet cools down
      const lock = await store.lock(LOCK_LEASE_MS);
      if (lock !== undefined) return lock === DOWN ? undefined : lock;
    }
    return undefined;
  }

  /** `refresh`, unless refresh tokens are off or the endpoint turned out to be absent. */
  private usable(refresh: RefreshCredential | undefined): RefreshCredential | undefined {
    return this.options.refresh === false || this.refreshAbsent ? undefined : refresh;
  }

  /**
   * Whether the stored refresh token may be sent: its entry is no older than what this process has seen
   * (a store restored from an older snapshot, or a replica that missed writes, holds spent ones), and
   * this process never sent it.
   */
  private trusted(entry: StoredTransferToken, refresh: RefreshCredential, replacing: Replacing): boolean {
    if (entry.accessExpiresAt < this.newest) {
      // Said when the store had held what this process holds (else its own writes failed: no news).
      if (replacing.version > 0) {
        this.once(
          'regressed',
          `The token store holds an older entry (version ${entry.version}) than this process has seen (version ${replacing.version}): a failover or a restart lost writes. Its refresh token is not used; logging in instead.`,
        );
      }
      return false;
    }
    return !this.sent.has(tokenFingerprint(refresh.refreshToken));
  }

  /** Notes what a read says of the store: its newest entry, and an entry gone that this process holds. */
  private observe(stored: StoredTransferToken | undefined, replacing: Replacing): void {
    if (stored === undefined) {
      if (replacing.version > 0) {
        this.once(
          'vanished',
          `The token entry vanished from the store while this process held version ${replacing.version} of it (evicted, flushed, or lost in a restart). With Redis, check \`maxmemory-policy\`: noeviction or volatile-* keep it (it has no TTL); allkeys-* evict it.`,
        );
      }
      return;
    }
    if (typeof stored.accessToken === 'string' && stored.accessToken !== '') this.note(stored.accessExpiresAt);
  }

  private seen<T extends { token: CachedToken }>(renewed: T): T {
    this.note(renewed.token.accessExpiresAt.getTime());
    return renewed;
  }

  private note(accessExpiresAt: number): void {
    if (Number.isFinite(accessExpiresAt) && accessExpiresAt > this.newest) this.newest = accessExpiresAt;
  }

  private remember(refresh: RefreshCredential): void {
    const fingerprint = tokenFingerprint(refresh.refreshToken);
    this.sent.delete(fingerprint);
    this.sent.add(fingerprint);
    if (this.sent.size > SENT_REMEMBERED) this.sent.delete(this.sent.values().next().value!);
  }

  private once(what: Once, message: string): void {
    if (this.said.has(what)) return;
    this.said.add(what);
    this.log('warn', message);
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

import { TransferAuthError } from '../errors/transfer-auth.error';
import type { ResolvedTransferAuthOptions } from '../resolve-options';
import type { StoredTransferToken, TransferTokenStore } from '../token-store/transfer-token-store.interface';
import type { TokenEndpoint } from '../transfer-api.client';
import { STORE_TIMEOUT_MS } from '../transfer-auth.constants';
import { instant, type Clock } from './clock';
import { fromStored, toCachedToken, toStored, type CachedToken, type RefreshCredential } from './cached-token';
import type { LogFn } from './failure-log';
import { shutdownError } from './failure-policy';

/** @internal What a renewal brings: a token to cache, from the upstream or adopted from the store. */
export interface Renewed {
  readonly token: CachedToken;
  readonly refresh: RefreshCredential | undefined;
  /** Its version in the store; 0 when the store could not be used. */
  readonly version: number;
  readonly via: 'login' | 'refresh' | 'store';
}

/** @internal What the lifecycle asks of one renewal. */
export interface RenewalRequest {
  /** Store version of the token being replaced (0: none); a newer stored token is adopted instead. */
  readonly replacing: number;
  /** The refresh token this process holds, used when the store has nothing newer to say. */
  readonly refresh: RefreshCredential | undefined;
  /** May log in with the credentials (else: refresh token only). */
  readonly allowLogin: boolean;
}

type Options = Pick<ResolvedTransferAuthOptions, 'refresh' | 'refreshMarginMs' | 'requestTimeoutMs'>;
const UNAVAILABLE = Symbol('store unavailable');
type Maybe<T> = T | typeof UNAVAILABLE;

/**
 * @internal One renewal: under the store's lock, adopt a token another holder stored, or make one
 * attempt upstream (the refresh token first, used at most once, then Get token) and store the result
 * fenced by its version. A store that fails or hangs is skipped: the process then renews alone.
 */
export class Renewer {
  /** The refresh endpoint answered 404/405: it is not there, so renewals go straight to Get token. */
  private refreshAbsent = false;
  private storeDown = false;
  private readonly closed = new AbortController();

  constructor(
    private readonly options: Options,
    private readonly endpoint: TokenEndpoint,
    private readonly store: TransferTokenStore,
    private readonly key: string,
    private readonly log: LogFn,
    private readonly clock: Clock,
  ) {}

  /** Lives longer than a whole renewal: a refresh and a login, each bounded by `requestTimeoutMs`. */
  get lockTtlMs(): number {
    return 2 * this.options.requestTimeoutMs + STORE_TIMEOUT_MS;
  }

  async renew(request: RenewalRequest): Promise<Renewed> {
    const lock = await this.storeCall(() => this.store.lock(this.key, this.lockTtlMs));
    if (lock === undefined) {
      const adopted = await this.awaitHolder(request.replacing);
      if (adopted !== undefined) return adopted;
    }
    try {
      // A store that failed to lock is down: no more of its timeouts in this renewal.
      const stored = lock === UNAVAILABLE ? UNAVAILABLE : await this.storeCall(() => this.store.read(this.key));
      const adopted = stored === UNAVAILABLE ? undefined : this.adoptable(stored, request.replacing);
      if (adopted !== undefined) return adopted;
      return await this.renewUpstream(request, stored);
    } finally {
      if (lock !== undefined && lock !== UNAVAILABLE) void this.storeCall(() => lock.release());
    }
  }

  close(): void {
    this.closed.abort();
    this.endpoint.close();
  }

  private async renewUpstream(
    request: RenewalRequest,
    stored: Maybe<StoredTransferToken | undefined>,
  ): Promise<Renewed> {
    // The store's word on the refresh token wins: with no refresh token there, it has been used.
    const refresh =
      stored === UNAVAILABLE || stored?.version !== request.replacing || request.replacing === 0
        ? request.refresh
        : fromStored(stored, instant(this.clock))?.refresh;
    const usable = this.options.refresh !== false && !this.refreshAbsent ? refresh : undefined;
    const version = stored === UNAVAILABLE ? undefined : (stored?.version ?? 0);
    let renewed: Omit<Renewed, 'version'>;
    try {
      renewed = await this.exchange(usable, request.allowLogin);
    } catch (error) {
      // The refresh token may have been spent even if its answer was lost: nobody uses it again.
      if (usable !== undefined && stored !== UNAVAILABLE && stored !== undefined && version === stored.version) {
        const spent = {
          ...stored,
          version: stored.version + 1,
          refreshToken: undefined,
          refreshUsableUntil: undefined,
        };
        await this.storeCall(() => this.store.write(this.key, spent));
      }
      throw error;
    }
    if (version === undefined) return { ...renewed, version: 0 };
    const entry = toStored(renewed.token, renewed.refresh, version + 1);
    const written = await this.storeCall(() => this.store.write(this.key, entry));
    return { ...renewed, version: written === true ? version + 1 : 0 };
  }

  /** One attempt: the refresh token (if any), falling back to Get token when it is refused. */
  private async exchange(
    refresh: RefreshCredential | undefined,
    allowLogin: boolean,
  ): Promise<Omit<Renewed, 'version'>> {
    if (refresh !== undefined) {
      try {
        // Converted inside the try: a refreshed token that is unusable (e.g. expired on arrival) is as
        // good as a rejection, and falls back to Get token like one.
        const response = await this.endpoint.refreshToken(refresh.refreshToken);
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
    } else if (!allowLogin) {
      throw new TransferAuthError('INVALID_CREDENTIALS', 'No usable refresh token, and logins wait out a cool-down.');
    }
    const response = await this.endpoint.getToken();
    return { ...toCachedToken(response, this.options.refreshMarginMs), via: 'login' };
  }

  /** Another holder renews: wait for its token (woken by the store, or polling), at most a lock's lifetime. */
  private async awaitHolder(replacing: number): Promise<Renewed | undefined> {
    const deadline = this.clock.mono() + this.lockTtlMs;
    for (let delay = 25; this.clock.mono() < deadline; delay = Math.min(delay * 2, 1_000)) {
      await this.nap(Math.min(delay, deadline - this.clock.mono()));
      const stored = await this.storeCall(() => this.store.read(this.key));
      if (stored === UNAVAILABLE) return undefined;
      const adopted = this.adoptable(stored, replacing);
      if (adopted !== undefined) return adopted;
    }
    return undefined;
  }

  private adoptable(stored: StoredTransferToken | undefined, replacing: number): Renewed | undefined {
    if (stored === undefined || !(stored.version > replacing)) return undefined;
    const placed = fromStored(stored, instant(this.clock));
    return placed && { ...placed, version: stored.version, via: 'store' };
  }

  /** A pause that `close()` cuts short with `SHUTDOWN`, and that `watch` ends early. */
  private nap(ms: number): Promise<void> {
    if (this.closed.signal.aborted) return Promise.reject(shutdownError());
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        stop?.();
        this.closed.signal.removeEventListener('abort', abort);
        resolve();
      };
      const abort = (): void => {
        done();
        reject(shutdownError());
      };
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref?.();
      const stop = this.store.watch?.(this.key, done);
      this.closed.signal.addEventListener('abort', abort, { once: true });
    });
  }

  /** A store call bounded in time; a failure is logged once per outage, and reported as UNAVAILABLE. */
  private async storeCall<T>(call: () => Promise<T>): Promise<Maybe<T>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${STORE_TIMEOUT_MS} ms`)), STORE_TIMEOUT_MS);
        timer.unref?.();
      });
      const result = await Promise.race([call(), timeout]);
      if (this.storeDown) {
        this.storeDown = false;
        this.log('log', 'The token store answers again; renewals are shared through it again.');
      }
      return result;
    } catch (error) {
      if (!this.storeDown) {
        this.storeDown = true;
        const why = error instanceof Error ? error.name : typeof error;
        this.log('warn', `The token store failed (${why}); renewing without it until it answers again.`);
      }
      return UNAVAILABLE;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** @internal */
export function toError(error: unknown): TransferAuthError {
  if (error instanceof TransferAuthError) return error;
  // Not expected: every path throws TransferAuthError. Keep the name only, never the message.
  const name = error instanceof Error ? error.name : typeof error;
  return new TransferAuthError('UPSTREAM_UNAVAILABLE', `Unexpected failure while renewing the token (${name}).`);
}

import type { TransferAuthErrorCode } from '../errors/transfer-auth.error';

/**
 * Where the token provider stands:
 * - `idle`: no token yet and nothing under way (before the first call, or `fetchOnStartup: false`);
 * - `acquiring`: no usable token, a request for one is under way;
 * - `valid`: a usable token is cached;
 * - `stale`: a usable token is cached but is inside its refresh margin: it is served while a renewal
 *   runs in the background (or waits out its backoff);
 * - `failed`: no usable token, and the last attempt failed (see `lastError`);
 * - `closed`: the application shut down.
 */
export type TransferAuthState = 'idle' | 'acquiring' | 'valid' | 'stale' | 'failed' | 'closed';

/** The last failure, without anything secret. */
export interface TransferAuthLastError {
  code: TransferAuthErrorCode;
  status?: number;
  message: string;
  at: Date;
}

/**
 * The shared token store as this process sees it (only with a `store`):
 * - `ok`: every kind of store call answers;
 * - `degraded`: some kind fails (see `error`), and the process does without what it needs: it renews
 *   alone when reads or locks fail, shares less when writes fail, logs in instead of refreshing when the
 *   replicas do not hold the spent mark. Callers are never failed because of it.
 * It is the state of the last store call; a status asked for when none was made for 10 s (a long token
 * renews rarely) starts a read, so that a polled status (a health probe) is at most that old.
 */
export interface TransferAuthStoreStatus {
  state: 'ok' | 'degraded';
  /** When this state began (ISO 8601). */
  since: string;
  /** The error code of the last failure: a Redis code (`NOPERM`, `OOM`, `READONLY`, ...), `TIMEOUT`, or a socket code. */
  error?: string;
}

/** A snapshot of the token provider, safe to log or to serve on a status endpoint. */
export interface TransferAuthStatus {
  state: TransferAuthState;
  /** When the cached access token expires, as the upstream said (`access_expire_at`). */
  accessExpiresAt: Date | null;
  /** When the cached refresh token expires, as the upstream said (`refresh_expire_at`). */
  refreshExpiresAt: Date | null;
  /** When the cached token was obtained. */
  lastRefreshAt: Date | null;
  /**
   * The cached access token's name: the first 8 hex digits of its SHA-256 (as in log lines, `fp=3f2a9c1e`),
   * to match a 401 with the token it refused. Never the token.
   */
  accessTokenFingerprint: string | null;
  /** The last failure, until a token is obtained again. */
  lastError?: TransferAuthLastError;
  /** The shared token store's state; absent without a `store`. */
  store?: TransferAuthStoreStatus;
}

/**
 * One agent's token as a {@link TransferTokenStore} keeps it: everything a process needs to serve the
 * access token and to renew it. Times are epoch milliseconds on the writer's wall clock, so the hosts
 * sharing a store must keep their clocks in step (NTP): a reader whose clock is behind would count a
 * token as usable for that much longer.
 *
 * `accessToken` and `refreshToken` are non-enumerable in the entries the lifecycle writes, so that
 * printing one never shows them: a store that serialises entries must copy them by name.
 */
export interface StoredTransferToken {
  /** 1 for the first write, then one more for each: a writer whose lock lapsed cannot overwrite a newer entry. */
  readonly version: number;
  readonly accessToken: string;
  /** Absent once it has been used: a refresh token may work only once. */
  readonly refreshToken?: string;
  /** From here on the access token is renewed. */
  readonly staleAt: number;
  /** From here on the access token is never handed out. */
  readonly usableUntil: number;
  /** From here on the refresh token is not used. */
  readonly refreshUsableUntil?: number;
  /** `access_expire_at` and `refresh_expire_at` as the upstream sent them. */
  readonly accessExpiresAt: number;
  readonly refreshExpiresAt: number;
  readonly obtainedAt: number;
  /**
   * Set after Get token rejected the credentials: no process of the fleet logs in before this (wall-clock
   * epoch ms) with the secret that was rejected. Absent once a login succeeded.
   */
  readonly loginBlockedUntil?: number;
  /** Rejected logins in a row, fleet-wide: the cool-down doubles with them (1 s to 5 minutes). */
  readonly rejectedLogins?: number;
  /**
   * A short tag of the rejected secret (8 hex digits of a hash: it cannot be told back into the secret):
   * a process whose secret has another tag (rotated) may log in during the cool-down, which lifts it for all.
   */
  readonly rejectedSecret?: string;
}

/**
 * What the lifecycle tells a store about the agent whose entry it reads or writes.
 */
export interface TransferTokenStoreContext {
  /**
   * 32 bytes derived from the agent's base URL, id and secret with scrypt (once per registration): the
   * same in every process configured alike, and as secret as the agent secret. A store that keeps entries
   * outside the process (Redis, a database) encrypts them with it, so that what it holds is useless
   * without the credentials. Never write it anywhere.
   */
  readonly encryptionKey: Uint8Array;
  /**
   * Optional: where a store reports a problem that does not fail the call (e.g. a pub/sub hint refused for
   * want of an ACL permission): `code` is the server's error code (`NOPERM`), `what` says what degrades.
   * The lifecycle logs each code once per process. Never pass data or a server message with data in it.
   */
  readonly warn?: (code: string, what: string) => void;
}

/** A held renewal lock. */
export interface TransferTokenStoreLock {
  /** Gives the lock up, if it is still this holder's; never throws for a lock that lapsed. */
  release(): Promise<void>;
  /**
   * Optional: makes the lock live `ttlMs` from now, if it is still this holder's; resolves whether it is.
   * With it the lifecycle takes a short lease and extends it while it renews (a paused or dead holder is
   * replaced within seconds); without it, the lease is still short, and a renewal that outlives it costs
   * the fleet a second login (never a refresh token used twice: the version fence and the spent mark).
   */
  extend?(ttlMs: number): Promise<boolean>;
}

/**
 * Where the token lifecycle reads, writes and locks the current token of an agent (one `key` per agent:
 * derived from the credentials, it names no secret and may be used as is in key names).
 * The lifecycle keeps its own copy for cached reads: a store is touched only when a token is renewed,
 * adopted or dropped, never by `getAccessToken()` while the cached token is usable. A store that fails
 * or hangs never fails a caller: the lifecycle then carries on alone, as with the in-process default.
 */
export interface TransferTokenStore {
  /**
   * Optional: `true` when the store does without `context.encryptionKey`: it encrypts entries with a key
   * of its own, or keeps nothing outside the process (`InProcessTokenStore`). Required with `agentSecret`
   * as a provider: a key derived from a secret that rotates would change with it.
   */
  readonly ownEncryptionKey?: boolean;
  /** The stored entry, or `undefined` when there is none. */
  read(key: string, context: TransferTokenStoreContext): Promise<StoredTransferToken | undefined>;
  /**
   * Stores `entry` only if the stored version is still `entry.version - 1` (no entry counts as 0).
   * Resolves whether it was written.
   */
  write(key: string, entry: StoredTransferToken, context: TransferTokenStoreContext): Promise<boolean>;
  /**
   * Takes the renewal lock of `key` for `ttlMs`, or resolves `undefined` when another holder has it. The
   * lifecycle asks for a short lease, extends it (`extend`) while it renews, and releases it when done.
   */
  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined>;
  /**
   * Optional: calls `onChange` when another holder wrote `key`, so that a process waiting for a renewal
   * it does not run learns of it at once (without it, the waiter polls). Returns a function that stops it.
   */
  watch?(key: string, onChange: () => void, context?: TransferTokenStoreContext): () => void;
  /**
   * Optional: after a write, resolves whether this process' writes of `key` so far are held by a replica
   * too, where the server has replicas (`true` when it has none and never had). The lifecycle asks after it
   * recorded a refresh token as spent, before sending it: on `false` it logs in instead, so that a failover
   * to a replica that missed the spent mark cannot make another process send the same refresh token.
   */
  replicated?(key: string, timeoutMs: number, context: TransferTokenStoreContext): Promise<boolean>;
}

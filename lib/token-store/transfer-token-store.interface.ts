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
}

/** A held renewal lock. */
export interface TransferTokenStoreLock {
  /** Gives the lock up, if it is still this holder's; never throws for a lock that lapsed. */
  release(): Promise<void>;
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
   * lifecycle asks for a lifetime longer than a whole renewal and releases it as soon as it is done.
   */
  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined>;
  /**
   * Optional: calls `onChange` when another holder wrote `key`, so that a process waiting for a renewal
   * it does not run learns of it at once (without it, the waiter polls). Returns a function that stops it.
   */
  watch?(key: string, onChange: () => void): () => void;
}

import { createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { TransferAuthError } from '../errors/transfer-auth.error';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreContext,
  TransferTokenStoreLock,
} from '../token-store/transfer-token-store.interface';
import { emptyEntry } from '../token-lifecycle/cached-token';
import { storeErrorCode } from '../token-store/store-error';
import { open, seal } from './entry-cipher';
import {
  isRedisClient,
  redisCalls,
  type RedisCalls,
  type RedisTokenStoreClient,
  type Subscriber,
} from './redis-client';

/** Options of {@link RedisTokenStore}. */
export interface RedisTokenStoreOptions {
  /**
   * The app's own client: an ioredis `Redis` or `Cluster` (v5, v6), or a connected node-redis v5 client.
   * The store never closes it; the pub/sub client it opens itself (`duplicate()`: one connection, or one
   * per node of a cluster) it closes when nothing uses it.
   */
  client: RedisTokenStoreClient;
  /** Put before every key and channel name. @default 'freedompay-transfer-auth:' */
  keyPrefix?: string | undefined;
  /**
   * 32 bytes that encrypt the entries (AES-256-GCM) instead of the key derived from the agent's
   * credentials, e.g. from a secret manager. Processes with other keys use other key names.
   * @default derived from the base URL, agent id and secret with scrypt
   */
  encryptionKey?: Uint8Array | undefined;
}

/** The version and the sealed entry (`v`, `d`), and Redis' clock: deadlines are kept on it. */
const READ = `local e = redis.call('HMGET', KEYS[1], 'v', 'd')
local t = redis.call('TIME')
return { e[1], e[2], t[1], t[2] }`;

/**
 * Compare-and-set on the version; refused when it reaches Redis after the writer gave up on it (ARGV[4],
 * on Redis' clock): a late write never lands behind the writer's back. Idempotent: a client that resends
 * it after a reconnect (ioredis does) is told it was written (the sealed entry is unique: a random IV).
 * No TTL (`PERSIST`): the entry outlives its deadlines by design, so that `volatile-*` eviction policies
 * never pick it. The hint to the watchers is a `pcall`: a `PUBLISH` the ACL refuses (Redis 7's default
 * `resetchannels`) does not fail the write, which has landed by then; its error is answered instead of 1.
 */
const WRITE = `local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v == tonumber(ARGV[1]) and redis.call('HGET', KEYS[1], 'd') == ARGV[2] then return 1 end
if v + 1 ~= tonumber(ARGV[1]) then return 0 end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PERSIST', KEYS[1])
local hint = redis.pcall('PUBLISH', ARGV[3], ARGV[1])
if type(hint) == 'table' and hint.err then return hint.err end
return 1`;

/** A write that reaches Redis later than this after it was sent is refused (the lifecycle gave up on it). */
const WRITE_DEADLINE_MS = 2_000;

/** `SET NX PX`; idempotent, as the write: a resent command finds its own lock and says it holds it. */
const LOCK = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0`;

/** Extends the lock only if it is still this holder's. */
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** The replication section of the server that holds the key (a cluster routes it by the key). */
const REPLICATION = `return redis.call('INFO', 'replication')`;

/** Deletes the lock only if it is still this holder's. */
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const DEFAULT_PREFIX = 'freedompay-transfer-auth:';

/** @internal The scripts, for the tests that run them as a client resending them would. */
export const SCRIPTS = { READ, WRITE, LOCK, EXTEND, UNLOCK, REPLICATION } as const;

/**
 * A {@link TransferTokenStore} on Redis, so that a fleet of processes shares one token: one renewal per
 * lifetime under a lock (`SET NX PX`, released by a token-checked script), entries written with a version
 * compare-and-set, changes announced on a channel (a hint: the lifecycle also polls). Entries are
 * encrypted (AES-256-GCM); key names hold no secret; all keys of an agent share one hash slot.
 *
 * ```ts
 * TransferAuthModule.forRoot({ ...credentials, store: new RedisTokenStore({ client: new Redis(url) }) })
 * ```
 */
export class RedisTokenStore implements TransferTokenStore {
  private readonly calls: RedisCalls;
  private readonly keyPrefix: string;
  private readonly encryptionKey: Uint8Array | undefined;
  private subscriber: Subscriber | undefined;
  private stopListening: (() => void) | undefined;
  private readonly watchers = new Map<string, Set<() => void>>();
  /** Servers (by entry key) seen with replicas: one seen without them afterwards is in doubt (a demoted primary). */
  private readonly hadReplicas = new Set<string>();
  /** Per entry key (a cluster's nodes have clocks of their own): Redis' clock less ours, from the last read. */
  private readonly offsets = new Map<string, number>();

  constructor(options: RedisTokenStoreOptions) {
    if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object');
    if (!isRedisClient(options.client)) {
      throw invalid('client', 'must be an ioredis (Redis or Cluster) or node-redis client');
    }
    const prefix = options.keyPrefix ?? DEFAULT_PREFIX;
    if (typeof prefix !== 'string' || prefix.length > 200 || /[{}\s]/.test(prefix)) {
      throw invalid('keyPrefix', 'must be a string of at most 200 characters, without braces or spaces');
    }
    const key = options.encryptionKey;
    if (key !== undefined && !(key instanceof Uint8Array && key.length === 32)) {
      throw invalid('encryptionKey', 'must be 32 bytes (a Uint8Array or Buffer)');
    }
    this.calls = redisCalls(options.client);
    this.keyPrefix = prefix;
    this.encryptionKey = key && Uint8Array.from(key);
  }

  /** Whether entries are encrypted with the `encryptionKey` given here (required with a secret provider). */
  get ownEncryptionKey(): boolean {
    return this.encryptionKey !== undefined;
  }

  async read(key: string, context: TransferTokenStoreContext): Promise<StoredTransferToken | undefined> {
    const { entry, aad } = this.names(key);
    const sentAt = Date.now();
    const reply = await this.calls.run(READ, [entry], []);
    const receivedAt = Date.now();
    const [v, d, sec, usec] = Array.isArray(reply) ? (reply as unknown[]) : [];
    const redisNow = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    if (!Number.isFinite(redisNow)) throw new Error('TIME gave no time');
    // Redis' clock less ours, taken so that it errs late: deadlines put on Redis' clock with it come out
    // no later than they should (and read back with `sentAt`, no later either).
    this.offsets.set(entry, redisNow - receivedAt);
    const version = Number(v);
    if (v === null || v === undefined || d === null || d === undefined) return undefined;
    if (!Number.isSafeInteger(version) || version < 1) return undefined;
    // Deadlines are stored on Redis' clock: hosts whose clocks disagree still agree on when a token goes stale.
    try {
      return open(String(d), this.keyOf(context), aad(version), version, sentAt - redisNow);
    } catch {
      // Not ours to read (altered, or another format): an entry with no usable token at this version, so
      // that the next renewal overwrites it rather than sharing stopping until it expires.
      return emptyEntry(version);
    }
  }

  async write(key: string, entry: StoredTransferToken, context: TransferTokenStoreContext): Promise<boolean> {
    const names = this.names(key);
    // The lifecycle reads before it writes; a store used otherwise reads once to learn Redis' clock.
    let offset = this.offsets.get(names.entry);
    if (offset === undefined) {
      await this.read(key, context).catch(() => undefined);
      offset = this.offsets.get(names.entry);
      if (offset === undefined) throw new Error('no clock offset');
    }
    const sentAt = Date.now();
    const sealed = seal(entry, this.keyOf(context), names.aad(entry.version), offset);
    const deadline = String(sentAt + offset + WRITE_DEADLINE_MS);
    const reply = await this.calls.run(WRITE, [names.entry], [String(entry.version), sealed, names.channel, deadline]);
    if (typeof reply === 'string' || Buffer.isBuffer(reply)) {
      // Written; only the hint was refused (e.g. no channel permission): the watchers poll instead.
      context.warn?.(storeErrorCode(new Error(String(reply))), 'change hints (PUBLISH); other processes poll instead');
      return true;
    }
    return Number(reply) === 1;
  }

  /**
   * Whether this connection's writes of `key` are held by a replica: `INFO replication` of the server
   * that holds it, then `WAIT 1 timeoutMs` on the same connection when it has replicas. A replica that
   * answers (a demoted primary), or a primary that had replicas and has none now, is in doubt: `false`.
   */
  async replicated(key: string, timeoutMs: number, context: TransferTokenStoreContext): Promise<boolean> {
    const { entry } = this.names(key);
    const info = String(await this.calls.run(REPLICATION, [entry], []));
    if (/^role:master\b/m.exec(info) === null) return false;
    const replicas = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? '0');
    if (replicas === 0) {
      if (!this.hadReplicas.has(entry)) return true;
      context.warn?.('NOREPLICAS', 'refresh tokens: the server had replicas and has none now; logging in instead');
      return false;
    }
    this.hadReplicas.add(entry);
    const acked = await this.calls.command(entry, ['WAIT', '1', String(Math.max(1, Math.floor(timeoutMs)))]);
    return Number(acked) >= 1;
  }

  async lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    const { lock } = this.names(key);
    const token = randomBytes(16).toString('hex');
    const taken = Number(await this.calls.run(LOCK, [lock], [token, String(Math.max(1, Math.ceil(ttlMs)))]));
    if (taken !== 1) return undefined;
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        await this.calls.run(UNLOCK, [lock], [token]);
      },
      extend: async (leaseMs: number) =>
        !released &&
        Number(await this.calls.run(EXTEND, [lock], [token, String(Math.max(1, Math.ceil(leaseMs)))])) === 1,
    };
  }

  watch(key: string, onChange: () => void, context?: TransferTokenStoreContext): () => void {
    const { channel } = this.names(key);
    let callbacks = this.watchers.get(channel);
    if (callbacks === undefined) {
      callbacks = new Set();
      this.watchers.set(channel, callbacks);
      if (this.subscriber === undefined) {
        this.subscriber = this.calls.subscriber((from) => this.dispatch(from));
        this.stopListening = this.calls.whenClientEnds(() => this.closeSubscriber());
      }
      this.subscriber.subscribe(channel).catch((error: unknown) => {
        // Polling covers it; a refusal (no channel permission) is worth saying once.
        const code = storeErrorCode(error);
        if (code === 'NOPERM') context?.warn?.(code, 'change hints (SUBSCRIBE); this process polls instead');
      });
    }
    const set = callbacks.add(onChange);
    return () => {
      if (!set.delete(onChange) || set.size > 0 || this.watchers.get(channel) !== set) return;
      this.watchers.delete(channel);
      if (this.watchers.size === 0) this.close();
      else this.subscriber?.unsubscribe(channel).catch(() => undefined);
    };
  }

  /** Closes the pub/sub connection the store opened (never the app's client); a later `watch` opens another. */
  close(): void {
    this.watchers.clear();
    this.closeSubscriber();
  }

  /** Names the store, never its client (which may hold a password) or what it holds. */
  toJSON(): { store: string; keyPrefix: string } {
    return { store: 'RedisTokenStore', keyPrefix: this.keyPrefix };
  }

  /** @internal Names the store, never its client or what it holds. */
  [inspect.custom](): string {
    return `RedisTokenStore { keyPrefix: ${inspect(this.keyPrefix)} }`;
  }

  /** The app closed its client: the subscriber goes too (the watchers stay, for a `close()` to come). */
  private closeSubscriber(): void {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.stopListening?.();
    this.stopListening = undefined;
    try {
      subscriber?.close();
    } catch {
      // already closed
    }
  }

  private dispatch(channel: string): void {
    for (const onChange of this.watchers.get(channel) ?? []) {
      try {
        onChange();
      } catch {
        // a watcher's failure is its own
      }
    }
  }

  private keyOf(context: TransferTokenStoreContext): Uint8Array {
    return this.encryptionKey ?? context.encryptionKey;
  }

  /** One hash tag per agent: its entry and lock in one slot of a cluster. */
  private names(key: string): {
    entry: string;
    lock: string;
    channel: string;
    aad: (version: number) => string;
  } {
    const id =
      this.encryptionKey === undefined
        ? key
        : createHmac('sha256', this.encryptionKey).update(key).digest('hex').slice(0, 32);
    const base = `${this.keyPrefix}{${id}}`;
    return {
      entry: `${base}:token`,
      lock: `${base}:lock`,
      channel: `${base}:changed`,
      aad: (version) => `${base}:token\n${version}`,
    };
  }
}

function invalid(option: string, why: string): TransferAuthError {
  return new TransferAuthError('INVALID_CONFIG', `RedisTokenStore: option \`${option}\` ${why}.`);
}

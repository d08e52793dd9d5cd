/**
 * The Redis calls the store makes, on either client: ioredis (`Redis`, `Cluster`; v5, v6) or node-redis
 * (v5 `createClient`, `createCluster`). Told apart by shape, so that neither package is loaded here.
 */

/**
 * A client the app already has: an ioredis `Redis` or `Cluster`, or a node-redis client (connected). Only
 * `eval` and `duplicate` are used; typed loosely so that every version's own typings fit.
 */
export interface RedisTokenStoreClient {
  eval(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
}

/** @internal A pub/sub connection the store opened itself (and closes). */
export interface Subscriber {
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  close(): void;
}

/** @internal */
export interface RedisCalls {
  /** Runs a Lua script; every key it touches is in `keys` (one hash slot). */
  run(script: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /**
   * A command that cannot run in a script (`WAIT`), on the connection that holds `key`: the one the
   * scripts of `key` ran on (a cluster's node for its slot).
   */
  command(key: string, args: readonly string[]): Promise<unknown>;
  /** A new connection for pub/sub, with messages delivered to `onMessage`. */
  subscriber(onMessage: (channel: string) => void): Subscriber;
  /** Calls `onEnd` once the app's client is closed for good; returns a function that stops listening. */
  whenClientEnds(onEnd: () => void): () => void;
}

type Listener = (...args: never[]) => void;
interface Emitter {
  on(event: string, listener: Listener): unknown;
  removeListener?(event: string, listener: Listener): unknown;
}
interface IoRedisLike extends Emitter {
  /** `ready`, `connecting`, ... `reconnecting`, `close`, `end`. */
  status?: string;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
  call(command: string, ...args: string[]): Promise<unknown>;
  /** A cluster's: the node keys (`host:port`, the master first) of each slot, and its nodes. */
  slots?: string[][];
  nodes?(role: 'master'): { options: { host?: string; port?: number }; call: IoRedisLike['call'] }[];
  duplicate(...overrides: unknown[]): IoRedisLike;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  disconnect(): void;
  stream?: { unref?(): void };
  isCluster?: boolean;
}
interface NodeRedisLike extends Emitter {
  isOpen?: boolean;
  /** A client's: false while it reconnects (a cluster has none). */
  isReady?: boolean;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** A client's takes the arguments; a cluster's the first key, whether it reads only, and the arguments. */
  sendCommand(...args: unknown[]): Promise<unknown>;
  getSlotMaster?: unknown;
  duplicate(overrides?: object): NodeRedisLike;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  destroy?(): void;
  disconnect?(): Promise<unknown>;
  unref?(): void;
}

const noop = (): void => undefined;

/**
 * @internal What a call answers at once while the app's client has lost its connection (it would queue
 * the call until it reconnects): the store's state then says so within one call, not one timeout.
 */
export class RedisDisconnectedError extends Error {
  override readonly name = 'RedisDisconnectedError';
  constructor() {
    super('DISCONNECTED the Redis client is reconnecting');
  }
}

/** `call()`, or a rejection at once while `connected()` says no. */
function whenConnected<T>(connected: () => boolean, call: () => Promise<T>): Promise<T> {
  return connected() ? call() : Promise.reject(new RedisDisconnectedError());
}

/** node-redis has `sendCommand` and no `call`; ioredis has `call`. */
function isNodeRedis(client: object): boolean {
  const c = client as { sendCommand?: unknown; call?: unknown };
  return typeof c.sendCommand === 'function' && typeof c.call !== 'function';
}

/** @internal Whether `client` looks like a client of either package. */
export function isRedisClient(client: unknown): client is RedisTokenStoreClient {
  const c = client as { eval?: unknown; duplicate?: unknown } | null;
  return typeof c === 'object' && c !== null && typeof c.eval === 'function' && typeof c.duplicate === 'function';
}

/** @internal */
export function redisCalls(client: RedisTokenStoreClient): RedisCalls {
  return isNodeRedis(client)
    ? nodeRedisCalls(client as unknown as NodeRedisLike)
    : ioRedisCalls(client as unknown as IoRedisLike);
}

/**
 * The pub/sub duplicate lives no longer than the app's client: when the app closes its client (`quit()`,
 * `disconnect()`, `destroy()`; ioredis and a node-redis client say `end`, a node-redis cluster
 * `disconnect`), the store closes its own, so that it never keeps a process alive on its own.
 */
function whenEnds(client: Emitter, events: readonly string[]): (onEnd: () => void) => () => void {
  return (onEnd) => {
    const listener = (() => onEnd()) as Listener;
    for (const event of events) client.on(event, listener);
    return () => {
      for (const event of events) client.removeListener?.(event, listener);
    };
  };
}

function ioRedisCalls(client: IoRedisLike): RedisCalls {
  // Not while it reconnects after losing its connection (ioredis would queue the call until then).
  const connected = (): boolean => !['reconnecting', 'close', 'end'].includes(client.status ?? 'ready');
  return {
    whenClientEnds: whenEnds(client, ['end']),
    run: (script, keys, args) => whenConnected(connected, () => client.eval(script, keys.length, ...keys, ...args)),
    command: (key, args) => whenConnected(connected, () => ioRedisCommand(client, key, args)),
    subscriber(onMessage) {
      // Whatever the app set on its client, this one queues its SUBSCRIBE until it is connected and
      // subscribes again after a reconnect: without them, no hint would ever arrive.
      const options = { enableOfflineQueue: true, autoResubscribe: true, lazyConnect: false };
      const sub = client.isCluster === true ? client.duplicate([], options) : client.duplicate(options);
      sub.on('error', noop); // reconnects by itself; polling covers the messages lost meanwhile
      sub.on('message', ((channel: string) => onMessage(channel)) as Listener);
      // Not what keeps a process alive: the app's own client does that as long as it is open. (A cluster's
      // connections cannot be unref'd: they are closed with the app's client, or at module shutdown.)
      if (sub.isCluster !== true) sub.on('connect', (() => sub.stream?.unref?.()) as Listener);
      return {
        subscribe: async (channel) => void (await sub.subscribe(channel)),
        unsubscribe: async (channel) => void (await sub.unsubscribe(channel)),
        close: () => sub.disconnect(),
      };
    },
  };
}

function nodeRedisCalls(client: NodeRedisLike): RedisCalls {
  // Not while a client that was ready reconnects (node-redis would queue the call until then); a client
  // still making its first connection is waited for, and a closed one fails by itself.
  let wasReady = client.isReady === true;
  client.on('ready', (() => (wasReady = true)) as Listener);
  const connected = (): boolean => !wasReady || client.isOpen !== true || client.isReady !== false;
  return {
    whenClientEnds: whenEnds(client, ['end', 'disconnect']),
    run: (script, keys, args) =>
      whenConnected(connected, () => client.eval(script, { keys: [...keys], arguments: [...args] })),
    command: (key, args) =>
      whenConnected(connected, () =>
        client.getSlotMaster === undefined ? client.sendCommand([...args]) : client.sendCommand(key, false, [...args]),
      ),
    subscriber(onMessage) {
      const sub = client.duplicate({ disableOfflineQueue: false }); // queue SUBSCRIBE until connected
      sub.on('error', noop); // without a listener node-redis would throw it: reconnects by itself
      let closed = false;
      // Connect, (un)subscribe and close run one after the other: a close that lands while a subscribe is
      // in flight would otherwise leave the connection open (a cluster's, at least), or close it twice.
      let queue: Promise<unknown> = sub.connect().then(() => (closed ? undefined : sub.unref?.()));
      queue.catch(noop);
      const next = (call: () => Promise<unknown>): Promise<void> => {
        const done = queue.then(() => (closed ? undefined : call()));
        queue = done.catch(noop);
        return done.then(noop);
      };
      return {
        subscribe: (channel) => next(() => sub.subscribe(channel, (_message, from) => onMessage(from))),
        unsubscribe: (channel) => next(() => sub.unsubscribe(channel)),
        close: () => {
          if (closed) return;
          closed = true;
          // After the connect (destroying a node-redis client while it connects leaves the socket open).
          void queue.catch(noop).then(() => closeNodeRedis(sub));
        },
      };
    },
  };
}

function closeNodeRedis(sub: NodeRedisLike): void {
  try {
    if (typeof sub.destroy === 'function') sub.destroy();
    else sub.disconnect?.().catch(noop);
  } catch {
    // already closed
  }
}

/** `WAIT` and the like on ioredis: a cluster sends a keyless command to any node, so to the key's slot master. */
function ioRedisCommand(client: IoRedisLike, key: string, [name, ...args]: readonly string[]): Promise<unknown> {
  if (client.isCluster !== true) return client.call(name as string, ...args);
  const at = client.slots?.[keySlot(key)]?.[0];
  const node = client.nodes?.('master').find(({ options }) => `${options.host}:${options.port}` === at);
  if (node === undefined) return Promise.reject(new Error('CLUSTERDOWN no known master for the slot'));
  return node.call(name as string, ...args);
}

/** The cluster slot of `key`: CRC16 (XMODEM) of its hash tag, mod 16384, as Redis computes it. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const tag = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

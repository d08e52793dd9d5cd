/**
 * Eviction on a test-owned Redis: `maxmemory` + a `maxmemory-policy`, and a way to make Redis itself evict a
 * given key (`evicted_keys` counts it, `__keyevent@0__:evicted` fires), not a `DEL` standing in for it.
 *
 * There is no command that evicts one key: `DEBUG` is off by default on Redis 7 (`enable-debug-command no`,
 * immutable: only `--enable-debug-command yes|local` at start turns it on) and has no such subcommand anyway.
 * So `forceEviction` writes filler keys until Redis has evicted the key. It looks at the key with
 * `OBJECT IDLETIME`, which does not touch it: a `GET`/`EXISTS` would make it recently used and keep it alive
 * under an LRU policy.
 */
import { RespError, fields, infoFields, sendCommand, sendCommands, type RespValue } from './resp';

export type MaxmemoryPolicy =
  | 'noeviction'
  | 'allkeys-lru'
  | 'allkeys-lfu'
  | 'allkeys-random'
  | 'volatile-lru'
  | 'volatile-lfu'
  | 'volatile-random'
  | 'volatile-ttl';

/** A server on 127.0.0.1 (a `RedisProcess` fits). */
export interface PortOf {
  readonly port: number;
}

export interface EvictionOptions {
  /** @default 'allkeys-lru' */
  policy?: MaxmemoryPolicy;
  /** Bytes (or a Redis size such as '2mb'). @default what the server uses now + 1 MiB */
  maxmemory?: number | string;
  /** `maxmemory-samples` (Redis' default is 5). @default 10 */
  samples?: number;
}

/** `CONFIG SET maxmemory / maxmemory-policy / maxmemory-samples` on a test-owned server; resolves the maxmemory set. */
export async function configureEviction(server: PortOf, options: EvictionOptions = {}): Promise<number> {
  const maxmemory = options.maxmemory ?? (await usedMemory(server)) + 1024 * 1024;
  await sendCommand(server.port, [
    'CONFIG',
    'SET',
    'maxmemory',
    String(maxmemory),
    'maxmemory-policy',
    options.policy ?? 'allkeys-lru',
    'maxmemory-samples',
    String(options.samples ?? 10),
  ]);
  return Number(fields(await sendCommand(server.port, ['CONFIG', 'GET', 'maxmemory']))['maxmemory']);
}

export interface ForceEvictionOptions {
  /** Size of each filler value. @default 1024 */
  fillerBytes?: number;
  /** Fillers written per round trip. @default 100 */
  batch?: number;
  /** @default 'eviction-filler:' */
  fillerPrefix?: string;
  /** @default 15000 */
  timeoutMs?: number;
}

export interface EvictionResult {
  /** Filler keys written. */
  fillers: number;
  /** How much `evicted_keys` grew meanwhile (the key and fillers). */
  evictedKeys: number;
  ms: number;
}

/**
 * Writes filler keys (no TTL) until Redis has evicted `key`. Needs `maxmemory` set (`configureEviction`).
 * Under a `volatile-*` policy only keys with a TTL are evicted: `key` needs one, and once no filler fits, Redis
 * answers OOM: then this rejects. Under `noeviction` it rejects at the first OOM. Redis keeps evicting while the
 * memory stays over `maxmemory`: `removeFillers` afterwards makes room again.
 */
export async function forceEviction(
  server: PortOf,
  key: string,
  options: ForceEvictionOptions = {},
): Promise<EvictionResult> {
  const started = performance.now();
  const fillerBytes = options.fillerBytes ?? 1024;
  const batch = options.batch ?? 100;
  const prefix = options.fillerPrefix ?? 'eviction-filler:';
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  const config = fields(await sendCommand(server.port, ['CONFIG', 'GET', 'maxmemory*']));
  if (config['maxmemory'] === '0') throw new Error(`maxmemory is 0 on port ${server.port}: configureEviction() first`);
  if ((await sendCommand(server.port, ['OBJECT', 'IDLETIME', key])) === null) {
    throw new Error(`${key} does not exist on port ${server.port}`);
  }
  const evictedBefore = await evictedKeys(server);
  const value = 'x'.repeat(fillerBytes);
  const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  let fillers = 0;
  for (;;) {
    const commands: string[][] = [];
    for (let i = 0; i < batch; i++) commands.push(['SET', `${prefix}${run}:${fillers + i}`, value]);
    commands.push(['OBJECT', 'IDLETIME', key]);
    const replies: RespValue[] = await sendCommands(server.port, commands, { timeoutMs: 10_000 });
    fillers += batch;
    const gone = replies[replies.length - 1] === null;
    if (gone) {
      return { fillers, evictedKeys: (await evictedKeys(server)) - evictedBefore, ms: performance.now() - started };
    }
    const refused = replies.find((reply): reply is RespError => reply instanceof RespError);
    if (refused !== undefined) {
      throw new Error(
        `${key} was not evicted (policy ${config['maxmemory-policy']}, maxmemory ${config['maxmemory']}): a filler ` +
          `write was refused with ${refused.reply}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(`${key} was not evicted after ${fillers} filler keys of ${fillerBytes} bytes`);
    }
  }
}

/** Deletes the filler keys (`SCAN` + `UNLINK`), leaving everything else. Resolves how many it deleted. */
export async function removeFillers(server: PortOf, fillerPrefix = 'eviction-filler:'): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const reply = (await sendCommand(server.port, ['SCAN', cursor, 'MATCH', `${fillerPrefix}*`, 'COUNT', 1000])) as [
      string,
      string[],
    ];
    cursor = reply[0];
    if (reply[1].length > 0) removed += Number(await sendCommand(server.port, ['UNLINK', ...reply[1]]));
  } while (cursor !== '0');
  return removed;
}

/** `evicted_keys` from `INFO stats`. */
export async function evictedKeys(server: PortOf): Promise<number> {
  return Number(infoFields(await sendCommand(server.port, ['INFO', 'stats']))['evicted_keys']);
}

async function usedMemory(server: PortOf): Promise<number> {
  return Number(infoFields(await sendCommand(server.port, ['INFO', 'memory']))['used_memory']);
}

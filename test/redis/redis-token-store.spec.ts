import { randomBytes } from 'node:crypto';
import { Cluster as IoCluster, Redis as IoRedis } from 'ioredis';
import { Redis as IoRedis6 } from 'ioredis-v6';
import { createClient, createCluster } from 'redis';
import { createClient as createClient6 } from 'redis-v6';
import type { StoredTransferToken, TransferTokenStoreContext } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore, type RedisTokenStoreClient } from 'nestjs-freedompay-transfer-auth/redis';
import { deriveStoreScope } from '../../lib/token-store/store-key';
import { sleep, waitFor } from '../support/e2e';
import { storedEntry } from '../support/redis/store-fixtures';
import { startRedis, startRedisCluster, type RedisProcess } from '../support/redis/redis-server';
import { startSentinelTopology, type SentinelTopology } from '../support/redis/topology';

/**
 * The store itself, against real Redis servers this file starts, with every client it takes: the same
 * suite for ioredis v5 and v6, node-redis v5 and v6, both packages' cluster clients on a 3-master cluster,
 * and ioredis in Sentinel mode on a primary + replica + 3 Sentinels.
 */

/** A client as the app made it, and raw commands sent through it (routed by `key` on a cluster). */
interface AppClient {
  readonly client: RedisTokenStoreClient;
  raw(args: string[], key?: string): Promise<unknown>;
  close(): void;
}

interface Target {
  readonly name: string;
  readonly cluster: boolean;
  /** Runs on the Sentinel topology: `nodes` is its primary (where the keys and connections are). */
  readonly sentinel?: boolean;
  connect(nodes: readonly RedisProcess[]): Promise<AppClient>;
}

const noop = (): void => undefined;

const TARGETS: Target[] = [
  {
    name: 'ioredis v5 Redis',
    cluster: false,
    connect: async ([node]) => {
      const client = new IoRedis(node!.url);
      client.on('error', noop);
      await client.ping();
      return { client, raw: ([cmd, ...args]) => client.call(cmd!, ...args), close: () => client.disconnect() };
    },
  },
  {
    name: 'ioredis v6 Redis',
    cluster: false,
    connect: async ([node]) => {
      const client = new IoRedis6(node!.url);
      client.on('error', noop);
      await client.ping();
      return { client, raw: ([cmd, ...args]) => client.call(cmd!, ...args), close: () => client.disconnect() };
    },
  },
  {
    name: 'node-redis v5 createClient',
    cluster: false,
    connect: async ([node]) => {
      const client = createClient({ url: node!.url });
      client.on('error', noop);
      await client.connect();
      return { client, raw: (args) => client.sendCommand(args), close: () => client.destroy() };
    },
  },
  {
    name: 'node-redis v6 createClient',
    cluster: false,
    connect: async ([node]) => {
      const client = createClient6({ url: node!.url });
      client.on('error', noop);
      await client.connect();
      return { client, raw: (args) => client.sendCommand(args), close: () => client.destroy() };
    },
  },
  {
    name: 'ioredis v5 Sentinel mode',
    cluster: false,
    sentinel: true,
    connect: async () => {
      const { sentinels, masterName } = await (topology ??= startSentinelTopology());
      const client = new IoRedis({ sentinels, name: masterName });
      client.on('error', noop);
      await client.ping();
      return { client, raw: ([cmd, ...args]) => client.call(cmd!, ...args), close: () => client.disconnect() };
    },
  },
  {
    name: 'ioredis v5 Cluster',
    cluster: true,
    connect: async (nodes) => {
      const client = new IoCluster(nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
      client.on('error', noop);
      await client.call('PING');
      // Connected to every master now rather than as keys lead there: connection counts stay put.
      await Promise.all(client.nodes('master').map((node) => node.ping()));
      return { client, raw: ([cmd, ...args]) => client.call(cmd!, ...args), close: () => client.disconnect() };
    },
  },
  {
    name: 'node-redis v5 createCluster',
    cluster: true,
    connect: async (nodes) => {
      const client = createCluster({ rootNodes: nodes.map(({ url }) => ({ url })) });
      client.on('error', noop);
      await client.connect();
      return { client, raw: (args, key) => client.sendCommand(key, false, args), close: () => client.destroy() };
    },
  },
];

/** One cluster for both cluster clients, started when the first of them needs it. */
let cluster: ReturnType<typeof startRedisCluster> | undefined;
/** The Sentinel topology, likewise. */
let topology: Promise<SentinelTopology> | undefined;
afterAll(async () => {
  if (cluster !== undefined) await (await cluster).stop();
  if (topology !== undefined) await (await topology).stop();
});

/** The agent's token as the lifecycle writes it: the tokens non-enumerable. */
const entry = storedEntry;

/** What a read makes of an entry that does not decrypt: its version, nothing usable (no token, all past). */
function expectUnreadable(read: StoredTransferToken | undefined, version: number): void {
  expect(read).toEqual({
    version,
    staleAt: 0,
    usableUntil: 0,
    accessExpiresAt: 0,
    refreshExpiresAt: 0,
    obtainedAt: 0,
    accessToken: '',
  });
  expect(read?.refreshToken).toBeUndefined();
}

const TIME_FIELDS = ['staleAt', 'usableUntil', 'refreshUsableUntil', 'obtainedAt'] as const;

/** Same clock for writer and reader here: a read-back time is off only by the round trips to Redis. */
const SAME_CLOCK_MS = 25;

/** Redis Cluster's slot of a key (CRC16/XMODEM of its hash tag), checked against the cluster below. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16_384;
}

function lines(reply: string): string[] {
  return reply
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/** A flat `[field, value, ...]` reply (RESP2), or a map (node-redis v6 speaks RESP3), as an object. */
function pairs(reply: unknown): Record<string, string> {
  if (reply instanceof Map) return Object.fromEntries([...reply].map(([k, v]) => [String(k), String(v)]));
  if (!Array.isArray(reply) && typeof reply === 'object' && reply !== null) {
    return Object.fromEntries(Object.entries(reply).map(([k, v]) => [k, String(v)]));
  }
  const flat = reply as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

describe.each(TARGETS)('RedisTokenStore with $name', (target) => {
  let nodes: readonly RedisProcess[];
  let own: RedisProcess | undefined;
  let app: AppClient;
  let prefix: string;
  let key: string;
  let context: TransferTokenStoreContext;
  const clients: AppClient[] = [];
  const stores: RedisTokenStore[] = [];

  beforeAll(async () => {
    if (target.cluster) nodes = (await (cluster ??= startRedisCluster())).nodes;
    else if (target.sentinel) nodes = [(await (topology ??= startSentinelTopology())).primary];
    else nodes = [(own = await startRedis())];
  }, 30_000);
  afterAll(async () => {
    await own?.stop();
  });
  beforeEach(async () => {
    prefix = `t-${randomBytes(4).toString('hex')}:`; // a key space of its own per test
    key = randomBytes(16).toString('hex');
    context = { encryptionKey: randomBytes(32) };
    app = await connect();
  });
  afterEach(() => {
    for (const store of stores.splice(0)) store.close();
    for (const client of clients.splice(0)) client.close();
  });

  async function connect(): Promise<AppClient> {
    const client = await target.connect(nodes);
    clients.push(client);
    return client;
  }

  function storeOn(client: AppClient, options: { encryptionKey?: Uint8Array } = {}): RedisTokenStore {
    const store = new RedisTokenStore({ client: client.client, keyPrefix: prefix, ...options });
    stores.push(store);
    return store;
  }

  /** Every key of this test's prefix, on whichever node holds it. */
  async function keys(): Promise<string[]> {
    const found = await Promise.all(nodes.map((node) => node.command('KEYS', `${prefix}*`)));
    return found.flatMap(lines).sort();
  }

  async function keyOfType(type: 'hash' | 'string'): Promise<string> {
    const names = [];
    for (const name of await keys()) if ((await app.raw(['TYPE', name], name)) === type) names.push(name);
    expect(names).toHaveLength(1);
    return names[0]!;
  }

  /** Connections open on the server(s), leaving out the one that asks. */
  async function connections(): Promise<number> {
    const lists = await Promise.all(nodes.map((node) => node.command('CLIENT', 'LIST')));
    return lists.flatMap(lines).filter((line) => line.includes('id=') && !line.includes('cmd=client|list')).length;
  }

  /**
   * That `count` store subscribers are open beyond `baseline`: exactly one connection each on a server;
   * on a cluster each is a duplicate of the whole cluster client (ioredis: a connection for the slots and
   * one that subscribes, more as it refreshes its slots; node-redis: one per master and one that
   * subscribes): there at least one each, and none once closed.
   */
  async function expectSubscribers(baseline: number, count: number): Promise<void> {
    const opened = (await connections()) - baseline;
    if (!target.cluster || count === 0) expect(opened).toBe(count);
    else expect(opened).toBeGreaterThanOrEqual(count);
  }

  /** Until the store subscribers are all closed: the connections back to `baseline`. */
  async function allClosed(baseline: number): Promise<void> {
    await settle(async () => (await connections()) === baseline, 'the subscriber(s) to close');
  }

  /** Whether at least `count` connections are subscribed to the channel named after `channelPart`. */
  async function subscribed(channelPart: string, count = 1): Promise<boolean> {
    let total = 0;
    for (const node of nodes) {
      for (const channel of lines(await node.command('PUBSUB', 'CHANNELS', `*${channelPart}*`))) {
        total += Number(lines(await node.command('PUBSUB', 'NUMSUB', channel))[1]);
      }
    }
    return total >= count;
  }

  async function settle(predicate: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 3_000;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
      await sleep(20);
    }
  }

  describe('read and compare-and-set write', () => {
    it('reads nothing as undefined, writes version 1 once, then only the next version', async () => {
      const store = storeOn(app);
      await expect(store.read(key, context)).resolves.toBeUndefined();
      const first = entry(1);
      await expect(store.write(key, first, context)).resolves.toBe(true);

      const read = await store.read(key, context);
      expect(read).toBeDefined();
      expect(read!.version).toBe(1);
      expect(read!.accessToken).toBe('acc-v1');
      expect(read!.refreshToken).toBe('ref-v1');
      expect(read!.accessExpiresAt).toBe(first.accessExpiresAt); // the upstream's own times: never moved
      expect(read!.refreshExpiresAt).toBe(first.refreshExpiresAt);
      for (const field of TIME_FIELDS)
        expect(Math.abs(read![field]! - first[field]!)).toBeLessThanOrEqual(SAME_CLOCK_MS);
      // Out of sight of printing, as in what the lifecycle writes.
      expect(Object.keys(read!)).not.toContain('accessToken');
      expect(Object.keys(read!)).not.toContain('refreshToken');
      expect(JSON.stringify(read)).not.toContain('acc-v1');

      await expect(store.write(key, entry(1), context)).resolves.toBe(false);
      await expect(store.write(key, entry(3), context)).resolves.toBe(false);
      expect((await store.read(key, context))!.accessToken).toBe('acc-v1');
      await expect(store.write(key, entry(2), context)).resolves.toBe(true);
      expect((await store.read(key, context))!.accessToken).toBe('acc-v2');
    });

    it('another store on another connection sees the same entry and the same fence', async () => {
      const mine = storeOn(app);
      const theirs = storeOn(await connect());
      await expect(mine.write(key, entry(1), context)).resolves.toBe(true);
      expect((await theirs.read(key, context))!.accessToken).toBe('acc-v1');
      await expect(theirs.write(key, entry(1), context)).resolves.toBe(false); // lost the race
      await expect(theirs.write(key, entry(2), context)).resolves.toBe(true);
      await expect(mine.write(key, entry(2), context)).resolves.toBe(false); // a lapsed holder is fenced off
    });

    it('an entry without a refresh token reads back without one', async () => {
      const store = storeOn(app);
      const now = Date.now();
      const e = {
        version: 1,
        staleAt: now + 1_000,
        usableUntil: now + 2_000,
        accessExpiresAt: now + 3_000,
        refreshExpiresAt: now,
        obtainedAt: now,
      };
      Object.defineProperty(e, 'accessToken', { value: 'only-access', enumerable: false });
      await store.write(key, e as StoredTransferToken, context);
      const read = await store.read(key, context);
      expect(read!.accessToken).toBe('only-access');
      expect(read!.refreshToken).toBeUndefined();
      expect(read!.refreshUsableUntil).toBeUndefined();
    });
  });

  describe('times, through Redis clock', () => {
    const AHEAD_MS = 600_000;
    const realNow = Date.now.bind(Date);
    afterEach(() => jest.restoreAllMocks());

    it('an entry written by a writer whose clock is 10 minutes ahead reads back on the reader clock', async () => {
      const store = storeOn(app);
      jest.spyOn(Date, 'now').mockImplementation(() => realNow() + AHEAD_MS);
      const written = entry(1, Date.now()); // the writer's deadlines, on its clock
      await store.write(key, written, context);
      jest.restoreAllMocks();

      const read = (await store.read(key, context))!;
      for (const field of TIME_FIELDS) {
        expect(Math.abs(read[field]! - (written[field]! - AHEAD_MS))).toBeLessThanOrEqual(SAME_CLOCK_MS);
      }
      // Why it matters: taken as written, the token would look usable for 10 more minutes than it is.
      expect(read.usableUntil - Date.now()).toBeLessThan(90_000 + SAME_CLOCK_MS);
      expect(written.usableUntil - Date.now()).toBeGreaterThan(AHEAD_MS);
    });

    it('a reader whose clock is 10 minutes ahead sees the deadlines 10 minutes later on its clock', async () => {
      const store = storeOn(app);
      const written = entry(1);
      await store.write(key, written, context);
      jest.spyOn(Date, 'now').mockImplementation(() => realNow() + AHEAD_MS);
      const read = (await store.read(key, context))!;
      jest.restoreAllMocks();
      for (const field of TIME_FIELDS) {
        expect(Math.abs(read[field]! - (written[field]! + AHEAD_MS))).toBeLessThanOrEqual(SAME_CLOCK_MS);
      }
    });

    it('the entry has no TTL, so that volatile-* eviction never picks it (an older TTL is taken off)', async () => {
      const store = storeOn(app);
      await store.write(key, entry(1), context);
      const name = await keyOfType('hash');
      expect(Number(await app.raw(['PTTL', name], name))).toBe(-1);
      await app.raw(['PEXPIRE', name, '600000'], name); // as 0.2 wrote it
      await store.write(key, entry(2), context);
      expect(Number(await app.raw(['PTTL', name], name))).toBe(-1);
    });
  });

  describe('what Redis holds', () => {
    it('is encrypted: two short fields, no token, no field names of the entry, no clock in the clear', async () => {
      const store = storeOn(app);
      await store.write(
        key,
        entry(1, Date.now(), { access: 'ACCESS-TOKEN-XYZ', refresh: 'REFRESH-TOKEN-XYZ' }),
        context,
      );
      const name = await keyOfType('hash');
      const hash = pairs(await app.raw(['HGETALL', name], name));
      expect(Object.keys(hash).sort()).toEqual(['d', 'v']);
      const everything = `${JSON.stringify(hash)}\n${Buffer.from(hash['d']!, 'base64').toString('latin1')}`;
      for (const plain of ['ACCESS-TOKEN', 'REFRESH-TOKEN', 'accessToken', 'refreshToken', 'staleAt', 'usableUntil']) {
        expect(everything).not.toContain(plain);
      }
      expect(everything).not.toMatch(/"(a|r|s|u)":/);
    });

    it('does not decrypt with another key: read as an entry with nothing usable, overwritten by the next write', async () => {
      const store = storeOn(app);
      await store.write(key, entry(1), context);
      const other = { encryptionKey: randomBytes(32) };
      expectUnreadable(await store.read(key, other), 1);
      await expect(store.write(key, entry(2), other)).resolves.toBe(true); // the next renewal's write
      expect((await store.read(key, other))?.accessToken).toBe('acc-v2');
    });

    it('binds the version: an entry whose `v` was changed by hand does not decrypt', async () => {
      const store = storeOn(app);
      await store.write(key, entry(1), context);
      const name = await keyOfType('hash');
      await app.raw(['HSET', name, 'v', '5'], name);
      expectUnreadable(await store.read(key, context), 5);
    });

    it('binds the key: an entry copied to another agent does not decrypt there', async () => {
      const store = storeOn(app);
      await store.write(key, entry(1), context);
      const name = await keyOfType('hash');
      const hash = pairs(await app.raw(['HGETALL', name], name));
      const otherKey = randomBytes(16).toString('hex');
      await store.write(otherKey, entry(1), context); // learn the other agent's key name
      const otherName = (await keys()).find((n) => n.includes(otherKey) && n !== name && n.endsWith('token'));
      expect(otherName).toBeDefined();
      await app.raw(['HSET', otherName!, 'v', hash['v']!, 'd', hash['d']!], otherName);
      expectUnreadable(await store.read(otherKey, context), 1);
    });

    it('key names hold no secret, and every key of an agent is in one hash slot', async () => {
      const agentSecret = `agent-secret-${randomBytes(8).toString('hex')}`;
      const scope = await deriveStoreScope('https://imts.example', 'agent-7', agentSecret);
      const store = storeOn(app);
      await store.write(scope.key, entry(1), scope.context);
      const lock = await store.lock(scope.key, 5_000);
      expect(lock).toBeDefined();
      const names = await keys();
      expect(names).toHaveLength(2); // the entry and the lock
      const slots = new Set(names.map(keySlot));
      expect(slots.size).toBe(1);
      if (target.cluster) {
        // The slot as the cluster itself computes it.
        for (const name of names) expect(Number(await app.raw(['CLUSTER', 'KEYSLOT', name]))).toBe(keySlot(name));
      }
      const secretHex = Buffer.from(scope.context.encryptionKey).toString('hex');
      for (const name of names) {
        expect(name).not.toContain(agentSecret);
        expect(name).not.toContain('agent-7');
        for (let i = 0; i + 8 <= secretHex.length; i++) expect(name).not.toContain(secretHex.slice(i, i + 8));
      }
      await lock!.release();
    });

    it('with `encryptionKey`: other key names, readable only with that key whatever the context', async () => {
      const encryptionKey = randomBytes(32);
      const keyed = storeOn(app, { encryptionKey });
      const derived = storeOn(app);
      await keyed.write(key, entry(1), context);
      const keyedNames = await keys();
      await derived.write(key, entry(1), context);
      const derivedNames = (await keys()).filter((name) => !keyedNames.includes(name));
      expect(keyedNames).toHaveLength(1);
      expect(derivedNames).toHaveLength(1);
      expect(keyedNames[0]).not.toContain(key);
      expect(derivedNames[0]).toContain(key);
      const keyHex = encryptionKey.toString('hex');
      for (let i = 0; i + 8 <= keyHex.length; i++) expect(keyedNames[0]).not.toContain(keyHex.slice(i, i + 8));

      // The option wins over the context's key: any context reads it back.
      const read = await keyed.read(key, { encryptionKey: randomBytes(32) });
      expect(read!.accessToken).toBe('acc-v1');
      // Another key, another key space: not there (rather than unreadable).
      await expect(storeOn(app, { encryptionKey: randomBytes(32) }).read(key, context)).resolves.toBeUndefined();
      // And under the name of the other key space, it does not decrypt either.
      const name = keyedNames[0]!;
      const hash = pairs(await app.raw(['HGETALL', name], name));
      const target2 = derivedNames[0]!;
      await app.raw(['HSET', target2, 'v', hash['v']!, 'd', hash['d']!], target2);
      expectUnreadable(await derived.read(key, context), 1);
    });
  });

  describe('lock', () => {
    it('is held by one holder at a time, for its ttl, and free again once released', async () => {
      const store = storeOn(app);
      const other = storeOn(await connect());
      const asked = performance.now();
      const lock = await store.lock(key, 5_000);
      expect(lock).toBeDefined();
      await expect(store.lock(key, 5_000)).resolves.toBeUndefined();
      await expect(other.lock(key, 5_000)).resolves.toBeUndefined();
      const name = await keyOfType('string');
      const pttl = Number(await app.raw(['PTTL', name], name));
      // Set for 5 s: no more has passed than since it was asked for (whatever the load), give or take ms rounding.
      expect(pttl).toBeGreaterThanOrEqual(5_000 - Math.ceil(performance.now() - asked) - 2);
      expect(pttl).toBeLessThanOrEqual(5_000);
      await lock!.release();
      await lock!.release(); // twice: nothing
      const again = await other.lock(key, 5_000);
      expect(again).toBeDefined();
      await again!.release();
    });

    it('a holder whose lock lapsed does not release the next holder lock', async () => {
      const store = storeOn(app);
      const other = storeOn(await connect());
      const lapsed = await store.lock(key, 100);
      expect(lapsed).toBeDefined();
      await sleep(200);
      const next = await other.lock(key, 5_000);
      expect(next).toBeDefined();
      const name = await keyOfType('string');
      const holder = await app.raw(['GET', name], name);
      await lapsed!.release();
      expect(await app.raw(['GET', name], name)).toBe(holder);
      expect(Number(await app.raw(['PTTL', name], name))).toBeGreaterThan(4_000);
      await expect(store.lock(key, 5_000)).resolves.toBeUndefined();
      await next!.release();
      await expect(app.raw(['EXISTS', name], name)).resolves.toBe(0);
    });
  });

  describe('watch', () => {
    it('hears a write by another store on another client within a second, and nothing once stopped', async () => {
      const watcher = storeOn(app);
      const writer = storeOn(await connect());
      const baseline = await connections();
      let calls = 0;
      const stop = watcher.watch(key, () => calls++);
      await settle(() => subscribed(key), 'the subscription');
      await expectSubscribers(baseline, 1);

      const wrote = Date.now();
      await writer.write(key, entry(1), context);
      await waitFor(() => calls === 1, 'onChange', { timeoutMs: 1_000 });
      expect(Date.now() - wrote).toBeLessThan(1_000);

      stop();
      stop(); // twice: nothing
      await writer.write(key, entry(2), context);
      await sleep(300);
      expect(calls).toBe(1);
      // The last watcher gone, the pub/sub connection is closed; the app's client is not.
      await allClosed(baseline);
      expect((await watcher.read(key, context))!.version).toBe(2);
    });

    it('two watchers of one key: both called; the connection stays until the last one stops', async () => {
      const baseline = await connections();
      const store = storeOn(app);
      const counts = [0, 0];
      const stops = [store.watch(key, () => counts[0]!++), store.watch(key, () => counts[1]!++)];
      await settle(() => subscribed(key), 'the subscription');
      await expectSubscribers(baseline, 1);
      await store.write(key, entry(1), context);
      await waitFor(() => counts[0] === 1 && counts[1] === 1, 'both watchers');
      stops[0]!();
      await store.write(key, entry(2), context);
      await waitFor(() => counts[1] === 2, 'the remaining watcher');
      expect(counts[0]).toBe(1);
      await expectSubscribers(baseline, 1);
      stops[1]!();
      await allClosed(baseline);
    });

    it('watchers of two keys share one connection; each hears only its key', async () => {
      const baseline = await connections();
      const store = storeOn(app);
      const otherKey = randomBytes(16).toString('hex');
      let mine = 0;
      let theirs = 0;
      const stopMine = store.watch(key, () => mine++);
      const stopTheirs = store.watch(otherKey, () => theirs++);
      await settle(async () => (await subscribed(key)) && (await subscribed(otherKey)), 'both subscriptions');
      await expectSubscribers(baseline, 1);
      await store.write(otherKey, entry(1), context);
      await waitFor(() => theirs === 1, 'the other key');
      await sleep(100);
      expect(mine).toBe(0);
      stopTheirs();
      await settle(async () => !(await subscribed(otherKey)), 'the other key unsubscribed');
      await expectSubscribers(baseline, 1);
      await store.write(key, entry(1), context);
      await waitFor(() => mine === 1, 'my key');
      stopMine();
      await allClosed(baseline);
    });

    it('two stores sharing one client: each its own subscriber, closed with its last watcher', async () => {
      const baseline = await connections();
      const a = storeOn(app);
      const b = storeOn(app);
      let calledA = 0;
      let calledB = 0;
      const stopA = a.watch(key, () => calledA++);
      const stopB = b.watch(key, () => calledB++);
      await settle(() => subscribed(key, 2), 'both subscriptions');
      await expectSubscribers(baseline, 2);
      await a.write(key, entry(1), context);
      await waitFor(() => calledA === 1 && calledB === 1, 'both stores');
      stopA();
      await settle(async () => !(await subscribed(key, 2)), 'the first subscriber to unsubscribe');
      await settle(async () => target.cluster || (await connections()) === baseline + 1, 'the first to close');
      await expectSubscribers(baseline, 1);
      await a.write(key, entry(2), context);
      await waitFor(() => calledB === 2, 'the second store');
      expect(calledA).toBe(1);
      stopB();
      await allClosed(baseline);
      await expect(b.read(key, context)).resolves.toMatchObject({ version: 2 }); // the shared client is open
    });

    it('close() closes the subscriber, never the app client; a later watch opens another', async () => {
      const baseline = await connections();
      const store = storeOn(app);
      let calls = 0;
      store.watch(key, () => calls++);
      await settle(() => subscribed(key), 'the subscription');
      store.close();
      await allClosed(baseline);
      await store.write(key, entry(1), context);
      await sleep(200);
      expect(calls).toBe(0);
      await expect(store.read(key, context)).resolves.toMatchObject({ version: 1 });

      const stop = store.watch(key, () => calls++);
      await settle(() => subscribed(key), 'the new subscription');
      await store.write(key, entry(2), context);
      await waitFor(() => calls === 1, 'the new watcher');
      stop();
      await allClosed(baseline);
    });

    it('a watcher stopped at once, before its subscriber connected: no error, nothing left open', async () => {
      // Regression: with node-redis, the subscriber was destroyed twice (once connected, and by close()):
      // the second threw ClientClosedError in a promise nobody handled, which ends a Node process.
      const baseline = await connections();
      const store = storeOn(app);
      store.watch(key, noop)();
      const again = store.watch(key, noop);
      again();
      store.close();
      await sleep(200);
      await allClosed(baseline);
      const other = storeOn(app);
      other.watch(randomBytes(16).toString('hex'), noop)();
      other.close(); // after its last watcher stopped: nothing more to close
      await allClosed(baseline);
      await expect(store.read(key, context)).resolves.toBeUndefined(); // the app's client is still open
    });

    it('a watcher that throws does not keep the others from being called', async () => {
      const store = storeOn(app);
      let calls = 0;
      const stops = [
        store.watch(key, () => {
          throw new Error('a watcher failure');
        }),
        store.watch(key, () => calls++),
      ];
      await settle(() => subscribed(key), 'the subscription');
      await store.write(key, entry(1), context);
      await waitFor(() => calls === 1, 'the second watcher');
      for (const stop of stops) stop();
    });
  });
});

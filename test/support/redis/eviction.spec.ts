import { Redis } from 'ioredis';
import { configureEviction, evictedKeys, forceEviction, removeFillers } from './eviction';
import { startRedis, type RedisProcess } from './redis-server';

/** The eviction helper's own checks: Redis itself evicts the key (not a DEL), under the policies that can. */
describe('eviction helpers', () => {
  let redis: RedisProcess;
  beforeEach(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await redis.stop();
  });

  it('DEBUG is off on Redis 7 by default (and cannot be turned on at run time)', async () => {
    await expect(redis.command('DEBUG', 'SLEEP', '0')).rejects.toThrow(/DEBUG command not allowed/);
    await expect(redis.command('CONFIG', 'SET', 'enable-debug-command', 'yes')).rejects.toThrow(/immutable config/);
  });

  it('allkeys-lru: forceEviction makes Redis evict the key (evicted_keys, the evicted keyspace event)', async () => {
    const maxmemory = await configureEviction(redis, { policy: 'allkeys-lru' });
    expect(maxmemory).toBeGreaterThan(1024 * 1024);
    expect(await redis.command('CONFIG', 'GET', 'maxmemory-policy')).toBe('maxmemory-policy\nallkeys-lru');
    await redis.command('CONFIG', 'SET', 'notify-keyspace-events', 'Ee');
    const events = new Redis(redis.url);
    const evicted: string[] = [];
    try {
      await events.subscribe('__keyevent@0__:evicted');
      events.on('message', (_channel: string, key: string) => evicted.push(key));
      await redis.command('HSET', 'store:{agent}:token', 'v', '1', 'd', 'x');
      await redis.command('SET', 'store:{agent}:other', 'kept?');
      const before = await evictedKeys(redis);
      const result = await forceEviction(redis, 'store:{agent}:token');
      console.log(
        `allkeys-lru: evicted after ${result.fillers} fillers, ${result.evictedKeys} keys evicted, ${Math.round(result.ms)} ms`,
      );
      expect(await redis.command('EXISTS', 'store:{agent}:token')).toBe('0');
      expect(result.evictedKeys).toBeGreaterThanOrEqual(1);
      expect(await evictedKeys(redis)).toBeGreaterThanOrEqual(before + result.evictedKeys); // it goes on meanwhile
      const deadline = Date.now() + 2_000;
      while (!evicted.includes('store:{agent}:token') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(evicted).toContain('store:{agent}:token');
      expect(await removeFillers(redis)).toBeGreaterThan(0);
      expect(await redis.command('KEYS', 'eviction-filler:*')).toBe('');
    } finally {
      events.disconnect();
    }
  });

  it('volatile-lru: a key with a TTL goes first; a key without one is never evicted (OOM instead)', async () => {
    await configureEviction(redis, { policy: 'volatile-lru' });
    await redis.command('SET', 'with-ttl', 'v', 'PX', '600000');
    const result = await forceEviction(redis, 'with-ttl');
    expect(await redis.command('EXISTS', 'with-ttl')).toBe('0');
    console.log(`volatile-lru: key with a TTL evicted after ${result.fillers} fillers`);
    await removeFillers(redis);
    await redis.command('SET', 'no-ttl', 'v');
    await expect(forceEviction(redis, 'no-ttl', { timeoutMs: 5_000 })).rejects.toThrow(
      /no-ttl was not evicted \(policy volatile-lru, maxmemory \d+\): a filler write was refused with OOM command not allowed/,
    );
    expect(await redis.command('GET', 'no-ttl')).toBe('v');
  });

  it('noeviction: refuses at once; without maxmemory: says to configure it', async () => {
    await redis.command('SET', 'k', 'v');
    await expect(forceEviction(redis, 'k')).rejects.toThrow(/maxmemory is 0 on port \d+: configureEviction\(\) first/);
    await configureEviction(redis, { policy: 'noeviction' });
    await expect(forceEviction(redis, 'k')).rejects.toThrow(/a filler write was refused with OOM/);
    await expect(forceEviction(redis, 'missing')).rejects.toThrow(/missing does not exist/);
  });
});

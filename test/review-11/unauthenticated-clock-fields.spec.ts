import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { StoredTransferToken } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/**
 * Finding: the sealed entry is bound to its key name and version (AES-GCM additional data), but the
 * clock fields beside it, `w` (the writer's clock) and `at` (Redis' clock at the write), are not
 * authenticated, and RedisTokenStore.read moves every deadline by `at - w` without a bound. Anyone who can
 * write to Redis, without the key or the credentials, can push the stale point and the usable end of the
 * fleet's token years ahead: every process adopts it (it goes stale "later" than anything), none renews
 * it, and each serves it after it expired, until the upstream refuses it.
 */

const YEAR_MS = 365 * 24 * 3_600_000;

function entry(now: number): StoredTransferToken {
  const e = {
    version: 1,
    staleAt: now + 60_000,
    usableUntil: now + 90_000,
    refreshUsableUntil: now + 300_000,
    accessExpiresAt: now + 100_000,
    refreshExpiresAt: now + 400_000,
    obtainedAt: now,
  };
  Object.defineProperty(e, 'accessToken', { value: 'acc-v1', enumerable: false });
  Object.defineProperty(e, 'refreshToken', { value: 'ref-v1', enumerable: false });
  return e as StoredTransferToken;
}

describe('review 11: the clock fields of a stored entry', () => {
  let redis: RedisProcess;
  let client: Redis;
  let store: RedisTokenStore;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    client.on('error', () => undefined);
    await client.ping();
    store = new RedisTokenStore({ client, keyPrefix: 'review11-clock:' });
  });
  afterAll(async () => {
    store.close();
    client.disconnect();
    await redis.stop();
  });

  it.each<[string, (name: string) => Promise<unknown>]>([
    [
      'w moved back a year',
      async (name) => client.hset(name, 'w', String(Number(await client.hget(name, 'w')) - YEAR_MS)),
    ],
    ['w deleted (read as 0: ~56 years)', (name) => client.hdel(name, 'w')],
  ])('cannot be altered, without the key, to move the deadlines: %s', async (_name, tamper) => {
    const key = randomBytes(16).toString('hex');
    const context = { encryptionKey: randomBytes(32) };
    const written = entry(Date.now());
    await store.write(key, written, context);
    await tamper(`review11-clock:{${key}}:token`); // no key, no credentials needed

    // Expected: the read fails (not authentic) or the deadlines stay where they were written.
    // Actual: they are read a year later.
    const read = await store.read(key, context).catch(() => undefined);
    const movedMs = read === undefined ? 0 : read.usableUntil - written.usableUntil;
    expect(movedMs).toBeLessThan(1_000);
  });
});

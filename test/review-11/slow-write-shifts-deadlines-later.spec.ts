import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { StoredTransferToken } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { sleep } from '../support/e2e';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/**
 * Finding: RedisTokenStore.read translates the writer's deadlines with `at - w`, where `w` is the
 * writer's clock when it SENT the write and `at` is Redis' clock when the write RAN. Every millisecond the
 * write spent in transit (a slow or paused Redis, a failover, a write that timed out in StoreAccess and
 * landed later) moves every reader's deadlines LATER by as much: the unsafe direction. Readers then hand
 * out a token past its usable end.
 */

const STUCK_MS = 3_000;
const SAME_CLOCK_MS = 50;

function entry(version: number, now: number): StoredTransferToken {
  const e = {
    version,
    staleAt: now + 1_000,
    usableUntil: now + 2_000,
    refreshUsableUntil: now + 60_000,
    accessExpiresAt: now + 2_500,
    refreshExpiresAt: now + 60_000,
    obtainedAt: now,
  };
  Object.defineProperty(e, 'accessToken', { value: `acc-v${version}`, enumerable: false });
  Object.defineProperty(e, 'refreshToken', { value: `ref-v${version}`, enumerable: false });
  return e as StoredTransferToken;
}

describe('review 11: a write that was slow to reach Redis', () => {
  let redis: RedisProcess;
  let client: Redis;
  let store: RedisTokenStore;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    client.on('error', () => undefined);
    await client.ping();
    store = new RedisTokenStore({ client, keyPrefix: 'review11:' });
  });
  afterAll(async () => {
    store.close();
    client.disconnect();
    await redis.stop();
  });

  it('is read back with deadlines no later than the writer wrote them (same clock)', async () => {
    const key = randomBytes(16).toString('hex');
    const context = { encryptionKey: randomBytes(32) };
    await redis.pause(); // e.g. a failover, or a server stalled on a fork
    const written = entry(1, Date.now());
    const write = store.write(key, written, context); // the lifecycle gave up on it after 2 s...
    await sleep(STUCK_MS);
    await redis.resume();
    await expect(write).resolves.toBe(true); // ... but it landed

    const read = (await store.read(key, context))!;
    // Expected: the same deadlines (same host, same clock), give or take a round trip, never later.
    // Actual: every deadline STUCK_MS later: a reader serves the token ~3 s past its usable end.
    expect(read.usableUntil - written.usableUntil).toBeLessThanOrEqual(SAME_CLOCK_MS);
    expect(read.staleAt - written.staleAt).toBeLessThanOrEqual(SAME_CLOCK_MS);
    // What it costs: the token is past its usable end, yet the reader places that end in the future.
    expect(written.usableUntil).toBeLessThan(Date.now());
    expect(read.usableUntil).toBeLessThan(Date.now());
  });
});

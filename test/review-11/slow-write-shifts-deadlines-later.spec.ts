import { randomBytes } from 'node:crypto';
import { sleep } from '../support/e2e';
import { storedEntry, useRedisStore } from '../support/redis/store-fixtures';

/**
 * Finding: RedisTokenStore.read translated the writer's deadlines with `at - w`, where `w` was the
 * writer's clock when it SENT the write and `at` Redis' clock when the write RAN. Every millisecond the
 * write spent in transit (a slow or paused Redis, a failover, a write that timed out and landed later)
 * moved every reader's deadlines LATER by as much: readers handed out a token past its usable end.
 * Fixed: deadlines are put on Redis' clock by the writer (with the offset its last read measured) inside
 * the ciphertext, and a write that reaches Redis more than 2 s after it was sent is refused.
 */

const STUCK_MS = 3_000;
const SAME_CLOCK_MS = 50;

describe('review 11: a write that was slow to reach Redis', () => {
  const redis = useRedisStore('review11:');

  it('a prompt write is read back with the deadlines it was written with (same clock)', async () => {
    const key = randomBytes(16).toString('hex');
    const context = { encryptionKey: randomBytes(32) };
    const written = storedEntry(1, Date.now(), undefined, { staleAt: 1_000, usableUntil: 2_000 });
    await expect(redis.store.write(key, written, context)).resolves.toBe(true);
    const read = (await redis.store.read(key, context))!;
    expect(Math.abs(read.usableUntil - written.usableUntil)).toBeLessThanOrEqual(SAME_CLOCK_MS);
    expect(read.usableUntil).toBeLessThanOrEqual(written.usableUntil); // never later
  });

  it('a write stuck 3 s on its way (Redis paused) is refused when it lands: nothing moves later', async () => {
    const key = randomBytes(16).toString('hex');
    const context = { encryptionKey: randomBytes(32) };
    await redis.store.read(key, context); // as the lifecycle does before every write
    await redis.redis.pause(); // e.g. a failover, or a server stalled on a fork
    const write = redis.store.write(key, storedEntry(1, Date.now(), undefined, { usableUntil: 2_000 }), context);
    await sleep(STUCK_MS); // the lifecycle gave up on it after 2 s
    await redis.redis.resume();
    await expect(write).resolves.toBe(false); // it landed, and the script refused it
    await expect(redis.store.read(key, context)).resolves.toBeUndefined();
  });
});

import { randomBytes } from 'node:crypto';
import { SCRIPTS } from '../../lib/redis/redis-token-store';
import { useRedisStore } from '../support/redis/store-fixtures';

/**
 * Second review, finding 1: ioredis resends a command left unanswered by a lost connection (its default,
 * `autoResendUnfulfilledCommands`). A resent version write then failed the compare-and-set ("not stored",
 * though it was: its refresh token was then used alone too), and a resent `SET NX` found its own lock
 * ("taken": the whole fleet waited a lock lifetime). Both scripts now answer a resend as the first run.
 */
describe('review 11: a command run twice (resent after a reconnect) answers as it did the first time', () => {
  const redis = useRedisStore('review11-resend:');

  it('the version write', async () => {
    const key = `review11-resend:{${randomBytes(8).toString('hex')}}:token`;
    const args = ['1', 'sealed-entry-with-a-random-iv', 'changed', String(Date.now() + 60_000)];
    expect(await redis.client.eval(SCRIPTS.WRITE, 1, key, ...args)).toBe(1);
    expect(await redis.client.eval(SCRIPTS.WRITE, 1, key, ...args)).toBe(1); // the resend
    const other = ['1', 'another-writer-same-version', 'changed', String(Date.now() + 60_000)];
    expect(await redis.client.eval(SCRIPTS.WRITE, 1, key, ...other)).toBe(0); // still fenced
  });

  it('the lock', async () => {
    const key = `review11-resend:{${randomBytes(8).toString('hex')}}:lock`;
    expect(await redis.client.eval(SCRIPTS.LOCK, 1, key, 'holder-a', '5000')).toBe(1);
    expect(await redis.client.eval(SCRIPTS.LOCK, 1, key, 'holder-a', '5000')).toBe(1); // the resend
    expect(await redis.client.eval(SCRIPTS.LOCK, 1, key, 'holder-b', '5000')).toBe(0);
  });
});

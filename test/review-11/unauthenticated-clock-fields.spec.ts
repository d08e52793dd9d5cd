import { randomBytes } from 'node:crypto';
import { storedEntry, useRedisStore } from '../support/redis/store-fixtures';

/**
 * Finding: the sealed entry was bound to its key name and version (AES-GCM additional data), but the
 * clock fields beside it, `w` (the writer's clock) and `at` (Redis' clock at the write), were not, and
 * every deadline moved by `at - w` without a bound: anyone able to write to Redis could push the fleet's
 * token years past its expiry. Fixed: the hash holds the version and the ciphertext only, the deadlines
 * inside it; whatever is altered reads as an entry with nothing usable (the next renewal overwrites it).
 */

describe('review 11: nothing outside the ciphertext says when a stored token expires', () => {
  const redis = useRedisStore('review11-clock:');

  it.each<[string, (name: string) => Promise<unknown>]>([
    ['the version changed', (name) => redis.client.hset(name, 'v', '7')],
    [
      'a byte of the ciphertext flipped',
      async (name) => {
        const sealed = Buffer.from((await redis.client.hget(name, 'd')) ?? '', 'base64');
        sealed[sealed.length - 1] = (sealed[sealed.length - 1] ?? 0) ^ 1;
        return redis.client.hset(name, 'd', sealed.toString('base64'));
      },
    ],
  ])(
    'holds only `v` and `d`, and an entry altered without the key yields nothing usable: %s',
    async (_name, tamper) => {
      const key = randomBytes(16).toString('hex');
      const context = { encryptionKey: randomBytes(32) };
      await redis.store.write(key, storedEntry(1), context);
      const name = `review11-clock:{${key}}:token`;
      expect(Object.keys(await redis.client.hgetall(name)).sort()).toEqual(['d', 'v']);
      await tamper(name); // no key, no credentials needed
      const read = await redis.store.read(key, context);
      expect({ token: read?.accessToken, usableUntil: read?.usableUntil }).toEqual({ token: '', usableUntil: 0 });
    },
  );
});

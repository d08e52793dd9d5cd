import { randomBytes } from 'node:crypto';
import { Redis as IoRedis } from 'ioredis';
import { createClient } from 'redis';
import { RedisTokenStore, type RedisTokenStoreClient } from 'nestjs-freedompay-transfer-auth/redis';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/**
 * Review 17b, finding (low/medium): the fail-fast `DISCONNECTED` of lib/redis/redis-client.ts refuses the
 * first calls of a node-redis client that is still making its FIRST connection.
 *
 * `nodeRedisCalls` treats `isOpen && !isReady` as "reconnecting", but node-redis sets `isOpen` as soon as
 * `connect()` is called and `isReady` only once the socket and handshake are done: an app that calls
 * `client.connect()` without awaiting it (or whose Nest providers start while it is in flight) gets its
 * startup read refused at once (`DISCONNECTED the Redis client is reconnecting`), although node-redis
 * would have queued it and answered a few ms later. Effect at every deploy: `getStatus().store` degraded,
 * a "token store failed (DISCONNECTED on read)" warning, and a login alone instead of adopting the fleet's
 * token. ioredis in the same state (`connecting`, or `wait` with lazyConnect) is accepted: the two clients
 * disagree. (The intent, per the code's own comment, is "not while a client reconnects".)
 *
 * Fix: fail fast only after the client was ready once and lost it (e.g. remember `ready` / `reconnecting`
 * events on the app's client, or `wasReady` at construction), not during the first connect.
 */
describe('review 17b: a client still making its first connection', () => {
  let redis: RedisProcess;
  const context = { encryptionKey: randomBytes(32) };
  const noop = (): void => undefined;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('ioredis (connecting): the first read is queued and answered', async () => {
    const client = new IoRedis(redis.url);
    client.on('error', noop);
    try {
      expect(client.status).toBe('connecting');
      const store = new RedisTokenStore({ client });
      await expect(store.read(randomBytes(8).toString('hex'), context)).resolves.toBeUndefined();
    } finally {
      client.disconnect();
    }
  });

  it('node-redis (connect() in flight): the first read is answered, not refused as DISCONNECTED', async () => {
    const client = createClient({ url: redis.url });
    client.on('error', noop);
    const connecting = client.connect();
    try {
      expect(client.isOpen).toBe(true);
      expect(client.isReady).toBe(false); // the first connection, not a reconnect
      const store = new RedisTokenStore({ client: client as unknown as RedisTokenStoreClient });
      const read = await store.read(randomBytes(8).toString('hex'), context).then(
        (value) => ({ value }),
        (error: Error) => ({ error: error.message }),
      );
      expect(read).toEqual({ value: undefined });
    } finally {
      await connecting.catch(noop);
      client.destroy();
    }
  });
});

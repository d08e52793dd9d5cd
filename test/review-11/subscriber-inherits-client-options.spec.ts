import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { StoredTransferToken } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { sleep } from '../support/e2e';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';
import { storedEntry } from '../support/redis/store-fixtures';

/**
 * Finding: the hint subscriber is `client.duplicate()`, so it inherits the app's client options. With
 * `enableOfflineQueue: false` (a common production setting: fail fast instead of queueing) the SUBSCRIBE
 * sent right after `duplicate()`, before the new connection is up, is rejected, the rejection swallowed
 * (`subscribe(channel).catch(() => undefined)`) and never retried: no hint ever arrives. Followers then
 * learn of a new token only at their own stale point, and a 401 in one process no longer reaches the others.
 */

/** A stored token without a refresh token. */
const entry = (version: number): StoredTransferToken => storedEntry(version, Date.now(), { access: 'acc' });

describe('review 11: the hint subscriber and the app client options', () => {
  let redis: RedisProcess;
  const clients: Redis[] = [];
  const stores: RedisTokenStore[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(() => {
    for (const store of stores.splice(0)) store.close();
    for (const client of clients.splice(0)) client.disconnect();
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function client(options: RedisOptions): Promise<Redis> {
    const c = new Redis(redis.url, options);
    c.on('error', () => undefined);
    clients.push(c);
    await new Promise((resolve) => c.once('ready', resolve));
    return c;
  }

  it.each<[string, RedisOptions]>([
    ['default options (control)', {}],
    ['enableOfflineQueue: false', { enableOfflineQueue: false }],
  ])('a watcher hears another process write, with %s', async (_name, options) => {
    const key = randomBytes(16).toString('hex');
    const context = { encryptionKey: randomBytes(32) };
    const follower = new RedisTokenStore({ client: await client(options), keyPrefix: 'review11-sub:' });
    const writer = new RedisTokenStore({ client: await client({}), keyPrefix: 'review11-sub:' });
    stores.push(follower, writer);
    let heard = 0;
    follower.watch(key, () => heard++);
    await sleep(500); // time to connect and subscribe
    await writer.write(key, entry(1), context);
    await sleep(500);
    // Expected: the hint arrives. Actual with enableOfflineQueue: false: never.
    expect(heard).toBe(1);
  });
});

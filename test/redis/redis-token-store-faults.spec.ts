import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Redis as IoRedis } from 'ioredis';
import { Redis as IoRedis6 } from 'ioredis-v6';
import { createClient } from 'redis';
import { createClient as createClient6 } from 'redis-v6';
import { TransferAuthService, type StoredTransferToken } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore, type RedisTokenStoreClient } from 'nestjs-freedompay-transfer-auth/redis';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { deriveStoreScope } from '../../lib/token-store/store-key';
import { CapturingLogger } from '../support/auth-app';
import { sleep, waitFor } from '../support/e2e';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';
import { storedEntry } from '../support/redis/store-fixtures';

/**
 * A Redis server that stops answering (paused), dies and comes back (killed, restarted): the store's
 * calls hang or fail, and the lifecycle above it bounds them, carries on alone and logs it once.
 */

interface AppClient {
  readonly client: RedisTokenStoreClient;
  ping(): Promise<unknown>;
  close(): void;
}

const noop = (): void => undefined;

/** An ioredis `Redis` of either major, once it answers. */
interface IoRedisShape extends RedisTokenStoreClient {
  on(event: 'error', listener: () => void): unknown;
  ping(): Promise<unknown>;
  disconnect(): void;
}
interface NodeRedisShape extends RedisTokenStoreClient {
  on(event: 'error', listener: () => void): unknown;
  connect(): Promise<unknown>;
  ping(): Promise<unknown>;
  destroy(): void;
  readonly isReady: boolean;
}

function ioredis(name: string, open: (url: string) => IoRedisShape) {
  return {
    name,
    connect: async (url: string): Promise<AppClient> => {
      const client = open(url);
      client.on('error', noop);
      await client.ping();
      return { client, ping: () => client.ping(), close: () => client.disconnect() };
    },
  };
}

/** A connected node-redis client of either major. */
function nodeRedis(name: string, open: (url: string) => NodeRedisShape) {
  return {
    name,
    connect: async (url: string): Promise<AppClient> => {
      const client = open(url);
      client.on('error', noop);
      await client.connect();
      // Ready, not only answering: node-redis answers a PING a moment before it says it is ready again.
      const ping = (): Promise<unknown> => (client.isReady ? client.ping() : Promise.resolve('not ready'));
      return { client, ping, close: () => client.destroy() };
    },
  };
}

const TARGETS: { name: string; connect(url: string): Promise<AppClient> }[] = [
  ioredis('ioredis v5', (url) => new IoRedis(url)),
  ioredis('ioredis v6', (url) => new IoRedis6(url)),
  nodeRedis('node-redis v5', (url) => createClient({ url })),
  nodeRedis('node-redis v6', (url) => createClient6({ url })),
];

/** A stored token without a refresh token. */
const entry = (version: number): StoredTransferToken => storedEntry(version, Date.now(), { access: 'acc' });

/** What `promise` settled to within `ms`, or 'pending'. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Until the client answers again (it reconnects by itself, with its own backoff). */
async function reconnected(app: AppClient): Promise<void> {
  const deadline = Date.now() + 8_000;
  while (
    (await within(
      app.ping().catch(() => 'failed'),
      200,
    )) !== 'PONG'
  ) {
    if (Date.now() > deadline) throw new Error('The client did not reconnect.');
    await sleep(50);
  }
}

describe.each(TARGETS)('RedisTokenStore faults with $name', (target) => {
  let redis: RedisProcess;
  let app: AppClient;
  const context = { encryptionKey: randomBytes(32) };

  beforeEach(async () => {
    redis = await startRedis();
    app = await target.connect(redis.url);
  });
  afterEach(async () => {
    app.close();
    await redis.stop();
  });

  it('with the server paused, a read and a write wait (no answer, no error), and finish once it resumes', async () => {
    const store = new RedisTokenStore({ client: app.client });
    const key = randomBytes(16).toString('hex');
    await store.write(key, entry(1), context);
    await redis.pause();
    const read = store.read(key, context);
    const write = store.write(key, entry(2), context);
    try {
      await expect(within(read, 300)).resolves.toBe('pending');
      await expect(within(write, 10)).resolves.toBe('pending');
    } finally {
      await redis.resume();
    }
    await expect(read).resolves.toMatchObject({ version: 1 });
    await expect(write).resolves.toBe(true);
    await expect(store.read(key, context)).resolves.toMatchObject({ version: 2 });
  });

  it('with the server killed, callers still get tokens; the outage and the recovery are logged once each', async () => {
    const logger = new CapturingLogger();
    Logger.overrideLogger(logger);
    const fake = await new FakeTransferServer().start();
    const store = new RedisTokenStore({ client: app.client });
    const auth = new TransferAuthService({
      agentId: fake.agentId,
      agentSecret: fake.agentSecret,
      baseUrl: fake.url,
      store,
      requestTimeoutMs: 2_000,
    });
    try {
      await auth.onModuleInit();
      const first = await auth.getAccessToken();
      const scope = await deriveStoreScope(auth.getBaseUrl(), fake.agentId, fake.agentSecret);
      const reader = new RedisTokenStore({ client: app.client });
      expect((await reader.read(scope.key, scope.context))!.accessToken).toBe(first);
      const failed = (): string[] => logger.lines.filter((line) => /token store failed/i.test(line));
      const recovered = (): string[] => logger.lines.filter((line) => /token store answers again/i.test(line));

      await redis.kill();
      auth.invalidate(first); // as after a 401: the next caller needs a renewal, which reads the store
      const started = Date.now();
      const second = await auth.getAccessToken();
      expect(second).not.toBe(first);
      expect(Date.now() - started).toBeLessThan(1_500 + 1_500); // the renewal's store budget, then a login
      // The store itself is judged on its own bound (2 s from the call): then logged, once.
      await waitFor(() => failed().length > 0, 'the outage to be logged', { timeoutMs: 2_000 });
      expect(failed()).toHaveLength(1);
      expect(failed()[0]).toMatch(/^warn /);

      const again = Date.now();
      const third = await auth.forceRefresh(); // still down: a short timeout, and not logged again
      expect(third).not.toBe(second);
      expect(Date.now() - again).toBeLessThan(250 + 1_000);
      expect(failed()).toHaveLength(1);
      expect(recovered()).toHaveLength(0);

      await redis.restart();
      await reconnected(app);
      const fourth = await auth.forceRefresh();
      // The first answer ends the outage, even one the renewal no longer waited for (250 ms while down).
      await waitFor(() => recovered().length > 0, 'the recovery to be logged', { timeoutMs: 2_000 });
      expect(recovered()).toHaveLength(1);
      expect(failed()).toHaveLength(1);
      // Shared through the store again: a renewal wrote it.
      expect((await reader.read(scope.key, scope.context))!.accessToken).toBe(fourth);
      await expect(auth.getAccessToken()).resolves.toBe(fourth);
      for (const line of logger.lines) {
        for (const token of [first, second, third, fourth, fake.agentSecret]) expect(line).not.toContain(token);
      }
    } finally {
      auth.onApplicationShutdown();
      store.close();
      await fake.stop();
      Logger.overrideLogger(false);
    }
  });
});

import { Redis } from 'ioredis';
import type { StoredTransferToken } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { startRedis, type RedisProcess } from './redis-server';

type Times = Pick<
  StoredTransferToken,
  'staleAt' | 'usableUntil' | 'refreshUsableUntil' | 'accessExpiresAt' | 'refreshExpiresAt'
>;

/**
 * An agent's token as the lifecycle writes it (the tokens non-enumerable): `<access>-v<version>` and
 * `<refresh>-v<version>` (none without `tokens.refresh`), deadlines `times` after `now` (defaults: stale in
 * 60 s, usable 90 s).
 */
export function storedEntry(
  version: number,
  now = Date.now(),
  tokens: { access: string; refresh?: string } = { access: 'acc', refresh: 'ref' },
  times: Partial<Times> = {},
): StoredTransferToken {
  const after = {
    staleAt: 60_000,
    usableUntil: 90_000,
    refreshUsableUntil: 300_000,
    accessExpiresAt: 100_000,
    refreshExpiresAt: 400_000,
    ...times,
  };
  const e = {
    version,
    staleAt: now + after.staleAt,
    usableUntil: now + after.usableUntil,
    ...(tokens.refresh === undefined ? {} : { refreshUsableUntil: now + (after.refreshUsableUntil ?? 0) }),
    accessExpiresAt: now + after.accessExpiresAt,
    refreshExpiresAt: now + after.refreshExpiresAt,
    obtainedAt: now,
  };
  Object.defineProperty(e, 'accessToken', { value: `${tokens.access}-v${version}`, enumerable: false });
  if (tokens.refresh !== undefined) {
    Object.defineProperty(e, 'refreshToken', { value: `${tokens.refresh}-v${version}`, enumerable: false });
  }
  return e as StoredTransferToken;
}

/** A redis-server of the suite's own, an ioredis client and a `RedisTokenStore` on it, for a `describe`. */
export function useRedisStore(keyPrefix: string): { redis: RedisProcess; client: Redis; store: RedisTokenStore } {
  const fixture = {} as { redis: RedisProcess; client: Redis; store: RedisTokenStore };
  beforeAll(async () => {
    fixture.redis = await startRedis();
    fixture.client = new Redis(fixture.redis.url);
    fixture.client.on('error', () => undefined);
    await fixture.client.ping();
    fixture.store = new RedisTokenStore({ client: fixture.client, keyPrefix });
  });
  afterAll(async () => {
    fixture.store.close();
    fixture.client.disconnect();
    await fixture.redis.stop();
  });
  return fixture;
}

import { Redis } from 'ioredis';
import type { StoredTransferToken } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { LOCAL_SCOPE } from '../../lib/token-lifecycle/store-access';
import { harness, type Harness } from '../unit/support/stub-endpoint';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/**
 * Finding: RedisTokenStore.write gives an entry a TTL of max(usableUntil, refreshUsableUntil) - now, at
 * least 1 s. The "spent" entry the renewal writes before it sends a shared refresh token has no refresh
 * token, so when the access token is already past its usable end (a fleet that was idle, or whose
 * renewals failed for a while, and starts again with a stored, still-usable refresh token) it lives
 * 1 s. A refresh that takes longer than that: the entry is gone, the compare-and-set of the new token
 * fails (version 0 expected v+1), the new token is never shared, and every other process logs in.
 */

const REFRESH_TAKES_MS = 1_500;

/** What an idle fleet left behind: the access token expired, the refresh token good for a day. */
function leftover(now: number): StoredTransferToken {
  const e = {
    version: 1,
    staleAt: now - 120_000,
    usableUntil: now - 60_000,
    refreshUsableUntil: now + 86_000_000,
    accessExpiresAt: now - 55_000,
    refreshExpiresAt: now + 86_400_000,
    obtainedAt: now - 600_000,
  };
  Object.defineProperty(e, 'accessToken', { value: 'ACCESS-old', enumerable: false });
  Object.defineProperty(e, 'refreshToken', { value: 'REFRESH-old', enumerable: false });
  return e as StoredTransferToken;
}

describe('review 11: a renewal with a stored refresh token and an expired access token', () => {
  let redis: RedisProcess;
  let client: Redis;
  let store: RedisTokenStore;
  const fleet: Harness[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    client.on('error', () => undefined);
    await client.ping();
  });
  afterEach(() => {
    for (const member of fleet.splice(0)) member.lifecycle.close();
    store.close();
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });

  it('stores the refreshed token even when the refresh takes longer than 1 s', async () => {
    store = new RedisTokenStore({ client, keyPrefix: 'review11-spent:' });
    const { key, context } = LOCAL_SCOPE; // the scope a lifecycle without a derived one uses
    await expect(store.write(key, leftover(Date.now()), context)).resolves.toBe(true);

    const a = harness({ store }, (call) => call.succeed({}, call.kind === 'refresh' ? REFRESH_TAKES_MS : 0));
    fleet.push(a);
    const token = await a.lifecycle.getAccessToken();
    expect(a.stub.kinds()).toEqual(['refresh']); // the stored refresh token, once

    // Expected: the new token is in the store. Actual: the store is empty (the spent entry expired
    // after 1 s, so the fenced write of the new token found version 0 and was refused).
    expect((await store.read(key, context))?.accessToken).toBe(token);

    // What it costs: a process that starts now logs in instead of adopting.
    const b = harness({ store });
    fleet.push(b);
    await b.lifecycle.start();
    expect(b.stub.count).toBe(0);
  });
});

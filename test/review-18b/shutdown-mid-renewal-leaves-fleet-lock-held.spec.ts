import { NestFactory } from '@nestjs/core';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FleetModule } from '../recipes/fleet.module';
import { REDIS_CLIENT } from '../recipes/redis.module';
import { useFleetRecipeEnv } from '../support/fleet-recipe-env';

/**
 * Finding: docs/fleet.md says the recipe quits the client "once the token store is done with it". With a
 * renewal in flight at shutdown (the upstream call under way, the fleet lock held), the module's
 * onApplicationShutdown aborts the renewal and its lock release is a fire-and-forget store call that
 * runs after RedisClientCloser has already sent QUIT: the release never reaches Redis (refused as
 * "Connection is closed", swallowed) and the lock stays for its whole 4 s lease. A graceful stop
 * (SIGTERM in a rolling deploy) mid-renewal costs the rest of the fleet what a SIGKILL costs: the next
 * renewal waits for the lease to lapse (up to 4 s of callers waiting, docs/fleet.md's own fault table).
 */

describe('review-18b: app.close() with a renewal in flight, on the Redis-provider recipe', () => {
  const env = useFleetRecipeEnv('review-18b-lock');
  const lockKeys = (): Promise<string[]> => env.keys(':lock');

  it('releases the fleet lock before the client is quit', async () => {
    const app = await NestFactory.createApplicationContext(FleetModule, { logger: false });
    env.apps.push(app);
    const auth = app.get(TransferAuthService);
    await auth.getAccessToken(); // a login, written to Redis with its refresh token

    env.fake.failNext('any', { kind: 'hang' });
    const renewal = auth.forceRefresh().catch((error: unknown) => (error as { code?: string }).code);
    await env.fake.waitForCalls(2); // the login, then the renewal's upstream call: the lock is held now
    expect(await lockKeys()).toHaveLength(1);

    const client = app.get<Redis>(REDIS_CLIENT);
    env.apps.splice(0);
    await app.close();
    expect(await renewal).toBe('SHUTDOWN');
    if (client.status !== 'end') await once(client, 'end');

    const left = await lockKeys();
    const pttl = left.length > 0 ? await env.admin.pttl(left[0] as string) : -2;
    // Got one lock key with ~4000 ms to live: the release was sent after QUIT and never reached Redis.
    expect({ locks: left.length, pttl }).toEqual({ locks: 0, pttl: -2 });
  });
});

import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { REDIS_CLIENT, RedisModule } from '../recipes/redis.module';
import { useFleetRecipeEnv } from '../support/fleet-recipe-env';

/**
 * Finding: docs/fleet.md's "Shutdown order" rests on "Nest runs ... a global module's hooks after every
 * other module's. So the client is quit in onApplicationShutdown of a @Global() module: by then the token
 * module has stopped." But the recipe registers TransferAuthModule with `isGlobal: true`: it is a global
 * module too (distance Number.MAX_VALUE), and between two global modules Nest's shutdown order is the
 * reverse of their registration order. The recipe works only because RedisModule happens to be listed
 * before TransferAuthModule.forRootAsync. The same two modules listed the other way round (or the token
 * registration in an AuthModule imported before an InfraModule that imports RedisModule, or RedisModule in
 * forRootAsync's own `imports`) quit the client while the token module is still running.
 */

describe('review-18b: the Redis-provider recipe with RedisModule listed after the token module', () => {
  const env = useFleetRecipeEnv('review-18b-order');

  it('quits the client only after the token module has closed, whatever the order of the modules', async () => {
    @Module({
      imports: [
        ConfigModule.forRoot(),
        // fleet.module.ts, verbatim, with its two imports in the other order
        TransferAuthModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService, REDIS_CLIENT],
          useFactory: (config: ConfigService, client: Redis) => ({
            agentId: config.getOrThrow<string>('FREEDOMPAY_AGENT_ID'),
            agentSecret: config.getOrThrow<string>('FREEDOMPAY_AGENT_SECRET'),
            baseUrl: config.get<string>('FREEDOMPAY_BASE_URL'),
            store: new RedisTokenStore({ client, keyPrefix: config.get<string>('FREEDOMPAY_STORE_PREFIX') }),
          }),
          isGlobal: true,
        }),
        RedisModule,
      ],
    })
    class FleetModuleOtherOrder {}

    const app = await NestFactory.createApplicationContext(FleetModuleOtherOrder, { logger: false });
    env.apps.push(app);
    const auth = app.get(TransferAuthService);
    await auth.getAccessToken();
    const client = app.get<Redis>(REDIS_CLIENT);
    const statesAtQuit: string[] = [];
    const quit = client.quit.bind(client);
    client.quit = ((...args: Parameters<Redis['quit']>) => {
      statesAtQuit.push(auth.getStatus().state);
      return quit(...args);
    }) as Redis['quit'];
    env.apps.splice(0);
    await app.close();

    expect(statesAtQuit).toEqual(['closed']); // was ['valid']: the client went first
  });
});

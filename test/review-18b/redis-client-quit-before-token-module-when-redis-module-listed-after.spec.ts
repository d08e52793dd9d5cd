import { Module } from '@nestjs/common';
import type { INestApplicationContext } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { REDIS_CLIENT, RedisModule } from '../recipes/redis.module';

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
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('review-18b: the Redis-provider recipe with RedisModule listed after the token module', () => {
  let fake: FakeTransferServer;
  let app: INestApplicationContext | undefined;
  let admin: Redis;
  const prefix = `review-18b-order-${randomUUID()}:`;
  const saved = { ...process.env };

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
    admin = new Redis(REDIS_URL);
    Object.assign(process.env, {
      REDIS_URL,
      FREEDOMPAY_AGENT_ID: fake.agentId,
      FREEDOMPAY_AGENT_SECRET: fake.agentSecret,
      FREEDOMPAY_BASE_URL: fake.url,
      FREEDOMPAY_STORE_PREFIX: prefix,
    });
  });
  afterEach(async () => {
    await app?.close().catch(() => undefined);
    const keys: string[] = [];
    for await (const batch of admin.scanStream({ match: `${prefix}*`, count: 1000 })) keys.push(...(batch as string[]));
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
    await fake.stop();
    process.env = { ...saved };
  });

  it('quits the client only after the token module has closed (as docs/fleet.md says of any @Global RedisModule)', async () => {
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

    app = await NestFactory.createApplicationContext(FleetModuleOtherOrder, { logger: false });
    const auth = app.get(TransferAuthService);
    await auth.getAccessToken();
    const client = app.get<Redis>(REDIS_CLIENT);
    const statesAtQuit: string[] = [];
    const quit = client.quit.bind(client);
    client.quit = ((...args: Parameters<Redis['quit']>) => {
      statesAtQuit.push(auth.getStatus().state);
      return quit(...args);
    }) as Redis['quit'];
    const closing = app;
    app = undefined;
    await closing.close();

    expect(statesAtQuit).toEqual(['closed']); // got ['valid']: the client went first
  });
});

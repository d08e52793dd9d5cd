// fleet.module.ts
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import type { Redis } from 'ioredis';
import { TransferAuthModule } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { REDIS_CLIENT, RedisModule } from './redis.module.js';

@Module({
  imports: [
    ConfigModule.forRoot(),
    RedisModule,
    TransferAuthModule.forRootAsync({
      imports: [ConfigModule],
      inject: [ConfigService, REDIS_CLIENT],
      useFactory: (config: ConfigService, client: Redis) => ({
        agentId: config.getOrThrow<string>('FREEDOMPAY_AGENT_ID'),
        agentSecret: config.getOrThrow<string>('FREEDOMPAY_AGENT_SECRET'),
        baseUrl: config.get<string>('FREEDOMPAY_BASE_URL'),
        // keyPrefix: optional, e.g. for two environments on one Redis (default 'freedompay-transfer-auth:').
        store: new RedisTokenStore({ client, keyPrefix: config.get<string>('FREEDOMPAY_STORE_PREFIX') }),
      }),
      isGlobal: true,
    }),
  ],
})
export class FleetModule {}

// secret-fleet.module.ts
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import type { Redis } from 'ioredis';
import { TransferAuthModule } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { secretFromFile } from './agent-secret.providers.js';
import { REDIS_CLIENT, RedisModule } from './redis.module.js';

/** TOKEN_STORE_KEY: 32 random bytes in base64 (`openssl rand -base64 32`), the same in every replica. */
export function tokenStoreKey(config: ConfigService): Buffer {
  const key = Buffer.from(config.getOrThrow<string>('TOKEN_STORE_KEY'), 'base64');
  if (key.length !== 32) throw new Error('TOKEN_STORE_KEY must be 32 bytes in base64 (openssl rand -base64 32)');
  return key;
}

@Module({
  imports: [
    ConfigModule.forRoot(),
    RedisModule,
    TransferAuthModule.forRootAsync({
      imports: [ConfigModule],
      inject: [ConfigService, REDIS_CLIENT],
      useFactory: (config: ConfigService, client: Redis) => ({
        agentId: config.getOrThrow<string>('FREEDOMPAY_AGENT_ID'),
        // Read before every login: a rotated secret needs no restart, and the encryption key keeps the
        // replicas on one token across it.
        agentSecret: secretFromFile(config.getOrThrow<string>('FREEDOMPAY_AGENT_SECRET_FILE')),
        baseUrl: config.get<string>('FREEDOMPAY_BASE_URL'),
        store: new RedisTokenStore({
          client,
          encryptionKey: tokenStoreKey(config),
          keyPrefix: config.get<string>('FREEDOMPAY_STORE_PREFIX'),
        }),
      }),
      isGlobal: true,
    }),
  ],
})
export class SecretFleetModule {}

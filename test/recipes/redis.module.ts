// redis.module.ts
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ModuleRef } from '@nestjs/core';
import { Redis } from 'ioredis';
import { TransferAuthService } from 'nestjs-freedompay-transfer-auth';

/** The app's one Redis client, injected where it is needed (the token store among them). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

@Injectable()
class RedisClientCloser implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS_CLIENT) private readonly client: Redis,
    private readonly moduleRef: ModuleRef,
  ) {}

  // Not onModuleDestroy: TransferAuthModule stops in onApplicationShutdown, after the HTTP server has
  // drained (in-flight requests still get tokens). Nest calls the modules' hooks in an order this module
  // cannot count on, so it asks the token module to stop first (idempotent: Nest's own call shares it),
  // which resolves once its store work is done (the fleet lock given back), then quits the client.
  async onApplicationShutdown(): Promise<void> {
    await this.moduleRef.get(TransferAuthService, { strict: false }).onApplicationShutdown();
    await this.client.quit();
  }
}

@Global()
@Module({
  imports: [ConfigModule],
  providers: [
    {
      provide: REDIS_CLIENT,
      inject: [ConfigService],
      useFactory: (config: ConfigService) => new Redis(config.getOrThrow<string>('REDIS_URL')),
    },
    RedisClientCloser,
  ],
  exports: [REDIS_CLIENT],
})
export class RedisModule {}

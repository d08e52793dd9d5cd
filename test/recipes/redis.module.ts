// redis.module.ts
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';

/** The app's one Redis client, injected where it is needed (the token store among them). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

@Injectable()
class RedisClientCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly client: Redis) {}

  // Not onModuleDestroy: TransferAuthModule stops in onApplicationShutdown (after the HTTP server has
  // drained, so in-flight requests still get tokens), and Nest runs a global module's hooks after the
  // others', so the client is quit once the token store is done with it.
  async onApplicationShutdown(): Promise<void> {
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

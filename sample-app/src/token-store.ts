import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { TransferTokenStore } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';

/** The shared token store, or `undefined`: each process keeps its own token (the package default). */
export const TOKEN_STORE = Symbol('TOKEN_STORE');
const REDIS_URL = Symbol('REDIS_URL');
/** `'redis'` or `'in-process'`: where the token is kept, for `/auth/status`. */
export const STORE_KIND = Symbol('STORE_KIND');

/** The app's Redis connection: opened when `REDIS_URL` is set, closed on shutdown (the store never closes it). */
@Injectable()
export class RedisConnection implements OnApplicationShutdown {
  readonly client: Redis | undefined;

  constructor(@Inject(REDIS_URL) url: string | undefined) {
    // Commands fail after one reconnect attempt instead of queueing: the token store then carries on
    // without Redis (and says so once) while the client reconnects.
    this.client = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : undefined;
    this.client?.on('error', () => undefined); // the token store logs the outage once
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client?.quit().catch(() => this.client?.disconnect());
  }
}

/** `TOKEN_STORE`: a `RedisTokenStore` on the app's Redis when `redisUrl` is given. */
@Module({})
export class TokenStoreModule {
  static forRoot(redisUrl: string | undefined): DynamicModule {
    return {
      module: TokenStoreModule,
      providers: [
        { provide: REDIS_URL, useValue: redisUrl },
        RedisConnection,
        {
          provide: TOKEN_STORE,
          inject: [RedisConnection],
          useFactory: ({ client }: RedisConnection): TransferTokenStore | undefined =>
            client && new RedisTokenStore({ client }),
        },
      ],
      exports: [TOKEN_STORE],
    };
  }
}

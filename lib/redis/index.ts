export { RedisTokenStore, type RedisTokenStoreOptions } from './redis-token-store';
export type { RedisTokenStoreClient } from './redis-client';

import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreLock,
} from '../../../lib/token-store/transfer-token-store.interface';

/** Delegates to an in-process store; each method can be overridden per test. */
export class ProxyStore implements TransferTokenStore {
  readonly inner = new InProcessTokenStore();
  reads = 0;
  writes = 0;
  read(key: string): Promise<StoredTransferToken | undefined> {
    this.reads++;
    return this.inner.read(key);
  }
  write(key: string, entry: StoredTransferToken): Promise<boolean> {
    this.writes++;
    return this.inner.write(key, entry);
  }
  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    return this.inner.lock(key, ttlMs);
  }
}

/**
 * What a Redis-backed store does: it serializes the entry (copying the token fields by name, since they
 * are non-enumerable) and hands back plain parsed objects.
 */
export class SerializingStore implements TransferTokenStore {
  readonly data = new Map<string, string>();
  readonly locks = new InProcessTokenStore();
  read(key: string): Promise<StoredTransferToken | undefined> {
    const text = this.data.get(key);
    return Promise.resolve(text === undefined ? undefined : (JSON.parse(text) as StoredTransferToken));
  }
  write(key: string, entry: StoredTransferToken): Promise<boolean> {
    const text = this.data.get(key);
    const current = text === undefined ? 0 : (JSON.parse(text) as StoredTransferToken).version;
    if (entry.version !== current + 1) return Promise.resolve(false);
    this.data.set(key, JSON.stringify({ ...entry, accessToken: entry.accessToken, refreshToken: entry.refreshToken }));
    return Promise.resolve(true);
  }
  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    return this.locks.lock(key, ttlMs);
  }
}

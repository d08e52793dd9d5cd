import { InProcessTokenStore } from '../../../lib/token-store/in-process-token-store';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreLock,
} from '../../../lib/token-store/transfer-token-store.interface';

/**
 * Delegates to an in-process store (shared when `inner` is given: several members, one store), counting
 * calls; `mode` makes every call fail or hang, `delayMs` delays each (on timers, fake or real). Each
 * method can be overridden per test.
 */
export class ProxyStore implements TransferTokenStore {
  mode: 'ok' | 'throw' | 'hang' = 'ok';
  delayMs = 0;
  calls = 0;
  reads = 0;
  writes = 0;
  constructor(readonly inner: InProcessTokenStore = new InProcessTokenStore()) {}
  read(key: string): Promise<StoredTransferToken | undefined> {
    this.reads++;
    return this.run(() => this.inner.read(key));
  }
  write(key: string, entry: StoredTransferToken): Promise<boolean> {
    this.writes++;
    return this.run(() => this.inner.write(key, entry));
  }
  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    return this.run(() => this.inner.lock(key, ttlMs));
  }
  private async run<T>(call: () => Promise<T>): Promise<T> {
    this.calls++;
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.mode === 'throw') throw new Error('ECONNREFUSED agent-secret-xyz');
    if (this.mode === 'hang') return new Promise<T>(() => undefined);
    return call();
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

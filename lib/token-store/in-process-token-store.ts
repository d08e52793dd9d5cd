import { inspect } from 'node:util';
import type { StoredTransferToken, TransferTokenStore, TransferTokenStoreLock } from './transfer-token-store.interface';

/**
 * The default {@link TransferTokenStore}: this process only. Each registration of the module gets its
 * own, so nothing is shared between agents or with other processes.
 */
export class InProcessTokenStore implements TransferTokenStore {
  /** It keeps nothing outside this process, so it needs no key derived from the secret (a provider's may rotate). */
  readonly ownEncryptionKey = true;
  private readonly entries = new Map<string, StoredTransferToken>();
  private readonly locks = new Map<string, { readonly id: symbol; readonly until: number }>();
  private readonly watchers = new Map<string, Set<() => void>>();

  read(key: string): Promise<StoredTransferToken | undefined> {
    return Promise.resolve(this.entries.get(key));
  }

  write(key: string, entry: StoredTransferToken): Promise<boolean> {
    if (entry.version !== (this.entries.get(key)?.version ?? 0) + 1) return Promise.resolve(false);
    this.entries.set(key, entry);
    for (const onChange of this.watchers.get(key) ?? []) queueMicrotask(onChange);
    return Promise.resolve(true);
  }

  lock(key: string, ttlMs: number): Promise<TransferTokenStoreLock | undefined> {
    const now = performance.now();
    const held = this.locks.get(key);
    if (held !== undefined && now < held.until) return Promise.resolve(undefined);
    const id = Symbol(key);
    this.locks.set(key, { id, until: now + ttlMs });
    return Promise.resolve({
      release: () => {
        if (this.locks.get(key)?.id === id) this.locks.delete(key);
        return Promise.resolve();
      },
      extend: (leaseMs: number) => {
        const mine = this.locks.get(key)?.id === id;
        if (mine) this.locks.set(key, { id, until: performance.now() + leaseMs });
        return Promise.resolve(mine);
      },
    });
  }

  watch(key: string, onChange: () => void): () => void {
    const set = this.watchers.get(key) ?? new Set();
    this.watchers.set(key, set.add(onChange));
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.watchers.delete(key);
    };
  }

  /** Names the store, never what it holds. */
  toJSON(): { store: string; keys: number } {
    return { store: 'InProcessTokenStore', keys: this.entries.size };
  }

  /** @internal Names the store, never what it holds. */
  [inspect.custom](): string {
    return `InProcessTokenStore { keys: ${this.entries.size} }`;
  }
}

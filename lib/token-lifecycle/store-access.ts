import { inspect } from 'node:util';
import { storeContext, type StoreScope } from '../token-store/store-key';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreContext,
  TransferTokenStoreLock,
} from '../token-store/transfer-token-store.interface';
import { STORE_TIMEOUT_MS } from '../internal.constants';
import { promiseTimeout, PromiseTimeoutError } from '../utils/promise-timeout';
import type { LogFn } from './failure-log';
import { shutdownError } from './failure-policy';
import { NO_TELEMETRY, type StoreOperation, type Telemetry } from '../telemetry/telemetry';

/** @internal What a store call answers when the store failed or did not answer in time. */
export const DOWN = Symbol('store down');
export type Down = typeof DOWN;

const WAKE_FLOOR_MS = 25;

/** A store that did not answer gets this long (not the full timeout) until it answers again. */
const DOWN_TIMEOUT_MS = 250;

/** @internal The scope of a store given without derived keys (the lifecycle's own tests). */
export const LOCAL_SCOPE: StoreScope = { key: 'token', context: storeContext(new Uint8Array(32)) };

/**
 * @internal The lifecycle's side of a {@link TransferTokenStore}: every call bounded in time, whatever
 * the store answers checked, failures reported as {@link DOWN} (logged once per outage, by error name
 * only, then the recovery), and nothing the store does can throw into a renewal or keep a process alive.
 */
export class StoreAccess {
  private down = false;
  private readonly closed = new AbortController();

  constructor(
    private readonly store: TransferTokenStore,
    private readonly scope: Promise<StoreScope>,
    private readonly log: LogFn,
    private readonly telemetry: Telemetry = NO_TELEMETRY,
  ) {
    scope.catch(() => undefined);
  }

  /** Whether the store failed its last call (each process renews alone meanwhile). */
  get degraded(): boolean {
    return this.down;
  }

  /** The lock, `undefined` while another holder has it. A lock granted after the timeout is given back. */
  async lock(ttlMs: number): Promise<TransferTokenStoreLock | undefined | Down> {
    let late = false;
    const result = await this.call('lock', (key) => {
      const granted = this.store.lock(key, ttlMs);
      Promise.resolve(granted).then(
        (lock) => (late ? this.release(lock) : undefined),
        () => undefined,
      );
      return granted;
    });
    late = result === DOWN;
    this.telemetry.lock(result === DOWN ? 'down' : result === undefined ? 'busy' : 'acquired');
    return result;
  }

  /** Fire and forget: nobody waits for it, and a lock that is not released lapses on its own. */
  release(lock: TransferTokenStoreLock | undefined): void {
    if (lock === undefined) return;
    try {
      Promise.resolve(lock.release()).catch(() => undefined);
    } catch {
      // a store's release never fails a renewal
    }
  }

  /** The stored entry; anything that is not a well-formed entry (`null` included) counts as none. */
  async read(): Promise<StoredTransferToken | undefined | Down> {
    const entry = await this.call('read', (key, context) => this.store.read(key, context));
    if (entry === DOWN) return DOWN;
    const ok = typeof entry === 'object' && entry !== null && Number.isSafeInteger(entry.version) && entry.version > 0;
    return ok ? entry : undefined;
  }

  async write(entry: StoredTransferToken): Promise<boolean | Down> {
    return this.call('write', (key, context) => this.store.write(key, entry, context));
  }

  /**
   * Waits `ms`, or less when the store says the key changed (`watch`), but at least 25 ms, so that a
   * store that fires at once cannot spin the loop. `close()` cuts it short with `SHUTDOWN`.
   */
  async pause(ms: number): Promise<void> {
    const { key } = await this.scope;
    if (this.closed.signal.aborted) throw shutdownError();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let woken = false;
      let floorPassed = false;
      let stop: (() => void) | undefined;
      const finish = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(floor);
        this.closed.signal.removeEventListener('abort', abort);
        quietly(stop);
        outcome();
      };
      const abort = (): void => finish(() => reject(shutdownError()));
      const timer = setTimeout(() => finish(resolve), Math.max(0, ms));
      const floor = setTimeout(
        () => {
          floorPassed = true;
          if (woken) finish(resolve);
        },
        Math.min(WAKE_FLOOR_MS, ms),
      );
      timer.unref?.();
      floor.unref?.();
      this.closed.signal.addEventListener('abort', abort, { once: true });
      try {
        stop = this.store.watch?.(key, () => {
          woken = true;
          if (floorPassed) finish(resolve);
        });
      } catch {
        stop = undefined; // no watch: polling covers it
      }
      if (settled) quietly(stop);
    });
  }

  /** Calls `onChange` whenever the store says the entry changed (if it can), until `close()`. */
  follow(onChange: () => void): void {
    if (typeof this.store.watch !== 'function') return;
    this.scope.then(
      ({ key }) => {
        if (this.closed.signal.aborted) return;
        let stop: (() => void) | undefined;
        try {
          stop = this.store.watch?.(key, onChange);
        } catch {
          return; // polling covers it
        }
        this.closed.signal.addEventListener('abort', () => quietly(stop), { once: true });
      },
      () => undefined,
    );
  }

  close(): void {
    this.closed.abort();
  }

  /** Names nothing it holds (the scope holds the encryption key). */
  [inspect.custom](): string {
    return `StoreAccess { down: ${this.down} }`;
  }

  private async call<T>(
    operation: StoreOperation,
    call: (key: string, context: TransferTokenStoreContext) => Promise<T>,
  ): Promise<T | Down> {
    const pending = this.scope.then(({ key, context }) => call(key, context));
    // An answer is an answer, even one this call no longer waits for: a store slower than the short
    // timeout of an outage still ends it. (Registered first: it runs before the race below settles.)
    pending.then(
      () => this.up(),
      () => undefined,
    );
    try {
      return await promiseTimeout(this.down ? DOWN_TIMEOUT_MS : STORE_TIMEOUT_MS, pending, true);
    } catch (error) {
      const why = error instanceof Error ? error.name : typeof error;
      this.telemetry.storeFailed(operation, error instanceof PromiseTimeoutError ? 'timeout' : why);
      if (!this.down) {
        this.down = true;
        this.log('warn', `The token store failed (${why}); renewing without it until it answers again.`);
      }
      return DOWN;
    }
  }

  private up(): void {
    if (!this.down || this.closed.signal.aborted) return;
    this.down = false;
    this.log('log', 'The token store answers again; renewals are shared through it again.');
  }
}

/** Calls a store's unsubscribe: whatever it throws or rejects with never reaches a renewal. */
function quietly(stop: (() => void) | undefined): void {
  try {
    const result: unknown = stop?.();
    if (result instanceof Promise) result.catch(() => undefined);
  } catch {
    // a store's unsubscribe never fails a renewal
  }
}

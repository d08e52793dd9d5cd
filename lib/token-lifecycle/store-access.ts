import { inspect } from 'node:util';
import { storeContext, type StoreScope } from '../token-store/store-key';
import type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreContext,
  TransferTokenStoreLock,
} from '../token-store/transfer-token-store.interface';
import { STORE_TIMEOUT_MS } from '../internal.constants';
import { storeErrorCode } from '../token-store/store-error';
import type { TransferAuthStoreStatus } from '../interfaces/transfer-auth-status.interface';
import { promiseTimeout } from '../utils/promise-timeout';
import type { LogFn } from './failure-log';
import { shutdownError } from './failure-policy';
import { NO_TELEMETRY, type StoreOperation, type Telemetry } from '../telemetry/telemetry';

/** @internal What a store call answers when the store failed or did not answer in time. */
export const DOWN = Symbol('store down');
export type Down = typeof DOWN;

const WAKE_FLOOR_MS = 25;

/** A store that did not answer gets this long (not the full timeout) until it answers again. */
const DOWN_TIMEOUT_MS = 250;

/** A status asked for when no store call was made for this long starts a read (the state is that old at most). */
const STATUS_FRESH_MS = 10_000;

/** The same degradation (same error code) is logged at most this often; its recovery once per line. */
const DEGRADED_LOG_INTERVAL_MS = 60_000;

/** @internal The scope of a store given without derived keys (the lifecycle's own tests). */
export const LOCAL_SCOPE: StoreScope = { key: 'token', context: storeContext(new Uint8Array(32)) };

/** What the lifecycle calls on a store; each is reported by itself (a failing write does not fail reads). */
type Call = 'read' | 'write' | 'lock' | 'extend' | 'replicated';

const METRIC_OPERATION: Record<Call, StoreOperation> = {
  read: 'read',
  write: 'write',
  lock: 'lock',
  extend: 'lock',
  replicated: 'write',
};

/** @internal A held lock: its lease is extended while held (when the store can), until `release()`. */
export interface HeldLock {
  release(): void;
}

/**
 * @internal The lifecycle's side of a {@link TransferTokenStore}: every call bounded in time, whatever
 * the store answers checked, failures reported as {@link DOWN}, and nothing the store does can throw
 * into a renewal or keep a process alive. Its state (`ok`, or `degraded` since when, with the error
 * code) is the status' `store`: degraded while any kind of call fails (a store that refuses writes but
 * answers reads is degraded until a write works again), so that a partial failure neither hides nor flaps.
 * The degradation is logged by its code, at most once a minute per code, and its recovery once.
 */
export class StoreAccess {
  /** The kinds of call failing now, with their error codes (`late`: a timed-out call answered after all). */
  private readonly failing = new Map<Call, { code: string; late: boolean }>();
  private state: TransferAuthStoreStatus;
  /** When each degradation code was last logged (ms since the epoch), and whether its recovery is owed. */
  private readonly logged = new Map<string, number>();
  private recoveryOwed = false;
  /** Whether the outage under way was logged (its first codes may have been said a moment before). */
  private outageLogged = false;
  /** Codes a store reported through `context.warn`: each said once. */
  private readonly warned = new Set<string>();
  private readonly closed = new AbortController();
  /** Store calls and lock releases under way (within the store's bound): what a shutdown lets finish first. */
  private readonly unsettled = new Set<Promise<void>>();
  /** When the last store call was made (`now()` ms), and whether a status probe is under way. */
  private lastCallAt: number;
  private probing = false;

  constructor(
    private readonly store: TransferTokenStore,
    private readonly scope: Promise<StoreScope>,
    private readonly log: LogFn,
    private readonly telemetry: Telemetry = NO_TELEMETRY,
    private readonly now: () => number = Date.now,
  ) {
    scope.catch(() => undefined);
    this.state = { state: 'ok', since: new Date(this.now()).toISOString() };
    this.lastCallAt = this.now();
  }

  /** Whether a kind of store call fails now (each process renews alone meanwhile, where it must). */
  get degraded(): boolean {
    return this.failing.size > 0;
  }

  /**
   * `getStatus().store`: a copy. The state is that of the last store call; when none was made for
   * {@link STATUS_FRESH_MS} (a long token renews rarely), asking for it also starts one read in the
   * background, so that a status polled by a health probe is never older than that and one probe.
   */
  status(): TransferAuthStoreStatus {
    if (!this.probing && this.now() - this.lastCallAt >= STATUS_FRESH_MS) {
      this.probing = true;
      void this.read().finally(() => (this.probing = false));
    }
    return { ...this.state };
  }

  /** The lock, `undefined` while another holder has it. A lock granted after the timeout is given back. */
  async lock(leaseMs: number, timeoutMs = STORE_TIMEOUT_MS): Promise<HeldLock | undefined | Down> {
    let late = false;
    const result = await this.call(
      'lock',
      (key) => {
        const granted = this.store.lock(key, leaseMs);
        Promise.resolve(granted).then(
          (lock) => (late ? this.releaseNow(lock) : undefined),
          () => undefined,
        );
        return granted;
      },
      timeoutMs,
    );
    late = result === DOWN;
    this.telemetry.lock(result === DOWN ? 'down' : result === undefined ? 'busy' : 'acquired');
    return result === DOWN || result === undefined ? result : this.held(result, leaseMs);
  }

  /** The stored entry; anything that is not a well-formed entry (`null` included) counts as none. */
  async read(timeoutMs = STORE_TIMEOUT_MS): Promise<StoredTransferToken | undefined | Down> {
    const entry = await this.call('read', (key, context) => this.store.read(key, context), timeoutMs);
    if (entry === DOWN) return DOWN;
    const ok = typeof entry === 'object' && entry !== null && Number.isSafeInteger(entry.version) && entry.version > 0;
    return ok ? entry : undefined;
  }

  async write(entry: StoredTransferToken, timeoutMs = STORE_TIMEOUT_MS): Promise<boolean | Down> {
    return this.call('write', (key, context) => this.store.write(key, entry, context), timeoutMs);
  }

  /**
   * After the spent mark was written: whether it is held by a replica where the store has them (`WAIT`).
   * A store that cannot say (no `replicated`) keeps its writes where it put them: `true`.
   */
  async replicated(timeoutMs: number): Promise<boolean> {
    const store = this.store;
    if (typeof store.replicated !== 'function') return true;
    // The store's own wait ends a little before ours: its "no" is an answer, not a timeout.
    const waitMs = Math.max(1, timeoutMs - 100);
    return (
      (await this.call('replicated', (key, context) => store.replicated!(key, waitMs, context), timeoutMs)) === true
    );
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
      ({ key, context }) => {
        if (this.closed.signal.aborted) return;
        let stop: (() => void) | undefined;
        try {
          stop = this.store.watch?.(key, onChange, this.reporting(context));
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

  /**
   * Resolves once every store call and lock release under way has settled, those they start included
   * (a write's release). No new call starts once closed, releases excepted: a held lock is always given
   * back. The caller bounds the wait.
   */
  async settled(): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve)); // past the microtasks that start a release
      if (this.unsettled.size === 0) return;
      await Promise.allSettled([...this.unsettled]);
    }
  }

  /**
   * Kept until it settles or its store's bound (2 s) has passed: a shutdown waits for no call that hangs,
   * and a store that hangs for hours does not pile its calls up here.
   */
  private track<T>(promise: Promise<T>): Promise<T> {
    const bounded = promiseTimeout(STORE_TIMEOUT_MS, promise, true).then(
      () => undefined,
      () => undefined,
    );
    this.unsettled.add(bounded);
    void bounded.then(() => this.unsettled.delete(bounded));
    return promise;
  }

  /** Names nothing it holds (the scope holds the encryption key). */
  [inspect.custom](): string {
    return `StoreAccess { state: '${this.state.state}' }`;
  }

  /** Extends the lease every third of it while held (one extension in flight at a time), until released. */
  private held(lock: TransferTokenStoreLock, leaseMs: number): HeldLock {
    let released = false;
    let extending = false;
    const extend = lock.extend;
    const timer =
      typeof extend === 'function'
        ? setInterval(() => {
            if (extending || released) return;
            extending = true;
            void this.call('extend', () => extend.call(lock, leaseMs), leaseMs / 2).finally(() => {
              extending = false;
            });
          }, leaseMs / 3)
        : undefined;
    timer?.unref?.();
    return {
      release: () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        this.releaseNow(lock);
      },
    };
  }

  /** Fire and forget: nobody waits for it, and a lock that is not released lapses on its own. */
  private releaseNow(lock: TransferTokenStoreLock | undefined): void {
    if (lock === undefined) return;
    try {
      this.track(Promise.resolve(lock.release())).catch(() => undefined);
    } catch {
      // a store's release never fails a renewal
    }
  }

  /**
   * One store call. The caller waits at most `timeoutMs` (a renewal's budget), and 250 ms while reads or
   * locks go unanswered; the store is judged on its own bound (2 s): an answer within it is a store that
   * works, however late for the renewal that gave up on it; none is a `TIMEOUT`. So a store slower than a
   * renewal's budget but within its bound is neither degraded nor flapping, one that comes back ends the
   * outage with its first answer, and one slower than its bound stays degraded until it answers within it.
   */
  private async call<T>(
    kind: Call,
    call: (key: string, context: TransferTokenStoreContext) => Promise<T>,
    timeoutMs: number,
  ): Promise<T | Down> {
    if (this.closed.signal.aborted || !(timeoutMs > 0)) return DOWN; // closed, or the renewal's budget is spent
    this.lastCallAt = this.now();
    const pending = this.track(this.scope.then(({ key, context }) => call(key, this.reporting(context))));
    const failing = this.failing.get('read') ?? this.failing.get('lock');
    // While reads or locks go unanswered, a renewal waits 250 ms for each call, not 2 s.
    const short = failing !== undefined && !failing.late && !isReplyCode(failing.code);
    let judged = false;
    const bound = setTimeout(() => {
      judged = true;
      this.telemetry.storeFailed(METRIC_OPERATION[kind], 'timeout');
      this.failed(kind, 'TIMEOUT');
    }, STORE_TIMEOUT_MS);
    bound.unref?.();
    // Registered first: the judgement runs before the race below settles.
    pending.then(
      () => {
        clearTimeout(bound);
        this.answered(kind, judged); // late: alive but slow; full bounds again, still degraded
      },
      (error: unknown) => {
        clearTimeout(bound);
        if (judged) return;
        judged = true;
        this.telemetry.storeFailed(METRIC_OPERATION[kind], error instanceof Error ? error.name : typeof error);
        this.failed(kind, storeErrorCode(error));
      },
    );
    try {
      return await promiseTimeout(Math.min(timeoutMs, short ? DOWN_TIMEOUT_MS : STORE_TIMEOUT_MS), pending, true);
    } catch {
      return DOWN;
    }
  }

  private failed(kind: Call, code: string): void {
    if (this.closed.signal.aborted) return;
    if (kind === 'extend' || kind === 'replicated') {
      // Not a state of the store (the next such call may be hours away): said once per code. A lease
      // not extended lapses (the version fence keeps the late write out); an unconfirmed spent mark
      // makes that renewal log in.
      const what = kind === 'extend' ? 'a lock lease extension' : 'the replica check (INFO, WAIT)';
      this.say(`${kind}:${code}`, `The token store failed ${what} (${code}); carrying on without it.${hint(code)}`);
      return;
    }
    this.failing.set(kind, { code, late: false });
    if (this.state.state === 'degraded') {
      this.state = { ...this.state, error: code }; // the same outage: its latest code
    } else {
      this.state = { state: 'degraded', since: this.stamp(), error: code };
      this.outageLogged = false;
    }
    if (this.outageLogged) return; // said already
    const at = this.now();
    const last = this.logged.get(code);
    if (last !== undefined && at - last < DEGRADED_LOG_INTERVAL_MS) return; // flapping: said a moment ago
    this.logged.set(code, at);
    this.outageLogged = true;
    this.recoveryOwed = true;
    this.log(
      'warn',
      `The token store failed (${code} on ${kind}); renewing without it until it answers again.${hint(code)}`,
    );
  }

  /**
   * A call answered. In time: that kind works again, and so does whatever failed for want of an answer
   * (timeouts, sockets: the store is reachable); a refusal of another kind (`NOPERM`, `OOM`) stands until
   * that kind works. Late: the store is alive but slow: full timeouts again, still degraded.
   */
  private answered(kind: Call, late: boolean): void {
    if (this.closed.signal.aborted || kind === 'extend' || kind === 'replicated') return;
    if (late) {
      const failing = this.failing.get(kind);
      if (failing !== undefined) failing.late = true;
      return;
    }
    this.failing.delete(kind);
    for (const [other, { code }] of this.failing) if (!isReplyCode(code)) this.failing.delete(other);
    if (this.failing.size > 0) {
      const [first] = this.failing.values();
      if (this.state.state === 'degraded' && first !== undefined) this.state = { ...this.state, error: first.code };
      return;
    }
    if (this.state.state === 'ok') return;
    this.state = { state: 'ok', since: this.stamp() };
    if (!this.recoveryOwed) return;
    this.recoveryOwed = false;
    this.log('log', 'The token store answers again; renewals are shared through it again.');
  }

  /** Logs `message` once per `key` for this process. */
  private say(key: string, message: string): void {
    if (this.warned.has(key) || this.closed.signal.aborted) return;
    this.warned.add(key);
    this.log('warn', message);
  }

  /** The context the store gets: `warn` logs each code once for this process. */
  private reporting(context: TransferTokenStoreContext): TransferTokenStoreContext {
    const warn = (code: string, what: string): void => {
      const safe = /^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(code) ? code : 'UNKNOWN';
      this.say(safe, `The token store refused ${String(what).slice(0, 200)} (${safe}).${hint(safe)}`);
    };
    const reporting = Object.create(context) as TransferTokenStoreContext & { warn: typeof warn };
    Object.defineProperty(reporting, 'warn', { value: warn, enumerable: false });
    return reporting;
  }

  private stamp(): string {
    return new Date(this.now()).toISOString();
  }
}

/**
 * A refusal the server answered for a reason of its own (`NOPERM`, `OOM`, `WRONGTYPE`, ...): it stands for
 * its kind of call until that kind works. Anything else says the store could not be reached, or was in the
 * middle of a failover or a restart (`READONLY`, `LOADING`, `MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`,
 * `MOVED`, `ASK`): any answer in time ends it.
 */
function isReplyCode(code: string): boolean {
  return /^[A-Z]{2,}$/.test(code) && !code.startsWith('E') && !TRANSIENT_CODES.has(code);
}

const TRANSIENT_CODES = new Set([
  'TIMEOUT',
  'DISCONNECTED',
  'READONLY',
  'LOADING',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'MOVED',
  'ASK',
]);

/** What an operator can do about a code, where it is obvious. */
function hint(code: string): string {
  switch (code) {
    case 'NOPERM':
      return ' The Redis user lacks a permission: see the ACL in docs/fleet.md.';
    case 'OOM':
      return ' Redis is out of memory (maxmemory with noeviction).';
    case 'READONLY':
      return ' The Redis node is a replica: a failover under way, or the client points at a replica.';
    default:
      return '';
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

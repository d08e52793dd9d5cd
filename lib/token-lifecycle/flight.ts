import { inspect } from 'node:util';
import type { TransferAuthError } from '../errors/transfer-auth.error';
import { MAX_TIMER_DELAY_MS } from '../internal.constants';
import type { CachedToken } from './cached-token';

const noop = (): void => undefined;

/**
 * @internal One renewal in flight, shared by every caller that needs a token meanwhile: they all get
 * one promise, which `abort()` (shutdown) rejects at once whatever the renewal still does. While anyone
 * waits, a ref'd timer keeps the process alive (the renewal's own timers and sockets are unref'd, so
 * that a renewal nobody waits for never does).
 */
export class Flight {
  readonly promise: Promise<CachedToken>;
  private access: Promise<string> | undefined;
  private rejectAccess: ((error: TransferAuthError) => void) | undefined;
  private keeper: ReturnType<typeof setTimeout> | undefined;
  private waiting = 0;
  /** @internal When each caller started to wait (monotonic ms), kept only while telemetry times waits. */
  waitsFrom: number[] | undefined;

  constructor(
    /** Whether the renewal may log in with the credentials (else: refresh token only). */
    readonly canLogIn: boolean,
    renewal: Promise<CachedToken>,
  ) {
    this.promise = renewal;
    renewal.catch(noop); // a background renewal may have nobody listening
  }

  /** Whether anyone waited for it. */
  get awaited(): boolean {
    return this.waiting > 0;
  }

  /** A caller waits for the token. */
  join(): Promise<string> {
    this.waiting++;
    this.keeper ??= setTimeout(noop, MAX_TIMER_DELAY_MS);
    if (this.access === undefined) {
      this.access = new Promise<string>((resolve, reject) => {
        this.rejectAccess = reject;
        this.promise.then((token) => resolve(token.accessToken), reject);
      });
      this.access.catch(noop); // a caller that drops its promise gets no unhandled rejection at shutdown
    }
    return this.access;
  }

  /** Shutdown: every caller gets `error` now. */
  abort(error: TransferAuthError): void {
    this.rejectAccess?.(error);
    this.land();
  }

  /** The renewal settled: nothing holds the process any more. */
  land(): void {
    if (this.keeper !== undefined) clearTimeout(this.keeper);
    this.keeper = undefined;
    Flight.lastLanded = this;
  }

  /**
   * The last flight that landed, kept: with no Flight alive between renewals, V8 drops the optimised
   * code of the callers' path at a full GC, and the next stampede runs unoptimised (the stampede case
   * of the benchmarks shows it).
   */
  static lastLanded: Flight | undefined;

  /** @internal Its promises hold the token: never printed. */
  [inspect.custom](): string {
    return `Flight { waiting: ${this.waiting} }`;
  }
}

import type { TransferAuthError } from '../errors/transfer-auth.error';
import { FAILURE_LOG_INTERVAL_MS } from '../internal.constants';

/** @internal Where the lifecycle reports; the Nest layer plugs in its Logger and Subject. */
export type LogFn = (level: 'debug' | 'log' | 'warn' | 'error', message: string) => void;

/**
 * @internal Log throttling: a failure is logged once, the same failure (same code) again at most once a
 * minute with the count in between, and the end of the failures once. A different failure is logged at once.
 */
export class FailureLog {
  private streak: { readonly since: number; code: string; lastLoggedAt: number; unlogged: number } | undefined;

  constructor(private readonly log: LogFn) {}

  /** `next` says what happens now, e.g. "retrying in 2 s". */
  failed(error: TransferAuthError, now: number, next: string): void {
    const level = error.code === 'INVALID_CREDENTIALS' ? 'error' : 'warn';
    const what = `${error.code}: ${error.message}`;
    const streak = this.streak;
    if (streak === undefined || streak.code !== error.code) {
      this.streak = { since: streak?.since ?? now, code: error.code, lastLoggedAt: now, unlogged: 0 };
      this.log(level, `Token renewal failed (${what}); ${next}.`);
    } else if (now - streak.lastLoggedAt >= FAILURE_LOG_INTERVAL_MS) {
      const seconds = Math.round((now - streak.since) / 1000);
      this.log(
        level,
        `Token renewal still failing after ${seconds} s (${streak.unlogged + 1} more failures; last ${what}); ${next}.`,
      );
      streak.lastLoggedAt = now;
      streak.unlogged = 0;
    } else {
      streak.unlogged++;
    }
  }

  recovered(now: number): void {
    if (this.streak === undefined) return;
    this.log('log', `Token renewal recovered after ${Math.round((now - this.streak.since) / 1000)} s.`);
    this.streak = undefined;
  }
}

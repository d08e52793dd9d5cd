import { TransferAuthError } from '../../../lib/errors/transfer-auth.error';
import type { Harness } from '../support/stub-endpoint';

export const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** Default stub token: 10 min, `Date` header on a whole second (so the client assumes 1 s more has passed). */
export const LIFETIME = 600_000;
/** lifetime - 1 s (Date resolution) - default margin min(60 s, 20%). */
export const STALE_AT = LIFETIME - 1_000 - 60_000;
/** lifetime - 1 s - safety window min(5 s, 10%). */
export const USABLE_UNTIL = LIFETIME - 1_000 - 5_000;
export const FAST_RETRY = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 };

export function codeOf(error: unknown): string {
  if (!(error instanceof TransferAuthError)) throw new Error(`not a TransferAuthError: ${String(error)}`);
  return error.code;
}

/** Fake timers from T0 for each test; the test's lifecycle is closed after it. */
export function useFakeClock(current: () => Harness | undefined): void {
  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    current()?.lifecycle.close();
    jest.useRealTimers();
  });
}

import { MAX_TIMER_DELAY_MS } from '../internal.constants';

/** @internal What {@link promiseTimeout} rejects with when the time ran out first. */
export class PromiseTimeoutError extends Error {
  override readonly name = 'PromiseTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`Timed out after ${timeoutMs} ms.`);
  }
}

/**
 * @internal Settles as `promise` does, or rejects with a {@link PromiseTimeoutError} after `ms` (clamped
 * to what a timer can wait; NaN or negative: at once). The timer is cleared either way; it is not
 * unref'd, since someone awaits the result.
 */
export function promiseTimeout<T>(ms: number, promise: Promise<T>): Promise<T> {
  const delay = Number.isNaN(ms) ? 0 : Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PromiseTimeoutError(ms)), delay);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

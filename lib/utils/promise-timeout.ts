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
 * to what a timer can wait; NaN or negative: at once). The timer is cleared either way. It keeps the
 * process alive (someone awaits the result) unless `unref`: for work nobody must wait out, such as the
 * store calls of a background renewal.
 */
export function promiseTimeout<T>(ms: number, promise: Promise<T>, unref = false): Promise<T> {
  const delay = Number.isNaN(ms) ? 0 : Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PromiseTimeoutError(ms)), delay);
    if (unref) timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

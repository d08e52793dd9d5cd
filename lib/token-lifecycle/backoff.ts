import { IMF_FIXDATE, MAX_RETRY_AFTER_MS } from '../internal.constants';

/** @internal Exponential backoff with "equal jitter": half fixed, half random, so delays still grow. */
export function backoffDelay(
  step: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(Math.max(step, 0), 52));
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * @internal Parses `Retry-After` (delay-seconds or an HTTP-date) into milliseconds from now.
 * `serverNowMs` is the upstream's own `Date`, when it sent one, so a skewed local clock does not matter.
 */
export function parseRetryAfter(
  value: unknown,
  serverNowMs: number | undefined,
  localNowMs: number,
): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // Only an IMF-fixdate: Date.parse would take anything, in the local time zone.
  if (!IMF_FIXDATE.test(text)) return undefined;
  // The pattern lets through impossible dates (day 99, hour 25): Date.parse makes them NaN.
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - (serverNowMs ?? localNowMs)));
}

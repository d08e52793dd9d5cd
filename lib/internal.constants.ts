/** @internal Limits and timings the package keeps to itself: not part of the public surface. */

/** Default refresh margin: this share of the token lifetime ... */
export const REFRESH_MARGIN_RATIO = 0.2;

/** ... but never more than this. */
export const MAX_DEFAULT_REFRESH_MARGIN_MS = 60_000;

/** A token is not handed out within min(5 s, 10% of its lifetime) of its expiry. */
export const SAFETY_WINDOW_MAX_MS = 5_000;

export const SAFETY_WINDOW_RATIO = 0.1;

/** `Date` has whole-second resolution: the upstream clock may be up to this much later than it says. */
export const UPSTREAM_CLOCK_RESOLUTION_MS = 1_000;

/**
 * The longest `Retry-After` honoured: a longer one (a misconfigured proxy's "come back next year") is
 * waited as this much, so renewal is tried again at least this often.
 */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** `Sun, 06 Nov 1994 08:49:37 GMT`, the one HTTP-date format servers send (RFC 9110, 5.6.7). */
export const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Auth responses larger than this are refused. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** setTimeout overflows past this (it then fires after 1 ms); longer waits are chained. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** The same failure is logged once, then at most this often, then its recovery. */
export const FAILURE_LOG_INTERVAL_MS = 60_000;

/** After rejected credentials, no login for this long; doubled on each further rejection ... */
export const CREDENTIALS_COOLDOWN_MIN_MS = 1_000;

/** ... up to this. */
export const CREDENTIALS_COOLDOWN_MAX_MS = 5 * 60_000;

/** 401-driven renewals are at least this far apart; doubled while each new token is refused too ... */
export const UNAUTHORIZED_SPACING_MIN_MS = 5_000;

/** ... up to this. */
export const UNAUTHORIZED_SPACING_MAX_MS = 5 * 60_000;

/** How long one token-store call may take before the process renews without the store. */
export const STORE_TIMEOUT_MS = 2_000;

/**
 * What one renewal may spend in the store before its upstream call (read, lock, spent mark, replica
 * acknowledgement), all calls together: past it, the process renews without the store. A store slower
 * than this costs callers no more than a dead one.
 */
export const STORE_BUDGET_MS = 1_500;

/** ... and never more than this share of what is left of the token being replaced (short tokens). */
export const STORE_BUDGET_SHARE = 1 / 3;

/** ... nor less than this. */
export const STORE_BUDGET_MIN_MS = 100;

/** The renewal lock's lease: its live holder extends it every third of it; a paused or dead one loses it. */
export const LOCK_LEASE_MS = 4_000;

/** How long the spent mark may wait for a replica's acknowledgement (`WAIT`) before the renewal logs in. */
export const REPLICA_WAIT_MS = 500;

/** What replaces a secret or a token wherever an object is printed. */
export const REDACTED = '[redacted]';

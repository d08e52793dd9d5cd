import type { TransferAuthErrorCode } from 'nestjs-freedompay-transfer-auth';
import type { FakeFault, FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

/** What callers see when a renewal meets the fault: a token (`ok`) or a `TransferAuthError` code. */
export type FaultOutcome = 'ok' | Exclude<TransferAuthErrorCode, 'INVALID_CONFIG' | 'SHUTDOWN'>;

/**
 * What follows a renewal that meets the fault. A renewal sends Refresh token once (when a usable refresh
 * token is held), then Get token right away if the refresh failed: up to `retry.maxAttempts` times for a
 * `transient` fault, once otherwise.
 */
export type FaultRetry =
  /**
   * The background makes the next renewal after a backoff (`baseDelayMs` doubling to `maxDelayMs`, with
   * jitter); until then a caller with no usable token gets the error at once, without an upstream call.
   */
  | 'backoff'
  /**
   * `Retry-After` longer than `maxDelayMs`: the renewal ends at the answer that carried it (no Get token
   * after a refresh), and nobody calls the upstream before it has passed, `forceRefresh()` included; then
   * the background does.
   */
  | 'retry-after'
  /**
   * Rejected credentials: never a login in the background; callers get the error at once for a
   * cool-down (1 s, doubling), after which a caller (or `forceRefresh()` at any time) may log in once.
   */
  | 'cool-down'
  /** The answer is used. */
  | 'none';

/** One misbehaviour of the upstream, applied to every auth request (Get token and Refresh token). */
export interface FaultCase {
  readonly name: string;
  /** How the fake produces it: `refused` stops the fake; anything else is a {@link FakeFault}. */
  readonly fault: 'refused' | ((fake: FakeTransferServer) => FakeFault);
  readonly outcome: FaultOutcome;
  readonly retry: FaultRetry;
  /** Each attempt lasts `requestTimeoutMs` (the request never completes in time). */
  readonly slow?: boolean;
  /**
   * Fast and passing (connection refused or reset, 5xx): Get token is tried `retry.maxAttempts` times in
   * one renewal. Refresh token never twice: it may have spent the refresh token.
   */
  readonly transient?: boolean;
  /** Shown in docs/fault-matrix.md. */
  readonly detail: string;
}

/**
 * What the matrix runs with: short deadlines and backoff, so that it stays fast; the default
 * `maxAttempts`, so that the transient faults show a renewal's attempts.
 */
export const MATRIX_OPTIONS = {
  requestTimeoutMs: 300,
  retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
} as const;

const hourAgo = (): string => new Date(Date.now() - 3_600_000).toISOString().replace('Z', '000Z');

export const FAULTS: readonly FaultCase[] = [
  {
    name: 'connection refused',
    fault: 'refused',
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    transient: true,
    detail: 'nothing listens on the port',
  },
  {
    name: 'reset before answer',
    fault: () => ({ kind: 'reset' }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    transient: true,
    detail: 'socket destroyed after the request arrived',
  },
  {
    name: 'reset mid-body',
    fault: () => ({ kind: 'reset-mid-body' }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    transient: true,
    detail: 'headers and half the body, then the socket is destroyed',
  },
  {
    name: 'hang',
    fault: () => ({ kind: 'hang' }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    slow: true,
    detail: 'no answer at all; cut at `requestTimeoutMs`',
  },
  {
    name: 'slow body',
    fault: () => ({ kind: 'slow-body', ms: 1_500 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    slow: true,
    detail: 'a valid answer dribbled over 5x `requestTimeoutMs`; cut at the deadline',
  },
  ...[400, 404].map((status): FaultCase => ({
    name: `HTTP ${status}`,
    fault: () => ({ kind: 'status', status }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: 'a 4xx other than 401/403/408/429',
  })),
  ...[401, 403].map((status): FaultCase => ({
    name: `HTTP ${status}`,
    fault: () => ({ kind: 'status', status }),
    outcome: 'INVALID_CREDENTIALS',
    retry: 'cool-down',
    detail: 'credentials rejected (on Refresh token: falls back to Get token first)',
  })),
  {
    name: 'HTTP 408',
    fault: () => ({ kind: 'status', status: 408 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    detail: 'request timeout answered by the upstream',
  },
  {
    name: 'HTTP 429 without Retry-After',
    fault: () => ({ kind: 'status', status: 429 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    detail: 'rate limited, backoff only',
  },
  {
    name: 'HTTP 429 with Retry-After: 1',
    fault: () => ({ kind: 'status', status: 429, retryAfter: 1 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retry-after',
    detail: '1 s, longer than `maxDelayMs`: the renewal ends, everyone waits it out, the background too',
  },
  ...[500, 502, 503, 504].map((status): FaultCase => ({
    name: `HTTP ${status}`,
    fault: () => ({ kind: 'status', status }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'backoff',
    transient: true,
    detail: 'server error',
  })),
  {
    name: 'HTML instead of JSON',
    fault: () => ({ kind: 'body', body: '<html><body>Bad gateway</body></html>', contentType: 'text/html' }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: 'HTTP 200 with an HTML page',
  },
  {
    name: 'truncated JSON',
    fault: () => ({ kind: 'body', body: '{"access_token":"abc","refresh_tok' }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: 'HTTP 200, body cut short',
  },
  {
    name: 'missing field',
    fault: () => ({ kind: 'fields', fields: { access_token: undefined } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: '`access_token` absent',
  },
  {
    name: 'mistyped field',
    fault: () => ({ kind: 'fields', fields: { access_expire_at: 1_727_866_341 } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: '`access_expire_at` is a number',
  },
  {
    name: 'date in the past',
    fault: () => ({ kind: 'fields', fields: { access_expire_at: hourAgo() } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: '`access_expire_at` an hour ago: expired on arrival',
  },
  {
    name: 'unparsable date',
    fault: () => ({ kind: 'fields', fields: { access_expire_at: '2024-02-30T10:52:21.000000Z' } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: 'well-formed but not a calendar day',
  },
  {
    name: 'refresh expiring before access',
    fault: () => ({ kind: 'fields', fields: { refresh_expire_at: hourAgo() } }),
    outcome: 'ok',
    retry: 'none',
    detail: '`refresh_expire_at` an hour ago, the access token valid',
  },
  {
    name: 'oversized body',
    fault: () => ({ kind: 'oversized' }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: 'a valid pair padded past 64 KiB',
  },
  {
    name: 'redirect',
    fault: (fake) => ({ kind: 'redirect', location: `${fake.url}/elsewhere` }),
    outcome: 'INVALID_RESPONSE',
    retry: 'backoff',
    detail: 'HTTP 302; the target is never called',
  },
];

/**
 * Requests one renewal makes against the fault that reach the fake: `withRefreshToken` when a usable
 * refresh token is held (Refresh token, then Get token in the same renewal unless the refresh answered
 * with `Retry-After`). The same at startup, on demand, in the background or for `forceRefresh()`.
 */
export function expectedCalls(fault: FaultCase, withRefreshToken: boolean): number {
  if (fault.fault === 'refused') return 0; // nothing reaches the fake
  return requestsPerRenewal(fault, withRefreshToken);
}

/** Requests one renewal sends (whether or not they reach the fake). */
function requestsPerRenewal(fault: FaultCase, withRefreshToken: boolean): number {
  const logins = fault.transient === true ? MATRIX_OPTIONS.retry.maxAttempts : 1;
  switch (fault.retry) {
    case 'backoff':
    case 'cool-down':
      return (withRefreshToken ? 1 : 0) + logins;
    case 'retry-after':
    case 'none':
      return 1;
  }
}

/** The moments of the matrix, with what is checked at each. */
export const MOMENTS = [
  {
    name: 'module init',
    setup: '`fetchOnStartup: true`, the fault active before `init()` (which makes one renewal)',
    expect:
      '401/403: `init()` rejects with `INVALID_CREDENTIALS`, nothing calls the upstream afterwards. ' +
      'Others: the app starts, `getStatus().lastError.code` and `getAccessToken()` show the code.',
    served: 'no token yet',
    recovery: '`clearFaults()`: `getAccessToken()` soon resolves a valid token (401/403: the next `init()` succeeds)',
  },
  {
    name: 'scheduled refresh while idle',
    setup: 'a short-lived token; the fault applied; nobody calls until the schedule has failed',
    expect: 'a background `token.failed` event with the code (`background: true`); callers see no error',
    served: 'yes: the cached token (stale, still usable) is served and the upstream accepts it',
    recovery:
      '`clearFaults()`: renewed by the background retry, or after 401/403 (no background login) by the first caller ' +
      'once the token is unusable and the cool-down has passed',
  },
  {
    name: 'on-demand, 50 waiters',
    setup: '`fetchOnStartup: false`, backoff 50-100 ms; 50 concurrent `getAccessToken()`',
    expect:
      'every waiter gets the same code from one shared renewal; 50 more callers right after get it at once, ' +
      'without an upstream call; then the background retries on its own, except after 401/403 (never) and ' +
      'Retry-After (not before it has passed)',
    served: 'no token yet',
    recovery: '`clearFaults()`: `getAccessToken()` soon resolves a valid token',
  },
  {
    name: 'forceRefresh (10 concurrent)',
    setup: 'a valid token cached; 10 concurrent `forceRefresh()`',
    expect:
      'all 10 reject with the code, sharing one renewal; another `forceRefresh()` skips the backoff or ' +
      'cool-down and makes a new renewal at once (Get token: the refresh token was spent), but not within a ' +
      'Retry-After (rejected at once, no call)',
    served: 'yes: `getAccessToken()` still serves the cached token, which the upstream accepts',
    recovery: '`clearFaults()`: `forceRefresh()` soon resolves a new valid token',
  },
  {
    name: 'during shutdown',
    setup:
      '50 waiters on a renewal meeting the fault; `close()` while its request is in flight (held by the fake; ' +
      'connection refused: before the refusal arrives)',
    expect:
      'every waiter settles with `SHUTDOWN`; no upstream call after `close()` (the background would retry within ' +
      '50 ms; a refused port is listened on again to see it); later calls reject `SHUTDOWN`',
    served: 'n/a',
    recovery: 'n/a (closed)',
  },
] as const;

const RETRY_TEXT: Record<FaultRetry, string> = {
  backoff: 'the background renews again with backoff',
  'retry-after': 'the background renews again once Retry-After has passed (`forceRefresh()` waits too)',
  'cool-down': 'never retried in the background; a caller may log in after a cool-down (1 s, doubling)',
  none: 'accepted',
};

/** The matrix as markdown: docs/fault-matrix.md, which the spec checks (`UPDATE_FAULT_MATRIX=1` rewrites it). */
export function renderFaultMatrix(): string {
  const { requestTimeoutMs, retry } = MATRIX_OPTIONS;
  const lines = [
    '# Fault matrix',
    '',
    'Generated from `test/reliability/fault-table.ts`; every cell below is a',
    'test in `test/reliability/fault-matrix.spec.ts`, run end to end',
    'over real loopback sockets against `FakeTransferServer` (the fault is applied to every auth request, Get',
    'token and Refresh token alike). What the failures mean for an app: [failures.md](failures.md).',
    `Settings of the run: \`requestTimeoutMs: ${requestTimeoutMs}\`, \`retry: { maxAttempts: ${retry.maxAttempts}, baseDelayMs: ${retry.baseDelayMs}, maxDelayMs: ${retry.maxDelayMs} }\``,
    '(`maxAttempts`: the Get token requests of one renewal for a fast transient fault).',
    '',
    '## Faults',
    '',
    '"Upstream calls" is per renewal and exact: at module init / a caller with no token (on demand) /',
    "with a usable refresh token (the background's scheduled refresh, `forceRefresh()`), where the first",
    'request goes to Refresh token (never sent twice) and a failed refresh falls back to Get token in the',
    'same renewal (not after a `Retry-After`). Get token is sent up to `maxAttempts` times for a fast',
    'transient fault (connection refused or reset, 5xx), waiting `baseDelayMs` doubling to `maxDelayMs`',
    '(with jitter) in between; once for anything else. Every caller shares the renewal and waits through',
    'its attempts. "Afterwards" is what follows a failed renewal; until the next one is due, callers with',
    'no usable token get its error at once, without an upstream call.',
    '',
    '| # | Fault | How | Code seen | Upstream calls | Afterwards |',
    '|---|---|---|---|---|---|',
    ...FAULTS.map((f, i) => {
      const counts = [requestsPerRenewal(f, false), requestsPerRenewal(f, false), requestsPerRenewal(f, true)];
      const calls = `${counts.join(' / ')}${f.fault === 'refused' ? ' (none reach the fake)' : ''}`;
      const code = f.outcome === 'ok' ? 'none (token served)' : `\`${f.outcome}\``;
      return `| ${i + 1} | ${f.name} | ${f.detail} | ${code} | ${calls} | ${RETRY_TEXT[f.retry]} |`;
    }),
    '',
    '## Moments',
    '',
    'Each fault above is run at each of these moments (cells: faults x moments).',
    '',
    '| Moment | Setup | Callers see | Token still served | Recovery |',
    '|---|---|---|---|---|',
    ...MOMENTS.map((m) => `| ${m.name} | ${m.setup} | ${m.expect} | ${m.served} | ${m.recovery} |`),
    '',
    '## Notes',
    '',
    '- `HTTP 429 with Retry-After: 1`: one request (with a refresh token: the refresh only, no Get token),',
    '  since the second asked for is longer than `maxDelayMs` (a `Retry-After` within it is waited between',
    '  attempts of the renewal: test/e2e/renewal-attempts.e2e.spec.ts);',
    '  then callers with no usable token and `forceRefresh()` get `UPSTREAM_UNAVAILABLE` at once (no',
    '  upstream call) until the second has passed, and the background renews after it. A cached usable',
    '  token is still served meanwhile.',
    '- `refresh expiring before access`: not an error. The access token is served; since the refresh token',
    '  is already past its end, the next renewal uses Get token (checked: `calls.refresh` does not move).',
    '- The upstream calls above are those of one renewal. The background makes the next renewals after a',
    '  backoff growing from `baseDelayMs` to `maxDelayMs` ("equal jitter": between half and all of it),',
    '  forever; after 401/403 it makes none. A busy app makes no more upstream calls in an outage than an',
    '  idle one: callers are answered from the last failure until the next renewal is due.',
    '- A timeout (hang, slow body), 408 and 429 without `Retry-After` are not retried inside a renewal: a',
    "  timeout already took `requestTimeoutMs`, and a fast retry without the upstream's word adds to the",
    '  load it complains of.',
    '',
  ];
  return lines.join('\n');
}

import type { TransferAuthErrorCode } from 'nestjs-freedompay-transfer-auth';
import type { FakeFault, FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

/** What callers see when a renewal meets the fault: a token (`ok`) or a `TransferAuthError` code. */
export type FaultOutcome = 'ok' | Exclude<TransferAuthErrorCode, 'INVALID_CONFIG' | 'SHUTDOWN'>;

/** How a fault is retried inside one renewal. */
export type FaultRetry =
  /** Up to `retry.maxAttempts` requests, with backoff in between. */
  | 'retried'
  /** `Retry-After` longer than `retry.maxDelayMs`: one request, then no call until it has passed. */
  | 'retry-after'
  /** One request per way in: Get token, or Refresh token then Get token when a refresh token is held. */
  | 'not-retried'
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
  /** Shown in FAULT-MATRIX.md. */
  readonly detail: string;
}

/** What the matrix runs with: short deadlines and backoff, so that it stays fast. */
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
    retry: 'retried',
    detail: 'nothing listens on the port',
  },
  {
    name: 'reset before answer',
    fault: () => ({ kind: 'reset' }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retried',
    detail: 'socket destroyed after the request arrived',
  },
  {
    name: 'reset mid-body',
    fault: () => ({ kind: 'reset-mid-body' }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retried',
    detail: 'headers and half the body, then the socket is destroyed',
  },
  {
    name: 'hang',
    fault: () => ({ kind: 'hang' }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retried',
    slow: true,
    detail: 'no answer at all; cut at `requestTimeoutMs`',
  },
  {
    name: 'slow body',
    fault: () => ({ kind: 'slow-body', ms: 1_500 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retried',
    slow: true,
    detail: 'a valid answer dribbled over 5x `requestTimeoutMs`; cut at the deadline',
  },
  ...[400, 404].map((status): FaultCase => ({
    name: `HTTP ${status}`,
    fault: () => ({ kind: 'status', status }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
    detail: 'a 4xx other than 401/403/408/429',
  })),
  ...[401, 403].map((status): FaultCase => ({
    name: `HTTP ${status}`,
    fault: () => ({ kind: 'status', status }),
    outcome: 'INVALID_CREDENTIALS',
    retry: 'not-retried',
    detail: 'credentials rejected (on Refresh token: falls back to Get token first)',
  })),
  {
    name: 'HTTP 408',
    fault: () => ({ kind: 'status', status: 408 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retried',
    detail: 'request timeout answered by the upstream',
  },
  {
    name: 'HTTP 429 without Retry-After',
    fault: () => ({ kind: 'status', status: 429 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retried',
    detail: 'rate limited, backoff only',
  },
  {
    name: 'HTTP 429 with Retry-After: 1',
    fault: () => ({ kind: 'status', status: 429, retryAfter: 1 }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retry-after',
    detail: '1 s is longer than `retry.maxDelayMs`: callers are not held for it',
  },
  ...[500, 502, 503, 504].map((status): FaultCase => ({
    name: `HTTP ${status}`,
    fault: () => ({ kind: 'status', status }),
    outcome: 'UPSTREAM_UNAVAILABLE',
    retry: 'retried',
    detail: 'server error',
  })),
  {
    name: 'HTML instead of JSON',
    fault: () => ({ kind: 'body', body: '<html><body>Bad gateway</body></html>', contentType: 'text/html' }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
    detail: 'HTTP 200 with an HTML page',
  },
  {
    name: 'truncated JSON',
    fault: () => ({ kind: 'body', body: '{"access_token":"abc","refresh_tok' }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
    detail: 'HTTP 200, body cut short',
  },
  {
    name: 'missing field',
    fault: () => ({ kind: 'fields', fields: { access_token: undefined } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
    detail: '`access_token` absent',
  },
  {
    name: 'mistyped field',
    fault: () => ({ kind: 'fields', fields: { access_expire_at: 1_727_866_341 } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
    detail: '`access_expire_at` is a number',
  },
  {
    name: 'date in the past',
    fault: () => ({ kind: 'fields', fields: { access_expire_at: hourAgo() } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
    detail: '`access_expire_at` an hour ago: expired on arrival',
  },
  {
    name: 'unparsable date',
    fault: () => ({ kind: 'fields', fields: { access_expire_at: '2024-02-30T10:52:21.000000Z' } }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
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
    retry: 'not-retried',
    detail: 'a valid pair padded past 64 KiB',
  },
  {
    name: 'redirect',
    fault: (fake) => ({ kind: 'redirect', location: `${fake.url}/elsewhere` }),
    outcome: 'INVALID_RESPONSE',
    retry: 'not-retried',
    detail: 'HTTP 302; the target is never called',
  },
];

/**
 * Requests one renewal makes against the fault: `withRefreshToken` when a usable refresh token is held;
 * `maxAttempts` is `retry.maxAttempts`, or 1 at startup (which makes a single attempt).
 */
export function expectedCalls(fault: FaultCase, withRefreshToken: boolean, maxAttempts: number): number {
  if (fault.fault === 'refused') return 0; // nothing reaches the fake
  switch (fault.retry) {
    case 'retried':
      return maxAttempts;
    case 'retry-after':
    case 'none':
      return 1;
    case 'not-retried':
      return withRefreshToken ? 2 : 1;
  }
}

/** The moments of the matrix, with what is checked at each. */
export const MOMENTS = [
  {
    name: 'module init',
    setup: '`fetchOnStartup: true`, the fault active before `init()` (which makes one attempt)',
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
      '`clearFaults()`: renewed by the background retry, or after 401/403 (no background retry) by the first caller ' +
      'once the token is unusable',
  },
  {
    name: 'on-demand, 50 waiters',
    setup: '`fetchOnStartup: false`; 50 concurrent `getAccessToken()`',
    expect:
      'every waiter gets the same code from one shared renewal; then the background retries on its own, except ' +
      'after 401/403 (never) and Retry-After (not before it has passed)',
    served: 'no token yet',
    recovery: '`clearFaults()`: `getAccessToken()` soon resolves a valid token',
  },
  {
    name: 'forceRefresh (10 concurrent)',
    setup: 'a valid token cached; 10 concurrent `forceRefresh()`',
    expect: 'all 10 reject with the code, sharing one renewal',
    served: 'yes: `getAccessToken()` still serves the cached token, which the upstream accepts',
    recovery: '`clearFaults()`: `forceRefresh()` soon resolves a new valid token',
  },
  {
    name: 'during shutdown',
    setup:
      '50 waiters on a renewal meeting the fault; `close()` while its request is in flight (held by the fake) or ' +
      'its backoff sleep runs',
    expect: 'every waiter settles with `SHUTDOWN`; no upstream call after `close()`; later calls reject `SHUTDOWN`',
    served: 'n/a',
    recovery: 'n/a (closed)',
  },
] as const;

const RETRY_TEXT: Record<FaultRetry, string> = {
  retried: 'retried with backoff',
  'retry-after': 'not retried at once (Retry-After > `maxDelayMs`)',
  'not-retried': 'not retried at once',
  none: 'accepted',
};

/** The matrix as markdown, for the README's failure section (kept in FAULT-MATRIX.md, checked by the spec). */
export function renderFaultMatrix(): string {
  const { requestTimeoutMs, retry } = MATRIX_OPTIONS;
  const n = retry.maxAttempts;
  const lines = [
    '# Fault matrix',
    '',
    'Generated from `test/reliability/fault-table.ts`; every cell below is a test in',
    '`test/reliability/fault-matrix.spec.ts`, run end to end over real loopback sockets against',
    '`FakeTransferServer` (the fault is applied to every auth request, Get token and Refresh token alike).',
    `Settings of the run: \`requestTimeoutMs: ${requestTimeoutMs}\`, \`retry: { maxAttempts: ${n}, baseDelayMs: ${retry.baseDelayMs}, maxDelayMs: ${retry.maxDelayMs} }\`.`,
    '',
    '## Faults',
    '',
    '"Upstream calls" is per renewal and exact: at module init (a single attempt; the background retries',
    'afterwards) / on demand without a refresh token / with a usable refresh token (scheduled refresh,',
    'forceRefresh), where the first request goes to Refresh token and a rejected refresh falls back to',
    'Get token in the same attempt.',
    '',
    '| # | Fault | How | Code seen | Retry | Upstream calls |',
    '|---|---|---|---|---|---|',
    ...FAULTS.map((f, i) => {
      const calls =
        f.fault === 'refused'
          ? `1 / ${n} / ${n} attempts (none reach the fake)`
          : `${expectedCalls(f, false, 1)} / ${expectedCalls(f, false, n)} / ${expectedCalls(f, true, n)}`;
      const code = f.outcome === 'ok' ? 'none (token served)' : `\`${f.outcome}\``;
      const retry =
        f.outcome === 'INVALID_CREDENTIALS' ? 'never retried, not even in the background' : RETRY_TEXT[f.retry];
      return `| ${i + 1} | ${f.name} | ${f.detail} | ${code} | ${retry} | ${calls} |`;
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
    '- `HTTP 429 with Retry-After: 1`: after the one request, callers with no usable token get',
    '  `UPSTREAM_UNAVAILABLE` at once (no upstream call) until the second has passed; the background',
    '  renewal waits it out. A cached usable token is still served meanwhile.',
    '- `refresh expiring before access`: not an error. The access token is served; since the refresh token',
    '  is already past its end, the next renewal uses Get token (checked: `calls.refresh` does not move).',
    '- The upstream calls above are those of the one renewal the callers waited on; retries the background',
    '  makes afterwards (with backoff up to `maxDelayMs`; none after 401/403) are not counted there.',
    '',
  ];
  return lines.join('\n');
}

import type {
  RefreshHttpMethod,
  TransferAuthRefreshOptions,
} from '../interfaces/transfer-auth-module-options.interface';

/** Which endpoint of the fake a fault applies to. */
export type FakeEndpoint = 'auth' | 'refresh' | 'agents';

/**
 * A misbehaviour of the fake upstream, for one request:
 * - `status`: answer this HTTP status (optionally with `Retry-After`, extra headers, a body);
 * - `delay`: wait `ms`, then answer normally;
 * - `hang`: never answer (the socket stays open until the client gives up or the fake stops);
 * - `reset`: destroy the connection before answering;
 * - `reset-mid-body`: send the headers and half the body, then destroy the connection;
 * - `body`: answer this raw body (HTML, truncated JSON, ...) with status 200 unless given;
 * - `oversized`: answer a valid-looking JSON body of `bytes` (default 64 KiB + 1);
 * - `redirect`: answer 302 (or `status`) to `location`;
 * - `slow-body`: send the normal answer one byte chunk at a time over `ms`;
 * - `fields`: answer the normal token pair with these fields replaced (`undefined` removes one).
 *
 * Any fault may also carry `holdMs`: the request is held that long before the fault is applied (e.g. to
 * keep a request in flight while the test shuts the application down).
 */
export type FakeFault = (
  | { kind: 'status'; status: number; retryAfter?: number | string; body?: string; headers?: Record<string, string> }
  | { kind: 'delay'; ms: number }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'reset-mid-body' }
  | { kind: 'body'; body: string; status?: number; contentType?: string }
  | { kind: 'oversized'; bytes?: number }
  | { kind: 'redirect'; location: string; status?: number }
  | { kind: 'slow-body'; ms: number }
  | { kind: 'fields'; fields: Record<string, unknown> }
) & {
  /** Hold the request this long before applying the fault. @default 0 */
  holdMs?: number;
};

/**
 * Decides, per request, a fault to apply when none is queued (see `FakeTransferServer.faultPolicy`):
 * return `undefined` to answer normally. Handy for soak tests with random failures.
 */
export type FakeFaultPolicy = (endpoint: FakeEndpoint) => FakeFault | undefined;

/** Options of {@link FakeTransferServer}; each has a default. */
export interface FakeTransferServerOptions {
  /** @default 'fake-agent' */
  agentId?: string | undefined;
  /** The secret Get token accepts; rotate it later with `setAgentSecret()`. @default a random string */
  agentSecret?: string | undefined;
  /** Lifetime of issued access tokens. @default 3600000 (1 h) */
  accessTtlMs?: number | undefined;
  /** Lifetime of issued refresh tokens. @default 86400000 (24 h) */
  refreshTtlMs?: number | undefined;
  /** The fake's clock runs this far ahead of the local one (negative: behind). @default 0 */
  clockOffsetMs?: number | undefined;
  /** Path of Get token (`POST`): give it the module's `authPath`. @default '/v5/partner/transfer/agent/auth' */
  authPath?: string | undefined;
  /**
   * The refresh endpoint it serves: give it the module's `refresh` option, as is. Merged with the same
   * defaults (`path`: the `authPath`, `method`: `PATCH`, `tokenIn`: `both`); `false`: no refresh endpoint
   * (such requests get 404, or 405 on a path it serves with another method). A refresh may share method and path with Get token (`POST` on the auth
   * path): a request carrying a refresh token where `tokenIn` puts it is then a refresh.
   * @default { path: authPath, method: 'PATCH', tokenIn: 'both' }
   */
  refresh?:
    | (Omit<TransferAuthRefreshOptions, 'method'> & {
        /** Compared without regard to case. */
        method?: RefreshHttpMethod | (string & Record<never, never>) | undefined;
      })
    | false
    | undefined;
  /** What `GET /v5/partner/transfer/agents` answers to a valid token. */
  agents?: unknown;
  /**
   * Refresh tokens rotate: one that has already served a refresh is refused (401, `refresh token already
   * used`) and counted in `calls.refreshReused`. `false`: a lenient upstream, where a refresh token works
   * any number of times until it expires or is revoked; each reuse is still counted, and answered with a
   * new pair. Either way, a reuse past the token's refresh expiry is an expired token (401, not counted).
   * @default true
   */
  strictRefresh?: boolean | undefined;
  /**
   * Under `strictRefresh`, a reuse also revokes every access and refresh token descending from the same
   * login (the "token family"), as some OAuth servers do on a suspected theft: after it, only a new login
   * works. @default false
   */
  revokeFamilyOnReuse?: boolean | undefined;
}

/** One request the fake received. Bodies are kept as sent: this is test-only code. */
export interface FakeRequestRecord {
  endpoint: FakeEndpoint | 'unknown';
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number | 'fault';
  at: Date;
}

/** How many requests each endpoint received, and how many refresh tokens were reused. */
export interface FakeCallCounters {
  auth: number;
  refresh: number;
  agents: number;
  unknown: number;
  total: number;
  /**
   * Refresh requests whose token had already served a refresh and was not yet past its refresh expiry
   * (refused with 401 under `strictRefresh`, accepted otherwise); each is also counted in `refresh` and
   * `total`.
   */
  refreshReused: number;
}

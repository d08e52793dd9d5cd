import type { CreateAxiosDefaults } from 'axios';
import type { TransferTokenStore } from '../token-store/transfer-token-store.interface';
import type { AgentSecretProvider } from '../upstream/agent-secret';

/** Where the refresh token travels on the Refresh token call. */
export type RefreshTokenLocation = 'header' | 'body' | 'both';

/** HTTP methods the Refresh token call may use. */
export type RefreshHttpMethod = 'PATCH' | 'POST' | 'PUT';

/**
 * Shape of the Refresh token call. Freedom Pay lists the endpoint but does not publish its shape;
 * the defaults are an assumption (see the README), so every part can be changed here.
 */
export interface TransferAuthRefreshOptions {
  /**
   * Path of the Refresh token endpoint, relative to `baseUrl`.
   * @default the `authPath`
   */
  path?: string | undefined;
  /**
   * HTTP method of the Refresh token call.
   * @default 'PATCH'
   */
  method?: RefreshHttpMethod | undefined;
  /**
   * Where the refresh token goes: `Authorization: Bearer <refresh_token>` (`header`), the JSON body
   * `{ "refresh_token" }` (`body`), or both.
   * @default 'both'
   */
  tokenIn?: RefreshTokenLocation | undefined;
}

/** Retries of upstream calls that failed for a transient reason (network, 408, 429, 5xx). */
export interface TransferAuthRetryOptions {
  /**
   * Attempts one renewal makes (a whole number, at least 1) when Get token fails fast for a passing
   * reason: connection refused or reset, 5xx, 429/503 with a `Retry-After` no longer than `maxDelayMs`.
   * One renewal is shared by every caller, so callers with no usable token wait through its attempts
   * (never longer). A timeout, a bad answer, rejected credentials, an unavailable secret or a longer
   * `Retry-After` end it at once. Refresh token is never sent twice (the token may be single-use): a
   * failed refresh falls back to Get token, whose attempts these are.
   * @default 3
   */
  maxAttempts?: number | undefined;
  /**
   * Wait before the second attempt of a renewal, and backoff after the first failed renewal; each
   * further one doubles, with jitter (between half and all of it). Lowered to `maxDelayMs` when above it.
   * @default 200
   */
  baseDelayMs?: number | undefined;
  /**
   * Longest backoff delay: a cap that holds whatever `baseDelayMs` is. A `Retry-After` up to it is waited
   * between attempts; a longer one ends the renewal and holds every renewal back (obeyed up to 5 minutes).
   * @default 5000
   */
  maxDelayMs?: number | undefined;
}

/**
 * Keys of the axios defaults that `TransferHttpService` keeps to itself: where requests go (`baseURL`,
 * `url`, `socketPath`, `transport`, `adapter`), redirects (`maxRedirects`, `beforeRedirect`), the
 * credentials it sends (`auth`) and its deadline (`timeout`: see `httpTimeoutMs`). `proxy` may only be
 * `false`.
 */
export type TransferHttpReservedDefaults =
  | 'baseURL'
  | 'url'
  | 'adapter'
  | 'maxRedirects'
  | 'beforeRedirect'
  | 'transport'
  | 'socketPath'
  | 'proxy'
  | 'auth'
  | 'timeout';

/** axios defaults for `TransferHttpService`'s instance: those of `axios.create()`, less the reserved keys. */
export type TransferHttpDefaults = Omit<CreateAxiosDefaults, TransferHttpReservedDefaults> & {
  /** `false` turns off the proxies axios reads from the environment; a proxy of your own is refused. */
  proxy?: false | undefined;
};

/** OpenTelemetry options of a registration. */
export interface TransferAuthTelemetryOptions {
  /**
   * Add the agent id to every metric and span as `freedompay.transfer.agent.id` (an identifier, not a
   * secret; off by default, as some teams keep partner ids out of their dashboards).
   * @default false
   */
  agentIdAttribute?: boolean | undefined;
}

/** Options of {@link TransferAuthModule}. */
export interface TransferAuthModuleOptions {
  /** Unique partner identifier, provided by Freedom Pay support. Required, non-empty. */
  agentId: string;
  /**
   * Partner's secret key, provided by Freedom Pay support. Required: a non-empty string, or a function
   * that returns one (or a promise of one), called before every Get token and never cached longer than
   * one login, so that a rotated secret is picked up without a restart. After a rejected login the
   * provider is read again: a changed secret is tried at once, an unchanged one waits out the credentials
   * cool-down. A provider that throws, hangs past `requestTimeoutMs` or answers anything but a non-empty
   * string fails the login with `SECRET_UNAVAILABLE` (retried with backoff). Never logged.
   */
  agentSecret: string | AgentSecretProvider;
  /**
   * Base URL of the Partner API. `https:` only; `http:` is allowed for loopback hosts (tests, local fakes).
   * It is the only place credentials and tokens are ever sent.
   * @default 'https://api.freedompay.kz'
   */
  baseUrl?: string | undefined;
  /**
   * Path of the Get token endpoint.
   * @default '/v5/partner/transfer/agent/auth'
   */
  authPath?: string | undefined;
  /**
   * Shape of the Refresh token call (merged with the defaults), or `false` to never use the refresh
   * endpoint and always authenticate again with the agent credentials.
   * @default { path: authPath, method: 'PATCH', tokenIn: 'both' }
   */
  refresh?: TransferAuthRefreshOptions | false | undefined;
  /**
   * How long before expiry a token counts as stale and is renewed in the background. Clamped between
   * the safety window (min(5 s, 10% of the lifetime)) and half the token's lifetime.
   * @default 20% of the token lifetime, at most 60000
   */
  refreshMarginMs?: number | undefined;
  /**
   * Deadline of each upstream request, from connect to the last byte of the response.
   * @default 10000
   */
  requestTimeoutMs?: number | undefined;
  /**
   * Retries of transient failures (merged with the defaults).
   * @default { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5000 }
   */
  retry?: TransferAuthRetryOptions | undefined;
  /**
   * Fetch a token while the application initialises. Bad credentials or options then fail the
   * application's start; an unreachable upstream does not (the token is fetched in the background).
   * @default true
   */
  fetchOnStartup?: boolean | undefined;
  /**
   * Where the current token is kept and locked while it is renewed. The default keeps it in this
   * process, one store per registration; a shared store lets several processes use one token.
   * @default none: this process alone, as with an in-process store
   */
  store?: TransferTokenStore | undefined;
  /**
   * OpenTelemetry metrics and spans, through `@opentelemetry/api` (an optional peer) and the SDK the app
   * registers; nothing is recorded without one. `false` turns them off. Every instrument carries the
   * registration's `name` (`default` when unnamed); the agent id only with `agentIdAttribute: true`.
   * @default { agentIdAttribute: false }
   */
  telemetry?: TransferAuthTelemetryOptions | false | undefined;
  /**
   * Deadline of each exchange made by `TransferHttpService`, from connect to the last byte of the
   * response (also of a `responseType: 'stream'` body): a timer over the whole exchange, not axios' idle
   * `timeout`, so a body trickling in byte by byte is cut as well. A request past it rejects with an
   * `AxiosError` coded `ECONNABORTED` (`ETIMEDOUT` with `transitional.clarifyTimeoutError`). The one retry
   * after a 401 gets a deadline of its own; waiting for a token is bounded by `requestTimeoutMs` instead.
   * A per-request `timeout` still adds axios' idle timer. Instances given to `attachTransferAuth` keep
   * their own timeouts.
   * @default 30000
   */
  httpTimeoutMs?: number | undefined;
  /**
   * axios defaults of `TransferHttpService`'s instance, as given to `axios.create()`: `headers`,
   * `httpsAgent`, `maxContentLength`, `validateStatus`, transforms... Per-request config overrides them,
   * as in axios. Refused with `INVALID_CONFIG`, because the client keeps them to itself: `baseURL` (it is
   * `baseUrl`), `url`, `adapter`, redirects (`maxRedirects`, `beforeRedirect`), whatever could send the
   * token elsewhere (`socketPath`, `transport`, a `proxy` other than `false`), credentials (`auth`, an
   * `Authorization` header) and `timeout` (see `httpTimeoutMs`).
   * @default {}
   */
  httpDefaults?: TransferHttpDefaults | undefined;
}

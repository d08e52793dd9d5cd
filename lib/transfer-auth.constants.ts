import type { RefreshHttpMethod, RefreshTokenLocation } from './interfaces/transfer-auth-module-options.interface';

/**
 * Injection token of the module's options, as given to `forRoot`/`forRootAsync` (secret redacted from
 * `inspect` and JSON). Defined here, not by the builder, so that the service can import it without a cycle.
 */
export const TRANSFER_AUTH_MODULE_OPTIONS = 'nestjs-freedompay-transfer-auth:options';

/** Freedom Pay's production API host. */
export const DEFAULT_BASE_URL = 'https://api.freedompay.kz';

/** Get token (and, by assumption, Refresh token) endpoint of the Transfer (IMTS) section. */
export const DEFAULT_AUTH_PATH = '/v5/partner/transfer/agent/auth';

/** The protected endpoint the testing kit serves, and the sample app calls. */
export const AGENTS_PATH = '/v5/partner/transfer/agents';

/** Default `requestTimeoutMs`: deadline of one auth request. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Default `retry`: attempts per renewal, and the backoff between them and between renewals. */
export const DEFAULT_RETRY = Object.freeze({ maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5_000 });

/** Default `refresh.method`: an assumption, the reference does not publish it. */
export const DEFAULT_REFRESH_METHOD = 'PATCH';

/** Default `refresh.tokenIn`. */
export const DEFAULT_REFRESH_TOKEN_IN = 'both';

/** @internal The `refresh.method` values, in the order the doctor probes them. */
export const REFRESH_METHODS: readonly RefreshHttpMethod[] = ['PATCH', 'POST', 'PUT'];

/** @internal The `refresh.tokenIn` values. */
export const REFRESH_TOKEN_LOCATIONS: readonly RefreshTokenLocation[] = ['header', 'body', 'both'];

/** Default `httpTimeoutMs`: deadline of one exchange of `TransferHttpService`, connect to last byte. */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

/**
 * Default timeout of requests made through the authenticated Transfer API client.
 * @deprecated The same value as {@link DEFAULT_HTTP_TIMEOUT_MS}, the default of the `httpTimeoutMs` option.
 */
export const DEFAULT_API_TIMEOUT_MS = DEFAULT_HTTP_TIMEOUT_MS;

import { AxiosHeaders, isAxiosError, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';
import { TransferAuthError } from '../errors/transfer-auth.error';
import { hookAdapter, type AdapterWrapper } from './adapter-hook';
import { concealError, concealResponse, maskHeader } from './exchange-redaction';
import { targetsRoot, toRoot, type Root } from './transfer-destination';

/** What `attachTransferAuth` needs of a token provider (`TransferAuthService` has it). */
export interface TransferTokenSource {
  /**
   * A token to send now: called before each request to the base URL, and once more after a 401. Keep
   * it cheap while a token is cached. When it rejects, so does the request, with the same error.
   */
  getAccessToken(): Promise<string>;
  /**
   * Called with the token a request was refused with (401), just before `getAccessToken()` is asked for
   * the token to retry with. It must drop `token` only if it is still the current one, and ignore a
   * token that is no longer current. Why: when many requests sent with one token come back 401 together,
   * the first call replaces it, and each of the others, arriving later with the old token, must not
   * throw the fresh one away again. A naive source that renews on every call renews once per 401 (a
   * hundred concurrent 401s, a hundred renewals) and discards tokens it has just been issued.
   * `TransferAuthService.invalidate` ignores a stale token, and spaces 401-driven renewals.
   */
  invalidate(token?: string): void;
  /** The configured base URL: the only place the token is ever sent. */
  getBaseUrl(): string;
}

const SOURCE_METHODS = ['getAccessToken', 'invalidate', 'getBaseUrl'] as const;

/**
 * Teaches an axios instance to call the Transfer API. Every request whose final URL is the base URL
 * (`source.getBaseUrl()`) or below it gets `Authorization: Bearer <access_token>` and is sent without
 * following redirects; on a 401 it is sent once more with a fresh token, after the refused one was
 * passed to `source.invalidate(token)`. Requests anywhere else are left untouched. Relative URLs are
 * resolved against the base URL when the instance has no `baseURL`.
 *
 * It decides at the adapter, after every request interceptor has run, so interceptor order does not
 * matter: yours may be added before or after it, change the URL, or return a copy of the config, and
 * the token still goes only where the request really goes, with the same retry. (An interceptor that
 * puts another `adapter` in the config after the client's own has run bypasses it: nothing is added.)
 * The retry re-sends the request as the interceptors left it (they do not run again), and response
 * interceptors see only its outcome. A request whose body is a stream cannot be sent twice (in Node,
 * `postForm` of a plain object makes one; pass a `FormData` instead): its 401 is returned as is.
 *
 * Once a request has gone, `config.headers.Authorization` reads `Bearer [redacted]`, and the raw
 * request behind `response.request` / `error.request` shows no token in `inspect` or `JSON.stringify`.
 *
 * A request rejects with what `source.getAccessToken()` rejects with when no token can be had (a
 * `TransferAuthError` from `TransferAuthService`), else as axios rejects (an `AxiosError`).
 *
 * @param instance an axios instance (`axios.create()`). One synchronous request interceptor is added;
 *   its defaults are left as they are.
 * @param source the token provider, usually the `TransferAuthService`.
 * @returns a function that takes the client off the instance again.
 * @throws TransferAuthError `INVALID_CONFIG` at once when `instance` is not an axios instance or
 *   `source` lacks one of `getAccessToken`, `invalidate`, `getBaseUrl` (the message names them).
 */
export function attachTransferAuth(instance: AxiosInstanceLike, source: TransferTokenSource): () => void {
  checkArguments(instance, source);
  return hookAdapter(instance as AxiosInstance, authenticating(source));
}

/**
 * What {@link attachTransferAuth} takes: an axios instance, typed by its shape, so that one typed by
 * axios' ES-module declarations (in an ES-module app) is accepted as well as one typed by its CommonJS
 * declarations, which this package is compiled against. It is checked at run time to be an axios instance.
 */
export interface AxiosInstanceLike {
  readonly defaults: object;
  readonly interceptors: {
    readonly request: { use(...args: never[]): number; eject(id: number): void };
  };
}

function checkArguments(instance: unknown, source: unknown): void {
  const candidate = instance as Partial<AxiosInstance> | null | undefined;
  if (
    (typeof instance !== 'function' && typeof instance !== 'object') ||
    typeof candidate?.defaults !== 'object' ||
    candidate.defaults === null ||
    typeof candidate.interceptors?.request?.use !== 'function'
  ) {
    throw new TransferAuthError(
      'INVALID_CONFIG',
      'attachTransferAuth(instance, source): `instance` is not an axios instance (make one with axios.create()).',
    );
  }
  const methods = source as Partial<Record<(typeof SOURCE_METHODS)[number], unknown>> | null | undefined;
  const missing = SOURCE_METHODS.filter((name) => typeof methods?.[name] !== 'function');
  if (missing.length === 0) return;
  const what = source === null || source === undefined ? `is ${String(source)}` : 'is not a TransferTokenSource';
  throw new TransferAuthError(
    'INVALID_CONFIG',
    `attachTransferAuth(instance, source): \`source\` ${what}; missing ${missing.map((m) => `${m}()`).join(', ')}.`,
  );
}

/**
 * @internal The adapter wrapper that authenticates the requests under the source's base URL: the
 * destination check, the token, the one retry after a 401, and the masking, all on the config the
 * adapter sends (the same object `response.config` and `error.config` then hold).
 */
export function authenticating(source: TransferTokenSource): AdapterWrapper {
  let root: Root | undefined;
  return (next) => async (config) => {
    const base = source.getBaseUrl();
    if (!config.baseURL) config.baseURL = base;
    if (root?.base !== base) root = toRoot(base);
    if (!targetsRoot(config, root)) return next(config);
    config.maxRedirects = 0; // a redirect must not carry the token anywhere
    let token = await source.getAccessToken();
    for (let retried = false; ; retried = true) {
      authorize(config, token);
      try {
        const response = await next(config);
        // A 401 that resolves: the request's `validateStatus` lets it through.
        if (response.status !== 401 || retried || !resendable(config)) {
          maskHeader(config, token);
          concealResponse(response);
          return response;
        }
        discard(response.data);
      } catch (error) {
        const refused = isAxiosError(error) && error.response?.status === 401;
        if (!refused || retried || !resendable(config)) {
          maskHeader(config, token);
          concealError(error);
          throw error;
        }
      }
      source.invalidate(token);
      try {
        token = await source.getAccessToken();
      } catch (error) {
        maskHeader(config, token);
        throw error;
      }
    }
  };
}

function authorize(config: InternalAxiosRequestConfig, token: string): void {
  const value = `Bearer ${token}`;
  // A user's instance may come from another copy of axios: use its own headers object when it has one.
  if (typeof config.headers?.set === 'function') config.headers.set('Authorization', value);
  else config.headers = AxiosHeaders.from(config.headers).set('Authorization', value);
}

/** Whether the body can be sent a second time: a stream (Node's or the web's) is spent by the first. */
function resendable(config: InternalAxiosRequestConfig): boolean {
  const data: unknown = config.data;
  if (typeof data !== 'object' || data === null) return true;
  const body = data as { pipe?: unknown; getReader?: unknown };
  return typeof body.pipe !== 'function' && typeof body.getReader !== 'function';
}

/** A refused response that is not passed on: a streamed body is closed, not left holding the socket. */
function discard(data: unknown): void {
  const body = data as { destroy?: unknown } | null | undefined;
  if (typeof body?.destroy === 'function') (body as { destroy(): void }).destroy();
}

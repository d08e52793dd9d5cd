import {
  AxiosHeaders,
  isAxiosError,
  type AxiosError,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import { inspect } from 'node:util';
import { REDACTED } from '../internal.constants';

/** What `attachTransferAuth` needs of a token provider (`TransferAuthService` has it). */
export interface TransferTokenSource {
  getAccessToken(): Promise<string>;
  invalidate(token?: string): void;
  /** The configured base URL: the only place the token is ever sent. */
  getBaseUrl(): string;
}

/**
 * Teaches an axios instance to call the Transfer API: every request to the configured base URL gets
 * `Authorization: Bearer <access_token>` (relative URLs are resolved against it), is sent without
 * following redirects, and on a 401 is retried once with a fresh token (the rejected one is
 * invalidated; concurrent 401s share one renewal). Requests to any other host are left untouched.
 * Returns a function that removes the interceptors.
 *
 * Call it before adding request interceptors of your own that change `url` or `baseURL`: axios runs
 * request interceptors last-added first, so one added earlier would run after the destination check.
 */
export function attachTransferAuth(instance: AxiosInstance, auth: TransferTokenSource): () => void {
  const sentWith = new WeakMap<InternalAxiosRequestConfig, string>();
  let root: Root | undefined;

  const requestId = instance.interceptors.request.use(async (config) => {
    const base = auth.getBaseUrl();
    if (!config.baseURL) config.baseURL = base;
    if (root?.base !== base) root = toRoot(base);
    if (!targetsRoot(config, root)) return config;
    const token = await auth.getAccessToken();
    // A user's instance may come from another copy of axios: use its own headers object when it has one.
    if (typeof config.headers?.set === 'function') config.headers.set('Authorization', `Bearer ${token}`);
    else config.headers = AxiosHeaders.from(config.headers).set('Authorization', `Bearer ${token}`);
    config.maxRedirects = 0; // a redirect must not carry the token anywhere
    sentWith.set(config, token);
    return config;
  });

  const responseId = instance.interceptors.response.use(
    (response) => {
      const token = sentWith.get(response.config);
      if (token !== undefined) {
        maskHeader(response.config, token);
        hideRequest(response);
      }
      return response;
    },
    async (error: unknown) => {
      if (!isAxiosError(error) || error.config === undefined) throw error;
      const config = error.config;
      const token = sentWith.get(config);
      if (token === undefined) throw error;
      if (error.response?.status !== 401 || (config as RetryMarked)[RETRIED]) {
        // Errors are rare and get logged whole: besides the guard on the raw request, `request` on the
        // error and its response becomes a non-enumerable getter (which inspect and JSON do not list).
        maskHeader(config, token);
        for (const holder of [error, error.response]) {
          if (holder === undefined || !('request' in holder)) continue;
          hideRequest(holder);
          const request: unknown = holder.request;
          Object.defineProperty(holder, 'request', { get: () => request, enumerable: false, configurable: true });
        }
        throw error;
      }
      auth.invalidate(token);
      // axios copies the config on request(): the mark must be a plain key to survive the copy.
      return instance.request({ ...config, [RETRIED]: true } as InternalAxiosRequestConfig);
    },
  );

  return () => {
    instance.interceptors.request.eject(requestId);
    instance.interceptors.response.eject(responseId);
  };
}

const RETRIED = 'transferAuthRetried';
type RetryMarked = InternalAxiosRequestConfig & { [RETRIED]?: boolean };

/** axios' `isAbsoluteURL`: a scheme, or `//` (protocol-relative). */
const ABSOLUTE_URL = /^([a-z][a-z\d+\-.]*:)?\/\//i;

/**
 * What can move a relative URL's path out from under the base once the WHATWG parser is done with it:
 * a `..` segment (also spelt `.%2e`, `%2e.`, `%2e%2e`), a backslash (read as `/` in http(s) URLs),
 * tab and newlines (deleted before parsing, so `.\t.` is `..`). Broader than needed, to stay simple:
 * `..` anywhere, any `%2e`, and anything but printable ASCII (spaces, controls, non-ASCII). Whatever
 * matches goes through the full parse.
 */
const MAY_ESCAPE = /\.\.|%2e|\\|[^!-~]/i;

/** A base URL that `base + '/' + path` extends as text: http(s), spelt out, no query or fragment. */
const PLAIN_BASE = /^https?:\/\/[^?#]*$/i;

interface Root {
  /** The base URL as the token source gives it. */
  readonly base: string;
  readonly origin: string;
  /** The base path without its trailing slashes: `''` for the whole origin. */
  readonly prefix: string;
  /** Whether `base + '/' + url` stays under the base for any relative `url` that `MAY_ESCAPE` passes. */
  readonly plain: boolean;
}

function toRoot(base: string): Root {
  const url = new URL(base);
  return {
    base,
    origin: url.origin,
    prefix: url.pathname.replace(/\/+$/, ''),
    plain: PLAIN_BASE.test(base) && !MAY_ESCAPE.test(base),
  };
}

/** Whether the request made of this (merged) config goes to the base URL or below it. */
function targetsRoot(config: InternalAxiosRequestConfig, root: Root): boolean {
  const url = config.url;
  // The common case, without parsing a URL: a relative path joined to the configured base as is. axios
  // joins them as `base/url` (slashes trimmed), which stays under the base when neither part can
  // escape it (see `MAY_ESCAPE`). Anything else is parsed in full, as axios' adapter will parse it.
  if (
    root.plain &&
    config.baseURL === root.base &&
    (url === undefined || (typeof url === 'string' && !ABSOLUTE_URL.test(url) && !MAY_ESCAPE.test(url)))
  ) {
    return true;
  }
  return isUnder(fullUrl(config), root);
}

/**
 * The URL axios requests for this (merged) config, built as its `buildFullPath` does (params aside).
 * Not `instance.getUri(config)`: it merges the instance defaults in again, which costs more than the
 * rest of this client.
 * Every trailing slash of the base goes, as in axios 1.21. Older versions strip at most two, which
 * can only leave an extra empty segment for a `..` to eat: this reading is the stricter one.
 */
function fullUrl(config: InternalAxiosRequestConfig): string {
  const url = config.url ?? '';
  const baseURL = config.baseURL;
  if (baseURL && (!ABSOLUTE_URL.test(url) || config.allowAbsoluteUrls === false)) {
    return url ? `${baseURL.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}` : baseURL;
  }
  return url;
}

/** Whether `url` is the base URL or below it (same origin, path under the base path). */
function isUnder(url: string, root: Root): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (target.origin !== root.origin) return false;
  const prefix = root.prefix;
  return prefix === '' || target.pathname === prefix || target.pathname.startsWith(`${prefix}/`);
}

const MASKED = `Bearer ${REDACTED}`;

/**
 * What users read from `config.headers` once the request has gone: the token masked. Our interceptor
 * put it under `Authorization` (a plain write masks it) unless another spelling was there already.
 */
function maskHeader(config: InternalAxiosRequestConfig, token: string): void {
  const headers = config.headers;
  if (headers?.Authorization === `Bearer ${token}`) headers.Authorization = MASKED;
  else if (headers?.has?.('Authorization')) headers.set('Authorization', MASKED);
}

/**
 * The raw request (Node's `ClientRequest`, or fetch's `Request`) holds the token in its headers
 * (`_header`), and a response or an error leads to it through `request`. It stays readable there as
 * it is, but refuses to print itself: `inspect` (whatever the depth, `showHidden` or `getters`) shows
 * a stub, and `JSON` leaves it out (`toJSON` returning `undefined` drops the key). Two plain writes;
 * turning `request` on every response into a getter cost ~1.5 us a request (V8 makes the response a
 * dictionary object). A request object that takes no new properties gets that getter all the same.
 */
function hideRequest(holder: AxiosError | AxiosResponse): void {
  const request: unknown = holder.request;
  if (typeof request !== 'object' || request === null) return;
  try {
    (request as Guarded)[inspect.custom] = printStub;
    (request as Guarded).toJSON = omitFromJson;
  } catch {
    Object.defineProperty(holder, 'request', { get: () => request, enumerable: false, configurable: true });
  }
}

interface Guarded {
  [inspect.custom]?: typeof printStub;
  toJSON?: typeof omitFromJson;
}

function printStub(this: object): string {
  return `[${this.constructor?.name ?? 'request'}: not shown, it holds the access token]`;
}

function omitFromJson(): undefined {
  return undefined;
}

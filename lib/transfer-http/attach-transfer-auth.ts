import {
  AxiosHeaders,
  isAxiosError,
  type AxiosError,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import { REDACTED } from '../transfer-auth.constants';

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
 */
export function attachTransferAuth(instance: AxiosInstance, auth: TransferTokenSource): () => void {
  const sentWith = new WeakMap<InternalAxiosRequestConfig, string>();
  let root: { base: string; url: URL } | undefined;

  const requestId = instance.interceptors.request.use(async (config) => {
    const base = auth.getBaseUrl();
    if (!config.baseURL) config.baseURL = base;
    if (root?.base !== base) root = { base, url: new URL(base) };
    // Not `instance.getUri(config)`: it merges the instance defaults into the config again (axios has
    // already done so before the interceptors run), which costs more than the rest of this client.
    if (!isUnder(fullUrl(config), root.url)) return config;
    const token = await auth.getAccessToken();
    // A user's instance may come from another copy of axios: use its own headers object when it has one.
    if (typeof config.headers?.set === 'function') config.headers.set('Authorization', `Bearer ${token}`);
    else config.headers = AxiosHeaders.from(config.headers).set('Authorization', `Bearer ${token}`);
    config.maxRedirects = 0; // a redirect must not carry the token anywhere
    sentWith.set(config, token);
    return config;
  });

  const responseId = instance.interceptors.response.use(
    (response) => (sentWith.has(response.config) ? redact(response) : response),
    async (error: unknown) => {
      if (!isAxiosError(error) || error.config === undefined) throw error;
      const config = error.config;
      const token = sentWith.get(config);
      if (token === undefined) throw error;
      if (error.response?.status !== 401 || (config as RetryMarked)[RETRIED]) throw redact(error);
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

/** The URL axios requests for this (merged) config, built as its `buildFullPath` does (params aside). */
function fullUrl(config: InternalAxiosRequestConfig): string {
  const url = config.url ?? '';
  const baseURL = config.baseURL;
  if (baseURL && (!ABSOLUTE_URL.test(url) || config.allowAbsoluteUrls === false)) {
    return url ? `${baseURL.replace(/\/?\/$/, '')}/${url.replace(/^\/+/, '')}` : baseURL;
  }
  return url;
}

/** Whether `url` is the base URL or below it (same origin, path under the base path). */
function isUnder(url: string, root: URL): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (target.origin !== root.origin) return false;
  const prefix = root.pathname.replace(/\/+$/, '');
  return prefix === '' || target.pathname === prefix || target.pathname.startsWith(`${prefix}/`);
}

/**
 * A response or AxiosError that leaves our hands must not print the token: the header is masked in its
 * config, and the raw request (whose `_header` holds it) stays readable as `request` but only through
 * a non-enumerable getter, which neither `inspect` (even with `showHidden`) nor `JSON` evaluates.
 */
function redact<T extends AxiosError | AxiosResponse>(holder: T): T {
  const headers = holder.config?.headers;
  if (headers?.has?.('Authorization')) headers.set('Authorization', `Bearer ${REDACTED}`);
  for (const target of [holder, isAxiosError(holder) ? holder.response : undefined]) {
    if (target === undefined || !('request' in target)) continue;
    const request: unknown = target.request;
    Object.defineProperty(target, 'request', { get: () => request, enumerable: false, configurable: true });
  }
  return holder;
}

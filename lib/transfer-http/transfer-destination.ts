import type { InternalAxiosRequestConfig } from 'axios';

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

/** @internal The configured base URL, taken apart once for the destination check. */
export interface Root {
  /** The base URL as the token source gives it. */
  readonly base: string;
  readonly origin: string;
  /** The base path without its trailing slashes: `''` for the whole origin. */
  readonly prefix: string;
  /** Whether `base + '/' + url` stays under the base for any relative `url` that `MAY_ESCAPE` passes. */
  readonly plain: boolean;
}

/** @internal */
export function toRoot(base: string): Root {
  const url = new URL(base);
  return {
    base,
    origin: url.origin,
    prefix: url.pathname.replace(/\/+$/, ''),
    plain: PLAIN_BASE.test(base) && !MAY_ESCAPE.test(base),
  };
}

/**
 * @internal Whether the request made of this config goes to the base URL or below it. Read at the
 * adapter, on the config the adapter is about to send: what every request interceptor made of it.
 */
export function targetsRoot(config: InternalAxiosRequestConfig, root: Root): boolean {
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
 * The URL axios requests for this config, built as its `buildFullPath` does (params aside).
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

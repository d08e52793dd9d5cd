import type { IncomingHttpHeaders } from 'node:http';
import type { RefreshTokenLocation } from '../interfaces/transfer-auth-module-options.interface';
import {
  AGENTS_PATH,
  DEFAULT_AUTH_PATH,
  DEFAULT_REFRESH_METHOD,
  DEFAULT_REFRESH_TOKEN_IN,
} from '../transfer-auth.constants';
import type { FakeEndpoint, FakeTransferServerOptions } from './fake-transfer-server.types';

/** @internal Where the fake serves what, from its options, with the module's defaults. */
export interface FakeRoutes {
  readonly authPath: string;
  readonly refresh: { readonly path: string; readonly method: string; readonly tokenIn: RefreshTokenLocation } | false;
}

/** @internal The fake's routes, merged with the defaults exactly as the module merges its `refresh` option. */
export function fakeRoutes(options: FakeTransferServerOptions): FakeRoutes {
  const authPath = options.authPath ?? DEFAULT_AUTH_PATH;
  const refresh = options.refresh;
  if (refresh === false) return { authPath, refresh: false };
  return {
    authPath,
    refresh: {
      path: refresh?.path ?? authPath,
      method: (refresh?.method ?? DEFAULT_REFRESH_METHOD).toUpperCase(),
      tokenIn: refresh?.tokenIn ?? DEFAULT_REFRESH_TOKEN_IN,
    },
  };
}

/**
 * @internal Which endpoint a request is for, by method and path. When the refresh endpoint shares both
 * with Get token (a refresh configured as `POST` on the auth path), the request is a refresh if it
 * carries a refresh token where `tokenIn` puts one (a Bearer header, or `refresh_token` in the JSON
 * body), and Get token otherwise.
 */
export function routeRequest(
  routes: FakeRoutes,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  body: string,
): FakeEndpoint | 'unknown' {
  const refresh = routes.refresh !== false && path === routes.refresh.path && method === routes.refresh.method;
  const auth = path === routes.authPath && method === 'POST';
  if (refresh && auth) return carriesRefreshToken(routes, headers, body) ? 'refresh' : 'auth';
  if (refresh) return 'refresh';
  if (auth) return 'auth';
  if (path === AGENTS_PATH && method === 'GET') return 'agents';
  return 'unknown';
}

/** @internal The methods the fake serves on `path`, by the same routes (none: an unknown path). */
export function methodsAt(routes: FakeRoutes, path: string): string[] {
  const methods = new Set<string>();
  if (path === routes.authPath) methods.add('POST');
  if (routes.refresh !== false && path === routes.refresh.path) methods.add(routes.refresh.method);
  if (path === AGENTS_PATH) methods.add('GET');
  return [...methods];
}

function carriesRefreshToken(routes: FakeRoutes, headers: IncomingHttpHeaders, body: string): boolean {
  const tokenIn = routes.refresh === false ? 'both' : routes.refresh.tokenIn;
  const inHeader = bearerToken(headers) !== undefined;
  const inBody = parseObject(body)?.['refresh_token'] !== undefined;
  if (tokenIn === 'header') return inHeader;
  if (tokenIn === 'body') return inBody;
  return inHeader || inBody; // `both`: one of them missing is answered 400 by the refresh endpoint
}

/** @internal The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  return /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
}

/** @internal `text` as a JSON object, or `undefined`. */
export function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

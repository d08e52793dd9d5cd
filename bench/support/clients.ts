import axios, { isAxiosError, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';
import { AGENTS_PATH, DEFAULT_AUTH_PATH } from '../../lib/transfer-auth.constants';
import type { FakeTransferServer } from '../../lib/testing/fake-transfer-server';

/** One API request, `GET /v5/partner/transfer/agents`, made the way a given client makes it. */
export type ApiRequest = () => Promise<unknown>;

interface TokenPair {
  access_token: string;
}

/** Baseline (a): Get token before every API request, then the request with that token. */
export function authenticateEveryTime(fake: FakeTransferServer): ApiRequest {
  const http = axios.create({ baseURL: fake.url });
  const credentials = { agent_id: fake.agentId, agent_secret: fake.agentSecret };
  return async () => {
    const { data } = await http.post<TokenPair>(DEFAULT_AUTH_PATH, credentials);
    return http.get(AGENTS_PATH, { headers: { Authorization: `Bearer ${data.access_token}` } });
  };
}

const SKIP = 'skipAuthRefresh';
type Marked = InternalAxiosRequestConfig & { [SKIP]?: boolean };

/**
 * Baseline (b): the axios-auth-refresh pattern, written out (no new dependency): a token in a
 * variable, set on each request by a request interceptor; a 401 answer triggers a Get token (concurrent
 * 401s share the call while it is in flight, as `createAuthRefreshInterceptor` does) and the request is
 * retried once.
 */
export function refreshOn401(fake: FakeTransferServer): ApiRequest {
  const http: AxiosInstance = axios.create({ baseURL: fake.url });
  const authHttp = axios.create({ baseURL: fake.url });
  const credentials = { agent_id: fake.agentId, agent_secret: fake.agentSecret };
  let token = '';
  let refreshCall: Promise<void> | undefined;
  const refreshAuthLogic = async (): Promise<void> => {
    const { data } = await authHttp.post<TokenPair>(DEFAULT_AUTH_PATH, credentials);
    token = data.access_token;
  };
  http.interceptors.request.use((config) => {
    config.headers.set('Authorization', `Bearer ${token}`);
    return config;
  });
  http.interceptors.response.use(undefined, async (error: unknown) => {
    if (!isAxiosError(error) || error.response?.status !== 401 || error.config === undefined) throw error;
    const config = error.config as Marked;
    if (config[SKIP]) throw error;
    refreshCall ??= refreshAuthLogic().finally(() => {
      refreshCall = undefined;
    });
    await refreshCall;
    return http.request({ ...config, [SKIP]: true } as Marked);
  });
  return () => http.get(AGENTS_PATH);
}

/**
 * Baseline of case 4: a bare axios instance with a fixed `Authorization` header. No redirects, as the
 * module's client: with `maxRedirects: 0` axios skips its follow-redirects transport, which alone is
 * worth about 5 us a request, and that would flatter the module.
 */
export function fixedHeader(fake: FakeTransferServer, accessToken: string): ApiRequest {
  const http = axios.create({
    baseURL: fake.url,
    maxRedirects: 0,
    headers: { Authorization: `Bearer ${accessToken}` },
  });
  return () => http.get(AGENTS_PATH);
}

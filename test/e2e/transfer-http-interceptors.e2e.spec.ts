import axios, {
  AxiosError,
  type AxiosAdapter,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import { inspect } from 'node:util';
import {
  AGENTS_PATH,
  attachTransferAuth,
  TransferAuthError,
  type TransferTokenSource,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Issue 10, finding 6: the destination check, the 401 retry and the masking hold whatever request
 * interceptors the instance has, added before or after `attachTransferAuth`, in either axios ordering,
 * synchronous or not, including one that returns a copy of the config (0.2.0 lost track of the
 * request then: no retry, and the token in `inspect(err)`).
 */

/** A loopback server that is NOT the configured upstream: it records the Authorization each request carried. */
class ForeignServer {
  readonly authorizations: unknown[] = [];
  private readonly server: Server = createServer((req, res) => {
    this.authorizations.push(req.headers.authorization);
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"foreign":true}');
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

type Interceptor = (config: InternalAxiosRequestConfig) => InternalAxiosRequestConfig;

const DEEP = { depth: Infinity, showHidden: true, getters: true } as const;

function printed(value: unknown): string {
  return [
    inspect(value),
    inspect(value, DEEP),
    inspect(value, { depth: 8, showHidden: true }),
    JSON.stringify(value),
  ].join('\n');
}

/** Registers `interceptor` as axios allows: plain, async, or flagged synchronous. */
function use(http: AxiosInstance, interceptor: Interceptor, style: 'sync' | 'async' | 'plain'): void {
  if (style === 'async') http.interceptors.request.use(async (config) => interceptor(config));
  else if (style === 'sync') http.interceptors.request.use(interceptor, undefined, { synchronous: true });
  else http.interceptors.request.use(interceptor);
}

describe('attachTransferAuth against the fake upstream, with interceptors of every kind', () => {
  let fake: FakeTransferServer;
  let foreign: ForeignServer;
  let app: AuthApp | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
    foreign = await new ForeignServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await Promise.all([fake.stop(), foreign.stop()]);
  });

  async function boot(): Promise<AuthApp> {
    app = await createAuthApp(fakeOptions(fake));
    return app;
  }

  const agentAuthorizations = (): unknown[] =>
    fake.requests.filter((r) => r.endpoint === 'agents').map((r) => r.headers.authorization);

  it('an interceptor added BEFORE attach that returns { ...config }: the 401 is still retried once, with a fresh token', async () => {
    const { auth } = await boot();
    const http = axios.create({ baseURL: fake.url });
    http.interceptors.request.use((config) => ({ ...config }));
    attachTransferAuth(http, auth);
    const refused = await auth.getAccessToken();
    fake.revokeAccessTokens();

    const response = await http.get(AGENTS_PATH);

    expect(response.status).toBe(200);
    expect(fake.calls.agents).toBe(2);
    const fresh = await auth.getAccessToken();
    expect(fresh).not.toBe(refused);
    expect(agentAuthorizations()).toEqual([`Bearer ${refused}`, `Bearer ${fresh}`]);
    expect(response.config.headers.Authorization).toBe('Bearer [redacted]');
    const text = printed(response);
    for (const token of fake.issuedTokens()) expect(text).not.toContain(token);
  });

  it('... and the error it surfaces (second 401, or a 500) shows no token in inspect or JSON', async () => {
    const { auth } = await boot();
    const http = axios.create({ baseURL: fake.url });
    http.interceptors.request.use((config) => ({ ...config }));
    attachTransferAuth(http, auth);

    fake.failAlways('agents', { kind: 'status', status: 401 });
    const unauthorized = await http.get(AGENTS_PATH).catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(AxiosError);
    expect((unauthorized as AxiosError).response?.status).toBe(401);
    expect(fake.calls.agents).toBe(2); // retried once, not more

    fake.clearFaults().failNext('agents', { kind: 'status', status: 500 });
    const failed = await http.get(AGENTS_PATH).catch((e: unknown) => e);
    expect((failed as AxiosError).response?.status).toBe(500);
    expect(fake.calls.agents).toBe(3); // a 500 is not retried

    for (const error of [unauthorized as AxiosError, failed as AxiosError]) {
      expect(error.config?.headers.Authorization).toBe('Bearer [redacted]');
      const text = [printed(error), printed(error.response), printed(error.request)].join('\n');
      for (const token of fake.issuedTokens()) expect(text).not.toContain(token);
    }
  });

  describe.each([
    ['before attach', true],
    ['after attach', false],
  ])('an interceptor added %s', (_, before) => {
    describe.each([
      ['legacy ordering', true],
      ['registration ordering', false],
    ])('(%s)', (__, legacy) => {
      async function withInterceptor(interceptor: Interceptor, style: 'sync' | 'async' | 'plain') {
        const { auth } = await boot();
        const http = axios.create({
          baseURL: fake.url,
          transitional: { legacyInterceptorReqResOrdering: legacy },
        });
        if (before) use(http, interceptor, style);
        attachTransferAuth(http, auth);
        if (!before) use(http, interceptor, style);
        return { http, auth };
      }

      it.each(['sync', 'async', 'plain'] as const)(
        '(%s) that points a request at another host: no token reaches it',
        async (style) => {
          const { http } = await withInterceptor((config) => ({ ...config, baseURL: foreign.url }), style);
          const response = await http.get(AGENTS_PATH);
          expect(response.data).toEqual({ foreign: true });
          expect(foreign.authorizations).toEqual([undefined]);
          expect(fake.calls.agents).toBe(0);
        },
      );

      it.each(['sync', 'async', 'plain'] as const)(
        '(%s) that points a request at the base URL: the token is sent, and retried on a 401',
        async (style) => {
          const { http, auth } = await withInterceptor((config) => ({ ...config, url: AGENTS_PATH }), style);
          const refused = await auth.getAccessToken();
          fake.revokeAccessTokens();
          const response = await http.get('/placeholder');
          expect(response.status).toBe(200);
          expect(agentAuthorizations()).toEqual([`Bearer ${refused}`, `Bearer ${await auth.getAccessToken()}`]);
          expect(response.config.headers.Authorization).toBe('Bearer [redacted]');
        },
      );
    });
  });
});

describe('attachTransferAuth: where it hooks in', () => {
  const BASE = 'https://api.example.test/v5';
  const TOKEN = 'tok-hook-0123456789';

  function source(): TransferTokenSource {
    return { getAccessToken: () => Promise.resolve(TOKEN), invalidate: () => undefined, getBaseUrl: () => BASE };
  }

  /** An adapter that answers 200 and records the Authorization header each request carried. */
  function recorder(): { adapter: AxiosAdapter; seen: unknown[] } {
    const seen: unknown[] = [];
    const adapter: AxiosAdapter = (config) => {
      seen.push(config.headers.get('Authorization'));
      const response: AxiosResponse = { data: {}, status: 200, statusText: 'OK', headers: {}, config, request: {} };
      return Promise.resolve(response);
    };
    return { adapter, seen };
  }

  it('an adapter assigned after attach (a test double) still sends the token', async () => {
    const http = axios.create({ baseURL: BASE });
    attachTransferAuth(http, source());
    const { adapter, seen } = recorder();
    http.defaults.adapter = adapter;
    await http.get('/agents');
    expect(seen).toEqual([`Bearer ${TOKEN}`]);
  });

  it('a per-request adapter still sends the token only under the base', async () => {
    const http = axios.create({ baseURL: BASE });
    attachTransferAuth(http, source());
    const { adapter, seen } = recorder();
    await http.get('/agents', { adapter });
    await http.get('https://elsewhere.test/agents', { adapter });
    expect(seen).toEqual([`Bearer ${TOKEN}`, undefined]);
  });

  it('leaves the instance defaults alone, and detach stops the token', async () => {
    const http = axios.create({ baseURL: BASE });
    const { adapter, seen } = recorder();
    http.defaults.adapter = adapter;
    const detach = attachTransferAuth(http, source());
    expect(http.defaults.adapter).toBe(adapter);
    await http.get('/agents');
    detach();
    await http.get('/agents');
    expect(seen).toEqual([`Bearer ${TOKEN}`, undefined]);
  });

  it('an instance made from an equipped one (instance.create) is not equipped', async () => {
    const http = axios.create({ baseURL: BASE });
    attachTransferAuth(http, source());
    const child = http.create();
    const { adapter, seen } = recorder();
    await child.get('/agents', { adapter });
    expect(seen).toEqual([undefined]);
  });
});

describe('attachTransferAuth: arguments are checked at once', () => {
  const http = (): AxiosInstance => axios.create();

  it.each([
    ['null', null, 'is null; missing getAccessToken(), invalidate(), getBaseUrl()'],
    ['undefined', undefined, 'is undefined; missing getAccessToken(), invalidate(), getBaseUrl()'],
    ['{}', {}, 'is not a TransferTokenSource; missing getAccessToken(), invalidate(), getBaseUrl()'],
    [
      'an object with getAccessToken only',
      { getAccessToken: () => Promise.resolve('t') },
      'is not a TransferTokenSource; missing invalidate(), getBaseUrl()',
    ],
    [
      'getBaseUrl as a string',
      { getAccessToken: () => Promise.resolve('t'), invalidate: () => undefined, getBaseUrl: 'https://x.test' },
      'is not a TransferTokenSource; missing getBaseUrl()',
    ],
  ])('source %s: INVALID_CONFIG naming what is missing', (_, source, why) => {
    const instance = http();
    let thrown: unknown;
    try {
      attachTransferAuth(instance, source as unknown as TransferTokenSource);
    } catch (error) {
      thrown = error;
    }
    expect(TransferAuthError.is(thrown, 'INVALID_CONFIG')).toBe(true);
    expect((thrown as Error).message).toBe(`attachTransferAuth(instance, source): \`source\` ${why}.`);
    // Nothing was installed on the instance.
    expect(instance.interceptors.request.handlers?.filter(Boolean)).toHaveLength(0);
  });

  it.each([
    ['null', null],
    ['a plain object', {}],
    ['axios.create (the function, not an instance)', axios.create],
  ])('instance %s: INVALID_CONFIG', (_, instance) => {
    expect(() =>
      attachTransferAuth(instance as unknown as AxiosInstance, {
        getAccessToken: () => Promise.resolve('t'),
        invalidate: () => undefined,
        getBaseUrl: () => 'https://x.test',
      }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/`instance`/) }));
  });
});

describe('TransferTokenSource.invalidate: why it must ignore a token that is no longer current', () => {
  const BASE = 'https://api.example.test';

  /** A source with a counter of renewals; `careful` ignores a token that is not the current one. */
  function countingSource(careful: boolean): TransferTokenSource & { renewals: number; current: string } {
    const state = {
      renewals: 0,
      current: 'token-0',
      getAccessToken: () => Promise.resolve(state.current),
      invalidate: (token?: string) => {
        if (careful && token !== state.current) return;
        state.renewals++;
        state.current = `token-${state.renewals}`;
      },
      getBaseUrl: () => BASE,
    };
    return state;
  }

  /** An upstream that answers 401 to `token-0` (revoked) and 200 to any other token. */
  function upstream(http: AxiosInstance): unknown[] {
    const seen: unknown[] = [];
    http.defaults.adapter = async (config) => {
      const authorization = config.headers.get('Authorization');
      seen.push(authorization);
      await Promise.resolve();
      const status = authorization === 'Bearer token-0' ? 401 : 200;
      const response: AxiosResponse = { data: {}, status, statusText: '', headers: {}, config, request: {} };
      if (status === 401) throw new AxiosError('401', 'ERR_BAD_REQUEST', config, {}, response);
      return response;
    };
    return seen;
  }

  it.each([
    [true, 1],
    [false, 20],
  ])('careful source = %s: 20 concurrent 401s on one token cause %i renewal(s)', async (careful, renewals) => {
    const source = countingSource(careful);
    const invalidated: (string | undefined)[] = [];
    const invalidate = source.invalidate;
    source.invalidate = (token) => {
      invalidated.push(token);
      invalidate(token);
    };
    const http = axios.create({ baseURL: BASE });
    upstream(http);
    attachTransferAuth(http, source);
    const responses = await Promise.all(Array.from({ length: 20 }, () => http.get('/agents')));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    // Every refused request passes the token it was refused with, stale or not.
    expect(invalidated).toEqual(Array.from({ length: 20 }, () => 'token-0'));
    expect(source.renewals).toBe(renewals);
  });
});

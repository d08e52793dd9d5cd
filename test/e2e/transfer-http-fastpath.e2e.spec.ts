import axios, {
  AxiosError,
  type AxiosAdapter,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import fc from 'fast-check';
import { ClientRequest } from 'node:http';
import { inspect } from 'node:util';
import { AGENTS_PATH, attachTransferAuth, type TransferTokenSource } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';

/**
 * The authenticated client's shortcuts (a string check instead of URL parsing for plain relative
 * URLs, cheap redaction of successful responses) against what they must keep: the token goes only
 * under the configured base, exactly where axios will really send the request, and never prints.
 */

const TOKEN = 'tok-fastpath-0123456789';
const SEED = 20_251_126;

/** A token source that always answers `TOKEN`, for the given base URL. */
function source(base: string): TransferTokenSource & { invalidated: (string | undefined)[] } {
  const invalidated: (string | undefined)[] = [];
  return {
    invalidated,
    getAccessToken: () => Promise.resolve(TOKEN),
    invalidate: (token) => void invalidated.push(token),
    getBaseUrl: () => base,
  };
}

interface Sent {
  /** Where axios' own http adapter would send this request (`undefined`: it would refuse the URL). */
  target: URL | undefined;
  authorization: unknown;
  maxRedirects: number | undefined;
}

/** An axios instance whose adapter records each request instead of sending it. */
function recordingClient(auth: TransferTokenSource): { http: AxiosInstance; sent: Sent[] } {
  const sent: Sent[] = [];
  const http = axios.create();
  const adapter: AxiosAdapter = (config) => {
    let target: URL | undefined;
    try {
      target = new URL(http.getUri(config)); // buildFullPath + new URL, as the http adapter does
    } catch {
      target = undefined;
    }
    sent.push({ target, authorization: config.headers.get('Authorization'), maxRedirects: config.maxRedirects });
    const response: AxiosResponse = { data: {}, status: 200, statusText: 'OK', headers: {}, config, request: {} };
    return Promise.resolve(response);
  };
  http.defaults.adapter = adapter;
  attachTransferAuth(http, auth);
  return { http, sent };
}

/** The reference rule: same origin, and the path is the base path or below it. */
function isUnderBase(target: URL, base: string): boolean {
  const root = new URL(base);
  const prefix = root.pathname.replace(/\/+$/, '');
  return (
    target.origin === root.origin &&
    (prefix === '' || target.pathname === prefix || target.pathname.startsWith(`${prefix}/`))
  );
}

async function sendOne(
  http: AxiosInstance,
  sent: Sent[],
  config: { url: string; baseURL?: string; allowAbsoluteUrls?: boolean },
): Promise<Sent | undefined> {
  const before = sent.length;
  await http.request(config).catch(() => undefined);
  return sent.length > before ? sent[sent.length - 1] : undefined;
}

describe('attachTransferAuth: where the token goes', () => {
  const BASE = 'https://api.example.test/v5/partner';

  it.each([
    ['transfer/agents', true],
    ['/transfer/agents', true],
    ['', true],
    ['?page=2&q=a..b', true],
    ['./agents', true],
    ['a/..%2fb', true],
    ['транзакции', true],
    ['../other', false],
    ['a/../../other', false],
    ['%2e%2e/other', false],
    ['.%2E/other', false],
    ['%2E./other', false],
    ['.\t./other', false],
    ['.\n./other', false],
    ['\\..\\other', true],
    ['\\..\\..\\other', false],
    ['/\\evil.test/x', true],
    ['//evil.test/x', false],
    ['///evil.test/x', false],
    ['https://evil.test/v5/partner/x', false],
    ['https://api.example.test/v5/partnerx', false],
    ['https://api.example.test/v5/other', false],
    ['https://api.example.test/v5/partner/x', true],
    ['https://api.example.test:443/v5/partner/x', true],
    ['HTTPS://API.EXAMPLE.TEST/v5/partner/x', true],
    ['http://api.example.test/v5/partner/x', false],
  ])('%j: token sent = %s', async (url, expected) => {
    const { http, sent } = recordingClient(source(BASE));
    const request = await sendOne(http, sent, { url });
    expect(request).toBeDefined();
    expect(request?.authorization).toBe(expected ? `Bearer ${TOKEN}` : undefined);
    if (expected) expect(request?.maxRedirects).toBe(0);
    if (request?.target !== undefined) expect(isUnderBase(request.target, BASE)).toBe(expected);
  });

  it('allowAbsoluteUrls: false joins even an absolute URL to the base, and the token follows the join', async () => {
    const { http, sent } = recordingClient(source(BASE));
    const joined = await sendOne(http, sent, { url: 'https://evil.test/x', allowAbsoluteUrls: false });
    expect(joined?.target?.href).toBe(`${BASE}/https://evil.test/x`);
    expect(joined?.authorization).toBe(`Bearer ${TOKEN}`);
    const escaped = await sendOne(http, sent, { url: '//evil.test/../../x', allowAbsoluteUrls: false });
    expect(escaped?.target?.href).toBe('https://api.example.test/v5/x');
    expect(escaped?.authorization).toBeUndefined();
  });

  it('a per-request baseURL elsewhere, or one whose trailing slashes hide a `..`, gets no token', async () => {
    const { http, sent } = recordingClient(source(BASE));
    expect((await sendOne(http, sent, { url: '/x', baseURL: 'https://evil.test' }))?.authorization).toBeUndefined();
    // axios trims every trailing slash of the base: `${BASE}///` + `../x` is /v5/x, not /v5/partner/x.
    const trimmed = await sendOne(http, sent, { url: '../x', baseURL: `${BASE}///` });
    expect(trimmed?.target?.pathname).toBe('/v5/x');
    expect(trimmed?.authorization).toBeUndefined();
    const same = await sendOne(http, sent, { url: 'x', baseURL: `${BASE}/` });
    expect(same?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('property: the token is sent exactly when axios will send the request under the base', async () => {
    const bases = [
      'https://api.example.test',
      'https://api.example.test/v5/partner',
      'https://api.example.test/v5/partner/',
      'http://127.0.0.1:8080/api',
      'https://api.example.test/a%2e/b',
      'https://api.example.test/p///',
      'https://api.example.test/p ', // the parser drops the space, the join keeps it: `/p%20/x`
      'https://api.example.test/v5\t',
    ];
    const pieces = [
      'a',
      'v5',
      'partner',
      '/',
      '//',
      '.',
      '..',
      '%2e',
      '%2E',
      '%2f',
      '\\',
      '\t',
      '\n',
      ' ',
      '?',
      '#',
      '@',
      ':',
      'é',
      // Whole escapes, spelt every way, so that runs meet them often.
      '../',
      '%2e%2e/',
      '.%2E/',
      '%2e./',
      '.\t./',
      '\\..\\',
    ];
    const hosts = ['https://api.example.test', 'http://api.example.test', 'https://evil.test', '//evil.test', '///'];
    const relative = fc.array(fc.constantFrom(...pieces), { maxLength: 8 }).map((parts) => parts.join(''));
    // Mostly relative URLs with the instance's own base: the shortcut's ground.
    const url = fc.oneof(
      { arbitrary: relative, weight: 3 },
      { arbitrary: fc.tuple(fc.constantFrom(...hosts), relative).map(([host, rest]) => host + rest), weight: 1 },
    );
    const others = [...bases, 'https://evil.test', 'https://api.example.test/v5/'];
    const baseURL = fc.option(fc.constantFrom(...others), { nil: undefined, freq: 1 });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...bases),
        url,
        baseURL,
        fc.option(fc.boolean(), { nil: undefined }),
        async (base, path, perRequestBase, allowAbsoluteUrls) => {
          const { http, sent } = recordingClient(source(base));
          const request = await sendOne(http, sent, { url: path, baseURL: perRequestBase, allowAbsoluteUrls });
          if (request === undefined) return; // rejected before any adapter ran: nothing went anywhere
          const expected = request.target !== undefined && isUnderBase(request.target, base);
          expect(request.authorization).toBe(expected ? `Bearer ${TOKEN}` : undefined);
        },
      ),
      { seed: SEED, numRuns: 5_000 },
    );
  });
});

describe('attachTransferAuth: what a response or an error shows', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  const DEEP = { depth: Infinity, showHidden: true, getters: true } as const;

  function printed(value: unknown): string {
    return [
      inspect(value),
      inspect(value, DEEP),
      inspect(value, { depth: 8, showHidden: true }),
      JSON.stringify(value),
    ].join('\n');
  }

  async function client(): Promise<{ http: AxiosInstance; token: () => Promise<string> }> {
    const booted = await createAuthApp(fakeOptions(fake));
    app = booted;
    const http = axios.create({ baseURL: fake.url });
    attachTransferAuth(http, booted.auth);
    return { http, token: () => booted.auth.getAccessToken() };
  }

  it('a success hides the token from inspect and JSON, and leaves response.request readable as it is', async () => {
    const { http, token: current } = await client();
    const response = await http.get(AGENTS_PATH);
    const token = await current();
    expect(fake.requests.find((r) => r.endpoint === 'agents')?.headers.authorization).toBe(`Bearer ${token}`);

    expect(response.config.headers.Authorization).toBe('Bearer [redacted]');
    expect(response.request).toBeInstanceOf(ClientRequest);
    expect((response.request as ClientRequest).path).toBe(AGENTS_PATH);
    expect((response.request as ClientRequest).getHeader('authorization')).toBe(`Bearer ${token}`);
    for (const text of [printed(response), printed(response.request), printed({ nested: [response] })]) {
      expect(text).not.toContain(token);
    }
    expect(inspect(response)).toContain('[ClientRequest: not shown, it holds the access token]');
    expect(JSON.parse(JSON.stringify(response))).toMatchObject({ status: 200, data: response.data });
  });

  it('a failure surfaces with the token masked and the raw request out of inspect and JSON', async () => {
    const { http, token: current } = await client();
    fake.failNext('agents', { kind: 'status', status: 500 });
    const error = await http.get(AGENTS_PATH).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AxiosError);
    const token = await current();
    const axiosError = error as AxiosError;
    expect(axiosError.response?.status).toBe(500);
    expect(axiosError.config?.headers.Authorization).toBe('Bearer [redacted]');
    expect(axiosError.request).toBeInstanceOf(ClientRequest);
    expect(axiosError.response?.request).toBe(axiosError.request);
    for (const text of [printed(error), printed(axiosError.response), printed(axiosError.request)]) {
      expect(text).not.toContain(token);
    }
  });

  it('a response whose raw request takes no new properties hides it behind a getter instead', async () => {
    const auth = source('https://api.example.test');
    const http = axios.create({ baseURL: 'https://api.example.test' });
    const frozen = Object.freeze({ _header: `GET / HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n` });
    http.defaults.adapter = (config: InternalAxiosRequestConfig) =>
      Promise.resolve({ data: {}, status: 200, statusText: 'OK', headers: {}, config, request: frozen });
    attachTransferAuth(http, auth);
    const response = await http.get('/x');
    expect(response.request).toBe(frozen);
    expect(Object.keys(response)).not.toContain('request');
    // A getter is listed, not run (unless inspect is asked to run getters: the guard above is stronger).
    const text = [inspect(response, { depth: Infinity, showHidden: true }), JSON.stringify(response)].join('\n');
    expect(text).not.toContain(TOKEN);
  });

  it('requests to another host are returned untouched: no header, no masking, no guard', async () => {
    const auth = source('https://api.example.test');
    const http = axios.create();
    const request = { _header: 'GET / HTTP/1.1\r\nAuthorization: Bearer theirs\r\n' };
    http.defaults.adapter = (config: InternalAxiosRequestConfig) =>
      Promise.resolve({ data: {}, status: 200, statusText: 'OK', headers: {}, config, request });
    attachTransferAuth(http, auth);
    const response = await http.get('https://other.test/x', { headers: { Authorization: 'Bearer theirs' } });
    expect(response.config.headers.Authorization).toBe('Bearer theirs');
    expect(response.config.maxRedirects).not.toBe(0);
    expect(Object.getOwnPropertySymbols(request)).toHaveLength(0);
    expect(Object.keys(response)).toContain('request');
  });
});

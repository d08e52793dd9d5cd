import {
  Controller,
  Get,
  ImATeapotException,
  Module,
  UseFilters,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import axios from 'axios';
import {
  AGENTS_PATH,
  attachTransferAuth,
  getTransferAuthToken,
  InjectTransferAuth,
  TransferAuthErrorFilter,
  TransferAuthModule,
  TransferHttpService,
  type TransferAuthModuleOptions,
  type TransferAuthService,
  type TransferTokenSource,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { CapturingLogger, fakeOptions } from '../support/auth-app';
import { leakedSecrets, secretsOf } from '../support/e2e';

/**
 * Issue 18, finding 3: a TransferAuthError became a bare 500. With TransferAuthErrorFilter, over real HTTP
 * against the fake upstream: 503 (+ Retry-After when the upstream gave one) for "try again later", 502 for
 * an unusable upstream answer, a plain 500 for what an operator must fix; no secret, token, upstream body
 * or error message in any answer; other errors left to Nest. Each binding of the filter is run.
 */
const UPSTREAM_BODY = 'upstream-body-marker: maintenance window 42';
const SERVICE_UNAVAILABLE = {
  statusCode: 503,
  message: 'Temporarily unavailable; try again later.',
  error: 'Service Unavailable',
};
const BAD_GATEWAY = { statusCode: 502, message: 'An upstream service answered unexpectedly.', error: 'Bad Gateway' };
const INTERNAL = { statusCode: 500, message: 'Internal server error' };

type Binding =
  'useGlobalFilters(new TransferAuthErrorFilter())' | '@UseFilters(TransferAuthErrorFilter)' | 'APP_FILTER';
const BINDINGS: Binding[] = [
  'useGlobalFilters(new TransferAuthErrorFilter())',
  '@UseFilters(TransferAuthErrorFilter)',
  'APP_FILTER',
];

/** The routes: a token, a Transfer API call through TransferHttpService, and an error of another kind. */
function controllerFor(binding: Binding): Type {
  class TokenController {
    constructor(
      @InjectTransferAuth() private readonly auth: TransferAuthService,
      private readonly http: TransferHttpService,
    ) {}
    @Get('token')
    async token(): Promise<{ ok: true }> {
      await this.auth.getAccessToken();
      return { ok: true };
    }
    @Get('agents')
    async agents(): Promise<unknown> {
      return (await this.http.axiosRef.get(AGENTS_PATH)).data;
    }
    @Get('misconfigured')
    misconfigured(): never {
      // The package's own INVALID_CONFIG, thrown where a handler would meet it.
      attachTransferAuth(axios.create(), {} as TransferTokenSource);
      throw new Error('attachTransferAuth accepted a source without methods');
    }
    @Get('plain-error')
    plainError(): never {
      throw new Error('not a TransferAuthError');
    }
    @Get('teapot')
    teapot(): never {
      throw new ImATeapotException();
    }
  }
  Controller()(TokenController);
  if (binding === '@UseFilters(TransferAuthErrorFilter)') UseFilters(TransferAuthErrorFilter)(TokenController);
  return TokenController;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
}

describe.each(BINDINGS)('TransferAuthErrorFilter bound with %s', (binding) => {
  let fake: FakeTransferServer;
  let app: INestApplication | undefined;
  let logger: CapturingLogger;
  let answers: Answer[];

  beforeEach(async () => {
    logger = new CapturingLogger();
    answers = [];
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
    // Whatever the test: nothing any answer carried names a secret, a token or the upstream's body.
    const seen = answers.map((a) => `${JSON.stringify([...a.headers])}\n${a.text}`).join('\n');
    expect(leakedSecrets(seen, [...secretsOf(fake), UPSTREAM_BODY])).toEqual([]);
  });

  async function boot(overrides: Partial<TransferAuthModuleOptions> = {}): Promise<INestApplication> {
    @Module({
      imports: [TransferAuthModule.forRoot(fakeOptions(fake, { fetchOnStartup: false, ...overrides }))],
      controllers: [controllerFor(binding)],
      providers: binding === 'APP_FILTER' ? [{ provide: APP_FILTER, useClass: TransferAuthErrorFilter }] : [],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .setLogger(logger)
      .compile();
    const http = moduleRef.createNestApplication({ logger });
    if (binding === 'useGlobalFilters(new TransferAuthErrorFilter())')
      http.useGlobalFilters(new TransferAuthErrorFilter());
    app = http;
    await http.listen(0, '127.0.0.1');
    return http;
  }

  async function get(path: string): Promise<Answer> {
    const response = await fetch(`${await (app as INestApplication).getUrl()}${path}`);
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    const answer = { status: response.status, headers: response.headers, text, body };
    answers.push(answer);
    return answer;
  }

  /** The filter's log lines: [level, text]. */
  const filterLines = (): string[] => logger.lines.filter((line) => line.endsWith(' TransferAuthErrorFilter'));
  const viaAdapter = binding !== 'useGlobalFilters(new TransferAuthErrorFilter())';

  describe('503: try again later', () => {
    it('upstream 503 with Retry-After: 503 with that Retry-After, also for callers refused while it runs', async () => {
      fake.failAlways('auth', { kind: 'status', status: 503, retryAfter: 7, body: UPSTREAM_BODY });
      const http = await boot();
      const reply = jest.spyOn(http.getHttpAdapter(), 'reply');
      const first = await get('/token'); // the caller whose renewal got the 503
      expect(first).toMatchObject({ status: 503, body: SERVICE_UNAVAILABLE });
      expect(first.headers.get('retry-after')).toBe('7');
      expect(first.headers.get('content-type')).toMatch(/^application\/json/);
      const second = await get('/token'); // refused at once: no upstream call, the wait left (rounded up)
      expect(second).toMatchObject({ status: 503, body: SERVICE_UNAVAILABLE });
      expect(second.headers.get('retry-after')).toBe('7');
      expect(fake.calls.auth).toBe(1);
      // @UseFilters(Class) and APP_FILTER get HttpAdapterHost injected and answer through the adapter;
      // an instance made with `new` answers through Express' own response.
      expect(reply).toHaveBeenCalledTimes(viaAdapter ? 2 : 0);
      expect(filterLines()).toEqual([
        expect.stringMatching(/^warn UPSTREAM_UNAVAILABLE \(upstream HTTP 503\): answered 503 to GET \/token\. /),
        expect.stringMatching(/^warn UPSTREAM_UNAVAILABLE \(upstream HTTP 503\): answered 503 to GET \/token\. /),
      ]);
    });

    it('the 503 at startup (fetchOnStartup) is passed on: Retry-After is the wait left', async () => {
      fake.failAlways('auth', { kind: 'status', status: 503, retryAfter: 120 });
      await boot({ fetchOnStartup: true });
      const answer = await get('/token');
      expect(answer).toMatchObject({ status: 503, body: SERVICE_UNAVAILABLE });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(100);
      expect(Number(answer.headers.get('retry-after'))).toBeLessThanOrEqual(120);
      expect(fake.calls.auth).toBe(1);
    });

    it('an upstream that hangs past requestTimeoutMs: 503 without Retry-After', async () => {
      fake.failAlways('auth', { kind: 'hang' });
      await boot({ requestTimeoutMs: 300 });
      const answer = await get('/token');
      expect(answer).toMatchObject({ status: 503, body: SERVICE_UNAVAILABLE });
      expect(answer.headers.get('retry-after')).toBeNull();
    });

    it('connections reset: 503 without Retry-After, on the token route and on the TransferHttpService route', async () => {
      fake.failAlways('auth', { kind: 'reset' });
      await boot();
      for (const path of ['/token', '/agents']) {
        const answer = await get(path);
        expect({ path, status: answer.status, body: answer.body }).toEqual({
          path,
          status: 503,
          body: SERVICE_UNAVAILABLE,
        });
        expect(answer.headers.get('retry-after')).toBeNull();
      }
      expect(fake.calls.agents).toBe(0);
      expect(filterLines()).toEqual([
        expect.stringMatching(/^warn UPSTREAM_UNAVAILABLE: answered 503 to GET \/token\. /),
        expect.stringMatching(/^warn UPSTREAM_UNAVAILABLE: answered 503 to GET \/agents\. /),
      ]);
    });

    it('the agentSecret provider fails (SECRET_UNAVAILABLE): 503; the log says so, the answer does not', async () => {
      const providerFailure = 'vault said: no lease for path secret/freedompay';
      await boot({
        agentSecret: () => Promise.reject(new Error(providerFailure)),
        retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 50 },
      });
      const answer = await get('/token');
      expect(answer).toMatchObject({ status: 503, body: SERVICE_UNAVAILABLE });
      expect(answer.text).not.toContain('vault');
      expect(filterLines()).toEqual([
        expect.stringMatching(/^error SECRET_UNAVAILABLE: answered 503 to GET \/token\. /),
      ]);
      expect(filterLines()[0]).toContain('The agentSecret provider failed');
    });

    it('the token provider has shut down (SHUTDOWN): 503, logged at log level', async () => {
      const http = await boot();
      expect((await get('/token')).status).toBe(200);
      // Nest stops the provider after the HTTP server has drained; a request that outlives it (a hybrid
      // app, a server closed later) meets SHUTDOWN.
      http.get<TransferAuthService>(getTransferAuthToken()).onApplicationShutdown();
      const answer = await get('/token');
      expect(answer).toMatchObject({ status: 503, body: SERVICE_UNAVAILABLE });
      expect(answer.headers.get('retry-after')).toBeNull();
      expect(filterLines()).toEqual([expect.stringMatching(/^log SHUTDOWN: answered 503 to GET \/token\. /)]);
    });
  });

  it('an unusable upstream answer (INVALID_RESPONSE): 502, its body never echoed', async () => {
    fake.failAlways('auth', { kind: 'body', body: `<html>${UPSTREAM_BODY}</html>` });
    await boot();
    const answer = await get('/token');
    expect(answer).toMatchObject({ status: 502, body: BAD_GATEWAY });
    expect(answer.headers.get('retry-after')).toBeNull();
    expect(filterLines()).toEqual([
      expect.stringMatching(/^error INVALID_RESPONSE \(upstream HTTP 200\): answered 502 to GET \/token\. /),
    ]);
  });

  describe('500: an operator must act; the client is told nothing more than Nest tells of any error', () => {
    it('a wrong agent secret (INVALID_CREDENTIALS): 500 "Internal server error", the secret in no answer or log', async () => {
      const wrong = `wrong-secret-${Math.random().toString(36).slice(2)}`;
      await boot({ agentSecret: wrong });
      for (const path of ['/token', '/agents', '/token']) {
        const answer = await get(path);
        expect({ path, status: answer.status, body: answer.body }).toEqual({ path, status: 500, body: INTERNAL });
        expect(answer.text).not.toMatch(/credential|secret|config|401/i);
      }
      const lines = filterLines();
      expect(lines).toHaveLength(3);
      for (const line of lines)
        expect(line).toMatch(/^error INVALID_CREDENTIALS( \(upstream HTTP 401\))?: answered 500 /);
      expect(leakedSecrets(logger.lines.join('\n'), [wrong, fake.agentSecret])).toEqual([]);
      expect(answers.map((a) => a.text).join('\n')).not.toContain(wrong);
    });

    it('INVALID_CONFIG (attachTransferAuth given no source): 500 "Internal server error"', async () => {
      await boot();
      const answer = await get('/misconfigured');
      expect(answer).toMatchObject({ status: 500, body: INTERNAL });
      expect(filterLines()).toEqual([
        expect.stringMatching(/^error INVALID_CONFIG: answered 500 to GET \/misconfigured\. attachTransferAuth/),
      ]);
    });
  });

  describe('other errors are left to Nest', () => {
    it("a plain Error: Nest's own 500, logged by Nest, not by the filter", async () => {
      await boot();
      const answer = await get('/plain-error');
      expect(answer).toMatchObject({ status: 500, body: INTERNAL });
      expect(filterLines()).toEqual([]);
      expect(logger.lines.filter((line) => line.startsWith('error '))).toEqual([
        expect.stringMatching(/ ExceptionsHandler$/),
      ]);
    });

    it('an HttpException keeps its status and body', async () => {
      await boot();
      const answer = await get('/teapot');
      expect(answer).toMatchObject({ status: 418, body: { statusCode: 418, message: "I'm a teapot" } });
      expect(filterLines()).toEqual([]);
    });

    it("a Transfer API error (an AxiosError from TransferHttpService) is not a TransferAuthError: Nest's 500", async () => {
      fake.failAlways('agents', { kind: 'status', status: 503, retryAfter: 9, body: UPSTREAM_BODY });
      await boot();
      const answer = await get('/agents');
      expect(answer).toMatchObject({ status: 500, body: INTERNAL });
      expect(answer.headers.get('retry-after')).toBeNull();
      expect(filterLines()).toEqual([]);
    });
  });
});

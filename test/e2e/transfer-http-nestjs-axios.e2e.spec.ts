import type { INestApplicationContext } from '@nestjs/common';
import { HttpService } from '@nestjs/axios';
import { Test } from '@nestjs/testing';
import axios, { AxiosError, type AxiosResponse } from 'axios';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { firstValueFrom, isObservable, type Observable } from 'rxjs';
import {
  DEFAULT_AUTH_PATH,
  TransferAuthError,
  TransferAuthModule,
  TransferHttpService,
} from 'nestjs-freedompay-transfer-auth';

/**
 * What `@nestjs/axios` tests of its own `HttpService` (tests/http.service.spec.ts in nestjs/axios: the
 * e2e suite against a loopback server), run against `TransferHttpService`, plus what it adds: every
 * request to the base URL carries the token, and when no token can be had the Observable errors with
 * a `TransferAuthError` and nothing is sent. No sleeps: each step waits for the server to see it.
 */

interface Received {
  method: string;
  url: string;
  body: string;
  headers: IncomingHttpHeaders;
}

/** `2024-10-02T10:52:21.000000Z`, the upstream's timestamp format. */
const upstreamTime = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');

/**
 * A Transfer API on 127.0.0.1: Get token at the usual path (answering `authStatus`), and below it an
 * echo that wants the Bearer token (401 without), `/boom` (500), and `/slow`, held until released.
 */
class TransferApi {
  readonly token = `tok-${Math.random().toString(36).slice(2)}`;
  readonly received: Received[] = [];
  /** URLs of answers the client hung up on before they were finished. */
  readonly abandoned: string[] = [];
  authStatus = 200;
  /** Protected requests still to be refused with a 401, whatever token they carry. */
  refuse = 0;
  private readonly held = new Map<string, ServerResponse>();
  private readonly arrivals = new Map<string, () => void>();
  private readonly closings = new Map<string, (finished: boolean) => void>();
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = req.url ?? '';
      const method = req.method ?? '';
      res.on('close', () => {
        if (!res.writableFinished) this.abandoned.push(url);
        this.closings.get(url)?.(res.writableFinished);
      });
      if (url === DEFAULT_AUTH_PATH) return this.issueToken(res);
      this.received.push({ method, url, body: Buffer.concat(chunks).toString(), headers: req.headers });
      this.arrivals.get(url)?.();
      if (req.headers.authorization !== `Bearer ${this.token}` || this.refuse-- > 0) {
        return this.json(res, 401, { message: 'no token' });
      }
      if (url === '/boom') return this.json(res, 500, { message: 'kaboom' });
      if (url === '/slow') return void this.held.set(url, res);
      this.json(res, 200, { method, url });
    });
  });

  private issueToken(res: ServerResponse): void {
    if (this.authStatus !== 200) return this.json(res, this.authStatus, { message: 'auth fault' });
    const now = Date.now();
    res.setHeader('Date', new Date(now).toUTCString());
    this.json(res, 200, {
      access_token: this.token,
      refresh_token: `r-${this.token}`,
      access_expire_at: upstreamTime(now + 3_600_000),
      refresh_expire_at: upstreamTime(now + 86_400_000),
    });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }

  /** Resolves when a request for `url` has arrived (call before making it). */
  arrival(url: string): Promise<void> {
    return new Promise((resolve) => this.arrivals.set(url, resolve));
  }

  /** Resolves when the answer to `url` is closed: `true` if it was finished, `false` if the client hung up. */
  closing(url: string): Promise<boolean> {
    return new Promise((resolve) => this.closings.set(url, resolve));
  }

  /** Answers a held `/slow`. */
  release(url: string): void {
    const res = this.held.get(url);
    this.held.delete(url);
    if (res !== undefined) this.json(res, 200, { slow: true });
  }

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

describe('TransferHttpService does what @nestjs/axios HttpService does', () => {
  let api: TransferApi;
  let app: INestApplicationContext | undefined;
  let service: TransferHttpService;

  beforeEach(async () => {
    api = await new TransferApi().start();
    const moduleRef = await Test.createTestingModule({
      imports: [TransferAuthModule.forRoot({ agentId: 'agent-1', agentSecret: 'secret-1', baseUrl: api.url })],
    }).compile();
    app = await moduleRef.init();
    service = app.get(TransferHttpService);
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await api.stop();
  });

  const last = (): Received => api.received[api.received.length - 1] as Received;

  it('is an HttpService whose axiosRef is its axios instance, with baseURL set', async () => {
    expect(service).toBeInstanceOf(HttpService);
    expect(service.axiosRef.defaults.baseURL).toBe(api.url);
    // Whatever is done to axiosRef is done to the requests the service makes.
    service.axiosRef.interceptors.response.use((response) => ({ ...response, data: { wrapped: response.data } }));
    const response = await firstValueFrom(service.get('/things'));
    expect(response.data).toEqual({ wrapped: { method: 'GET', url: '/things' } });
  });

  it('performs a GET and emits a single response (an Observable of AxiosResponse), with the token', async () => {
    let transforms = 0;
    const observable = service.get<{ method: string; url: string }>('/things', {
      transformResponse: [
        (data: string) => {
          transforms++;
          return JSON.parse(data) as unknown;
        },
      ],
    });
    expect(isObservable(observable)).toBe(true);
    const emitted: AxiosResponse[] = [];
    await new Promise<void>((resolve, reject) =>
      observable.subscribe({ next: (r) => emitted.push(r), error: reject, complete: resolve }),
    );
    expect(emitted).toHaveLength(1);
    expect(emitted[0]?.status).toBe(200);
    expect(emitted[0]?.data).toEqual({ method: 'GET', url: '/things' });
    expect(transforms).toBe(1);
    expect(last().headers.authorization).toBe(`Bearer ${api.token}`);
  });

  it('sends a POST body', async () => {
    const response = await firstValueFrom(service.post('/things', { name: 'nest' }));
    expect(response.status).toBe(200);
    expect(last().method).toBe('POST');
    expect(JSON.parse(last().body)).toEqual({ name: 'nest' });
  });

  it('supports delete, head, patch, put and request, each with the token', async () => {
    const calls: [string, () => Observable<AxiosResponse>][] = [
      ['DELETE', () => service.delete('/things/1')],
      ['HEAD', () => service.head('/things/1')],
      ['PATCH', () => service.patch('/things/1', { a: 1 })],
      ['PUT', () => service.put('/things/1', { a: 1 })],
      ['OPTIONS', () => service.request({ method: 'OPTIONS', url: '/things/1' })],
    ];
    for (const [method, call] of calls) {
      const response = await firstValueFrom(call());
      expect(response.status).toBe(200);
      expect(last()).toMatchObject({ method, url: '/things/1' });
      expect(last().headers.authorization).toBe(`Bearer ${api.token}`);
    }
  });

  it('sends multipart payloads via postForm, putForm and patchForm', async () => {
    for (const [method, call] of [
      ['POST', () => service.postForm('/form', { a: '1', b: '2' })],
      ['PUT', () => service.putForm('/form', { a: '1', b: '2' })],
      ['PATCH', () => service.patchForm('/form', { a: '1', b: '2' })],
    ] as const) {
      await firstValueFrom(call());
      expect(last().method).toBe(method);
      expect(last().headers['content-type']).toContain('multipart/form-data');
      expect(last().body).toContain('name="a"');
      expect(last().body).toContain('name="b"');
    }
  });

  it('a 401 is retried once, with the body sent again intact (JSON, FormData)', async () => {
    api.refuse = 1;
    await firstValueFrom(service.post('/things', { name: 'nest' }));
    const form = new FormData();
    form.append('a', '1');
    form.append('b', '2');
    api.refuse = 1;
    await firstValueFrom(service.post('/form', form));
    const [json, jsonRetry, multipart, multipartRetry] = api.received;
    expect(api.received).toHaveLength(4);
    expect(jsonRetry?.body).toBe(json?.body);
    expect(JSON.parse(jsonRetry?.body ?? '')).toEqual({ name: 'nest' });
    // A FormData body is encoded anew for each send: the same parts, under a boundary that matches its header.
    for (const sent of [multipart, multipartRetry]) {
      const boundary = /boundary=(\S+)/.exec(String(sent?.headers['content-type']))?.[1];
      expect(sent?.body).toContain(`--${boundary}`);
      expect(sent?.body).toContain('name="a"');
      expect(sent?.body).toContain('name="b"');
    }
  });

  it('a body that is a stream is not sent twice: its 401 is returned as is (postForm of an object is one)', async () => {
    api.refuse = 1;
    const error = await firstValueFrom(service.postForm('/form', { a: '1' })).catch((e: unknown) => e);
    expect(error).toMatchObject({ response: { status: 401 } });
    expect(api.received).toHaveLength(1);
  });

  it('errors the Observable with the AxiosError on a non-2xx answer', async () => {
    const error = await firstValueFrom(service.get('/boom')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AxiosError);
    expect(error).toMatchObject({ response: { status: 500, data: { message: 'kaboom' } } });
  });

  it.each([
    [401, 'INVALID_CREDENTIALS'],
    [503, 'UPSTREAM_UNAVAILABLE'],
  ] as const)(
    'Get token answering %i: the Observable errors with TransferAuthError %s, nothing is sent',
    async (status, code) => {
      await app?.close();
      api.authStatus = status;
      const moduleRef = await Test.createTestingModule({
        imports: [
          TransferAuthModule.forRoot({
            agentId: 'agent-1',
            agentSecret: 'secret-1',
            baseUrl: api.url,
            fetchOnStartup: false,
            retry: { baseDelayMs: 10, maxDelayMs: 50 },
          }),
        ],
      }).compile();
      app = await moduleRef.init();
      const refused = await firstValueFrom(app.get(TransferHttpService).get('/things')).catch((e: unknown) => e);
      expect(TransferAuthError.is(refused, code)).toBe(true);
      expect(api.received).toEqual([]);
    },
  );

  it('does not mutate the caller-supplied config object', async () => {
    const config = { headers: { 'x-custom': 'yes' } };
    await firstValueFrom(service.get('/things', config));
    expect(config).toEqual({ headers: { 'x-custom': 'yes' } });
    expect(last().headers['x-custom']).toBe('yes');
  });

  it('aborts the request in flight when the subscription is torn down', async () => {
    const events: string[] = [];
    const arrived = api.arrival('/slow');
    const closed = api.closing('/slow');
    const subscription = service.get('/slow').subscribe({
      next: () => events.push('next'),
      error: () => events.push('error'),
      complete: () => events.push('complete'),
    });
    await arrived;
    subscription.unsubscribe();
    // The socket is really torn down, not merely detached from RxJS.
    expect(await closed).toBe(false);
    expect(api.abandoned).toContain('/slow');
    expect(events).toEqual([]);
  });

  it('leaves a stream response running after teardown', async () => {
    const arrived = api.arrival('/slow');
    const closed = api.closing('/slow');
    const subscription = service.get('/slow', { responseType: 'stream' }).subscribe({ error: () => undefined });
    await arrived;
    subscription.unsubscribe();
    api.release('/slow');
    expect(await closed).toBe(true);
    expect(api.abandoned).not.toContain('/slow');
  });

  it('still emits when the subscription outlives the response', async () => {
    const arrived = api.arrival('/slow');
    const events: string[] = [];
    const completed = new Promise<void>((resolve) =>
      service.get('/slow').subscribe({ next: () => events.push('next'), complete: resolve }),
    );
    await arrived;
    api.release('/slow');
    await completed;
    expect(events).toEqual(['next']);
    expect(api.abandoned).not.toContain('/slow');
  });

  it('honours a caller-provided cancel token', async () => {
    const source = axios.CancelToken.source();
    const arrived = api.arrival('/slow');
    const promise = firstValueFrom(service.get('/slow', { cancelToken: source.token }));
    await arrived;
    source.cancel('aborted by test');
    await expect(promise).rejects.toMatchObject({ message: 'aborted by test' });
  });
});

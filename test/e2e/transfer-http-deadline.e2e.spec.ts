import { Test } from '@nestjs/testing';
import axios, {
  AxiosError,
  CanceledError,
  type AxiosAdapter,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { firstValueFrom } from 'rxjs';
import {
  AGENTS_PATH,
  TransferAuthModule,
  TransferHttpService,
  type TransferAuthModuleOptions,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { withDeadline } from '../../lib/transfer-http/request-deadline';
import { fakeOptions } from '../support/auth-app';

/**
 * Issue 10, finding 1: `httpTimeoutMs` is a deadline over the whole exchange, from connect to the last
 * byte. 0.2.0 passed axios' `timeout`, Node's idle timer on the socket: a body trickling in a byte at a
 * time, each byte well within the timeout, went through however long it took.
 */

/** A loopback server whose answers dribble: headers, then one byte every `gapMs`, `bytes` in all. */
class DribblingServer {
  /** Settles when the server's answer ends: `finished` false if the client hung up first. */
  readonly ended: Promise<{ finished: boolean; sent: number }>;
  private settle!: (outcome: { finished: boolean; sent: number }) => void;
  private readonly server: Server;

  constructor(gapMs: number, bytes: number) {
    this.ended = new Promise((resolve) => (this.settle = resolve));
    this.server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(bytes) });
      this.dribble(res, gapMs, bytes);
    });
  }

  private dribble(res: ServerResponse, gapMs: number, bytes: number): void {
    let sent = 0;
    const timer = setInterval(() => {
      res.write('x');
      if (++sent === bytes) res.end();
    }, gapMs);
    res.on('close', () => {
      clearInterval(timer);
      this.settle({ finished: res.writableFinished, sent });
    });
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

describe('httpTimeoutMs: a deadline over the whole exchange, on real sockets', () => {
  let fake: FakeTransferServer;
  let dribbling: DribblingServer | undefined;
  let close: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await close?.();
    close = undefined;
    await dribbling?.stop();
    dribbling = undefined;
    await fake.stop();
  });

  async function boot(overrides: Partial<TransferAuthModuleOptions>): Promise<TransferHttpService> {
    const moduleRef = await Test.createTestingModule({
      imports: [TransferAuthModule.forRoot(fakeOptions(fake, overrides))],
    }).compile();
    const app = await moduleRef.init();
    close = () => app.close();
    return app.get(TransferHttpService);
  }

  it('a Transfer answer trickling in (ten pieces 300 ms apart, 3 s in all) is cut at 600 ms, with the token masked', async () => {
    const http = await boot({ httpTimeoutMs: 600 });
    await expect(firstValueFrom(http.get(AGENTS_PATH))).resolves.toMatchObject({ status: 200 }); // in time

    fake.failNext('agents', { kind: 'slow-body', ms: 3_000 });
    const error = await firstValueFrom(http.get(AGENTS_PATH)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AxiosError);
    expect(error).not.toBeInstanceOf(CanceledError);
    expect(error).toMatchObject({ code: 'ECONNABORTED', message: 'timeout of 600ms exceeded' });
    expect((error as AxiosError).response).toBeUndefined();
    expect((error as AxiosError).config?.headers.Authorization).toBe('Bearer [redacted]');
    const printed = inspect(error, { depth: Infinity, showHidden: true }) + JSON.stringify(error);
    for (const token of fake.issuedTokens()) expect(printed).not.toContain(token);
  });

  it('the socket is closed at the deadline: the server never gets to finish its answer', async () => {
    dribbling = await new DribblingServer(20, 200).start(); // 4 s of body, a byte every 20 ms
    const http = await boot({ httpTimeoutMs: 300 });
    const error = await firstValueFrom(http.get(`${dribbling.url}/slow`)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ECONNABORTED', message: 'timeout of 300ms exceeded' });
    const outcome = await dribbling.ended;
    expect(outcome.finished).toBe(false);
    expect(outcome.sent).toBeLessThan(200);
  });

  it('a response read as a stream is under the deadline until its last byte', async () => {
    dribbling = await new DribblingServer(20, 200).start();
    const http = await boot({ httpTimeoutMs: 300 });
    const response = await firstValueFrom(http.get<Readable>(`${dribbling.url}/slow`, { responseType: 'stream' }));
    expect(response.status).toBe(200);
    const streamError = await new Promise<unknown>((resolve) => {
      response.data.on('error', resolve);
      response.data.on('end', () => resolve('ended'));
      response.data.resume();
    });
    expect(streamError).toMatchObject({ code: 'ECONNABORTED', message: 'timeout of 300ms exceeded' });
    expect((await dribbling.ended).finished).toBe(false);
  });

  it('transitional.clarifyTimeoutError and timeoutErrorMessage shape the error as for axios timeouts', async () => {
    dribbling = await new DribblingServer(20, 200).start();
    const http = await boot({ httpTimeoutMs: 200, httpDefaults: { transitional: { clarifyTimeoutError: true } } });
    const error = await firstValueFrom(
      http.get(`${dribbling.url}/slow`, { timeoutErrorMessage: 'Transfer API too slow' }),
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ETIMEDOUT', message: 'Transfer API too slow' });
  });
});

describe('withDeadline (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  function config(extra: Partial<InternalAxiosRequestConfig> = {}): InternalAxiosRequestConfig {
    return { headers: new axios.AxiosHeaders(), url: '/x', ...extra } as InternalAxiosRequestConfig;
  }

  /**
   * An adapter that answers only when told to, and, as axios' http adapter, subscribes to the config's
   * cancel token while in flight and rejects with the reason it is given.
   */
  function pendingAdapter(): { adapter: AxiosAdapter; answer: () => void; tokens: unknown[] } {
    let answer = (): void => undefined;
    const tokens: unknown[] = [];
    const adapter: AxiosAdapter = (cfg) => {
      const token = cfg.cancelToken;
      tokens.push(token);
      return new Promise<AxiosResponse>((resolve, reject) => {
        const abort = (reason: unknown): void => {
          token?.unsubscribe(abort);
          reject(reason);
        };
        token?.subscribe(abort);
        answer = () => {
          token?.unsubscribe(abort);
          resolve({ data: 'ok', status: 200, statusText: 'OK', headers: {}, config: cfg });
        };
      });
    };
    return { adapter, answer: () => answer(), tokens };
  }

  it("rejects exactly at the deadline with axios' timeout error, and tells the adapter to abort", async () => {
    const { adapter } = pendingAdapter();
    let outcome: unknown = 'pending';
    const done = withDeadline(
      adapter,
      1_000,
    )(config()).then(
      () => (outcome = 'resolved'),
      (e: unknown) => (outcome = e),
    );
    await jest.advanceTimersByTimeAsync(999);
    expect(outcome).toBe('pending');
    await jest.advanceTimersByTimeAsync(1);
    await done;
    expect(outcome).toBeInstanceOf(AxiosError);
    expect(outcome).toMatchObject({ code: 'ECONNABORTED', message: 'timeout of 1000ms exceeded' });
  });

  it('an adapter that ignores cancellation still cannot hold the caller past the deadline', async () => {
    const never: AxiosAdapter = () => new Promise<AxiosResponse>(() => undefined);
    const outcome = withDeadline(never, 500)(config()).catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(500);
    await expect(outcome).resolves.toMatchObject({ code: 'ECONNABORTED' });
  });

  it("an exchange within the deadline leaves no timer behind, and gets the caller's cancel token back", async () => {
    const { adapter, answer, tokens } = pendingAdapter();
    const caller = axios.CancelToken.source();
    const cfg = config({ cancelToken: caller.token });
    const outcome = withDeadline(adapter, 1_000)(cfg);
    expect(tokens[0]).not.toBe(caller.token); // the deadline's own, which follows the caller's
    expect(jest.getTimerCount()).toBe(1);
    answer();
    await expect(outcome).resolves.toMatchObject({ status: 200 });
    expect(jest.getTimerCount()).toBe(0);
    expect(cfg.cancelToken).toBe(caller.token);
    const bare = config();
    const { adapter: other, answer: answerOther } = pendingAdapter();
    const second = withDeadline(other, 1_000)(bare);
    answerOther();
    await second;
    expect('cancelToken' in bare).toBe(false);
  });

  it("the caller's own cancellation stays a cancellation (its own reason), not a timeout", async () => {
    const { adapter } = pendingAdapter();
    const caller = axios.CancelToken.source();
    const outcome = withDeadline(adapter, 1_000)(config({ cancelToken: caller.token })).catch((e: unknown) => e);
    caller.cancel('stopped by the caller');
    const error = await outcome;
    expect(error).toBeInstanceOf(CanceledError);
    expect(error).toBe(caller.token.reason);
    expect(jest.getTimerCount()).toBe(0);
  });
});

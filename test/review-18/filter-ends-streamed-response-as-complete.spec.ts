import { Controller, Get, Module, Res, type INestApplication } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { request, type ServerResponse } from 'node:http';
import {
  InjectTransferAuth,
  TransferAuthErrorFilter,
  TransferAuthModule,
  type TransferAuthService,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { CapturingLogger, fakeOptions } from '../support/auth-app';

/**
 * Finding (low; Nest's own BaseExceptionFilter does the same, which the filter copied): when a handler has
 * already started its answer (a streamed export of Transfer records, page by page) and a later page meets a
 * TransferAuthError, the filter called `end()`. With chunked encoding that writes the terminating chunk: the
 * client received a well-formed, complete-looking 200 whose body was silently truncated, while the filter
 * logged "answered 503 to GET /export". A half-sent answer must be aborted (`destroy()`) so the client sees
 * a failure, and the log must say so.
 *
 * The handler writes to Node's ServerResponse (what `@Res()` is under @nestjs/platform-express: Express'
 * Response extends it), so no Express types are needed.
 */
@Controller()
class ExportController {
  constructor(@InjectTransferAuth() private readonly auth: TransferAuthService) {}
  @Get('export')
  async export(@Res() res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/csv' });
    res.write('id,amount\n1,100\n'); // page 1 sent
    await this.auth.getAccessToken(); // page 2 needs a token: the upstream is down
    res.end('2,200\n');
  }
}

interface Seen {
  status: number | undefined;
  body: string;
  completeMessage: boolean;
}

/** GET `url`: what the client saw once the response ended, was aborted or failed. */
function get(url: URL): Promise<Seen> {
  return new Promise((done) => {
    const req = request(url, (res) => {
      let body = '';
      let settled = false;
      const settle = (completeMessage: boolean): void => {
        if (settled) return;
        settled = true;
        done({ status: res.statusCode, body, completeMessage });
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => settle(res.complete));
      res.on('aborted', () => settle(false));
      res.on('error', () => settle(false));
      res.on('close', () => settle(res.complete));
    });
    req.on('error', () => done({ status: undefined, body: '', completeMessage: false }));
    req.end();
  });
}

describe.each([
  ['app.useGlobalFilters(new TransferAuthErrorFilter())', 'new'],
  ['APP_FILTER (through the HTTP adapter)', 'adapter'],
] as const)('review-18: TransferAuthErrorFilter once the answer has started, bound by %s', (_binding, how) => {
  let fake: FakeTransferServer;
  let app: INestApplication;
  let logger: CapturingLogger;

  beforeEach(async () => {
    logger = new CapturingLogger();
    fake = await new FakeTransferServer().start();
    fake.failAlways('auth', { kind: 'status', status: 503, retryAfter: 30 });
    @Module({
      imports: [TransferAuthModule.forRoot(fakeOptions(fake, { fetchOnStartup: false }))],
      controllers: [ExportController],
      providers: how === 'adapter' ? [{ provide: APP_FILTER, useClass: TransferAuthErrorFilter }] : [],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .setLogger(logger)
      .compile();
    app = moduleRef.createNestApplication({ logger });
    if (how === 'new') app.useGlobalFilters(new TransferAuthErrorFilter());
    await app.listen(0, '127.0.0.1');
  });
  afterEach(async () => {
    await app.close();
    await fake.stop();
  });

  it('aborts the truncated answer instead of ending it as a complete 200, and logs that it did', async () => {
    const seen = await get(new URL('/export', await app.getUrl()));
    expect(seen.body).toBe('id,amount\n1,100\n'); // page 2 never came
    // The client can tell: the message does not arrive as complete.
    expect({ status: seen.status, completeMessage: seen.completeMessage }).toEqual({
      status: 200,
      completeMessage: false,
    });
    const filterLines = logger.lines.filter((l) => l.includes('GET /export'));
    expect(filterLines).toEqual([
      expect.stringMatching(/UPSTREAM_UNAVAILABLE .*: aborted the answer to GET \/export, already started/),
    ]);
    expect(filterLines.join('\n')).not.toMatch(/answered 503/);
  });
});

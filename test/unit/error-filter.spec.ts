import { Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { TransferAuthError, TransferAuthErrorCode, TransferAuthErrorFilter } from 'nestjs-freedompay-transfer-auth';
import { CapturingLogger } from '../support/auth-app';
import { answer, flush, harness, outcome, type Harness } from './support/stub-endpoint';
import { FAST_RETRY, useFakeClock } from './lifecycle/support';

/**
 * TransferAuthErrorFilter away from HTTP sockets (test/e2e/error-filter.e2e.spec.ts has them): the
 * mapping of every code, Retry-After's rounding, a response already under way, a Fastify-shaped reply,
 * and the contexts that are not HTTP. The Retry-After a refused caller carries is the wait left.
 */
const SERVICE_UNAVAILABLE = {
  statusCode: 503,
  message: 'Temporarily unavailable; try again later.',
  error: 'Service Unavailable',
};

function withWait(code: TransferAuthErrorCode, retryAfterMs: number): TransferAuthError {
  return new TransferAuthError(code, `test ${code}`, { status: 503, retryAfterMs });
}

describe('TransferAuthErrorFilter.answer', () => {
  const expected: Record<TransferAuthErrorCode, { status: number; body: object }> = {
    UPSTREAM_UNAVAILABLE: { status: 503, body: SERVICE_UNAVAILABLE },
    SECRET_UNAVAILABLE: { status: 503, body: SERVICE_UNAVAILABLE },
    SHUTDOWN: { status: 503, body: SERVICE_UNAVAILABLE },
    INVALID_RESPONSE: {
      status: 502,
      body: { statusCode: 502, message: 'An upstream service answered unexpectedly.', error: 'Bad Gateway' },
    },
    INVALID_CREDENTIALS: { status: 500, body: { statusCode: 500, message: 'Internal server error' } },
    INVALID_CONFIG: { status: 500, body: { statusCode: 500, message: 'Internal server error' } },
  };

  it.each(Object.values(TransferAuthErrorCode))('%s', (code) => {
    const error = new TransferAuthError(code, `secret-looking message of ${code}`, { status: 418 });
    expect(TransferAuthErrorFilter.answer(error)).toEqual({ ...expected[code], headers: {} });
  });

  it('Retry-After: whole seconds rounded up, only for UPSTREAM_UNAVAILABLE, only for a positive finite wait', () => {
    const retryAfter = (error: TransferAuthError): string | undefined =>
      TransferAuthErrorFilter.answer(error).headers['Retry-After'];
    expect(retryAfter(withWait('UPSTREAM_UNAVAILABLE', 1))).toBe('1');
    expect(retryAfter(withWait('UPSTREAM_UNAVAILABLE', 1_000))).toBe('1');
    expect(retryAfter(withWait('UPSTREAM_UNAVAILABLE', 1_001))).toBe('2');
    expect(retryAfter(withWait('UPSTREAM_UNAVAILABLE', 300_000))).toBe('300');
    for (const ms of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(retryAfter(withWait('UPSTREAM_UNAVAILABLE', ms))).toBeUndefined();
    }
    for (const code of ['INVALID_RESPONSE', 'SHUTDOWN', 'INVALID_CREDENTIALS'] as const) {
      expect(retryAfter(withWait(code, 5_000))).toBeUndefined();
    }
  });

  it('gives each answer a body of its own', () => {
    const first = TransferAuthErrorFilter.answer(withWait('UPSTREAM_UNAVAILABLE', 1));
    first.body.message = 'changed';
    expect(TransferAuthErrorFilter.answer(withWait('UPSTREAM_UNAVAILABLE', 1)).body).toEqual(SERVICE_UNAVAILABLE);
  });
});

describe('TransferAuthErrorFilter.catch', () => {
  let logger: CapturingLogger;
  beforeEach(() => {
    logger = new CapturingLogger();
    Logger.overrideLogger(logger);
  });
  afterEach(() => {
    Logger.overrideLogger(['log', 'error', 'warn']);
  });

  function httpHost(response: unknown): ExecutionContextHost {
    return new ExecutionContextHost([{ method: 'POST', url: '/pay?card=4111111111111111' }, response, () => {}]);
  }

  const adapterHost = (adapter: object): HttpAdapterHost => {
    const host = new HttpAdapterHost();
    host.httpAdapter = adapter as HttpAdapterHost['httpAdapter'];
    return host;
  };

  it('through the adapter: the header, then the reply; a log line without the query string', () => {
    const calls: unknown[][] = [];
    const adapter = {
      isHeadersSent: () => false,
      setHeader: (...args: unknown[]) => calls.push(['setHeader', ...args]),
      reply: (...args: unknown[]) => calls.push(['reply', ...args]),
      end: (...args: unknown[]) => calls.push(['end', ...args]),
    };
    const response = { id: 'res' };
    new TransferAuthErrorFilter(adapterHost(adapter)).catch(
      withWait('UPSTREAM_UNAVAILABLE', 2_500),
      httpHost(response),
    );
    expect(calls).toEqual([
      ['setHeader', response, 'Retry-After', '3'],
      ['reply', response, SERVICE_UNAVAILABLE, 503],
    ]);
    expect(logger.lines).toEqual([
      'warn UPSTREAM_UNAVAILABLE (upstream HTTP 503): answered 503 to POST /pay. test UPSTREAM_UNAVAILABLE TransferAuthErrorFilter',
    ]);
  });

  it('through the adapter, a response already under way is aborted (destroyed), not answered nor ended', () => {
    const calls: string[] = [];
    const adapter = {
      isHeadersSent: () => true,
      setHeader: () => calls.push('setHeader'),
      reply: () => calls.push('reply'),
      end: () => calls.push('end'),
    };
    const filter = new TransferAuthErrorFilter(adapterHost(adapter));
    filter.catch(withWait('UPSTREAM_UNAVAILABLE', 1), httpHost({ destroy: () => calls.push('destroy') })); // Express
    filter.catch(withWait('UPSTREAM_UNAVAILABLE', 1), httpHost({ raw: { destroy: () => calls.push('raw.destroy') } })); // Fastify
    filter.catch(withWait('UPSTREAM_UNAVAILABLE', 1), httpHost({})); // neither: the adapter's end, the best left
    expect(calls).toEqual(['destroy', 'raw.destroy', 'end']);
    expect(logger.lines[0]).toMatch(
      /^warn UPSTREAM_UNAVAILABLE \(upstream HTTP 503\): aborted the answer to POST \/pay, already started \(the client sees a cut transfer\)\. /,
    );
  });

  it('without an adapter, a Fastify-shaped reply is answered through status/header/send', () => {
    const calls: unknown[][] = [];
    const reply = {
      raw: { headersSent: false, end: () => calls.push(['raw.end']), destroy: () => calls.push(['raw.destroy']) },
      status: (code: number) => calls.push(['status', code]),
      header: (name: string, value: string) => calls.push(['header', name, value]),
      send: (body: unknown) => calls.push(['send', body]),
    };
    new TransferAuthErrorFilter().catch(withWait('UPSTREAM_UNAVAILABLE', 61_000), httpHost(reply));
    expect(calls).toEqual([
      ['status', 503],
      ['header', 'Retry-After', '61'],
      ['send', SERVICE_UNAVAILABLE],
    ]);

    calls.length = 0;
    reply.raw.headersSent = true;
    new TransferAuthErrorFilter().catch(new TransferAuthError('INVALID_RESPONSE', 'x'), httpHost(reply));
    expect(calls).toEqual([['raw.destroy']]);
  });

  it.each(['rpc', 'graphql'])('in a %s handler it steps aside: nothing answered, nothing logged', (type) => {
    const client = { emit: jest.fn(), send: jest.fn() };
    const host = new ExecutionContextHost([{ data: 1 }, client, {}]);
    host.setType(type);
    const result: unknown = new TransferAuthErrorFilter().catch(withWait('UPSTREAM_UNAVAILABLE', 1), host);
    expect(result).toBeUndefined(); // Nest's RPC and GraphQL handlers then apply their own default
    expect(client.emit).not.toHaveBeenCalled();
    expect(client.send).not.toHaveBeenCalled();
    expect(logger.lines).toEqual([]);
  });

  it("in a WebSocket gateway it emits Nest's generic exception event (Socket.IO and native clients)", () => {
    const payload = { status: 'error', message: 'Internal server error' };
    const wsHost = (client: object): ExecutionContextHost => {
      const host = new ExecutionContextHost([client, { amount: 1 }, 'pay']);
      host.setType('ws');
      return host;
    };
    const socketIo = { emit: jest.fn() };
    new TransferAuthErrorFilter().catch(new TransferAuthError('INVALID_CREDENTIALS', 'rejected'), wsHost(socketIo));
    expect(socketIo.emit).toHaveBeenCalledWith('exception', payload);

    const native = { readyState: 1, send: jest.fn(), emit: jest.fn() };
    new TransferAuthErrorFilter().catch(withWait('UPSTREAM_UNAVAILABLE', 1), wsHost(native));
    expect(native.send).toHaveBeenCalledWith(JSON.stringify({ event: 'exception', data: payload }));
    expect(native.emit).not.toHaveBeenCalled();
    expect(logger.lines).toEqual([
      // (Nest's Logger passes an undefined stack before the context of an error line: the double space.)
      'error INVALID_CREDENTIALS: answered an exception event to a WebSocket message (pay). rejected  TransferAuthErrorFilter',
      'warn UPSTREAM_UNAVAILABLE (upstream HTTP 503): answered an exception event to a WebSocket message (pay). test UPSTREAM_UNAVAILABLE TransferAuthErrorFilter',
    ]);
  });
});

describe('a caller refused during an upstream Retry-After carries the wait left', () => {
  let h: Harness;
  useFakeClock(() => h);

  it('30 s asked; 2.5 s later a refused caller is answered Retry-After: 28, with no upstream call', async () => {
    h = harness({ retry: FAST_RETRY }, answer.fail('UPSTREAM_UNAVAILABLE', 429, 30_000));
    const first = outcome(h.lifecycle.getAccessToken());
    await flush();
    expect(TransferAuthErrorFilter.answer(first.error() as TransferAuthError).headers).toEqual({ 'Retry-After': '30' });
    await jest.advanceTimersByTimeAsync(2_500);
    const second = outcome(h.lifecycle.getAccessToken());
    await flush();
    const refused = second.error() as TransferAuthError;
    expect(refused.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(refused.retryAfterMs).toBe(27_500);
    expect(TransferAuthErrorFilter.answer(refused).headers).toEqual({ 'Retry-After': '28' });
    expect(h.stub.count).toBe(1);
  });
});

import { Catch, HttpStatus, Logger, Optional, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { TransferAuthError, type TransferAuthErrorCode } from './transfer-auth.error';

/** What {@link TransferAuthErrorFilter} answers for a {@link TransferAuthError}. */
export interface TransferAuthErrorAnswer {
  /** 500, 502 or 503. */
  status: number;
  /** `Retry-After` (whole seconds), when the upstream said how long to wait. */
  headers: Record<string, string>;
  /** Nest's usual error shape. Never the error's message, code, a token, a secret or an upstream body. */
  body: { statusCode: number; message: string; error?: string };
}

type Level = 'error' | 'warn' | 'log';

/**
 * Per code: the status and the log level. 503 says "try again later" (the package itself backs off and
 * recovers: the upstream, the secret provider, or this instance stopping); 502 that the upstream answered
 * something unusable; 500 that an operator must act (rejected credentials, invalid options), told to the
 * client as nothing more than Nest's own "Internal server error".
 */
const BY_CODE: Record<TransferAuthErrorCode, { status: 500 | 502 | 503; level: Level }> = {
  UPSTREAM_UNAVAILABLE: { status: HttpStatus.SERVICE_UNAVAILABLE, level: 'warn' },
  SECRET_UNAVAILABLE: { status: HttpStatus.SERVICE_UNAVAILABLE, level: 'error' },
  SHUTDOWN: { status: HttpStatus.SERVICE_UNAVAILABLE, level: 'log' },
  INVALID_RESPONSE: { status: HttpStatus.BAD_GATEWAY, level: 'error' },
  INVALID_CREDENTIALS: { status: HttpStatus.INTERNAL_SERVER_ERROR, level: 'error' },
  INVALID_CONFIG: { status: HttpStatus.INTERNAL_SERVER_ERROR, level: 'error' },
};

// One body per status: a client learns what to do (retry or not), never why.
const BODIES: Record<500 | 502 | 503, TransferAuthErrorAnswer['body']> = {
  500: { statusCode: 500, message: 'Internal server error' }, // word for word Nest's answer to any unknown error
  502: { statusCode: 502, message: 'An upstream service answered unexpectedly.', error: 'Bad Gateway' },
  503: { statusCode: 503, message: 'Temporarily unavailable; try again later.', error: 'Service Unavailable' },
};

/** The parts of Nest's HTTP adapter used here (the same in Nest 11 and 12, Express and Fastify). */
interface ReplyingAdapter {
  reply(response: unknown, body: unknown, statusCode?: number): unknown;
  setHeader(response: unknown, name: string, value: string): unknown;
  isHeadersSent(response: unknown): boolean;
  end(response: unknown, message?: string): unknown;
}

/** Node's `ServerResponse` as far as used here: Express' `Response` is one, Fastify's `reply.raw` too. */
interface NodeResponse {
  headersSent?: boolean;
  destroy?(): unknown;
  end?(): unknown;
}

/** Express' `Response` and Fastify's `FastifyReply` both have these. */
interface FrameworkResponse extends NodeResponse {
  status(code: number): unknown;
  header(name: string, value: string): unknown;
  send(body: unknown): unknown;
  raw?: NodeResponse; // Fastify
}

/**
 * Answers a {@link TransferAuthError} thrown by an HTTP handler (from `getAccessToken()`, or from
 * `TransferHttpService` when no token can be had): `UPSTREAM_UNAVAILABLE`, `SECRET_UNAVAILABLE` and
 * `SHUTDOWN` with 503 (plus `Retry-After` when the upstream said how long to wait), `INVALID_RESPONSE`
 * with 502, `INVALID_CREDENTIALS` and `INVALID_CONFIG` with a plain 500. The body never holds the error's
 * message or code; the filter logs them, once per answer. Any other error is left to Nest.
 *
 * An answer already started (a streamed body, headers sent) cannot become an error status: the filter
 * aborts it (destroys the response and its connection), so that the client sees a cut transfer rather than
 * a complete-looking, truncated one, and logs that it did.
 *
 * Bind it as you like: `app.useGlobalFilters(new TransferAuthErrorFilter())`,
 * `@UseFilters(TransferAuthErrorFilter)`, or `{ provide: APP_FILTER, useClass: TransferAuthErrorFilter }`.
 * In RPC and GraphQL handlers it steps aside (Nest's default answers); in a WebSocket gateway it emits
 * what Nest emits for any unknown error.
 */
@Catch(TransferAuthError)
export class TransferAuthErrorFilter implements ExceptionFilter<TransferAuthError> {
  private readonly logger = new Logger('TransferAuthErrorFilter');

  /**
   * @param adapterHost Injected when Nest builds the filter (`@UseFilters(Class)`, `APP_FILTER`); an
   *   instance made with `new` answers through the response's own `status`/`header`/`send` (Express, Fastify).
   */
  constructor(@Optional() private readonly adapterHost?: HttpAdapterHost) {}

  /** What is answered for `error`: status, headers and body. For an app whose own filter shapes errors. */
  static answer(error: TransferAuthError): TransferAuthErrorAnswer {
    const { status } = BY_CODE[error.code] ?? BY_CODE.INVALID_CONFIG;
    const headers: Record<string, string> = {};
    const waitMs = error.code === 'UPSTREAM_UNAVAILABLE' ? error.retryAfterMs : undefined;
    if (waitMs !== undefined && Number.isFinite(waitMs) && waitMs > 0) {
      headers['Retry-After'] = String(Math.ceil(waitMs / 1000));
    }
    return { status, headers, body: { ...BODIES[status] } };
  }

  catch(error: TransferAuthError, host: ArgumentsHost): void {
    const type = host.getType<string>();
    if (type === 'ws') return this.emitUnknownError(error, host);
    // RPC, GraphQL: returning nothing lets Nest's own handler for that context take the error as if no
    // filter had caught it.
    if (type !== 'http') return;
    const answer = TransferAuthErrorFilter.answer(error);
    const http = host.switchToHttp();
    const response: unknown = http.getResponse();
    const route = describeRequest(http.getRequest());
    const adapter = this.adapterHost?.httpAdapter as ReplyingAdapter | undefined;
    const res = response as FrameworkResponse;
    const started = adapter !== undefined ? adapter.isHeadersSent(response) : (res.raw ?? res).headersSent === true;
    if (started) {
      // Its status is gone already; ending it would tell the client that the truncated body is complete.
      this.report(error, `aborted the answer to ${route}, already started (the client sees a cut transfer)`);
      const raw = res.raw ?? res;
      if (typeof raw.destroy === 'function') raw.destroy();
      else if (adapter !== undefined) adapter.end(response);
      else raw.end?.();
      return;
    }
    this.report(error, `answered ${answer.status} to ${route}`);
    if (adapter !== undefined) {
      for (const [name, value] of Object.entries(answer.headers)) adapter.setHeader(response, name, value);
      adapter.reply(response, answer.body, answer.status);
      return;
    }
    res.status(answer.status);
    for (const [name, value] of Object.entries(answer.headers)) res.header(name, value);
    res.send(answer.body);
  }

  /** One line per answer: code, upstream status, what was done (answered what to what), and the message. */
  private report(error: TransferAuthError, done: string): void {
    const upstream = error.status === undefined ? '' : ` (upstream HTTP ${error.status})`;
    const level = BY_CODE[error.code]?.level ?? 'error';
    // The message names what failed and never a secret or token (TransferAuthError's contract).
    this.logger[level](`${error.code}${upstream}: ${done}. ${error.message}`);
  }

  /** As Nest's BaseWsExceptionFilter does for an error that is not a WsException. */
  private emitUnknownError(error: TransferAuthError, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    const client = ws.getClient<{
      readyState?: unknown;
      send?(data: string): unknown;
      emit?(...args: unknown[]): unknown;
    }>();
    this.report(error, `answered an exception event to a WebSocket message (${String(ws.getPattern())})`);
    const payload = { status: 'error', message: 'Internal server error' };
    if (typeof client?.readyState === 'number' && typeof client.send === 'function') {
      client.send(JSON.stringify({ event: 'exception', data: payload }));
    } else if (typeof client?.emit === 'function') {
      client.emit('exception', payload);
    }
  }
}

/** `GET /path` (the query left out: it may hold anything). */
function describeRequest(request: unknown): string {
  const req = request as { method?: unknown; originalUrl?: unknown; url?: unknown } | undefined;
  const url = typeof req?.originalUrl === 'string' ? req.originalUrl : typeof req?.url === 'string' ? req.url : '?';
  return `${typeof req?.method === 'string' ? req.method : '?'} ${url.split('?')[0]}`;
}

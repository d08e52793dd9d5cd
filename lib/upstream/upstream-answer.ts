import { AxiosError, type AxiosResponse } from 'axios';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { AgentTokenResponseDto } from '../dto/agent-token-response.dto';
import { TransferAuthError } from '../errors/transfer-auth.error';
import { IMF_FIXDATE, MAX_RESPONSE_BYTES } from '../internal.constants';
import type { UpstreamOutcome } from '../telemetry/telemetry';
import { parseRetryAfter } from '../token-lifecycle/backoff';
import { instant, type Clock, type Instant } from '../token-lifecycle/clock';
import type { UpstreamTokenResponse } from './token-endpoint';

// What the upstream's answers mean: a validated token answer, or the `TransferAuthError` whose code
// decides what follows. Errors are rebuilt from scratch, never wrapped: an `AxiosError` carries the
// request config, and with it the secret.

/** @internal */
export type Call = 'Get token' | 'Refresh token';

const TOKEN_FIELDS = ['access_token', 'refresh_token', 'access_expire_at', 'refresh_expire_at'] as const;

/** @internal Why the request was aborted. */
export const TIMEOUT = Symbol('timeout');
export const SHUTDOWN = Symbol('shutdown');

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_NETWORK',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/**
 * @internal A token answer validated with the DTO (the four fields only), with what places its expiry on
 * the local clocks; anything else is the `TransferAuthError` its status calls for.
 */
export function parseAnswer(
  call: Call,
  response: AxiosResponse<unknown>,
  sentAt: Instant,
  clock: Clock,
): UpstreamTokenResponse {
  const receivedAt = instant(clock);
  const status = response.status;
  const serverDateMs = serverDateOf(response.headers);
  if (status < 200 || status >= 300) throw statusError(call, response, serverDateMs, clock);

  let json: unknown;
  try {
    json = JSON.parse(typeof response.data === 'string' ? response.data : '');
  } catch {
    throw new TransferAuthError('INVALID_RESPONSE', `${call} answered HTTP ${status} with a body that is not JSON.`, {
      status,
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TransferAuthError(
      'INVALID_RESPONSE',
      `${call} answered HTTP ${status} with JSON that is not an object.`,
      { status },
    );
  }
  // The four fields only, and only primitives: class-transformer recurses into whatever is nested (a
  // stack overflow on a deep body) and would copy keys such as `__proto__`. Objects fail validation.
  const record = json as Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const key of TOKEN_FIELDS) {
    const value = Object.hasOwn(record, key) ? record[key] : undefined;
    fields[key] = typeof value === 'object' && value !== null ? null : value;
  }
  const body = plainToInstance(AgentTokenResponseDto, fields);
  const problems = validateSync(body, {
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
  });
  if (problems.length > 0) {
    // Property names and rule names only: a constraint message could quote the value, which may be a token.
    const detail = problems
      .map((p) => `${p.property} (${Object.keys(p.constraints ?? {}).join(', ') || 'invalid'})`)
      .join('; ');
    throw new TransferAuthError(
      'INVALID_RESPONSE',
      `${call} answered HTTP ${status} with missing or malformed fields: ${detail}.`,
      { status },
    );
  }
  return { body, status, serverDateMs, sentAt, receivedAt };
}

/** @internal An answer's status and headers: all that a status error is made of. */
export interface AnswerStatus {
  readonly status: number;
  readonly headers: Readonly<Record<string, unknown>>;
}

/**
 * @internal The upstream's `Date` header, epoch ms. Only an IMF-fixdate: Date.parse reads "0" or "12" as
 * years long past, and a token would then look usable for decades. Anything else counts as no Date header
 * (the local clock is used).
 */
export function serverDateOf(headers: Readonly<Record<string, unknown>>): number | undefined {
  const dateHeader = String(headers['date'] ?? '');
  const serverDate = IMF_FIXDATE.test(dateHeader) ? Date.parse(dateHeader) : Number.NaN;
  return Number.isNaN(serverDate) ? undefined : serverDate;
}

/** @internal The `TransferAuthError` a status other than 2xx calls for (with its `Retry-After`, if any). */
export function statusError(
  call: Call,
  response: AnswerStatus,
  serverDateMs: number | undefined,
  clock: Clock,
): TransferAuthError {
  const status = response.status;
  if (status >= 300 && status < 400) {
    return new TransferAuthError(
      'INVALID_RESPONSE',
      `${call} answered with a redirect (HTTP ${status}); redirects are not followed.`,
      { status },
    );
  }
  if (status === 401 || status === 403) {
    return call === 'Get token'
      ? new TransferAuthError(
          'INVALID_CREDENTIALS',
          `Get token rejected the agent credentials (HTTP ${status}); check agentId and agentSecret.`,
          { status },
        )
      : new TransferAuthError('INVALID_CREDENTIALS', `Refresh token rejected the refresh token (HTTP ${status}).`, {
          status,
        });
  }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(response.headers['retry-after'], serverDateMs, clock.wall());
    const after = retryAfterMs === undefined ? '' : `; it asked to retry after ${Math.ceil(retryAfterMs / 1000)} s`;
    return new TransferAuthError('UPSTREAM_UNAVAILABLE', `${call} failed with HTTP ${status}${after}.`, {
      status,
      retryAfterMs,
    });
  }
  return new TransferAuthError('INVALID_RESPONSE', `${call} answered HTTP ${status}.`, { status });
}

export function networkError(call: Call, error: unknown, signal: AbortSignal, timeoutMs: number): TransferAuthError {
  if (signal.reason === SHUTDOWN) return shutdownError(call);
  if (signal.reason === TIMEOUT) {
    return new TransferAuthError('UPSTREAM_UNAVAILABLE', `${call} timed out after ${timeoutMs} ms.`);
  }
  const axiosError = error instanceof AxiosError ? error : undefined;
  const code = axiosError?.code ?? (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // Rebuilt, not wrapped: an AxiosError carries the request config, and with it the secret.
  const cause = Object.assign(new Error(message), typeof code === 'string' ? { code } : {});
  if (typeof code === 'string' && code.startsWith('Z_')) {
    // A body that does not decompress is a bad answer, not a network fault: not retried at once.
    return new TransferAuthError('INVALID_RESPONSE', `${call} answered with a corrupt compressed body.`, { cause });
  }
  if (/maxContentLength/.test(message)) {
    return new TransferAuthError(
      'INVALID_RESPONSE',
      `${call} answered with a body larger than ${MAX_RESPONSE_BYTES / 1024} KiB.`,
      { cause },
    );
  }
  const what = typeof code === 'string' && NETWORK_CODES.has(code) ? code : 'network error';
  return new TransferAuthError('UPSTREAM_UNAVAILABLE', `${call} failed: ${what} (${message}).`, {
    cause,
    connection: connectionFault(code, axiosError),
  });
}

/**
 * Refused: nothing was sent. Reset: the socket was destroyed after the request went out, or an answer
 * was cut off (axios then holds its response: "stream has been aborted"). Anything else (DNS, a connect
 * timeout, ...) is neither, and is not retried at once.
 */
function connectionFault(code: unknown, error: AxiosError | undefined): 'refused' | 'reset' | undefined {
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || error?.response !== undefined) return 'reset';
  return undefined;
}

/** @internal */
export /** What a span and the renewal counter say of one call: its status and error code, never a message. */
function outcome(result: { value: UpstreamTokenResponse } | { error: unknown }): UpstreamOutcome {
  if ('value' in result) return { status: result.value.status, code: undefined };
  const error = result.error;
  return error instanceof TransferAuthError
    ? { status: error.status, code: error.code }
    : { status: undefined, code: 'UPSTREAM_UNAVAILABLE' };
}

/** @internal */
export function shutdownError(call: Call): TransferAuthError {
  return new TransferAuthError('SHUTDOWN', `${call} cancelled: the application is shutting down.`);
}

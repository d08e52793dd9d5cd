import axios, { AxiosError, type AxiosInstance, type AxiosResponse, type Method } from 'axios';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import * as http from 'node:http';
import * as https from 'node:https';
import { AgentAuthRequestDto, RefreshTokenRequestDto } from './dto/agent-auth-request.dto';
import { AgentTokenResponseDto } from './dto/agent-token-response.dto';
import { TransferAuthError } from './errors/transfer-auth.error';
import type { ResolvedTransferAuthOptions } from './resolve-options';
import { parseRetryAfter } from './token-lifecycle/backoff';
import { instant, systemClock, type Clock, type Instant } from './token-lifecycle/clock';
import { IMF_FIXDATE, MAX_RESPONSE_BYTES } from './internal.constants';
import { readAgentSecret } from './agent-secret';
import { tokenFingerprint } from './telemetry/fingerprint';
import { NO_TELEMETRY, type Telemetry, type UpstreamOutcome } from './telemetry/telemetry';

/** @internal A validated token answer, with what is needed to place its expiry on the local clocks. */
export interface UpstreamTokenResponse {
  readonly body: AgentTokenResponseDto;
  readonly status: number;
  /** The upstream's `Date` header, epoch ms, when it sent a parsable one. */
  readonly serverDateMs: number | undefined;
  /** When the request was sent: the upstream's `Date` is no earlier than this. */
  readonly sentAt: Instant;
  readonly receivedAt: Instant;
}

/**
 * @internal What the token lifecycle needs from the upstream. `parent` is the trace context of the caller
 * who waits for the call, if any (opaque: see {@link Telemetry}).
 */
export interface TokenEndpoint {
  getToken(parent?: unknown): Promise<UpstreamTokenResponse>;
  refreshToken(refreshToken: string, parent?: unknown): Promise<UpstreamTokenResponse>;
  /**
   * With `agentSecret` as a provider, after Get token rejected the credentials: whether the provider now
   * answers another secret than the one rejected (then a login may be tried at once). Never rejects.
   */
  secretChanged?(): Promise<boolean>;
  /** Aborts every request in flight (they reject with `SHUTDOWN`); later calls reject at once. */
  close(): void;
}

type Call = 'Get token' | 'Refresh token';

const TOKEN_FIELDS = ['access_token', 'refresh_token', 'access_expire_at', 'refresh_expire_at'] as const;

const TIMEOUT = Symbol('timeout');
const SHUTDOWN = Symbol('shutdown');
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
 * Sockets of auth calls are unref'd: a background renewal must not keep a process alive whose work is
 * done. A caller that waits for a renewal holds a ref'd timer of the lifecycle's instead.
 */
const UNREF_TRANSPORT = {
  request(options: https.RequestOptions, onResponse: (response: http.IncomingMessage) => void): http.ClientRequest {
    const request = (options.protocol === 'https:' ? https : http).request(options, onResponse);
    request.on('socket', (socket) => socket.unref());
    return request;
  },
};

/**
 * @internal The two upstream auth calls over HTTP: a deadline from connect to last byte, no redirects,
 * bodies over 64 KiB refused, answers validated with the DTOs before anyone sees them. Errors are
 * rebuilt from scratch so that no request config (which holds the secret) travels in a `cause`.
 */
export class TransferApiClient implements TokenEndpoint {
  private readonly http: AxiosInstance;
  private readonly shutdown = new AbortController();
  /** Rejects with `SHUTDOWN` at close: a secret provider that hangs is not waited for. */
  private readonly closing: Promise<never>;
  /** The last secret Get token rejected, as a hash: a provider's answer is compared with it. Never printed. */
  #rejectedSecret: string | undefined;

  constructor(
    private readonly options: ResolvedTransferAuthOptions,
    private readonly clock: Clock = systemClock,
    private readonly telemetry: Telemetry = NO_TELEMETRY,
  ) {
    this.closing = new Promise<never>((_, reject) => {
      this.shutdown.signal.addEventListener('abort', () => reject(shutdownError('Get token')), { once: true });
    });
    this.closing.catch(() => undefined);
    this.http = axios.create({
      maxRedirects: 0,
      transport: UNREF_TRANSPORT,
      maxContentLength: MAX_RESPONSE_BYTES,
      maxBodyLength: MAX_RESPONSE_BYTES,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      validateStatus: () => true,
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    });
  }

  /**
   * Get token with the secret read now. With a provider, a rejection reads it again: a secret that
   * changed meanwhile (rotated) is tried at once, in the same renewal; an unchanged one is not.
   */
  async getToken(parent?: unknown): Promise<UpstreamTokenResponse> {
    const secret = await this.readSecret();
    try {
      return await this.login(secret, parent);
    } catch (error) {
      if (typeof this.options.agentSecret === 'string' || !TransferAuthError.is(error, 'INVALID_CREDENTIALS')) {
        throw error;
      }
      this.#rejectedSecret = digest(secret);
      let next: string;
      try {
        next = await this.readSecret();
      } catch {
        throw error; // the rejection says more than a provider that failed just now
      }
      if (digest(next) === this.#rejectedSecret) throw error;
      return this.login(next, parent).catch((again: unknown) => {
        if (TransferAuthError.is(again, 'INVALID_CREDENTIALS')) this.#rejectedSecret = digest(next);
        throw again;
      });
    }
  }

  async secretChanged(): Promise<boolean> {
    if (typeof this.options.agentSecret === 'string' || this.#rejectedSecret === undefined) return false;
    try {
      return digest(await this.readSecret()) !== this.#rejectedSecret;
    } catch {
      return false;
    }
  }

  refreshToken(refreshToken: string, parent?: unknown): Promise<UpstreamTokenResponse> {
    const refresh = this.options.refresh;
    if (refresh === false) {
      return Promise.reject(
        new TransferAuthError('INVALID_CONFIG', 'The refresh endpoint is disabled (`refresh: false`).'),
      );
    }
    const inHeader = refresh.tokenIn !== 'body';
    const inBody = refresh.tokenIn !== 'header';
    return this.send(
      'Refresh token',
      refresh.method,
      refresh.path,
      inBody ? RefreshTokenRequestDto.of(refreshToken).toBody() : undefined,
      inHeader ? `Bearer ${refreshToken}` : undefined,
      parent,
    ).catch((error: unknown) => {
      // A refused refresh token is named by its fingerprint, so a log line can be matched with it.
      if (!TransferAuthError.is(error, 'INVALID_CREDENTIALS')) throw error;
      const named = error.message.replace(
        'the refresh token',
        `the refresh token fp=${tokenFingerprint(refreshToken)}`,
      );
      throw new TransferAuthError('INVALID_CREDENTIALS', named, { status: error.status });
    });
  }

  private readSecret(): Promise<string> {
    return readAgentSecret(this.options.agentSecret, this.options.requestTimeoutMs, this.closing);
  }

  private login(secret: string, parent: unknown): Promise<UpstreamTokenResponse> {
    const body = AgentAuthRequestDto.of(this.options.agentId, secret);
    return this.send('Get token', 'POST', this.options.authPath, body.toBody(), undefined, parent);
  }

  close(): void {
    this.shutdown.abort(SHUTDOWN);
  }

  /** Names where it sends, nothing it holds. */
  [inspect.custom](): string {
    return `TransferApiClient { baseUrl: '${this.options.baseUrl}' }`;
  }

  private async send(
    call: Call,
    method: Method,
    path: string,
    data: string | undefined,
    authorization: string | undefined,
    parent: unknown,
  ): Promise<UpstreamTokenResponse> {
    if (this.shutdown.signal.aborted) throw shutdownError(call);
    const request = {
      kind: call === 'Get token' ? 'login' : 'refresh',
      method,
      url: `${this.options.baseUrl}${path}`,
    } as const;
    return this.telemetry.upstream(
      request,
      parent,
      () => this.exchange(call, method, path, data, authorization),
      outcome,
    );
  }

  private async exchange(
    call: Call,
    method: Method,
    path: string,
    data: string | undefined,
    authorization: string | undefined,
  ): Promise<UpstreamTokenResponse> {
    const controller = new AbortController();
    const onShutdown = (): void => controller.abort(SHUTDOWN);
    this.shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    // A single deadline for the whole exchange: axios' own `timeout` is a socket idle timer, which a
    // slowly dribbled body never trips.
    const deadline = setTimeout(() => controller.abort(TIMEOUT), this.options.requestTimeoutMs);
    deadline.unref?.();
    const sentAt = instant(this.clock);
    try {
      let response: AxiosResponse<unknown>;
      // The deadline holds even if the HTTP library failed to settle on abort (axios < 1.16 could,
      // with compression and maxRedirects 0): the renewal must never hang with callers on it.
      const aborted = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      });
      aborted.catch(() => undefined);
      try {
        response = await Promise.race([
          this.http.request({
            method,
            url: `${this.options.baseUrl}${path}`,
            data,
            headers: authorization === undefined ? undefined : { Authorization: authorization },
            signal: controller.signal,
          }),
          aborted,
        ]);
      } catch (error) {
        throw this.networkError(call, error, controller.signal);
      }
      return this.parse(call, response, sentAt);
    } finally {
      clearTimeout(deadline);
      this.shutdown.signal.removeEventListener('abort', onShutdown);
    }
  }

  private parse(call: Call, response: AxiosResponse<unknown>, sentAt: Instant): UpstreamTokenResponse {
    const receivedAt = instant(this.clock);
    const status = response.status;
    // Only an IMF-fixdate: Date.parse reads "0" or "12" as years long past, and a token would then look
    // usable for decades. Anything else counts as no Date header (the local clock is used).
    const dateHeader = String(response.headers['date'] ?? '');
    const serverDate = IMF_FIXDATE.test(dateHeader) ? Date.parse(dateHeader) : Number.NaN;
    const serverDateMs = Number.isNaN(serverDate) ? undefined : serverDate;
    if (status < 200 || status >= 300) throw this.statusError(call, response, serverDateMs);

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

  private statusError(
    call: Call,
    response: AxiosResponse<unknown>,
    serverDateMs: number | undefined,
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
      const retryAfterMs = parseRetryAfter(response.headers['retry-after'], serverDateMs, this.clock.wall());
      const after = retryAfterMs === undefined ? '' : `; it asked to retry after ${Math.ceil(retryAfterMs / 1000)} s`;
      return new TransferAuthError('UPSTREAM_UNAVAILABLE', `${call} failed with HTTP ${status}${after}.`, {
        status,
        retryAfterMs,
      });
    }
    return new TransferAuthError('INVALID_RESPONSE', `${call} answered HTTP ${status}.`, { status });
  }

  private networkError(call: Call, error: unknown, signal: AbortSignal): TransferAuthError {
    if (signal.reason === SHUTDOWN) return shutdownError(call);
    if (signal.reason === TIMEOUT) {
      return new TransferAuthError(
        'UPSTREAM_UNAVAILABLE',
        `${call} timed out after ${this.options.requestTimeoutMs} ms.`,
      );
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
    return new TransferAuthError('UPSTREAM_UNAVAILABLE', `${call} failed: ${what} (${message}).`, { cause });
  }
}

/** What a span and the renewal counter say of one call: its status and error code, never a message. */
function outcome(result: { value: UpstreamTokenResponse } | { error: unknown }): UpstreamOutcome {
  if ('value' in result) return { status: result.value.status, code: undefined };
  const error = result.error;
  return error instanceof TransferAuthError
    ? { status: error.status, code: error.code }
    : { status: undefined, code: 'UPSTREAM_UNAVAILABLE' };
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function shutdownError(call: Call): TransferAuthError {
  return new TransferAuthError('SHUTDOWN', `${call} cancelled: the application is shutting down.`);
}

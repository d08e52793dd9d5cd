import axios, { type AxiosInstance, type AxiosResponse, type Method } from 'axios';
import * as http from 'node:http';
import * as https from 'node:https';
import { MAX_RESPONSE_BYTES } from '../internal.constants';
import { instant, systemClock, type Clock, type Instant } from '../token-lifecycle/clock';
import { networkError, SHUTDOWN, shutdownError, TIMEOUT, type AnswerStatus, type Call } from './upstream-answer';

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

/** @internal One auth request: which call it is (for errors), where it goes, and what it carries. */
export interface AuthRequest {
  readonly call: Call;
  readonly method: Method;
  readonly path: string;
  readonly data?: string | undefined;
  readonly authorization?: string | undefined;
}

/** @internal An answer of any status, with when its request was sent. */
export interface RawAnswer {
  readonly response: AxiosResponse<unknown>;
  readonly sentAt: Instant;
}

/**
 * @internal The head of an answer: its status and headers. `bodyRefused` when its body was not read (over
 * the size cap, or not decodable): the status stands, the body is unknown.
 */
export interface AnswerHead extends AnswerStatus {
  readonly bodyRefused: boolean;
  readonly sentAt: Instant;
}

/**
 * @internal The HTTP exchange of the auth calls, shared by the module's client and the `doctor`: one
 * deadline from connect to last byte, no redirects, bodies over 64 KiB refused, the body kept as text.
 * A failure to get an answer (network, deadline, `signal` aborted with `SHUTDOWN`) is a
 * `TransferAuthError` rebuilt from scratch, so no request config (which holds the secret) travels in a
 * `cause`; an answer of any status is returned as it is, for the caller to judge.
 */
export class AuthExchange {
  private readonly http: AxiosInstance;

  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly clock: Clock = systemClock,
  ) {
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

  async send(request: AuthRequest, shutdown: AbortSignal): Promise<RawAnswer> {
    return this.exchange(request, shutdown, false) as Promise<RawAnswer>;
  }

  /**
   * The head of the answer, for a caller that needs only its status (the doctor's route probes): like
   * {@link send}, except that an answer whose body is refused (over the cap, not decodable) still resolves
   * with the status that came before it. A failure to get any answer rejects as in {@link send}.
   */
  async head(request: AuthRequest, shutdown: AbortSignal): Promise<AnswerHead> {
    const answer = await this.exchange(request, shutdown, true);
    if (!('response' in answer)) return answer;
    const { response, sentAt } = answer;
    return { status: response.status, headers: { ...response.headers }, bodyRefused: false, sentAt };
  }

  private async exchange(
    request: AuthRequest,
    shutdown: AbortSignal,
    headOnBodyRefused: boolean,
  ): Promise<RawAnswer | AnswerHead> {
    // The module's client checks this before it calls; other callers (the doctor) rely on it here.
    if (shutdown.aborted) throw shutdownError(request.call);
    const controller = new AbortController();
    const onShutdown = (): void => controller.abort(SHUTDOWN);
    shutdown.addEventListener('abort', onShutdown, { once: true });
    // A single deadline for the whole exchange: axios' own `timeout` is a socket idle timer, which a
    // slowly dribbled body never trips.
    const deadline = setTimeout(() => controller.abort(TIMEOUT), this.timeoutMs);
    deadline.unref?.();
    const sentAt = instant(this.clock);
    try {
      // The deadline holds even if the HTTP library failed to settle on abort (axios < 1.16 could,
      // with compression and maxRedirects 0): the renewal must never hang with callers on it.
      const aborted = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      });
      aborted.catch(() => undefined);
      try {
        const response = await Promise.race([
          this.http.request<unknown>({
            method: request.method,
            url: `${this.baseUrl}${request.path}`,
            data: request.data,
            headers: request.authorization === undefined ? undefined : { Authorization: request.authorization },
            signal: controller.signal,
          }),
          aborted,
        ]);
        return { response, sentAt };
      } catch (error) {
        const failure = networkError(request.call, error, controller.signal, this.timeoutMs);
        // INVALID_RESPONSE from networkError: an answer came, its body was refused (size, decoding).
        const head = headOnBodyRefused && failure.code === 'INVALID_RESPONSE' ? headOf(error) : undefined;
        if (head !== undefined) return { ...head, bodyRefused: true, sentAt };
        throw failure;
      }
    } finally {
      clearTimeout(deadline);
      shutdown.removeEventListener('abort', onShutdown);
    }
  }
}

/**
 * The status line and headers of an answer whose body failed: axios holds them as the error's `response`
 * (a body that does not decompress), or only on its request (`req.res`, when the size cap cut the body).
 */
function headOf(error: unknown): { status: number; headers: Record<string, unknown> } | undefined {
  const failed = error as
    | {
        response?: { status?: unknown; headers?: unknown };
        request?: { res?: { statusCode?: unknown; headers?: unknown } };
      }
    | null
    | undefined;
  const status = failed?.response?.status ?? failed?.request?.res?.statusCode;
  const headers = failed?.response?.headers ?? failed?.request?.res?.headers;
  if (typeof status !== 'number' || !Number.isInteger(status)) return undefined;
  return { status, headers: typeof headers === 'object' && headers !== null ? { ...headers } : {} };
}

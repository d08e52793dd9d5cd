import axios, { type AxiosInstance, type AxiosResponse, type Method } from 'axios';
import * as http from 'node:http';
import * as https from 'node:https';
import { MAX_RESPONSE_BYTES } from '../internal.constants';
import { instant, systemClock, type Clock, type Instant } from '../token-lifecycle/clock';
import { networkError, SHUTDOWN, TIMEOUT, type Call } from './upstream-answer';

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
        throw networkError(request.call, error, controller.signal, this.timeoutMs);
      }
    } finally {
      clearTimeout(deadline);
      shutdown.removeEventListener('abort', onShutdown);
    }
  }
}

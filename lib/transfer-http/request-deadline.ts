import axios, {
  AxiosError,
  type AxiosAdapter,
  type AxiosResponse,
  type CancelToken,
  type InternalAxiosRequestConfig,
} from 'axios';

type Abort = (reason: unknown) => void;

/** Stands in for the caller's cancel token when there is none: never cancelled. */
let never: CancelToken | undefined;

/**
 * @internal An adapter that gives each exchange `ms` from the moment it is sent to the last byte of the
 * response. axios' `timeout` is Node's idle timer on the socket: a body that trickles in a byte at a
 * time never trips it. This is one timer over the whole exchange, and the body of a
 * `responseType: 'stream'` response is still under it while it is read.
 *
 * A request past the deadline rejects at once, as axios' own timeout does: an `AxiosError` coded
 * `ECONNABORTED` (`ETIMEDOUT` with `transitional.clarifyTimeoutError`), with `timeoutErrorMessage`
 * when one is set; the adapter is told to abort, which closes the socket.
 *
 * The adapter is reached through the config's cancel token: for the time of the exchange it is one
 * that also answers to the deadline, and otherwise behaves as the caller's (which `HttpService` always
 * sets, and which keeps working). Not an `AbortSignal`: in Node 20 adding and removing its listener,
 * which axios does for every request that has one, costs ~4 us, a tenth of a loopback request.
 */
export function withDeadline(next: AxiosAdapter, ms: number): AxiosAdapter {
  return (config) =>
    new Promise<AxiosResponse>((resolve, reject) => {
      const outer = config.cancelToken;
      const aborts: Abort[] = [];
      const token = Object.create(outer ?? (never ??= new axios.CancelToken(() => undefined))) as CancelToken;
      token.subscribe = (abort: Abort) => {
        aborts.push(abort);
        outer?.subscribe(abort);
      };
      token.unsubscribe = (abort: Abort) => {
        const at = aborts.indexOf(abort);
        if (at !== -1) aborts.splice(at, 1);
        outer?.unsubscribe(abort);
      };
      const restore = (): void => {
        if (outer === undefined) delete config.cancelToken;
        else config.cancelToken = outer;
      };

      let settled = false;
      let body: Body | undefined;
      // The timer of a request in flight: the request's own socket is what keeps the process alive.
      const timer = setTimeout(() => {
        const error = timeoutError(config, ms);
        if (body !== undefined) return void body.destroy(error);
        settled = true;
        restore();
        for (const abort of aborts.splice(0)) abort(error);
        reject(error);
      }, ms);
      timer.unref();
      config.cancelToken = token;

      next(config).then(
        (response) => {
          if (settled) return void discard(response.data); // answered after the deadline: too late
          settled = true;
          restore();
          const data: unknown = response.data;
          if (isOpenBody(data)) {
            body = data;
            data.once('close', () => clearTimeout(timer));
          } else clearTimeout(timer);
          resolve(response);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          restore();
          reject(error);
        },
      );
    });
}

/** A response body still being read (`responseType: 'stream'`). */
interface Body {
  readonly readableEnded?: boolean;
  readonly destroyed?: boolean;
  once(event: 'close', listener: () => void): unknown;
  destroy(error?: Error): unknown;
}

function isOpenBody(data: unknown): data is Body {
  if (typeof data !== 'object' || data === null) return false;
  const candidate = data as Partial<Body>;
  return (
    typeof candidate.once === 'function' &&
    typeof candidate.destroy === 'function' &&
    candidate.destroyed !== true &&
    candidate.readableEnded !== true
  );
}

function discard(data: unknown): void {
  if (isOpenBody(data)) data.destroy();
}

function timeoutError(config: InternalAxiosRequestConfig, ms: number): AxiosError {
  const message = config.timeoutErrorMessage || `timeout of ${ms}ms exceeded`;
  const code = config.transitional?.clarifyTimeoutError ? AxiosError.ETIMEDOUT : AxiosError.ECONNABORTED;
  return new AxiosError(message, code, config);
}

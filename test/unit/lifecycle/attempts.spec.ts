import { AxiosError, AxiosHeaders, type AxiosResponse } from 'axios';
import { inspect } from 'node:util';
import { TransferAuthError } from '../../../lib/errors/transfer-auth.error';
import { RetryingEndpoint } from '../../../lib/token-lifecycle/attempts';
import { instant, systemClock } from '../../../lib/token-lifecycle/clock';
import { networkError, parseAnswer, TIMEOUT, type Call } from '../../../lib/upstream/upstream-answer';
import { StubEndpoint, flush, harness, outcome, type Harness, type StubCall } from '../support/stub-endpoint';
import { FAST_RETRY, STALE_AT, T0, codeOf, useFakeClock } from './support';

// The errors are built as the HTTP client builds them (upstream-answer.ts), from what axios hands over:
// whether one is retried depends on what they carry (status, Retry-After, how the connection failed).

/** An answer with `status` (and `Retry-After`, seconds), turned into the client's error. */
function answered(call: Call, status: number, retryAfter?: string, body = ''): unknown {
  const headers = retryAfter === undefined ? {} : { 'retry-after': retryAfter };
  const response = { status, headers, data: body, statusText: '', config: {} } as unknown as AxiosResponse<unknown>;
  try {
    parseAnswer(call, response, instant(systemClock), systemClock);
  } catch (error) {
    return error;
  }
  throw new Error('no error');
}

/** A request that failed before a whole answer came (code: the socket's), as the client reports it. */
function failed(call: Call, code: string): TransferAuthError {
  return networkError(call, Object.assign(new Error(`connect ${code}`), { code }), new AbortController().signal, 500);
}

/** The answer's headers came, then the socket was destroyed (axios: "stream has been aborted"). */
function cutOff(call: Call): TransferAuthError {
  const config = { headers: new AxiosHeaders() };
  const response = { status: 200, headers: {}, data: '', statusText: 'OK', config };
  const error = new AxiosError('stream has been aborted', AxiosError.ERR_BAD_RESPONSE, config, undefined, response);
  return networkError(call, error, new AbortController().signal, 500);
}

function timedOut(call: Call): TransferAuthError {
  const controller = new AbortController();
  controller.abort(TIMEOUT);
  return networkError(call, new Error('canceled'), controller.signal, 500);
}

const RETRY = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 2_000 };

describe('RetryingEndpoint: the attempts of one renewal', () => {
  let inner: StubEndpoint;
  let endpoint: RetryingEndpoint;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    wrap([]);
  });
  afterEach(() => {
    endpoint.close();
    jest.useRealTimers();
  });

  /** Each call fails with the next error of `errors` (a fresh one each time); past its end, a token. */
  function wrap(errors: (() => unknown)[], retry = RETRY, random: () => number = () => 0.5): void {
    let n = 0;
    inner = new StubEndpoint((call: StubCall) => {
      const next = errors[n++];
      if (next === undefined) call.succeed();
      else call.fail(next());
    });
    endpoint = new RetryingEndpoint(inner, retry, random);
  }

  const times = (): number[] => inner.calls.map((c) => c.atMs - T0);

  describe('Get token: retried within maxAttempts when it failed fast for a passing reason', () => {
    const TRANSIENT: [string, () => unknown][] = [
      ['connection refused', () => failed('Get token', 'ECONNREFUSED')],
      ['connection reset', () => failed('Get token', 'ECONNRESET')],
      ['a broken pipe (a reset seen while sending)', () => failed('Get token', 'EPIPE')],
      ['an answer cut off mid-body', () => cutOff('Get token')],
      ...[500, 502, 503, 504].map((status): [string, () => unknown] => [
        `HTTP ${status}`,
        () => answered('Get token', status),
      ]),
      ['HTTP 503 with Retry-After: 1 (within maxDelayMs)', () => answered('Get token', 503, '1')],
      ['HTTP 429 with Retry-After: 1 (within maxDelayMs)', () => answered('Get token', 429, '1')],
      ['HTTP 503 with an unparsable Retry-After (a plain 5xx)', () => answered('Get token', 503, 'soon')],
    ];

    it.each(TRANSIENT)('%s: maxAttempts attempts, then the last error', async (_name, error) => {
      const made: unknown[] = [];
      const record = (): unknown => {
        const built = error();
        made.push(built);
        return built;
      };
      wrap([record, record, record]);
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(10_000);
      expect(inner.count).toBe(3);
      expect(result.error()).toBe(made[2]); // the last attempt's error, as built
      expect(result.error()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      expect(jest.getTimerCount()).toBe(0);
    });

    it.each(TRANSIENT)('%s twice, then a token: resolved by the third attempt', async (_name, error) => {
      wrap([error, error]);
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(10_000);
      expect(inner.count).toBe(3);
      expect(result.value().body.access_token).toBe([...inner.issued.keys()][0]);
    });

    it('maxAttempts: 1 makes one attempt', async () => {
      wrap([() => answered('Get token', 503)], { ...RETRY, maxAttempts: 1 });
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(10_000);
      expect(inner.count).toBe(1);
      expect(result.error()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503 });
    });
  });

  describe('ends at once (one attempt) on anything else', () => {
    it.each<[string, () => unknown]>([
      ['a timeout (it already took requestTimeoutMs)', () => timedOut('Get token')],
      ['HTTP 408 (a timeout answered by the upstream)', () => answered('Get token', 408)],
      ['HTTP 429 without Retry-After', () => answered('Get token', 429)],
      ['HTTP 429 with a Retry-After longer than maxDelayMs', () => answered('Get token', 429, '3')],
      ['HTTP 503 with a Retry-After longer than maxDelayMs', () => answered('Get token', 503, '3')],
      ['HTTP 400', () => answered('Get token', 400)],
      ['HTTP 401: INVALID_CREDENTIALS', () => answered('Get token', 401)],
      ['HTTP 403: INVALID_CREDENTIALS', () => answered('Get token', 403)],
      ['a bad answer: INVALID_RESPONSE', () => answered('Get token', 200, undefined, '<html>')],
      ['a DNS failure (ENOTFOUND)', () => failed('Get token', 'ENOTFOUND')],
      ['a connect timeout (ETIMEDOUT)', () => failed('Get token', 'ETIMEDOUT')],
      ['SECRET_UNAVAILABLE', () => new TransferAuthError('SECRET_UNAVAILABLE', 'The provider threw.')],
      ['SHUTDOWN', () => new TransferAuthError('SHUTDOWN', 'closed')],
      ['INVALID_CONFIG', () => new TransferAuthError('INVALID_CONFIG', 'refresh: false')],
      ['something else than a TransferAuthError', () => new TypeError('boom')],
    ])('%s', async (_name, error) => {
      const made = error();
      wrap([() => made, () => answered('Get token', 503)]);
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(10_000);
      expect(inner.count).toBe(1);
      expect(result.error()).toBe(made);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('a Retry-After longer than maxDelayMs keeps it on the error, for the failure policy', async () => {
      wrap([() => answered('Get token', 429, '3')]);
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(0);
      expect((result.error() as TransferAuthError).retryAfterMs).toBe(3_000);
    });
  });

  describe('the waits between attempts', () => {
    it('baseDelayMs doubling to maxDelayMs, with jitter between half and all of it', async () => {
      const retry = { maxAttempts: 7, baseDelayMs: 100, maxDelayMs: 1_000 };
      const ceilings = [100, 200, 400, 800, 1_000, 1_000];
      const gaps = async (random: () => number): Promise<number[]> => {
        wrap(
          ceilings.concat(0).map(() => () => answered('Get token', 503)),
          retry,
          random,
        );
        const result = outcome(endpoint.getToken());
        await jest.advanceTimersByTimeAsync(60_000);
        expect(result.error()).toMatchObject({ status: 503 });
        endpoint.close();
        const at = times();
        return at.slice(1).map((t, i) => t - at[i]!);
      };
      expect(await gaps(() => 0)).toEqual(ceilings.map((c) => c / 2));
      expect(await gaps(() => 1)).toEqual(ceilings);
      let seed = 7;
      const random = (): number => (seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647;
      const jittered = await gaps(random);
      jittered.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(Math.floor(ceilings[i]! / 2));
        expect(gap).toBeLessThanOrEqual(ceilings[i]!);
      });
      expect(new Set(jittered.map((g, i) => g / ceilings[i]!)).size).toBeGreaterThan(1); // not a fixed fraction
    });

    it('a Retry-After within maxDelayMs is waited, at least it (here 2 s, where the backoff is 75 ms)', async () => {
      wrap([() => answered('Get token', 503, '2')]);
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(1_999);
      expect([inner.count, result.settled()]).toEqual([1, false]);
      await jest.advanceTimersByTimeAsync(1);
      expect(inner.count).toBe(2);
      expect(result.value().status).toBe(200);
    });

    it('a Retry-After shorter than the backoff: the backoff is waited (never faster than it)', async () => {
      wrap([() => answered('Get token', 429, '0')], { maxAttempts: 2, baseDelayMs: 1_000, maxDelayMs: 2_000 });
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(749); // random 0.5: 750 ms
      expect(inner.count).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(inner.count).toBe(2);
      expect(result.settled()).toBe(true);
    });

    it('use real timers that are unref’d, one at a time', async () => {
      jest.useRealTimers();
      const timers: NodeJS.Timeout[] = [];
      const real = global.setTimeout;
      const spy = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
        const timer = real(fn, ms);
        timers.push(timer);
        return timer;
      }) as typeof setTimeout);
      try {
        wrap([() => answered('Get token', 503)], { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 20 });
        await endpoint.getToken();
        expect(timers).toHaveLength(1);
        expect(timers[0]!.hasRef()).toBe(false);
      } finally {
        spy.mockRestore();
      }
    });
  });

  describe('close()', () => {
    it('during a wait: rejects with the client’s SHUTDOWN at once, leaves no timer, makes no more calls', async () => {
      wrap([() => answered('Get token', 503), () => answered('Get token', 503)]);
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(10);
      expect(jest.getTimerCount()).toBe(1); // the wait before the second attempt
      endpoint.close();
      await jest.advanceTimersByTimeAsync(0);
      expect(result.error()).toMatchObject({
        code: 'SHUTDOWN',
        message: 'Get token cancelled: the application is shutting down.',
      });
      expect(jest.getTimerCount()).toBe(0);
      expect(inner.closed).toBe(true);
      await jest.advanceTimersByTimeAsync(60_000);
      expect(inner.count).toBe(1);
    });

    it('during an attempt: its SHUTDOWN (from the endpoint) is not retried', async () => {
      inner = new StubEndpoint(() => undefined); // pending until close()
      endpoint = new RetryingEndpoint(inner, RETRY, () => 0.5);
      const result = outcome(endpoint.getToken());
      await jest.advanceTimersByTimeAsync(0);
      endpoint.close();
      await jest.advanceTimersByTimeAsync(10_000);
      expect(result.error()).toMatchObject({ code: 'SHUTDOWN' });
      expect(inner.count).toBe(1);
      expect(jest.getTimerCount()).toBe(0);
    });
  });

  describe('Refresh token: never sent twice (the refresh token may be single-use)', () => {
    it.each<[string, () => unknown]>([
      [
        'connection refused (the renewal falls back to Get token, which is retried)',
        () => failed('Refresh token', 'ECONNREFUSED'),
      ],
      ['connection reset', () => failed('Refresh token', 'ECONNRESET')],
      ['an answer cut off mid-body', () => cutOff('Refresh token')],
      ['HTTP 500', () => answered('Refresh token', 500)],
      ['HTTP 503', () => answered('Refresh token', 503)],
      ['HTTP 503 with Retry-After: 1', () => answered('Refresh token', 503, '1')],
    ])('%s: one call', async (_name, error) => {
      const made = error();
      wrap([() => made]);
      const result = outcome(endpoint.refreshToken('REFRESH-1'));
      await jest.advanceTimersByTimeAsync(10_000);
      expect(inner.kinds()).toEqual(['refresh']);
      expect(result.error()).toBe(made);
    });
  });

  it('passes secretChanged() through, and names nothing it holds', async () => {
    wrap([]);
    expect(await endpoint.secretChanged()).toBe(false); // the stub has none
    const asked = jest.fn().mockResolvedValue(true);
    const withProvider = new RetryingEndpoint(
      Object.assign(new StubEndpoint(), { secretChanged: asked }),
      RETRY,
      Math.random,
    );
    expect(await withProvider.secretChanged()).toBe(true);
    expect(asked).toHaveBeenCalledTimes(1);
    expect(inspect(endpoint)).toBe('RetryingEndpoint { maxAttempts: 3 }');
  });

  it('the connection fault is kept out of sight (not enumerable, not in JSON)', () => {
    const error = failed('Get token', 'ECONNREFUSED');
    expect(error.connection).toBe('refused');
    expect(Object.keys(error)).not.toContain('connection');
    expect(JSON.stringify(error)).not.toMatch(/refused"/);
  });
});

describe('TokenLifecycle with retry.maxAttempts', () => {
  let h: Harness;
  useFakeClock(() => h);

  it('a failed refresh is not sent again: the renewal falls back to Get token, whose attempts are retried', async () => {
    h = harness({ retry: FAST_RETRY });
    await h.lifecycle.start();
    let logins = 0;
    h.stub.responder = (call) => {
      if (call.kind === 'refresh') call.fail(answered('Refresh token', 503));
      else if (++logins < 3) call.fail(failed('Get token', 'ECONNRESET'));
      else call.succeed();
    };
    await jest.advanceTimersByTimeAsync(STALE_AT + 225); // waits of 75 and 150 ms (random 0.5)
    expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get', 'get', 'get']);
    expect(h.lifecycle.getStatus().state).toBe('valid');
    expect(await h.lifecycle.getAccessToken()).toBe([...h.stub.issued.keys()][1]);
    expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired', 'token.acquired']);
  });

  it('close() while callers wait between two attempts: they get SHUTDOWN at once, no timer is left', async () => {
    h = harness({ retry: FAST_RETRY, fetchOnStartup: false }, (call) => call.fail(answered('Get token', 503)));
    const callers = Array.from({ length: 5 }, () => outcome(h.lifecycle.getAccessToken()));
    await jest.advanceTimersByTimeAsync(10);
    expect(h.stub.count).toBe(1);
    h.lifecycle.close();
    await flush();
    expect(callers.map((c) => codeOf(c.error()))).toEqual(Array(5).fill('SHUTDOWN'));
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(h.stub.count).toBe(1);
  });
});

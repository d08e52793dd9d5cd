import { inspect } from 'node:util';
import { TransferAuthError } from '../../lib/errors/transfer-auth.error';
import {
  answer,
  drive,
  flush,
  harness,
  outcome,
  upstreamError,
  type Harness,
  type StubCall,
} from './support/stub-endpoint';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** Default stub token: 10 min, `Date` header on a whole second (so the client assumes 1 s more has passed). */
const LIFETIME = 600_000;
/** lifetime - 1 s (Date resolution) - default margin min(60 s, 20%). */
const STALE_AT = LIFETIME - 1_000 - 60_000;
/** lifetime - 1 s - safety window min(5 s, 10%). */
const USABLE_UNTIL = LIFETIME - 1_000 - 5_000;
const FAST_RETRY = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 };

function codeOf(error: unknown): string {
  if (!(error instanceof TransferAuthError)) throw new Error(`not a TransferAuthError: ${String(error)}`);
  return error.code;
}

describe('TokenLifecycle', () => {
  let h: Harness;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    h?.lifecycle.close();
    jest.useRealTimers();
  });

  describe('cache', () => {
    it('answers from the cache without calling the upstream', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      expect(h.stub.count).toBe(1);
      const first = await h.lifecycle.getAccessToken();
      const all = await Promise.all(Array.from({ length: 1000 }, () => h.lifecycle.getAccessToken()));
      expect(new Set(all)).toEqual(new Set([first]));
      expect(h.stub.count).toBe(1);
      // The hot path hands out one already-resolved promise, nothing is allocated per call.
      expect(h.lifecycle.getAccessToken()).toBe(h.lifecycle.getAccessToken());
    });

    it('fetches on first use when fetchOnStartup is false', async () => {
      h = harness({ fetchOnStartup: false });
      await h.lifecycle.start();
      expect(h.stub.count).toBe(0);
      expect(h.lifecycle.getStatus().state).toBe('idle');
      const token = await h.lifecycle.getAccessToken();
      expect(token).toBe([...h.stub.issued.keys()][0]);
      expect(h.stub.kinds()).toEqual(['get']);
    });
  });

  describe('single flight', () => {
    it('1000 concurrent callers share one upstream call', async () => {
      h = harness({}, answer.pending());
      const callers = Array.from({ length: 1000 }, () => h.lifecycle.getAccessToken());
      await flush();
      expect(h.stub.count).toBe(1);
      const issued = h.stub.last().succeed();
      const tokens = await Promise.all(callers);
      expect(tokens.every((t) => t === issued.accessToken)).toBe(true);
      expect(h.stub.count).toBe(1);
    });

    it('1000 concurrent callers share one failure too', async () => {
      h = harness({ retry: FAST_RETRY }, answer.pending());
      const callers = Array.from({ length: 1000 }, () => outcome(h.lifecycle.getAccessToken()));
      await flush();
      h.stub.last().fail(upstreamError('INVALID_CREDENTIALS', 401));
      await flush();
      expect(callers.every((c) => c.settled() && codeOf(c.error()) === 'INVALID_CREDENTIALS')).toBe(true);
      expect(h.stub.count).toBe(1);
    });
  });

  describe('stale token', () => {
    it('is served at once while ONE scheduled renewal runs', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.pending();
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.stub.count).toBe(2);
      const callers = Array.from({ length: 500 }, () => outcome(h.lifecycle.getAccessToken()));
      await flush();
      expect(callers.every((c) => c.settled() && c.value() === old)).toBe(true);
      expect(h.stub.count).toBe(2);
      expect(h.lifecycle.getStatus().state).toBe('stale');
      const renewed = h.stub.last().succeed();
      await flush();
      expect(await h.lifecycle.getAccessToken()).toBe(renewed.accessToken);
      expect(h.lifecycle.getStatus().state).toBe('valid');
    });

    it('found stale by a caller (before the timer) is served at once and starts ONE renewal', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.pending();
      // The event-loop turn of that call ends (the clocks are read once a turn), then the wall clock
      // passes the stale time (a suspend) while the monotonic schedule is not due yet.
      await jest.advanceTimersByTimeAsync(0);
      jest.setSystemTime(T0 + STALE_AT + 1_000);
      const callers = Array.from({ length: 100 }, () => outcome(h.lifecycle.getAccessToken()));
      await flush();
      expect(callers.every((c) => c.settled() && c.value() === old)).toBe(true);
      expect(h.stub.count).toBe(2);
      expect(h.stub.last().kind).toBe('refresh');
    });

    it('is kept while the renewal fails, until it is no longer usable', async () => {
      h = harness({ retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 } });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503);
      await jest.advanceTimersByTimeAsync(STALE_AT);
      const failuresBefore = h.stub.count;
      await jest.advanceTimersByTimeAsync(USABLE_UNTIL - STALE_AT - 1);
      expect(h.stub.count).toBeGreaterThan(failuresBefore);
      expect(await h.lifecycle.getAccessToken()).toBe(old);
      await jest.advanceTimersByTimeAsync(1);
      const late = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(codeOf(late.error())).toBe('UPSTREAM_UNAVAILABLE');
    });
  });

  describe('scheduled refresh', () => {
    it('renews a stale token with nobody calling, via the refresh endpoint and the current refresh token', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      const first = [...h.stub.issued.values()][0]!;
      await jest.advanceTimersByTimeAsync(STALE_AT - 1);
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.kinds()).toEqual(['get', 'refresh']);
      expect(h.stub.last().refreshToken).toBe(first.refreshToken);
      // ... and the renewed token is scheduled in turn.
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'refresh']);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired', 'token.refreshed', 'token.refreshed']);
    });

    it('uses Get token once the refresh token is no longer usable', async () => {
      h = harness({ retry: FAST_RETRY });
      h.stub.defaults = { refreshLifetimeMs: 300_000 }; // expires before the access token goes stale
      await h.lifecycle.start();
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.stub.kinds()).toEqual(['get', 'get']);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired', 'token.acquired']);
    });

    it('never uses the refresh endpoint with refresh: false', async () => {
      h = harness({ refresh: false, retry: FAST_RETRY });
      await h.lifecycle.start();
      await jest.advanceTimersByTimeAsync(STALE_AT * 3);
      expect(h.stub.kinds()).toEqual(['get', 'get', 'get', 'get']);
      await h.lifecycle.forceRefresh();
      expect(h.stub.last().kind).toBe('get');
    });
  });

  describe('refresh fallback', () => {
    async function staleWithRefresh(onRefresh: (call: StubCall) => void): Promise<string> {
      h = harness({ retry: FAST_RETRY }, (call) => (call.kind === 'refresh' ? onRefresh(call) : call.succeed()));
      await h.lifecycle.start();
      await jest.advanceTimersByTimeAsync(STALE_AT);
      await flush();
      return h.lifecycle.getAccessToken();
    }

    it('falls back to Get token in the same renewal when the refresh token is rejected (401)', async () => {
      const token = await staleWithRefresh((call) => call.fail(upstreamError('INVALID_CREDENTIALS', 401)));
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
      expect(token).toBe([...h.stub.issued.keys()][1]);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired', 'token.acquired']);
      expect(h.hooks.logs.some((l) => l.level === 'warn' && /falling back to Get token/.test(l.message))).toBe(true);
      expect(h.lifecycle.getStatus().lastError).toBeUndefined();
    });

    it('falls back to Get token when the refresh endpoint answers garbage', async () => {
      const token = await staleWithRefresh((call) => call.fail(upstreamError('INVALID_RESPONSE', 200)));
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
      expect(token).toBe([...h.stub.issued.keys()][1]);
    });

    it.each([
      ['an access token expired on arrival', { accessExpireAt: '2020-01-01T00:00:00.000000Z' }],
      ['an impossible calendar date', { accessExpireAt: '2025-02-30T00:00:00.000000Z' }],
    ])('falls back to Get token when the refresh endpoint answers %s', async (_what, spec) => {
      const token = await staleWithRefresh((call) => void call.succeed(spec));
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
      expect(token).toBe([...h.stub.issued.keys()][2]);
      expect(h.lifecycle.getStatus()).toMatchObject({ state: 'valid' });
      expect(h.lifecycle.getStatus().lastError).toBeUndefined();
    });

    it('falls back to Get token in the same attempt after a transient refresh failure: the refresh token is spent', async () => {
      const token = await staleWithRefresh((call) => call.fail(upstreamError('UPSTREAM_UNAVAILABLE', 503)));
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
      expect(token).toBe([...h.stub.issued.keys()][1]);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired', 'token.acquired']);
    });

    it('never uses a refresh token twice, even when its answer was lost', async () => {
      const token = await staleWithRefresh((call) => call.fail(upstreamError('UPSTREAM_UNAVAILABLE', 504)));
      const used = h.stub.calls.filter((c) => c.kind === 'refresh').map((c) => c.refreshToken);
      await jest.advanceTimersByTimeAsync(STALE_AT);
      const all = h.stub.calls.filter((c) => c.kind === 'refresh').map((c) => c.refreshToken);
      expect(new Set(all).size).toBe(all.length);
      expect(all.slice(0, used.length)).toEqual(used);
      expect(await h.lifecycle.getAccessToken()).not.toBe(token);
    });
  });

  describe('retries (finding 3: a busy app makes no more calls in an outage than an idle one)', () => {
    it('one attempt per renewal; the background retries with growing backoff; callers in between fail at once', async () => {
      // random 0.5: delay = 3/4 of min(maxDelayMs, baseDelayMs * 2^step) -> 75 ms, then 150 ms.
      h = harness({ retry: FAST_RETRY }, answer.fail('UPSTREAM_UNAVAILABLE', 503));
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(h.stub.count).toBe(1);
      expect(codeOf(caller.error())).toBe('UPSTREAM_UNAVAILABLE');
      expect((caller.error() as TransferAuthError).status).toBe(503);
      const busy = await Promise.allSettled(Array.from({ length: 100 }, () => h.lifecycle.getAccessToken()));
      expect(busy.every((r) => r.status === 'rejected' && codeOf(r.reason) === 'UPSTREAM_UNAVAILABLE')).toBe(true);
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(74);
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2);
      await jest.advanceTimersByTimeAsync(149);
      expect(h.stub.count).toBe(2);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(3);
    });

    it('makes exactly as many upstream calls with 20 busy callers as with none over 6 s of 503s', async () => {
      async function run(callers: number): Promise<number> {
        const one = harness({ retry: FAST_RETRY }, answer.fail('UPSTREAM_UNAVAILABLE', 503));
        await one.lifecycle.start();
        for (let t = 0; t < 6_000; t += 10) {
          for (let i = 0; i < callers; i++) void one.lifecycle.getAccessToken().catch(() => undefined);
          await jest.advanceTimersByTimeAsync(10);
        }
        one.lifecycle.close();
        return one.stub.count;
      }
      const idle = await run(0);
      const busy = await run(20);
      expect(idle).toBeGreaterThan(5);
      expect(busy).toBe(idle);
    });

    it('retry.maxAttempts no longer makes a caller wait through retries', async () => {
      h = harness({ retry: { ...FAST_RETRY, maxAttempts: 5 } }, answer.fail('UPSTREAM_UNAVAILABLE', 502));
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(codeOf(caller.error())).toBe('UPSTREAM_UNAVAILABLE');
      expect(h.stub.count).toBe(1);
    });

    it.each([
      ['INVALID_CREDENTIALS', 401],
      ['INVALID_CREDENTIALS', 403],
      ['INVALID_RESPONSE', 400],
      ['INVALID_CONFIG', undefined],
    ] as const)('never retries %s at once', async (code, status) => {
      h = harness({ retry: { ...FAST_RETRY, maxAttempts: 5 } }, answer.fail(code, status));
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(codeOf(caller.error())).toBe(code);
      expect(h.stub.count).toBe(1);
    });

    it('turns an unexpected endpoint error into UPSTREAM_UNAVAILABLE without its message', async () => {
      h = harness({ retry: { ...FAST_RETRY, maxAttempts: 1 } }, (call) =>
        call.fail(new TypeError('boom agent-secret-xyz')),
      );
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      const error = caller.error() as TransferAuthError;
      expect(error.code).toBe('UPSTREAM_UNAVAILABLE');
      expect(error.message).toContain('TypeError');
      expect(error.message).not.toContain('agent-secret-xyz');
    });
  });

  describe('Retry-After', () => {
    it('a short Retry-After: the caller gets the 429 at once; the background retries when asked', async () => {
      h = harness({ retry: FAST_RETRY }, answer.pending());
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      h.stub.last().fail(upstreamError('UPSTREAM_UNAVAILABLE', 429, 800));
      h.stub.responder = answer.ok();
      await flush();
      expect(codeOf(caller.error())).toBe('UPSTREAM_UNAVAILABLE');
      await jest.advanceTimersByTimeAsync(798);
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(2);
      expect(h.stub.count).toBe(2);
      expect(await h.lifecycle.getAccessToken()).toBe([...h.stub.issued.keys()][0]);
    });

    it('longer than maxDelayMs: callers fail at once with no call; the background waits as asked', async () => {
      h = harness({ retry: FAST_RETRY }, answer.fail('UPSTREAM_UNAVAILABLE', 429, 30_000));
      const first = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(codeOf(first.error())).toBe('UPSTREAM_UNAVAILABLE');
      expect(h.stub.count).toBe(1);

      h.stub.responder = answer.ok();
      const second = outcome(h.lifecycle.getAccessToken());
      const forced = outcome(h.lifecycle.forceRefresh());
      await flush();
      expect(codeOf(second.error())).toBe('UPSTREAM_UNAVAILABLE');
      expect((second.error() as Error).message).toMatch(/Retry-After/);
      expect(codeOf(forced.error())).toBe('UPSTREAM_UNAVAILABLE');
      expect(h.stub.count).toBe(1);

      await jest.advanceTimersByTimeAsync(29_999);
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2);
      expect(h.lifecycle.getStatus().state).toBe('valid');
      expect(await h.lifecycle.getAccessToken()).toBe([...h.stub.issued.keys()][0]);
    });

    it('a background renewal waits out a long Retry-After while callers keep the cached token', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503, 20_000);
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.stub.count).toBe(2);
      h.stub.responder = answer.ok();
      await jest.advanceTimersByTimeAsync(19_999);
      expect(await h.lifecycle.getAccessToken()).toBe(old);
      expect(h.stub.count).toBe(2);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(3);
      expect(await h.lifecycle.getAccessToken()).not.toBe(old);
    });
  });

  describe('background renewal', () => {
    it('retries forever, backoff growing from baseDelayMs and capped at maxDelayMs', async () => {
      // random 1: the delay is the full ceiling, min(maxDelayMs, baseDelayMs * 2^n).
      h = harness({ retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 } }, answer.ok(), () => 1);
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503);
      await jest.advanceTimersByTimeAsync(STALE_AT);
      await jest.advanceTimersByTimeAsync(40_000);
      const times = h.stub.calls.slice(1).map((c) => c.atMs);
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      // The first attempt is the refresh, then Get token at once; then Get token alone, spaced.
      expect(h.stub.kinds().slice(1, 4)).toEqual(['refresh', 'get', 'get']);
      expect(gaps.slice(0, 7)).toEqual([0, 100, 200, 400, 800, 1_000, 1_000]);
      expect(gaps.length).toBeGreaterThan(35);
      expect(gaps.slice(5).every((g) => g === 1_000)).toBe(true);
      expect(await h.lifecycle.getAccessToken()).toBe(old);
    });

    it('with jitter, every backoff stays within [ceiling / 2, ceiling]', async () => {
      let seed = 42;
      const random = (): number => (seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647;
      h = harness(
        { retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 } },
        answer.fail('UPSTREAM_UNAVAILABLE'),
        random,
      );
      await h.lifecycle.start();
      await jest.advanceTimersByTimeAsync(60_000);
      const gaps = h.stub.calls.slice(1).map((c, i) => c.atMs - h.stub.calls[i]!.atMs);
      gaps.forEach((gap, i) => {
        const ceiling = Math.min(1_000, 100 * 2 ** i);
        expect(gap).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(gap).toBeLessThanOrEqual(ceiling + 1);
      });
      expect(gaps.length).toBeGreaterThan(50);
    });

    it('a caller with no usable token during a pending backoff gets the last error at once, with no call', async () => {
      h = harness(
        { retry: { maxAttempts: 1, baseDelayMs: 10_000, maxDelayMs: 60_000 } },
        answer.fail('UPSTREAM_UNAVAILABLE', 503),
      );
      await h.lifecycle.start();
      expect(h.stub.count).toBe(1);
      expect(jest.getTimerCount()).toBe(1); // the backoff
      h.stub.responder = answer.ok();
      await jest.advanceTimersByTimeAsync(1_000);
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503 });
      expect(h.stub.count).toBe(1);
      // forceRefresh skips the backoff.
      expect(await h.lifecycle.forceRefresh()).toBe([...h.stub.issued.keys()][0]);
      expect(h.stub.count).toBe(2);
    });

    it('a caller with no usable token joins the attempt in flight and gets its failure', async () => {
      h = harness({ retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 1_000 } }, answer.pending());
      void h.lifecycle.start();
      await flush();
      const caller = outcome(h.lifecycle.getAccessToken());
      h.stub.last().fail(upstreamError('UPSTREAM_UNAVAILABLE', 500));
      await flush();
      expect(codeOf(caller.error())).toBe('UPSTREAM_UNAVAILABLE');
      expect(h.stub.count).toBe(1);
    });
  });

  describe('rejected credentials', () => {
    it('are not retried in the background; a caller with no usable token still tries at once', async () => {
      h = harness({ retry: FAST_RETRY }, answer.fail('INVALID_CREDENTIALS', 401));
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(h.stub.count).toBe(1);
      expect(jest.getTimerCount()).toBe(0);
      await jest.advanceTimersByTimeAsync(3_600_000);
      expect(h.stub.count).toBe(1);
      expect(h.lifecycle.getStatus()).toMatchObject({ state: 'failed', lastError: { code: 'INVALID_CREDENTIALS' } });
      expect(h.hooks.logs.filter((l) => l.level === 'error')).toHaveLength(1);

      h.stub.responder = answer.ok();
      expect(await h.lifecycle.getAccessToken()).toBe([...h.stub.issued.keys()][0]);
      expect(h.stub.count).toBe(2);
      // Recovered: the schedule runs again.
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.stub.count).toBe(3);
    });

    it('during a background renewal: the cached token is served while usable, then a caller tries at once', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.fail('INVALID_CREDENTIALS', 401); // the refresh, then its Get token fallback
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
      await jest.advanceTimersByTimeAsync(USABLE_UNTIL - STALE_AT - 1);
      expect(await h.lifecycle.getAccessToken()).toBe(old);
      expect(h.stub.count).toBe(3);
      await jest.advanceTimersByTimeAsync(1);
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(h.stub.count).toBe(4);
    });
    it('after a rejected forceRefresh, the fresh token is served to its usable end with no background login', async () => {
      h = harness({ retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 1_000 } });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      // The refresh fails transiently (the refresh token is kept), then Get token refuses the credentials.
      h.stub.responder = (call) =>
        call.kind === 'refresh'
          ? call.fail(upstreamError('UPSTREAM_UNAVAILABLE', 503))
          : call.fail(upstreamError('INVALID_CREDENTIALS', 401));
      const forced = outcome(h.lifecycle.forceRefresh());
      await jest.advanceTimersByTimeAsync(1_000);
      expect(codeOf(forced.error())).toBe('INVALID_CREDENTIALS');
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
      expect(await h.lifecycle.getAccessToken()).toBe(old);

      h.stub.responder = answer.ok();
      await jest.advanceTimersByTimeAsync(USABLE_UNTIL - 1_001);
      expect(await h.lifecycle.getAccessToken()).toBe(old);
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']); // the refresh token was spent; no login
      await jest.advanceTimersByTimeAsync(1);
      expect(await h.lifecycle.getAccessToken()).not.toBe(old);
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get', 'get']);
      expect(h.lifecycle.getStatus().lastError).toBeUndefined();
    });
  });

  describe('failure logging', () => {
    it('logs the first failure, then at most one line a minute, then the recovery', async () => {
      h = harness(
        { retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 } },
        answer.fail('UPSTREAM_UNAVAILABLE', 503),
      );
      await h.lifecycle.start();
      await jest.advanceTimersByTimeAsync(5 * 60_000 + 500);
      const failures = h.stub.count;
      expect(failures).toBeGreaterThan(200);
      const warnings = h.hooks.logs.filter((l) => l.level === 'warn');
      expect(warnings[0]).toMatchObject({ atMs: T0 });
      expect(warnings[0]!.message).toMatch(/UPSTREAM_UNAVAILABLE/);
      expect(warnings.length).toBeGreaterThanOrEqual(5);
      expect(warnings.length).toBeLessThanOrEqual(6);
      warnings.slice(1).forEach((w, i) => expect(w.atMs - warnings[i]!.atMs).toBeGreaterThanOrEqual(60_000));
      expect(warnings[1]!.message).toMatch(/still failing/);

      h.stub.responder = answer.ok();
      await jest.advanceTimersByTimeAsync(1_000);
      const after = h.hooks.logs.slice(warnings.length);
      expect(after).toHaveLength(1);
      expect(after[0]).toMatchObject({ level: 'log' });
      expect(after[0]!.message).toMatch(/recovered/);

      // A new outage is reported at once again.
      h.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503);
      await expect(h.lifecycle.forceRefresh()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      expect(h.hooks.logs.at(-1)).toMatchObject({ level: 'warn' });
      expect(h.hooks.logs.at(-1)!.message).not.toMatch(/still failing/);
    });

    it('emits token.failed with the code, marked background or not', async () => {
      h = harness(
        { retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 } },
        answer.fail('UPSTREAM_UNAVAILABLE', 503),
      );
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      await jest.advanceTimersByTimeAsync(200);
      const failed = h.hooks.events.filter((e) => e.type === 'token.failed');
      expect(failed[0]).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503, background: false });
      expect(failed[1]).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', background: true });
    });
  });

  describe('forceRefresh', () => {
    it('coalesces concurrent calls into one upstream call', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.pending();
      const forced = Array.from({ length: 10 }, () => h.lifecycle.forceRefresh());
      await flush();
      expect(h.stub.count).toBe(2);
      const issued = h.stub.last().succeed();
      const tokens = await Promise.all(forced);
      expect(new Set(tokens)).toEqual(new Set([issued.accessToken]));
      expect(issued.accessToken).not.toBe(old);
      expect(await h.lifecycle.getAccessToken()).toBe(issued.accessToken);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired', 'token.refreshed']);
    });

    it('a failed forceRefresh keeps the fresh token and its schedule', async () => {
      h = harness({ retry: { ...FAST_RETRY, maxAttempts: 1 } });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.fail('UPSTREAM_UNAVAILABLE', 503);
      await expect(h.lifecycle.forceRefresh()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']); // the refresh, then Get token at once
      expect(await h.lifecycle.getAccessToken()).toBe(old);
      h.stub.responder = answer.ok();
      await jest.advanceTimersByTimeAsync(STALE_AT - 1);
      expect(h.stub.count).toBe(3);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(4);
    });
  });

  describe('invalidate', () => {
    it('ignores a token that is not the cached one', async () => {
      h = harness();
      await h.lifecycle.start();
      const token = await h.lifecycle.getAccessToken();
      h.lifecycle.invalidate('ACCESS-999-other');
      await flush();
      expect(await h.lifecycle.getAccessToken()).toBe(token);
      expect(h.stub.count).toBe(1);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired']);
    });

    it.each([
      ['the matching token', true],
      ['no argument', false],
    ])('with %s drops the token, emits token.invalidated and renews', async (_what, pass) => {
      h = harness();
      await h.lifecycle.start();
      const token = await h.lifecycle.getAccessToken();
      h.stub.responder = answer.pending();
      h.lifecycle.invalidate(pass ? token : undefined);
      expect(h.hooks.events.at(-1)).toEqual({ type: 'token.invalidated', at: new Date(T0) });
      await flush();
      expect(h.stub.count).toBe(2);
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(caller.settled()).toBe(false); // the dropped token is never handed out again
      const issued = h.stub.last().succeed();
      await flush();
      expect(caller.value()).toBe(issued.accessToken);
      expect(h.stub.count).toBe(2);
    });

    it('does nothing once closed', async () => {
      h = harness();
      await h.lifecycle.start();
      const token = await h.lifecycle.getAccessToken();
      h.lifecycle.close();
      h.lifecycle.invalidate(token);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired']);
      expect(h.stub.count).toBe(1);
    });
  });

  describe('no token in events, logs or status', () => {
    it('never shows a token, a refresh token or the secret', async () => {
      h = harness({ retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 1_000 } }, (call) => {
        const n = h.stub.count;
        if (call.kind === 'refresh' && n % 3 === 0) call.fail(upstreamError('INVALID_CREDENTIALS', 401));
        else if (n % 7 === 0 || n % 7 === 1) call.fail(upstreamError('UPSTREAM_UNAVAILABLE', 503));
        else call.succeed({ lifetimeMs: 30_000 });
      });
      await drive(h.lifecycle.start());
      for (let i = 0; i < 20; i++) {
        await jest.advanceTimersByTimeAsync(7_000);
        const token = await drive(h.lifecycle.getAccessToken()).catch(() => undefined);
        if (i % 4 === 0) h.lifecycle.invalidate(token);
        if (i % 7 === 0) await drive(h.lifecycle.forceRefresh()).catch(() => undefined);
      }
      const types = new Set(h.hooks.events.map((e) => e.type));
      expect(types).toEqual(new Set(['token.acquired', 'token.refreshed', 'token.failed', 'token.invalidated']));
      const printed = [
        JSON.stringify(h.hooks.events),
        inspect(h.hooks.events, { depth: 10, showHidden: true }),
        JSON.stringify(h.hooks.logs),
        JSON.stringify(h.lifecycle.getStatus()),
        inspect(h.lifecycle.getStatus(), { depth: 10, showHidden: true }),
      ].join('\n');
      const secrets = [...h.stub.secrets(), 'agent-secret-xyz'];
      expect(secrets.length).toBeGreaterThan(10);
      for (const secret of secrets) expect(printed).not.toContain(secret);
    });
  });

  describe('getStatus', () => {
    it('walks idle -> acquiring -> valid -> stale -> valid -> closed', async () => {
      h = harness({ retry: FAST_RETRY }, answer.pending());
      expect(h.lifecycle.getStatus()).toEqual({
        state: 'idle',
        accessExpiresAt: null,
        refreshExpiresAt: null,
        lastRefreshAt: null,
      });
      const started = h.lifecycle.start();
      await flush();
      expect(h.lifecycle.getStatus().state).toBe('acquiring');
      h.stub.last().succeed();
      await started;
      expect(h.lifecycle.getStatus()).toEqual({
        state: 'valid',
        accessExpiresAt: new Date(T0 + LIFETIME),
        refreshExpiresAt: new Date(T0 + 86_400_000),
        lastRefreshAt: new Date(T0),
      });
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.lifecycle.getStatus().state).toBe('stale');
      h.stub.last().succeed();
      await flush();
      expect(h.lifecycle.getStatus()).toMatchObject({ state: 'valid', lastRefreshAt: new Date(T0 + STALE_AT) });
      h.lifecycle.close();
      expect(h.lifecycle.getStatus().state).toBe('closed');
    });

    it('is failed, with lastError, when no token could be obtained; lastError clears on recovery', async () => {
      h = harness(
        { retry: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 } },
        answer.fail('UPSTREAM_UNAVAILABLE', 503),
      );
      await h.lifecycle.start();
      const status = h.lifecycle.getStatus();
      expect(status).toMatchObject({ state: 'failed', accessExpiresAt: null });
      expect(status.lastError).toEqual({
        code: 'UPSTREAM_UNAVAILABLE',
        status: 503,
        message: expect.any(String),
        at: new Date(T0),
      });
      h.stub.responder = answer.ok();
      await jest.advanceTimersByTimeAsync(1_000);
      expect(h.lifecycle.getStatus().state).toBe('valid');
      expect(h.lifecycle.getStatus().lastError).toBeUndefined();
    });

    it('is acquiring after invalidate while the new token is on its way', async () => {
      h = harness();
      await h.lifecycle.start();
      h.stub.responder = answer.pending();
      h.lifecycle.invalidate();
      expect(h.lifecycle.getStatus().state).toBe('acquiring');
    });
  });

  describe('close', () => {
    it('clears every timer', async () => {
      h = harness();
      await h.lifecycle.start();
      expect(jest.getTimerCount()).toBe(1);
      h.lifecycle.close();
      expect(jest.getTimerCount()).toBe(0);
    });

    it('clears a pending background backoff', async () => {
      h = harness({ retry: { ...FAST_RETRY, maxAttempts: 1 } }, answer.fail('UPSTREAM_UNAVAILABLE'));
      await h.lifecycle.start();
      expect(jest.getTimerCount()).toBe(1);
      h.lifecycle.close();
      expect(jest.getTimerCount()).toBe(0);
    });

    it('settles callers waiting on an upstream call with SHUTDOWN', async () => {
      h = harness({}, answer.pending());
      const callers = Array.from({ length: 5 }, () => outcome(h.lifecycle.getAccessToken()));
      const forced = outcome(h.lifecycle.forceRefresh());
      await flush();
      h.lifecycle.close();
      await flush();
      for (const c of [...callers, forced]) expect(codeOf(c.error())).toBe('SHUTDOWN');
      expect(jest.getTimerCount()).toBe(0);
      expect(h.stub.count).toBe(1);
    });

    it('during a pending backoff: callers get SHUTDOWN, the timer goes, no call follows', async () => {
      h = harness(
        { retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 5_000 } },
        answer.fail('UPSTREAM_UNAVAILABLE'),
      );
      await h.lifecycle.start();
      expect(jest.getTimerCount()).toBe(1); // the backoff
      h.lifecycle.close();
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
      expect(jest.getTimerCount()).toBe(0);
      await jest.advanceTimersByTimeAsync(60_000);
      expect(h.stub.count).toBe(1);
    });

    it('an answer arriving after close is dropped and the caller gets SHUTDOWN', async () => {
      h = harness({}, answer.pending());
      h.stub.abortOnClose = false;
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      h.lifecycle.close();
      h.stub.last().succeed();
      await flush();
      expect(codeOf(caller.error())).toBe('SHUTDOWN');
      expect(h.lifecycle.getStatus()).toMatchObject({ state: 'closed', accessExpiresAt: null });
      expect(h.hooks.events).toEqual([]);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('nothing calls the upstream after close', async () => {
      h = harness({ retry: { ...FAST_RETRY, maxAttempts: 1 } }, answer.fail('UPSTREAM_UNAVAILABLE'));
      await h.lifecycle.start();
      const calls = h.stub.count;
      h.lifecycle.close();
      await jest.advanceTimersByTimeAsync(90 * 86_400_000);
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
      await expect(h.lifecycle.forceRefresh()).rejects.toMatchObject({ code: 'SHUTDOWN' });
      await h.lifecycle.start();
      expect(h.stub.count).toBe(calls);
      expect(jest.getTimerCount()).toBe(0);
    });
  });

  describe('start', () => {
    it.each([
      ['INVALID_CREDENTIALS', 401],
      ['INVALID_CONFIG', undefined],
    ] as const)('%s fails start and closes the lifecycle', async (code, status) => {
      h = harness({ retry: FAST_RETRY }, answer.fail(code, status));
      await expect(h.lifecycle.start()).rejects.toMatchObject({ code });
      expect(h.stub.count).toBe(1);
      expect(h.lifecycle.getStatus().state).toBe('closed');
      expect(jest.getTimerCount()).toBe(0);
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
      expect(h.stub.count).toBe(1);
    });

    // Start makes one attempt, not a renewal's maxAttempts: a hanging upstream must not hold the boot.
    it.each([
      ['UPSTREAM_UNAVAILABLE', 503, 1],
      ['INVALID_RESPONSE', 200, 1],
    ] as const)(
      '%s does not fail start (one attempt); callers get it until the upstream recovers',
      async (code, status, calls) => {
        h = harness({ retry: FAST_RETRY }, answer.fail(code, status));
        const started = outcome(h.lifecycle.start());
        for (let i = 0; i < 100 && !started.settled(); i++) await jest.advanceTimersByTimeAsync(5);
        expect(started.value()).toBeUndefined();
        expect(h.stub.count).toBe(calls);
        expect(h.lifecycle.getStatus()).toMatchObject({ state: 'failed', lastError: { code } });
        expect(h.hooks.logs[0]).toMatchObject({ level: 'warn' });
        const caller = outcome(h.lifecycle.getAccessToken());
        await jest.advanceTimersByTimeAsync(400);
        expect(codeOf(caller.error())).toBe(code);

        h.stub.responder = answer.ok();
        await jest.advanceTimersByTimeAsync(FAST_RETRY.maxDelayMs);
        expect(h.lifecycle.getStatus().state).toBe('valid');
        expect(await h.lifecycle.getAccessToken()).toBe([...h.stub.issued.keys()][0]);
      },
    );
  });
});

import { answer, flush, harness, outcome, upstreamError, type Harness } from '../support/stub-endpoint';
import { T0, STALE_AT, USABLE_UNTIL, FAST_RETRY, codeOf, useFakeClock } from './support';

describe('TokenLifecycle: cache, single flight, schedule', () => {
  let h: Harness;
  useFakeClock(() => h);

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
});

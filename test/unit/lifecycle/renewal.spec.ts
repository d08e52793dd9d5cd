import { answer, flush, harness, outcome, upstreamError, type StubCall, type Harness } from '../support/stub-endpoint';
import { STALE_AT, FAST_RETRY, codeOf, useFakeClock } from './support';

describe('TokenLifecycle: renewal (refresh, fallback, forceRefresh, start)', () => {
  let h: Harness;
  useFakeClock(() => h);

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

    // Start makes one renewal: its maxAttempts attempts for a fast transient failure (a 503), one for a
    // bad answer. A hanging upstream is a timeout, which ends the renewal at once: it never holds the boot.
    it.each([
      ['UPSTREAM_UNAVAILABLE', 503, FAST_RETRY.maxAttempts],
      ['INVALID_RESPONSE', 200, 1],
    ] as const)(
      '%s does not fail start (one renewal); callers get it until the upstream recovers',
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

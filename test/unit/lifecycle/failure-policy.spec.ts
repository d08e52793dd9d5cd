import type { TransferAuthError } from '../../../lib/errors/transfer-auth.error';
import {
  answer,
  drive,
  flush,
  harness,
  outcome,
  upstreamError,
  type Harness,
  type Responder,
} from '../support/stub-endpoint';
import { T0, STALE_AT, USABLE_UNTIL, FAST_RETRY, codeOf, useFakeClock } from './support';

/** The refresh answers 503, then Get token refuses the credentials. */
const refreshDownThenLoginRefused: Responder = (call) =>
  call.kind === 'refresh'
    ? call.fail(upstreamError('UPSTREAM_UNAVAILABLE', 503))
    : call.fail(upstreamError('INVALID_CREDENTIALS', 401));

describe('TokenLifecycle: failure policy', () => {
  let h: Harness;
  useFakeClock(() => h);

  describe('retries (finding 3: a busy app makes no more calls in an outage than an idle one)', () => {
    it('one renewal makes maxAttempts attempts; the background retries with growing backoff; callers in between fail at once', async () => {
      // random 0.5: each wait is 3/4 of min(maxDelayMs, baseDelayMs * 2^step): 75 ms, then 150 ms, both
      // between the attempts of a renewal and between renewals.
      h = harness({ retry: FAST_RETRY }, answer.fail('UPSTREAM_UNAVAILABLE', 503));
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(74);
      expect([h.stub.count, caller.settled()]).toEqual([1, false]); // the caller waits for the renewal
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2);
      await jest.advanceTimersByTimeAsync(149);
      expect([h.stub.count, caller.settled()]).toEqual([2, false]);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(3); // the last attempt: its error is the renewal's
      expect(codeOf(caller.error())).toBe('UPSTREAM_UNAVAILABLE');
      expect((caller.error() as TransferAuthError).status).toBe(503);
      expect(h.stub.calls.map((c) => c.atMs - T0)).toEqual([0, 75, 225]);
      const busy = await Promise.allSettled(Array.from({ length: 100 }, () => h.lifecycle.getAccessToken()));
      expect(busy.every((r) => r.status === 'rejected' && codeOf(r.reason) === 'UPSTREAM_UNAVAILABLE')).toBe(true);
      expect(h.stub.count).toBe(3);
      // The failure policy's backoff (75 ms), then the next renewal and its 3 attempts.
      await jest.advanceTimersByTimeAsync(74);
      expect(h.stub.count).toBe(3);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(4);
      await jest.advanceTimersByTimeAsync(225);
      expect(h.stub.calls.map((c) => c.atMs - T0)).toEqual([0, 75, 225, 300, 375, 525]);
      // The second failed renewal doubles the policy's backoff (150 ms); the attempts inside start over.
      await jest.advanceTimersByTimeAsync(149);
      expect(h.stub.count).toBe(6);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(7);
    });

    it('makes exactly as many upstream calls with 20 busy callers as with none over 6 s of 503s', async () => {
      async function run(callers: number): Promise<number> {
        const one = harness({ retry: FAST_RETRY }, answer.fail('UPSTREAM_UNAVAILABLE', 503));
        void one.lifecycle.start(); // not awaited: its attempts wait on the fake timers advanced below
        for (let t = 0; t < 6_000; t += 10) {
          for (let i = 0; i < callers; i++) void one.lifecycle.getAccessToken().catch(() => undefined);
          await jest.advanceTimersByTimeAsync(10);
        }
        one.lifecycle.close();
        return one.stub.count;
      }
      const idle = await run(0);
      const busy = await run(20);
      expect(idle).toBeGreaterThan(5 * FAST_RETRY.maxAttempts);
      expect(busy).toBe(idle);
    });

    it('a caller waits through the attempts of one renewal (retry.maxAttempts), never longer', async () => {
      h = harness({ retry: { ...FAST_RETRY, maxAttempts: 5 } }, answer.fail('UPSTREAM_UNAVAILABLE', 502));
      const caller = outcome(h.lifecycle.getAccessToken());
      // Waits of 75, 150, 300, 600 ms (random 0.5): the fifth attempt is made at 1,125 ms.
      await jest.advanceTimersByTimeAsync(1_124);
      expect([h.stub.count, caller.settled()]).toEqual([4, false]);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(5);
      expect(codeOf(caller.error())).toBe('UPSTREAM_UNAVAILABLE');
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
    it('a Retry-After within maxDelayMs is waited inside the renewal: the caller gets the token', async () => {
      h = harness({ retry: FAST_RETRY }, answer.pending());
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      h.stub.last().fail(upstreamError('UPSTREAM_UNAVAILABLE', 429, 800));
      h.stub.responder = answer.ok();
      await jest.advanceTimersByTimeAsync(799); // 800 ms asked, more than the 75 ms backoff
      expect([h.stub.count, caller.settled()]).toEqual([1, false]);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2);
      expect(caller.value()).toBe([...h.stub.issued.keys()][0]);
      expect(h.hooks.events.map((e) => e.type)).toEqual(['token.acquired']);
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

    it('a caller with no usable token joins the renewal in flight and gets its failure after its last attempt', async () => {
      h = harness({ retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 1_000 } }, answer.pending());
      void h.lifecycle.start();
      await flush();
      const caller = outcome(h.lifecycle.getAccessToken());
      h.stub.last().fail(upstreamError('UPSTREAM_UNAVAILABLE', 500));
      await jest.advanceTimersByTimeAsync(75); // the wait before the second attempt (random 0.5)
      expect([h.stub.count, caller.settled()]).toEqual([2, false]);
      h.stub.last().fail(upstreamError('UPSTREAM_UNAVAILABLE', 502));
      await flush();
      expect(caller.error()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 502 });
      expect(h.stub.count).toBe(2);
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
      h.stub.responder = refreshDownThenLoginRefused;
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

  describe('rejected credentials (finding 4): a cool-down doubling from 1 s to 5 min, logged once a minute', () => {
    it('a caller every 100 ms for 20 s: 5 logins (0, 1, 3, 7, 15 s) and one error line', async () => {
      h = harness({ fetchOnStartup: false }, answer.fail('INVALID_CREDENTIALS', 401));
      const codes = new Set<string>();
      for (let t = 0; t < 20_000; t += 100) {
        await h.lifecycle.getAccessToken().catch((error: unknown) => codes.add(codeOf(error)));
        await jest.advanceTimersByTimeAsync(100);
      }
      expect([...codes]).toEqual(['INVALID_CREDENTIALS']);
      expect(h.stub.calls.map((c) => c.atMs - T0)).toEqual([0, 1_000, 3_000, 7_000, 15_000]);
      expect(h.hooks.logs.filter((l) => l.level === 'error')).toHaveLength(1);
    });

    it('over an hour of callers: about 20 logins and at most one error line a minute', async () => {
      h = harness({ fetchOnStartup: false }, answer.fail('INVALID_CREDENTIALS', 403));
      for (let t = 0; t < 3_600_000; t += 1_000) {
        await h.lifecycle.getAccessToken().catch(() => undefined);
        await jest.advanceTimersByTimeAsync(1_000);
      }
      const gaps = h.stub.calls.slice(1).map((c, i) => c.atMs - h.stub.calls[i]!.atMs);
      expect(gaps.slice(0, 9)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000]);
      expect(gaps.slice(9).every((g) => g === 300_000)).toBe(true);
      expect(h.stub.count).toBeLessThanOrEqual(21);
      const errors = h.hooks.logs.filter((l) => l.level === 'error');
      expect(errors.length).toBeLessThanOrEqual(h.stub.count);
      const logGaps = errors.slice(1).map((l, i) => l.atMs - errors[i]!.atMs);
      expect(logGaps.every((g) => g >= 60_000)).toBe(true);
    });

    it('a 503 on the background refresh, then rejected credentials: no background login after that', async () => {
      h = harness({ retry: FAST_RETRY });
      await h.lifecycle.start();
      const old = await h.lifecycle.getAccessToken();
      h.stub.responder = refreshDownThenLoginRefused;
      await jest.advanceTimersByTimeAsync(STALE_AT);
      expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
      expect(h.hooks.logs.at(-1)?.message).toMatch(/not retried in the background/);
      await jest.advanceTimersByTimeAsync(USABLE_UNTIL - STALE_AT - 1);
      expect(await h.lifecycle.getAccessToken()).toBe(old);
      expect(h.stub.count).toBe(3); // 0.1.0 sent a background login here
    });

    it('forceRefresh skips the cool-down', async () => {
      h = harness({ fetchOnStartup: false }, answer.fail('INVALID_CREDENTIALS', 401));
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      await expect(h.lifecycle.getAccessToken()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(h.stub.count).toBe(1);
      h.stub.responder = answer.ok();
      expect(await h.lifecycle.forceRefresh()).toBe([...h.stub.issued.keys()][0]);
      expect(h.stub.count).toBe(2);
      expect(h.hooks.logs.at(-1)).toMatchObject({ level: 'log', message: expect.stringMatching(/recovered/) });
    });
  });

  describe('a caller never waits out a backoff (finding 7)', () => {
    it('the upstream recovers during a 2 s backoff: a caller is answered at once, the next attempt brings the token', async () => {
      h = harness(
        { retry: { maxAttempts: 3, baseDelayMs: 2_000, maxDelayMs: 2_000 } },
        answer.fail('UPSTREAM_UNAVAILABLE', 503),
      );
      await drive(h.lifecycle.start()); // its renewal's 3 attempts, 1.5 s apart (random 0.5), all 503
      expect(h.stub.count).toBe(3);
      h.stub.responder = answer.ok(); // recovered
      await jest.advanceTimersByTimeAsync(500);
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush(); // no time passes
      expect(codeOf(caller.error())).toBe('UPSTREAM_UNAVAILABLE');
      await jest.advanceTimersByTimeAsync(1_000); // the backoff (random 0.5: 1.5 s) is over
      expect(h.stub.count).toBe(4);
      expect(await h.lifecycle.getAccessToken()).toBe([...h.stub.issued.keys()][0]);
    });
  });
});

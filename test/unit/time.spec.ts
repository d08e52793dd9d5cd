import { TransferAuthError } from '../../lib/errors/transfer-auth.error';
import { answer, drive, flush, harness, outcome, type Harness } from './support/stub-endpoint';

/** A whole second, so a `Date` header equals the true time. */
const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MAX_TIMER = 2 ** 31 - 1;
const RETRY = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 };

/** Default margin of the contract: min(60 s, 20% of the lifetime). */
const defaultMargin = (lifetimeMs: number): number => Math.min(MINUTE, 0.2 * lifetimeMs);
/** Safety window of the contract: min(5 s, 10% of the lifetime). */
const safetyWindow = (lifetimeMs: number): number => Math.min(5 * SECOND, 0.1 * lifetimeMs);

describe('Time', () => {
  let h: Harness;
  /** How many tokens were checked against their true expiry in the current test. */
  let checked: number;

  /**
   * Takes a token the way a caller does and checks it on the test's true clock: never one past its
   * true expiry less the safety window. Returns the token.
   */
  async function take(): Promise<string> {
    const token = await drive(h.lifecycle.getAccessToken());
    const issued = h.stub.issued.get(token);
    if (issued === undefined) throw new Error('handed out a token the upstream never issued');
    const now = h.stub.trueNow();
    if (!(now < issued.trueExpiresAtMs - safetyWindow(issued.lifetimeMs))) {
      throw new Error(
        `handed out ${token} at true time +${now - T0} ms, expired (less safety) at +${issued.trueExpiresAtMs - safetyWindow(issued.lifetimeMs) - T0} ms`,
      );
    }
    checked++;
    return token;
  }

  /** Advances fake time in `steps`, taking a token after each. */
  async function runFor(totalMs: number, steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) {
      await jest.advanceTimersByTimeAsync(totalMs / steps);
      await take();
    }
  }

  beforeEach(() => {
    checked = 0;
    jest.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    h?.lifecycle.close();
    expect(jest.getTimerCount()).toBe(0);
    jest.useRealTimers();
  });

  const LIFETIMES: [string, number][] = [
    ['1 s', SECOND],
    ['10 s', 10 * SECOND],
    ['1 min', MINUTE],
    ['1 h', HOUR],
    ['1 day', DAY],
    ['30 days', 30 * DAY],
    ['90 days', 90 * DAY],
  ];

  describe('lifetimes from 1 s to 90 days', () => {
    it.each(LIFETIMES)(
      '%s without a Date header: refreshed exactly at lifetime - margin, never earlier, every cycle',
      async (_name, lifetimeMs) => {
        h = harness({ retry: RETRY });
        h.stub.defaults = { lifetimeMs, refreshLifetimeMs: 2 * lifetimeMs, dateHeader: false };
        await h.lifecycle.start();
        const cycle = lifetimeMs - defaultMargin(lifetimeMs);
        if (lifetimeMs > MAX_TIMER) {
          // Past setTimeout's limit (24.855 days): an overflowed timer would fire at once.
          await jest.advanceTimersByTimeAsync(24.9 * DAY);
          expect(h.stub.count).toBe(1);
          expect(jest.getTimerCount()).toBe(1);
          await take();
          await jest.advanceTimersByTimeAsync(cycle - 24.9 * DAY - 1);
        } else {
          await jest.advanceTimersByTimeAsync(cycle - 1);
        }
        expect(h.stub.count).toBe(1);
        await take();
        await jest.advanceTimersByTimeAsync(1);
        expect(h.stub.kinds()).toEqual(['get', 'refresh']);
        for (let k = 2; k <= 4; k++) {
          await jest.advanceTimersByTimeAsync(cycle - 1);
          expect(h.stub.count).toBe(k);
          await take();
          await jest.advanceTimersByTimeAsync(1);
          expect(h.stub.count).toBe(k + 1);
        }
        expect(jest.getTimerCount()).toBe(1);
        expect(checked).toBeGreaterThanOrEqual(4);
      },
    );

    it.each(LIFETIMES.slice(1))(
      '%s with a Date header: refreshed within the second before lifetime - margin, never expired',
      async (_name, lifetimeMs) => {
        // Mid-second: the header says x.000, the upstream is at x.500.
        jest.setSystemTime(T0 + 500);
        h = harness({ retry: RETRY });
        h.stub.defaults = { lifetimeMs, refreshLifetimeMs: 2 * lifetimeMs, dateHeader: true };
        await h.lifecycle.start();
        expect(h.stub.count).toBe(1);
        const due = lifetimeMs - defaultMargin(lifetimeMs);
        const earliest = due - SECOND; // `Date` is truncated to the second: up to 1 s early, never more
        if (earliest > 1) {
          await runFor(earliest - 1, Math.min(10, Math.ceil((earliest - 1) / MAX_TIMER) + 3));
          expect(h.stub.count).toBe(1);
        }
        await jest.advanceTimersByTimeAsync(due - Math.max(earliest - 1, 0));
        expect(h.stub.count).toBe(2);
        await take();
        await runFor(3 * lifetimeMs, 30);
        // A renewal per cycle (a cycle is at least due - 1 s long), no loop.
        expect(h.stub.count).toBeLessThanOrEqual(2 + Math.ceil((3 * lifetimeMs) / Math.max(earliest, due / 2)));
        expect(h.stub.count).toBeGreaterThanOrEqual(4);
        expect(checked).toBeGreaterThanOrEqual(31);
      },
    );

    it('1 s with a Date header (degenerate: the header may hide all of it): never an expired token', async () => {
      // The upstream may be up to 1 s later than its Date says, so part of these tokens are refused as
      // expired on arrival (INVALID_RESPONSE); what is handed out must still be usable.
      jest.setSystemTime(T0 + 500);
      h = harness({ retry: RETRY });
      h.stub.defaults = { lifetimeMs: SECOND, dateHeader: true };
      await h.lifecycle.start();
      let refused = 0;
      for (let i = 0; i < 100; i++) {
        await jest.advanceTimersByTimeAsync(37);
        await take().catch((error: unknown) => {
          expect(error).toMatchObject({ code: 'INVALID_RESPONSE' });
          refused++;
        });
      }
      expect(checked).toBeGreaterThan(50);
      expect(checked + refused).toBe(100);
    });
  });

  describe('upstream clock skew (the Date header is far from the local clock)', () => {
    const LIFETIME = 10 * MINUTE;

    async function renewalsInAnHour(skewMs: number): Promise<number> {
      h = harness({ retry: RETRY });
      h.stub.skewMs = skewMs;
      h.stub.defaults = { lifetimeMs: LIFETIME };
      await h.lifecycle.start();
      await runFor(HOUR, 360);
      const count = h.stub.count;
      h.lifecycle.close();
      return count;
    }

    it.each([
      ['+1 h', HOUR],
      ['-1 h', -HOUR],
      ['+24 h', DAY],
      ['-24 h', -DAY],
    ])('%s: never an expired token, no refresh loop, same schedule as no skew', async (_name, skewMs) => {
      const baseline = await renewalsInAnHour(0);
      jest.setSystemTime(T0);
      const skewed = await renewalsInAnHour(skewMs);
      expect(skewed).toBe(baseline);
      // One renewal per (lifetime - 1 s - margin) = 539 s, plus the first token.
      expect(skewed).toBe(1 + Math.floor(HOUR / (LIFETIME - SECOND - MINUTE)));
      expect(checked).toBe(720);
    });

    it('a token that is already past its expiry on the upstream clock is INVALID_RESPONSE', async () => {
      h = harness({ retry: RETRY });
      h.stub.skewMs = DAY; // the upstream is a day ahead and issues tokens that expired an hour ago
      h.stub.defaults = { lifetimeMs: -HOUR };
      await expect(drive(h.lifecycle.getAccessToken())).rejects.toMatchObject({ code: 'INVALID_RESPONSE' });
      expect(h.stub.count).toBe(1);
    });
  });

  describe('local wall clock jumps', () => {
    const LIFETIME = HOUR;
    const STALE = LIFETIME - SECOND - MINUTE;
    const USABLE = LIFETIME - SECOND - 5 * SECOND;

    it('forward past expiry (a suspend): the token is renewed, never handed out expired', async () => {
      h = harness({ retry: RETRY });
      h.stub.defaults = { lifetimeMs: LIFETIME };
      // Suspend: true time (the upstream's) follows the wall clock; the monotonic clock stood still.
      await h.lifecycle.start();
      const before = await take();
      jest.setSystemTime(T0 + 2 * HOUR);
      const after = await take();
      expect(after).not.toBe(before);
      expect(h.stub.count).toBe(2);
      await runFor(3 * HOUR, 180);
      expect(h.stub.count).toBeLessThanOrEqual(2 + Math.ceil((3 * HOUR) / STALE));
      expect(checked).toBe(182);
    });

    it('forward past the stale time only: the token is served at once and one renewal starts', async () => {
      h = harness({ retry: RETRY });
      h.stub.defaults = { lifetimeMs: LIFETIME };
      await h.lifecycle.start();
      const before = await take();
      h.stub.responder = answer.pending();
      jest.setSystemTime(T0 + STALE + 10 * SECOND);
      expect(await take()).toBe(before);
      expect(await take()).toBe(before);
      expect(h.stub.count).toBe(2);
      h.stub.last().succeed();
      await flush();
      expect(await take()).not.toBe(before);
    });

    it('back (an NTP step): the monotonic deadlines still hold', async () => {
      const p0 = performance.now();
      h = harness({ retry: RETRY });
      // The true time is monotonic: it is the wall clock that was wrong.
      h.stub.trueNow = () => T0 + (performance.now() - p0);
      h.stub.defaults = { lifetimeMs: LIFETIME };
      await h.lifecycle.start();
      const first = await take();
      jest.setSystemTime(T0 - 2 * HOUR);
      await jest.advanceTimersByTimeAsync(STALE - 1);
      expect(h.stub.count).toBe(1);
      expect(await take()).toBe(first);
      h.stub.responder = answer.pending();
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2); // the schedule ran on time although the wall clock says 2 h earlier
      await jest.advanceTimersByTimeAsync(USABLE - STALE - 1);
      expect(await take()).toBe(first);
      await jest.advanceTimersByTimeAsync(1);
      // Past its monotonic usable end: the old token is not handed out, the caller waits.
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      expect(caller.settled()).toBe(false);
      const issued = h.stub.last().succeed();
      await flush();
      expect(caller.value()).toBe(issued.accessToken);
      h.stub.responder = answer.ok();
      await runFor(3 * HOUR, 90);
      expect(h.stub.count).toBeLessThanOrEqual(2 + Math.ceil((3 * HOUR) / STALE));
    });

    it('back with the schedule already armed: not renewed early, not late', async () => {
      h = harness({ retry: RETRY });
      h.stub.defaults = { lifetimeMs: LIFETIME };
      const p0 = performance.now();
      h.stub.trueNow = () => T0 + (performance.now() - p0);
      await h.lifecycle.start();
      await jest.advanceTimersByTimeAsync(30 * MINUTE);
      jest.setSystemTime(Date.now() - 12 * HOUR);
      await jest.advanceTimersByTimeAsync(STALE - 30 * MINUTE - 1);
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2);
      await take();
    });
  });

  describe('refreshMarginMs at its edges (no Date header, so times are exact)', () => {
    it.each([
      ['tiny, 10 min token: clamped up to the 5 s safety window', 1, 10 * MINUTE, 10 * MINUTE - 5 * SECOND],
      ['tiny, 10 s token: clamped up to 10% of the lifetime', 1, 10 * SECOND, 9 * SECOND],
      ['huge, 10 min token: clamped down to half the lifetime', 1e12, 10 * MINUTE, 5 * MINUTE],
      ['huge, 90 day token: clamped down to half the lifetime', 1e12, 90 * DAY, 45 * DAY],
      ['in range: used as given', 30 * SECOND, 10 * MINUTE, 10 * MINUTE - 30 * SECOND],
    ])('%s', async (_name, refreshMarginMs, lifetimeMs, staleAfterMs) => {
      h = harness({ retry: RETRY, refreshMarginMs });
      h.stub.defaults = { lifetimeMs, dateHeader: false };
      await h.lifecycle.start();
      await jest.advanceTimersByTimeAsync(staleAfterMs - 1);
      expect(h.stub.count).toBe(1);
      await take();
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2);
      await take();
    });
  });

  describe('a token expired on arrival', () => {
    it.each([
      ['expired before it was sent', { lifetimeMs: -SECOND, dateHeader: false }],
      ['expiring as it was sent', { lifetimeMs: 0, dateHeader: false }],
      ['expired within the Date header resolution', { lifetimeMs: 100, dateHeader: true }],
    ])('%s: INVALID_RESPONSE, retried with backoff, no loop', async (_name, spec) => {
      h = harness({ retry: RETRY });
      h.stub.defaults = spec;
      const caller = outcome(h.lifecycle.getAccessToken());
      await flush();
      const error = caller.error();
      expect(error).toBeInstanceOf(TransferAuthError);
      expect(error).toMatchObject({ code: 'INVALID_RESPONSE' });
      expect(h.stub.count).toBe(1);
      expect(h.lifecycle.getStatus()).toMatchObject({ state: 'failed', lastError: { code: 'INVALID_RESPONSE' } });
      await jest.advanceTimersByTimeAsync(MINUTE);
      const times = h.stub.calls.map((c) => c.atMs);
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      expect(gaps.every((g) => g >= RETRY.baseDelayMs / 2)).toBe(true);
      expect(gaps.slice(4).every((g) => g >= RETRY.maxDelayMs / 2)).toBe(true);
      expect(h.stub.count).toBeLessThan(MINUTE / (RETRY.maxDelayMs / 2));
    });

    it('arriving already stale after a slow round trip: renewed after half of what is left, not at once', async () => {
      h = harness({ retry: RETRY }, (call) => void call.succeed({ lifetimeMs: 10 * SECOND, dateHeader: false }, 8_500));
      // Usable until sent + 9 s (10% safety), stale from sent + 8 s (20% margin); it arrives at 8.5 s.
      const token = await drive(h.lifecycle.getAccessToken(), 100);
      expect(Date.now()).toBe(T0 + 8_500);
      expect(h.stub.count).toBe(1);
      expect(h.stub.issued.get(token)).toBeDefined();
      await jest.advanceTimersByTimeAsync(249);
      expect(h.stub.count).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(h.stub.count).toBe(2);
      h.lifecycle.close();
      await jest.advanceTimersByTimeAsync(10 * SECOND); // the stub's slow answer arrives after close
    });
  });
});

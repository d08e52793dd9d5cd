import { answer, drive, harness, outcome, upstreamError, type Harness } from './support/stub-endpoint';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** Stub token: 10 min with a Date header; stale at lifetime - 1 s - 60 s margin. */
const STALE_AT = 600_000 - 1_000 - 60_000;
const RETRY = { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 8_000 };

describe('TokenLifecycle edges found in review', () => {
  let h: Harness;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    h?.lifecycle.close();
    jest.useRealTimers();
  });

  describe('rejected credentials', () => {
    it('answer callers at once, with no upstream call, for a cool-down that grows to maxDelayMs', async () => {
      h = harness({ retry: RETRY, fetchOnStartup: false }, answer.fail('INVALID_CREDENTIALS', 401));
      await expect(drive(h.lifecycle.getAccessToken())).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(h.stub.count).toBe(1);
      // A busy app: 1,000 callers inside the cool-down cost nothing upstream.
      const burst = await Promise.allSettled(Array.from({ length: 1_000 }, () => h.lifecycle.getAccessToken()));
      expect(burst.every((r) => r.status === 'rejected')).toBe(true);
      expect(h.stub.count).toBe(1);

      // Over a minute of callers every 10 ms, the attempts thin out as the cool-down grows.
      for (let t = 0; t < 60_000; t += 10) {
        void h.lifecycle.getAccessToken().catch(() => undefined);
        await jest.advanceTimersByTimeAsync(10);
      }
      expect(h.stub.count).toBeGreaterThan(5);
      expect(h.stub.count).toBeLessThanOrEqual(1 + Math.ceil(60_000 / (RETRY.maxDelayMs / 2)) + 4);
    });

    it('do not hold back forceRefresh, which always asks the upstream', async () => {
      h = harness({ retry: RETRY, fetchOnStartup: false }, answer.fail('INVALID_CREDENTIALS', 401));
      await expect(drive(h.lifecycle.getAccessToken())).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      h.stub.responder = answer.ok();
      const token = await drive(h.lifecycle.forceRefresh());
      expect(h.stub.count).toBe(2);
      expect(await h.lifecycle.getAccessToken()).toBe(token); // and the cool-down is over
    });
  });

  it('after a 404 from the refresh endpoint, renews with Get token only (no doomed call per renewal)', async () => {
    h = harness({ retry: RETRY });
    await h.lifecycle.start();
    h.stub.responder = (call) =>
      call.kind === 'refresh' ? call.fail(upstreamError('INVALID_RESPONSE', 404)) : call.succeed();
    await jest.advanceTimersByTimeAsync(STALE_AT);
    expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get']);
    await jest.advanceTimersByTimeAsync(STALE_AT + 1_000);
    await jest.advanceTimersByTimeAsync(STALE_AT + 1_000);
    expect(h.stub.kinds()).toEqual(['get', 'refresh', 'get', 'get', 'get']);
    expect(h.hooks.logs.filter((l) => l.message.includes('HTTP 404'))).toHaveLength(1);
  });

  it('emits events after the state is complete, so a subscriber sees the new token', async () => {
    h = harness();
    const seen: string[] = [];
    const original = h.hooks.emit;
    h.hooks.emit = (event) => {
      original(event);
      seen.push(`${event.type}:${h.lifecycle.getStatus().state}`);
    };
    await h.lifecycle.start();
    expect(seen).toEqual(['token.acquired:valid']);
  });

  it('hands out copies of its dates: mutating a status cannot move a deadline', async () => {
    h = harness();
    await h.lifecycle.start();
    const status = h.lifecycle.getStatus();
    const expiresAt = status.accessExpiresAt?.getTime();
    status.accessExpiresAt?.setTime(0);
    expect(h.lifecycle.getStatus().accessExpiresAt?.getTime()).toBe(expiresAt);
    const caller = outcome(h.lifecycle.getAccessToken());
    await jest.advanceTimersByTimeAsync(0);
    expect(caller.settled()).toBe(true);
    expect(h.stub.count).toBe(1);
  });
});

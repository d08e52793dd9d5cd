import { answer, harness, type Harness } from './support/stub-endpoint';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** Stub token: 10 min with a Date header; stale at lifetime - 1 s - 60 s margin. */
const STALE_AT = 600_000 - 1_000 - 60_000;

/** Keeps the CPU busy for `ms` of real time without yielding: what a heavy request handler does. */
function busyCpu(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

/** Whether `token` was still usable (before its true expiry less 10% of its lifetime) at `atMs`. */
function usableAt(h: Harness, token: string, atMs: number): boolean {
  const issued = h.stub.issued.get(token);
  if (issued === undefined) throw new Error('not a token the stub issued');
  return atMs < issued.trueExpiresAtMs - issued.lifetimeMs * 0.1;
}

describe('hot path (finding 1): never a token past its usable end at the moment of the call', () => {
  let h: Harness;

  afterEach(() => {
    h?.lifecycle.close();
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  describe('real clocks', () => {
    it('an await loop that never yields to the event loop (20 ms of CPU per turn) gets only usable tokens', async () => {
      // 1 s tokens, no Date header: usable for 900 ms, stale after 800 ms. 0.1.0 served expired ones here.
      h = harness({ refresh: false }, answer.ok({ lifetimeMs: 1_000, dateHeader: false }));
      await h.lifecycle.start();
      const end = Date.now() + 2_500;
      let served = 0;
      let unusable = 0;
      while (Date.now() < end) {
        const calledAt = Date.now();
        const token = await h.lifecycle.getAccessToken();
        if (!usableAt(h, token, calledAt)) unusable++;
        served++;
        busyCpu(20);
      }
      expect(served).toBeGreaterThan(50);
      expect(unusable).toBe(0);
      expect(h.stub.issued.size).toBeGreaterThanOrEqual(3); // it renewed, although the loop never yielded
    });

    it('two calls in one turn with 1.2 s of CPU between them: the second is not the expired token', async () => {
      h = harness({ refresh: false }, answer.ok({ lifetimeMs: 1_000, dateHeader: false }));
      await h.lifecycle.start();
      const p1 = h.lifecycle.getAccessToken();
      busyCpu(1_200);
      const calledAt = Date.now();
      const p2 = h.lifecycle.getAccessToken();
      const [t1, t2] = await Promise.all([p1, p2]);
      expect(t2).not.toBe(t1);
      expect(usableAt(h, t2, calledAt)).toBe(true);
    });
  });

  describe("Jest's fake timers (nextTick faked too)", () => {
    beforeEach(() => {
      jest.useFakeTimers({ now: T0 });
    });

    async function cachedLifecycle(): Promise<string> {
      h = harness();
      await h.lifecycle.start();
      return h.lifecycle.getAccessToken();
    }

    it('setSystemTime(+2 h) in the same turn as a cached call: the next call is not the old token', async () => {
      const old = await cachedLifecycle();
      expect(h.lifecycle.getAccessToken()).toBe(h.lifecycle.getAccessToken()); // cached: one resolved promise
      jest.setSystemTime(T0 + 2 * 3_600_000);
      const next = h.lifecycle.getAccessToken();
      await jest.advanceTimersByTimeAsync(0);
      expect(await next).not.toBe(old);
      expect(h.stub.count).toBe(2);
    });

    it('a wall-clock jump into the stale window renews at once and serves the usable token meanwhile', async () => {
      const old = await cachedLifecycle();
      jest.setSystemTime(T0 + STALE_AT + 1); // a suspend: the schedule is not due on the monotonic clock
      expect(await h.lifecycle.getAccessToken()).toBe(old);
      await jest.advanceTimersByTimeAsync(0);
      expect(h.stub.count).toBe(2);
      expect(h.stub.last().kind).toBe('refresh');
    });

    it('reads both clocks on every call and calls nobody while the token is fresh', async () => {
      await cachedLifecycle();
      const mono = jest.spyOn(performance, 'now');
      const wall = jest.spyOn(Date, 'now');
      for (let i = 0; i < 1_000; i++) void h.lifecycle.getAccessToken();
      expect(mono).toHaveBeenCalledTimes(1_000);
      expect(wall).toHaveBeenCalledTimes(1_000);
      expect(h.stub.count).toBe(1);
    });

    it('never serves a token that was dropped in the same turn', async () => {
      const old = await cachedLifecycle();
      h.lifecycle.invalidate(old);
      const next = h.lifecycle.getAccessToken();
      await jest.advanceTimersByTimeAsync(0);
      expect(await next).not.toBe(old);
    });
  });
});

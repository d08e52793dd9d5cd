import { createHash } from 'node:crypto';
import { answer, flush, harness, outcome, type Harness } from '../support/stub-endpoint';
import { T0, useFakeClock } from './support';

describe('TokenLifecycle: invalidate', () => {
  let h: Harness;
  useFakeClock(() => h);

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
      const fingerprint = createHash('sha256').update(token).digest('hex').slice(0, 8);
      expect(h.hooks.events.at(-1)).toEqual({ type: 'token.invalidated', at: new Date(T0), fingerprint });
      // The log names the token dropped by its fingerprint, never by value.
      expect(h.hooks.logs.at(-1)).toMatchObject({
        level: 'warn',
        message: expect.stringContaining(`fp=${fingerprint}`),
      });
      expect(JSON.stringify(h.hooks.logs)).not.toContain(token);
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

  describe('401 storm (finding 2): 401-driven renewals are spaced', () => {
    /** What attachTransferAuth does on each 401: invalidate the token it sent, then ask again. */
    async function refusedRequest(): Promise<string> {
      const token = await h.lifecycle.getAccessToken();
      h.lifecycle.invalidate(token);
      await flush();
      return h.lifecycle.getAccessToken();
    }

    it('50 requests refused with 401 within 5 s cause one renewal, not 50', async () => {
      h = harness({ refresh: false });
      await h.lifecycle.start();
      for (let i = 0; i < 50; i++) {
        await refusedRequest();
        await jest.advanceTimersByTimeAsync(80); // 50 requests over 4 s
      }
      expect(h.stub.kinds()).toEqual(['get', 'get']); // startup, then one 401-driven renewal
      expect(h.hooks.events.filter((e) => e.type === 'token.invalidated')).toHaveLength(1);
    });

    it('the spacing doubles (5, 10, 20, 40 s ...) while every new token is refused, up to 5 min', async () => {
      h = harness({ refresh: false });
      await h.lifecycle.start();
      for (let t = 0; t < 900_000; t += 250) {
        await refusedRequest();
        await jest.advanceTimersByTimeAsync(250);
      }
      const renewals = h.stub.calls.slice(1).map((c) => c.atMs - T0);
      const gaps = renewals.slice(1).map((at, i) => at - renewals[i]!);
      expect(gaps.slice(0, 6)).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000]);
      expect(gaps.slice(6).every((g) => g === 300_000)).toBe(true);
      expect(h.stub.count).toBeLessThan(15);
    });

    it('falls back to 5 s once a token is replaced without having been refused', async () => {
      h = harness({ refresh: false });
      await h.lifecycle.start();
      await refusedRequest(); // renewal 1 (401-driven)
      await jest.advanceTimersByTimeAsync(5_000);
      await refusedRequest(); // renewal 2: its token was refused in turn: next spacing 10 s
      const afterTwo = h.stub.count;
      expect(afterTwo).toBe(3);
      await jest.advanceTimersByTimeAsync(10_000);
      // This token works (no 401) until the schedule replaces it.
      await jest.advanceTimersByTimeAsync(600_000);
      expect(h.stub.count).toBeGreaterThan(afterTwo);
      const before = h.stub.count;
      await refusedRequest(); // a new 401: renewed at once ...
      await jest.advanceTimersByTimeAsync(5_000);
      await refusedRequest(); // ... and again 5 s later, not 10 s
      expect(h.stub.count).toBe(before + 2);
    });

    it('forceRefresh is not held back by the spacing', async () => {
      h = harness({ refresh: false });
      await h.lifecycle.start();
      await refusedRequest();
      await h.lifecycle.forceRefresh();
      expect(h.stub.count).toBe(3);
    });
  });
});

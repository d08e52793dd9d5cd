import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { answer, drive, flush, harness, outcome, upstreamError, type Harness } from '../support/stub-endpoint';
import { T0, LIFETIME, STALE_AT, FAST_RETRY, codeOf, useFakeClock } from './support';

describe('TokenLifecycle: status, secrets, close', () => {
  let h: Harness;
  useFakeClock(() => h);

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
        accessTokenFingerprint: null,
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
        accessTokenFingerprint: createHash('sha256')
          .update(await h.lifecycle.getAccessToken())
          .digest('hex')
          .slice(0, 8),
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
});

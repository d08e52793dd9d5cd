import type { TransferAuthState } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { sleep, waitFor } from '../support/e2e';

const HOUR = 3_600_000;

/**
 * Short-lived tokens (3 s at the fake) against real sockets and real time: each test waits for one
 * renewal, which the schedule starts between 1.4 s and 2.2 s after a token was obtained.
 */
describe('scheduled renewal of short-lived tokens (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  it('renews in the background before expiry while idle: valid -> stale -> valid, via the refresh endpoint', async () => {
    fake = await new FakeTransferServer({ accessTtlMs: 8_000 }).start();
    app = await createAuthApp(fakeOptions(fake));
    const { auth, events } = app;
    const first = await auth.getAccessToken();
    // Slow the refresh answer down so that the stale state lasts long enough to be seen.
    fake.failNext('refresh', { kind: 'delay', ms: 300 });

    const states: TransferAuthState[] = [auth.getStatus().state];
    const record = (): TransferAuthState => {
      const state = auth.getStatus().state;
      if (states.at(-1) !== state) states.push(state);
      return state;
    };
    // Nobody calls: the schedule alone sends the refresh when the token goes stale.
    await waitFor(() => record() === 'stale' && fake.calls.refresh === 1, 'a background refresh to start', {
      intervalMs: 5,
    });
    // Meanwhile a caller gets the stale but usable token at once, without waiting for the refresh.
    expect(await auth.getAccessToken()).toBe(first);
    expect(record()).toBe('stale');
    expect(fake.isAccessTokenValid(first)).toBe(true);
    await waitFor(() => record() === 'valid', 'the background refresh to finish', { intervalMs: 5 });

    expect(states).toEqual(['valid', 'stale', 'valid']);
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 1, total: 2 });
    expect(events.map((e) => e.type)).toEqual(['token.acquired', 'token.refreshed']);
    const second = await auth.getAccessToken();
    expect(second).not.toBe(first);
    expect(fake.isAccessTokenValid(second)).toBe(true);
    expect(fake.calls.total).toBe(2); // served from the cache
  });

  it('a refreshMarginMs longer than the lifetime is clamped to half of it: one renewal, no loop', async () => {
    fake = await new FakeTransferServer({ accessTtlMs: 3_000 }).start();
    app = await createAuthApp(fakeOptions(fake, { refreshMarginMs: 600_000 }));
    const { auth, events } = app;
    await waitFor(() => events.length === 2, 'one renewal');
    await sleep(300);
    expect(events.map((e) => e.type)).toEqual(['token.acquired', 'token.refreshed']);
    expect(fake.calls.total).toBe(2);
    expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
  });

  it('falls back to Get token when the refresh token has expired by the time of the renewal', async () => {
    fake = await new FakeTransferServer({ accessTtlMs: 3_000, refreshTtlMs: 1_200 }).start();
    app = await createAuthApp(fakeOptions(fake));
    const { auth, events } = app;
    await waitFor(() => events.filter((e) => e.type === 'token.acquired').length === 2, 'a background Get token');
    expect(fake.calls).toMatchObject({ auth: 2, refresh: 0 });
    expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
  });

  it.each([
    ['the same clock', 0],
    ['a server clock an hour ahead', HOUR],
    ['a server clock an hour behind', -HOUR],
  ])(
    'with %s every token handed out is valid at the fake, renewal happens once per lifetime and never loops',
    async (_name, clockOffsetMs) => {
      fake = await new FakeTransferServer({ accessTtlMs: 3_000, clockOffsetMs }).start();
      app = await createAuthApp(fakeOptions(fake));
      const { auth, events } = app;
      const status = auth.getStatus();
      expect(status.state).toBe('valid');
      // The expiry is the fake's own (skewed) time, reported as it said it.
      expect(status.accessExpiresAt?.getTime()).toBeGreaterThan(fake.now());

      const handedOut: string[] = [];
      const invalid: string[] = [];
      const callOnce = async (): Promise<void> => {
        const token = await auth.getAccessToken();
        handedOut.push(token);
        if (!fake.isAccessTokenValid(token)) invalid.push(token);
      };
      const renewed = (): number => events.filter((e) => e.type !== 'token.acquired').length;
      const deadline = Date.now() + 8_000;
      while (renewed() < 1 && Date.now() < deadline) {
        await callOnce();
        await sleep(20);
      }
      expect(renewed()).toBe(1);
      // A short window after the renewal: callers keep going, and nothing calls the upstream again.
      const callsAfterRenewal = fake.calls.total;
      for (let i = 0; i < 15; i++) {
        await callOnce();
        await sleep(20);
      }

      expect(invalid).toEqual([]);
      expect(new Set(handedOut).size).toBe(2);
      expect(callsAfterRenewal).toBe(2);
      expect(fake.calls).toMatchObject({ auth: 1, refresh: 1, total: 2 });
      expect(events.map((e) => e.type)).toEqual(['token.acquired', 'token.refreshed']);
      expect(auth.getStatus().state).toBe('valid');
    },
  );
});

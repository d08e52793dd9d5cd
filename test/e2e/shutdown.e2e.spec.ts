import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import type { TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, expectAuthError, LibTimerTracker, sleep, waitFor } from '../support/e2e';

/** Tracks how each caller settled, so that the test can look right after `close()` resolves. */
function track(promises: Promise<string>[]): { settled: () => number; codes: () => unknown[] } {
  const outcomes: unknown[] = [];
  for (const promise of promises) {
    promise.then(
      () => outcomes.push('resolved'),
      (error: { code?: unknown }) => outcomes.push(error?.code),
    );
  }
  return { settled: () => outcomes.length, codes: () => [...outcomes] };
}

describe('shutdown (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;
  let timers: LibTimerTracker | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    timers?.restore();
    timers = undefined;
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  async function start(options: Partial<TransferAuthModuleOptions>): Promise<AuthApp> {
    app = await createAuthApp(fakeOptions(fake, options));
    return app;
  }

  /** Closes the app (once: afterEach then has nothing left to close). */
  async function close(): Promise<void> {
    const running = app;
    app = undefined;
    await running?.close();
  }

  it('a hung upstream call with callers waiting: close() settles every caller with SHUTDOWN, no call follows', async () => {
    fake.failAlways('auth', { kind: 'hang' });
    const { auth } = await start({ fetchOnStartup: false, requestTimeoutMs: 10_000 });
    const callers = track([
      ...Array.from({ length: 5 }, () => auth.getAccessToken()),
      auth.forceRefresh(),
      auth.getAuthorizationHeader(),
    ]);
    await waitFor(() => fake.calls.auth === 1, 'the call to hang at the fake');
    expect(callers.settled()).toBe(0);

    await close();
    expect(callers.codes()).toEqual(Array(7).fill('SHUTDOWN'));

    await sleep(100);
    expect(fake.calls.total).toBe(1);
    expectAuthError(await captureAuthError(auth.getAccessToken()), 'SHUTDOWN');
    expectAuthError(await captureAuthError(auth.forceRefresh()), 'SHUTDOWN');
    expect(auth.getStatus().state).toBe('closed');
    expect(fake.calls.total).toBe(1);
  });

  it('close() during a pending backoff: callers get SHUTDOWN at once, no lib timer is left, no call follows', async () => {
    timers = new LibTimerTracker().install();
    fake.failAlways('auth', { kind: 'status', status: 503 });
    const { auth } = await start({
      fetchOnStartup: false,
      retry: { maxAttempts: 5, baseDelayMs: 400, maxDelayMs: 400 },
    });
    // One renewal, shared by both callers: its 5 attempts (waits of 200-400 ms between them), all 503.
    const first = track([auth.getAccessToken(), auth.getAccessToken()]);
    await waitFor(() => first.settled() === 2, 'the first renewal to fail');
    expect(first.codes()).toEqual(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE']);
    expect(fake.calls.total).toBe(5);
    // The backoff (200-400 ms) is pending: its background timer is the only lib timer, and a caller is
    // answered at once from the failure.
    expect(timers.pendingStacks()).toHaveLength(1);
    expectAuthError(await captureAuthError(auth.getAccessToken()), 'UPSTREAM_UNAVAILABLE');
    expect(fake.calls.total).toBe(5);

    await close();
    expect(timers.pendingStacks()).toEqual([]);
    const later = track([auth.getAccessToken(), auth.forceRefresh(), auth.getAuthorizationHeader()]);
    await sleep(0);
    expect(later.codes()).toEqual(['SHUTDOWN', 'SHUTDOWN', 'SHUTDOWN']);
    expect(timers.pendingStacks()).toEqual([]);
    expect(auth.getStatus().state).toBe('closed');
    await sleep(500); // past the background retry's due time
    expect(fake.calls.total).toBe(5);
  });

  it('close() while callers wait between two attempts of a renewal: SHUTDOWN at once, no lib timer, no call', async () => {
    timers = new LibTimerTracker().install();
    fake.failAlways('auth', { kind: 'status', status: 503 });
    const { auth } = await start({
      fetchOnStartup: false,
      retry: { maxAttempts: 3, baseDelayMs: 5_000, maxDelayMs: 5_000 },
    });
    const waiting = track([auth.getAccessToken(), auth.getAccessToken()]);
    await fake.waitForCalls(1);
    // The 503 came; the renewal waits 2.5-5 s before its second attempt, on a timer of attempts.ts.
    const waitTimers = (): string[] => timers?.pendingStacks().filter((stack) => stack.includes('attempts.ts')) ?? [];
    await waitFor(() => waitTimers().length === 1, 'the wait before the second attempt');
    expect(waiting.settled()).toBe(0);

    const closing = close();
    await sleep(0);
    expect(waiting.codes()).toEqual(['SHUTDOWN', 'SHUTDOWN']); // at once, not after the wait
    await closing;
    expect(timers.pendingStacks()).toEqual([]);
    await sleep(100);
    expect(fake.calls.total).toBe(1);
  });

  it('with a cached token (schedule armed) and a failing background renewal, close() leaves no lib timer', async () => {
    timers = new LibTimerTracker().install();
    const { auth } = await start({});
    await auth.getAccessToken();
    expect(timers.pendingStacks().length).toBeGreaterThan(0); // the stale-time schedule

    // Now a background renewal that keeps failing: its backoff timer is pending at close.
    fake.failAlways('any', { kind: 'status', status: 503 });
    auth.invalidate();
    await waitFor(() => auth.getStatus().state === 'failed', 'the background renewal to fail');
    const before = fake.calls.total;

    await close();
    expect(timers.pendingStacks()).toEqual([]);
    expect(timers.created).toBeGreaterThan(0);
    await sleep(100);
    expect(fake.calls.total).toBe(before);
  });

  it('close() during a background refresh in flight: no error escapes, events$ completes, nothing is called after', async () => {
    const { auth, events } = await start({});
    let completed = false;
    const subscription = auth.events$.subscribe({ complete: () => (completed = true) });
    fake.failNext('refresh', { kind: 'hang' });
    auth.invalidate();
    await waitFor(() => fake.calls.refresh === 1, 'the refresh to hang at the fake');

    await close();
    subscription.unsubscribe();
    expect(completed).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['token.acquired', 'token.invalidated']);
    await sleep(100);
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 1, total: 2 });
  });

  it('getAccessToken() after close() rejects with SHUTDOWN without calling the upstream', async () => {
    const { auth } = await start({});
    expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
    await close();
    const error = await captureAuthError(auth.getAccessToken());
    expectAuthError(error, 'SHUTDOWN');
    expect(() => auth.invalidate()).not.toThrow();
    expect(fake.calls.total).toBe(1);
  });
});

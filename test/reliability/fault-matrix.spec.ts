import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TransferAuthError, TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { expectedCalls, FAULTS, MATRIX_OPTIONS, renderFaultMatrix, type FaultCase } from './fault-table';
import { clearFault, eventually, injectFault, nextEvent, outcomeOf, pause } from './support';

/**
 * Every fault of fault-table.ts at every moment of a token's life, end to end over real sockets.
 * docs/fault-matrix.md is the same table in prose; `UPDATE_FAULT_MATRIX=1` rewrites it.
 */
const RENEWED = ['token.refreshed', 'token.acquired'] as const;

let fake: FakeTransferServer;
let current: AuthApp | undefined;

async function boot(overrides: Partial<TransferAuthModuleOptions> = {}): Promise<AuthApp> {
  current = await createAuthApp(fakeOptions(fake, { ...MATRIX_OPTIONS, ...overrides }));
  return current;
}

beforeEach(async () => {
  fake = await new FakeTransferServer().start();
});

afterEach(async () => {
  // Only the two auth endpoints were ever called: no redirect was followed.
  expect(fake.calls.unknown).toBe(0);
  await current?.close();
  current = undefined;
  await fake.stop();
});

it('docs/fault-matrix.md is the table the matrix runs', () => {
  const file = join(__dirname, '..', '..', 'docs', 'fault-matrix.md');
  if (process.env.UPDATE_FAULT_MATRIX === '1') writeFileSync(file, renderFaultMatrix());
  expect(readFileSync(file, 'utf8')).toBe(renderFaultMatrix());
});

describe('module init', () => {
  it.each(FAULTS)('$name', async (fault: FaultCase) => {
    await injectFault(fake, fault);
    const calls = expectedCalls(fault, false); // startup makes one renewal; the background renews again

    if (fault.outcome === 'INVALID_CREDENTIALS') {
      await expect(boot()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect(fake.calls.total).toBe(calls);
      await pause(4 * MATRIX_OPTIONS.retry.maxDelayMs); // longer than any background retry would wait
      expect(fake.calls.total).toBe(calls);
      await clearFault(fake, fault);
      const { auth } = await boot();
      expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
      return;
    }

    const { auth } = await boot();
    expect(fake.calls.total).toBe(calls);
    if (fault.outcome === 'ok') {
      expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
      await auth.forceRefresh(); // the refresh token was already past its end: Get token
      expect(fake.calls).toMatchObject({ auth: 2, refresh: 0 });
    } else {
      expect(auth.getStatus().lastError?.code).toBe(fault.outcome);
      await expect(auth.getAccessToken()).rejects.toMatchObject({ code: fault.outcome });
      if (fault.retry === 'retry-after') expect(fake.calls.total).toBe(calls); // refused without a call
    }

    await clearFault(fake, fault);
    const token = await eventually(() => auth.getAccessToken());
    expect(fake.isAccessTokenValid(token)).toBe(true);
  });
});

describe('scheduled refresh while idle', () => {
  it.each(FAULTS)('$name', async (fault: FaultCase) => {
    // Short tokens, renewed at half their life: the renewal fails while the token is still usable.
    fake.accessTtlMs = fault.slow ? 4_000 : 2_500;
    const { auth } = await boot({ refreshMarginMs: 60_000 });
    const first = await auth.getAccessToken();
    fake.resetCounters();
    await injectFault(fake, fault);

    if (fault.outcome === 'ok') {
      const { event, calls } = await nextEvent(auth, fake, RENEWED);
      expect(event.type).toBe('token.refreshed');
      expect(calls).toBe(1);
      const token = await auth.getAccessToken();
      expect(token).not.toBe(first);
      expect(fake.isAccessTokenValid(token)).toBe(true);
      await auth.forceRefresh();
      expect(fake.calls).toMatchObject({ auth: 1, refresh: 1 });
      return;
    }

    const { event, calls } = await nextEvent(auth, fake, ['token.failed']);
    expect(event).toMatchObject({ type: 'token.failed', code: fault.outcome, background: true });
    expect(calls).toBe(expectedCalls(fault, true)); // one renewal: Refresh token, then Get token (not after Retry-After)
    const served = await auth.getAccessToken();
    expect(served).toBe(first);
    expect(fake.isAccessTokenValid(served)).toBe(true);
    expect(auth.getStatus()).toMatchObject({ state: 'stale', lastError: { code: fault.outcome } });

    // Renewed by the background retry, or (401/403: no background login) by a caller once it is unusable
    // and the cool-down has passed.
    await clearFault(fake, fault);
    const token = await eventually(async () => {
      const served = await auth.getAccessToken();
      if (served === first) throw new Error('not renewed yet');
      return served;
    });
    expect(fake.isAccessTokenValid(token)).toBe(true);
  });
});

describe('on-demand refresh with 50 waiters', () => {
  /** Long enough that the callers right after the failure certainly come before the background retry. */
  const retry = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 100 } as const;

  it.each(FAULTS)('$name', async (fault: FaultCase) => {
    const { auth } = await boot({ fetchOnStartup: false, retry });
    await injectFault(fake, fault);
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => auth.getAccessToken()));
    const calls = fake.calls.total;
    expect(calls).toBe(expectedCalls(fault, false)); // one shared renewal: its attempts, however many callers
    expect(new Set(results.map(outcomeOf))).toEqual(new Set([fault.outcome]));

    if (fault.outcome === 'ok') {
      const tokens = new Set(results.map((r) => (r.status === 'fulfilled' ? r.value : '')));
      expect(tokens.size).toBe(1);
      expect(fake.isAccessTokenValid([...tokens][0] as string)).toBe(true);
    } else {
      // Within the backoff (>= 50 ms), the cool-down (1 s) or the Retry-After (1 s): answered at once with
      // the same error, and no upstream call.
      const first = (results[0] as PromiseRejectedResult).reason as TransferAuthError;
      const again = await Promise.allSettled(Array.from({ length: 50 }, () => auth.getAccessToken()));
      expect(again.map(outcomeOf)).toEqual(Array(50).fill(fault.outcome));
      expect(fake.calls.total).toBe(calls);
      const error = (again[0] as PromiseRejectedResult).reason as TransferAuthError;
      expect(error.status).toBe(first.status);
      if (fault.retry === 'retry-after') expect(error.message).toMatch(/Retry-After/);
      else expect(error.message).toBe(first.message);
    }

    // Then, with nobody calling: the background retries, except after rejected credentials (never) or a
    // Retry-After (not before it has passed); with a token cached nothing is due.
    await pause(3 * retry.maxDelayMs);
    const quiet = fault.outcome === 'ok' || fault.retry === 'cool-down' || fault.retry === 'retry-after';
    if (quiet) expect(fake.calls.total).toBe(calls);
    else if (fault.fault !== 'refused') expect(fake.calls.total).toBeGreaterThan(calls);

    await clearFault(fake, fault);
    const token = await eventually(() => auth.getAccessToken());
    expect(fake.isAccessTokenValid(token)).toBe(true);
  });
});

describe('forceRefresh, 10 concurrent', () => {
  it.each(FAULTS)('$name', async (fault: FaultCase) => {
    const { auth } = await boot();
    const first = await auth.getAccessToken();
    fake.resetCounters();
    await injectFault(fake, fault);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => auth.forceRefresh()));
    const calls = fake.calls.total;
    expect(calls).toBe(expectedCalls(fault, true)); // one shared renewal: Refresh token, then Get token
    expect(new Set(results.map(outcomeOf))).toEqual(new Set([fault.outcome]));

    if (fault.outcome === 'ok') {
      const tokens = new Set(results.map((r) => (r.status === 'fulfilled' ? r.value : '')));
      expect(tokens.size).toBe(1);
      expect(tokens.has(first)).toBe(false);
      await auth.forceRefresh();
      expect(fake.calls).toMatchObject({ auth: 1, refresh: 1 });
      return;
    }

    const served = await auth.getAccessToken();
    expect(served).toBe(first);
    expect(fake.isAccessTokenValid(served)).toBe(true);
    expect(fake.calls.total).toBe(calls);
    if (fault.retry === 'retry-after') {
      // Retry-After holds back forceRefresh() too: rejected at once, no call.
      const error = await auth.forceRefresh().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: expect.stringMatching(/Retry-After/) });
      expect(fake.calls.total).toBe(calls);
    } else {
      // forceRefresh() skips the backoff and the cool-down: a new renewal at once, Get token only (the
      // refresh token was spent by the first renewal, whatever its outcome).
      const refreshes = fake.calls.refresh;
      await expect(auth.forceRefresh()).rejects.toMatchObject({ code: fault.outcome });
      expect(fake.calls.total).toBe(calls + expectedCalls(fault, false));
      expect(fake.calls.refresh).toBe(refreshes);
      expect(await auth.getAccessToken()).toBe(first);
    }

    await clearFault(fake, fault);
    const token = await eventually(() => auth.forceRefresh());
    expect(token).not.toBe(first);
    expect(fake.isAccessTokenValid(token)).toBe(true);
  });
});

describe('during shutdown', () => {
  it.each(FAULTS)('$name', async (fault: FaultCase) => {
    // The short backoff of the matrix: a background retry that outlived close() would come within 50 ms.
    const app = await boot({ fetchOnStartup: false });
    // Held by the fake, so that close() meets the request in flight whatever the fault.
    await injectFault(fake, fault, 30_000);
    const settled = Promise.allSettled(Array.from({ length: 50 }, () => app.auth.getAccessToken()));
    // A refused connection cannot be held: close() runs before the refusal can arrive (it takes an I/O turn).
    if (fault.fault !== 'refused') await fake.waitForCalls(1);

    await app.close();
    current = undefined;
    const results = await settled;
    expect(new Set(results.map(outcomeOf))).toEqual(new Set(['SHUTDOWN']));
    // Listening again on a refused port, so that a call after close() would be counted.
    if (fault.fault === 'refused') await clearFault(fake, fault);
    const calls = fake.calls.total;
    await expect(app.auth.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await expect(app.auth.forceRefresh()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    app.auth.invalidate();
    await pause(4 * MATRIX_OPTIONS.retry.maxDelayMs);
    expect(fake.calls.total).toBe(calls);
    expect(app.auth.getStatus().state).toBe('closed');
  });
});

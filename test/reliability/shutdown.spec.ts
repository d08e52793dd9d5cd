import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { builtPackage } from '../support/built-package';
import { libTimerImports, trackLibTimers, type LibTimers } from '../support/lib-timers';
import { outcomeOf, pause } from './support';

/**
 * Shutdown, end to end: waiting callers settle with SHUTDOWN, nothing calls the upstream after
 * `close()`, no timer of the package outlives it, and a real process exits by itself.
 */
const ROOT = join(__dirname, '..', '..');
const FAST = { requestTimeoutMs: 300, retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 } } as const;
/** Longer than any timer the package could still have armed with FAST (a retry, a request deadline). */
const QUIET_MS = 600;

let fake: FakeTransferServer;
let current: AuthApp | undefined;

async function boot(overrides: Partial<TransferAuthModuleOptions> = {}): Promise<AuthApp> {
  current = await createAuthApp(fakeOptions(fake, { ...FAST, ...overrides }));
  return current;
}

/** Closes the app and reports the fake's request count at that moment. */
async function closeApp(app: AuthApp): Promise<number> {
  await app.close();
  current = undefined;
  return fake.calls.total;
}

beforeEach(async () => {
  fake = await new FakeTransferServer().start();
});

afterEach(async () => {
  await current?.close();
  current = undefined;
  await fake.stop();
});

describe('callers waiting at close() settle with SHUTDOWN, and the upstream hears nothing after', () => {
  it('a background refresh in flight against a hung upstream, 100 callers joined to it', async () => {
    const app = await boot();
    const { auth } = app;
    fake.failAlways('any', { kind: 'hang' });
    auth.invalidate(); // no usable token: the renewal starts, and every caller has to wait for it
    const settled = Promise.allSettled(Array.from({ length: 100 }, () => auth.getAccessToken()));
    await fake.waitForCalls(2); // init + the hung refresh
    expect(auth.getStatus().state).toBe('acquiring');

    const calls = await closeApp(app);
    const results = await settled;
    expect(results.map(outcomeOf)).toEqual(Array(100).fill('SHUTDOWN'));
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await expect(auth.forceRefresh()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await expect(auth.getAuthorizationHeader()).rejects.toMatchObject({ code: 'SHUTDOWN' });
    auth.invalidate();
    await pause(QUIET_MS);
    expect(fake.calls.total).toBe(calls);
    expect(auth.getStatus()).toMatchObject({ state: 'closed', accessExpiresAt: null });
  });

  it('an on-demand acquisition in flight, 100 callers and 10 forceRefresh joined to it', async () => {
    const { auth, ...app } = await boot({ fetchOnStartup: false });
    fake.failAlways('any', { kind: 'hang' });
    const settled = Promise.allSettled([
      ...Array.from({ length: 100 }, () => auth.getAccessToken()),
      ...Array.from({ length: 10 }, () => auth.forceRefresh()),
    ]);
    await fake.waitForCalls(1);
    const calls = await closeApp({ auth, ...app });
    expect((await settled).map(outcomeOf)).toEqual(Array(110).fill('SHUTDOWN'));
    expect(calls).toBe(1);
    await pause(QUIET_MS);
    expect(fake.calls.total).toBe(1);
  });

  it('callers waiting on an attempt whose HTTP 503 is already sent: close() before it lands', async () => {
    const { auth, ...app } = await boot({
      fetchOnStartup: false,
      retry: { maxAttempts: 3, baseDelayMs: 400, maxDelayMs: 400 },
    });
    fake.failAlways('any', { kind: 'status', status: 503 });
    const settled = Promise.allSettled(Array.from({ length: 100 }, () => auth.getAccessToken()));
    // The fake has answered 503; close() runs before the client reads it (that takes an I/O turn).
    await fake.waitForCalls(1);
    const calls = await closeApp({ auth, ...app });
    expect(calls).toBe(1);
    expect((await settled).map(outcomeOf)).toEqual(Array(100).fill('SHUTDOWN'));
    await pause(QUIET_MS); // past the background retry's due time (200-400 ms), had the 503 been recorded
    expect(fake.calls.total).toBe(calls);
  });

  it('close() during the backoff after a failed renewal (HTTP 503): SHUTDOWN, and the background retry never comes', async () => {
    const { auth, ...app } = await boot({
      fetchOnStartup: false,
      retry: { maxAttempts: 3, baseDelayMs: 400, maxDelayMs: 400 },
    });
    fake.failAlways('any', { kind: 'status', status: 503 });
    const failed = await Promise.allSettled(Array.from({ length: 100 }, () => auth.getAccessToken()));
    expect(failed.map(outcomeOf)).toEqual(Array(100).fill('UPSTREAM_UNAVAILABLE'));
    expect(fake.calls.total).toBe(3); // one renewal, shared: its 3 attempts
    // The backoff (200-400 ms) runs: callers are answered at once, without a call.
    const during = await Promise.allSettled(Array.from({ length: 100 }, () => auth.getAccessToken()));
    expect(during.map(outcomeOf)).toEqual(Array(100).fill('UPSTREAM_UNAVAILABLE'));
    expect(fake.calls.total).toBe(3);

    await closeApp({ auth, ...app });
    const after = await Promise.allSettled([auth.getAccessToken(), auth.forceRefresh()]);
    expect(after.map(outcomeOf)).toEqual(['SHUTDOWN', 'SHUTDOWN']);
    await pause(QUIET_MS); // past the background retry's due time
    expect(fake.calls.total).toBe(3);
  });

  it('a pending scheduled refresh never fires', async () => {
    fake.accessTtlMs = 2_500; // stale within ~0.25-0.75 s
    const app = await boot({ refreshMarginMs: 60_000 });
    const calls = await closeApp(app);
    expect(calls).toBe(1);
    await pause(2_000); // past the stale time, and past the expiry's usable end
    expect(fake.calls.total).toBe(1);
  });

  it('a pending background retry (the upstream failed at init) never fires', async () => {
    fake.failAlways('any', { kind: 'status', status: 500 });
    const app = await boot();
    expect(app.auth.getStatus().state).toBe('failed');
    const calls = await closeApp(app);
    await pause(QUIET_MS);
    expect(fake.calls.total).toBe(calls);
  });

  it('a refresh that answers after close() is dropped, not cached', async () => {
    const app = await boot();
    fake.failNext('any', { kind: 'delay', ms: 200 });
    const refreshing = app.auth.forceRefresh();
    await fake.waitForCalls(2);
    await closeApp(app);
    await expect(refreshing).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await pause(400); // the fake has answered by now
    expect(app.auth.getStatus()).toMatchObject({ state: 'closed', accessExpiresAt: null });
    expect(app.events.filter((e) => e.type === 'token.refreshed')).toEqual([]);
  });
});

describe('after close() no timer of the package remains', () => {
  let tracker: LibTimers | undefined;
  afterEach(() => tracker?.restore());

  it('the package takes its timers from the global object only, where the tracker sees them', () => {
    expect(libTimerImports()).toEqual([]);
  });

  it.each([
    ['with a token cached and its refresh scheduled', 'scheduled'],
    ['with a background retry pending after failures', 'retrying'],
    ['with a refresh answered 503, and callers waiting on the Get token that followed it (hung)', 'hung'],
  ] as const)('%s', async (_title, situation) => {
    tracker = trackLibTimers();
    if (situation === 'retrying') fake.failAlways('any', { kind: 'status', status: 503 });
    const app = await boot({ retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 1_000 } });
    let settled: Promise<unknown> = Promise.resolve();
    if (situation === 'hung') {
      fake.failNext('any', { kind: 'status', status: 503 }).failAlways('any', { kind: 'hang' });
      app.auth.invalidate();
      settled = Promise.allSettled(Array.from({ length: 20 }, () => app.auth.getAccessToken()));
      // init, the refresh's 503, then Get token at once in the same attempt: it hangs, callers wait on it.
      await fake.waitForCalls(3);
    }
    // The tracker sees the package's timers (with callers waiting: the ref'd timer they hold, too).
    expect(tracker.pending().length).toBeGreaterThan(0);

    await closeApp(app);
    await settled;
    // Only the package's own timers: whatever else this process has armed (Jest, the fake, a previous test or
    // test file) cannot fail this, and any timer of the package still armed does, with where it was created.
    expect(tracker.pending()).toEqual([]);
  });
});

describe('a process using the compiled package exits by itself', () => {
  let pkg: string;

  // lib/ compiled as `npm run build` does, once per content of lib/ for every spec that needs it.
  beforeAll(() => {
    pkg = builtPackage();
  }, 120_000);

  /** Boots the module against our fake in a child `node -e`, optionally closes it, and waits for it to end. */
  function runChild(close: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const script = `
      require('reflect-metadata');
      const { NestFactory } = require('@nestjs/core');
      const { TransferAuthModule, TransferAuthService } = require(${JSON.stringify(pkg)});
      (async () => {
        const app = await NestFactory.createApplicationContext(
          TransferAuthModule.forRoot(JSON.parse(process.env.AUTH_OPTIONS)),
          { logger: false },
        );
        const auth = app.get(TransferAuthService);
        await auth.getAccessToken().catch((e) => console.log('no token:', e.code));
        console.log('state:', auth.getStatus().state);
        if (${close}) await app.close();
        console.log('done');
      })().catch((e) => { console.error('failed:', e && e.code); process.exitCode = 3; });
    `;
    const options = fakeOptions(fake, { ...FAST, retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 100 } });
    const child = spawn(process.execPath, ['-e', script], {
      cwd: ROOT,
      env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules'), AUTH_OPTIONS: JSON.stringify(options) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => {
      // A generous guard, not a timing assertion: a child still alive then would never have exited.
      const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (code) => {
        clearTimeout(guard);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('after close(), with the refresh of a cached token scheduled', async () => {
    const result = await runChild(true);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('state: valid');
    expect(result.stdout).toContain('done');
  });

  it('after close(), with background retries pending (upstream answering 503)', async () => {
    fake.failAlways('any', { kind: 'status', status: 503 });
    const result = await runChild(true);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('no token: UPSTREAM_UNAVAILABLE');
    expect(result.stdout).toContain('done');
  });

  it('even without close(): the schedule is unref’d', async () => {
    const result = await runChild(false);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('state: valid');
    expect(fake.calls.total).toBe(1);
  });
});

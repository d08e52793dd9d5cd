import { randomBytes } from 'node:crypto';
import type { TransferAuthError } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { filter, firstValueFrom } from 'rxjs';
import { createAuthApp, fakeOptions, type AuthApp } from '../support/auth-app';
import { captureAuthError, sleep } from '../support/e2e';
import { SecretGuard } from '../support/secret-guard';

type Failure =
  'throws' | 'throws a string' | 'rejects' | 'rejects with a code' | 'hangs' | 'answers empty' | 'answers a number';

/**
 * A secret manager that fails as told, quoting the secret in what it throws (as a parser error or a
 * careless wrapper would), until `heal()`. Records when it was asked.
 */
class FailingSource {
  readonly asked: number[] = [];
  private healed = false;
  constructor(
    private readonly secret: string,
    private readonly failure: Failure,
    /** Also quoted in what it throws: must show up nowhere either. */
    readonly marker = `vault-said-${randomBytes(12).toString('hex')}`,
  ) {}

  heal(): void {
    this.healed = true;
  }

  readonly provider = (): string | Promise<string> => {
    this.asked.push(performance.now());
    if (this.healed) return this.secret;
    const quote = `${this.marker}: could not parse "${this.secret}"`;
    switch (this.failure) {
      case 'throws':
        throw new Error(quote);
      case 'throws a string':
        throw quote;
      case 'rejects':
        return Promise.reject(new Error(quote));
      case 'rejects with a code':
        return Promise.reject(Object.assign(new Error(quote), { code: 'EACCES' }));
      case 'hangs':
        return new Promise<string>(() => undefined);
      case 'answers empty':
        return '';
      case 'answers a number':
        return 42 as unknown as string;
    }
  };
}

const REQUEST_TIMEOUT_MS = 200;

/** One turn of the event loop (`setImmediate` is left real under the fake clock). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Jest's fake clock for the module's timers and clocks, while sockets and `setImmediate` stay real. */
function useFakeClock(): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
}

/** Awaits `promise`, moving the fake clock on 10 ms a turn meanwhile (a hanging provider's bound). */
async function advanceUntil<T>(promise: Promise<T>): Promise<T> {
  let done = false;
  const settled = promise.finally(() => (done = true));
  settled.catch(() => undefined);
  while (!done) {
    await jest.advanceTimersByTimeAsync(10);
    await turn();
  }
  return settled;
}

/**
 * A provider that fails: callers get SECRET_UNAVAILABLE naming the failure (never a value), the module
 * retries in the background with backoff and never calls the upstream meanwhile, and it recovers by
 * itself once the provider does. Neither the secret nor the provider's own message appears in any log
 * line, event, error or status (test/support/secret-guard.ts).
 */
describe('agentSecret provider failures (e2e)', () => {
  let fake: FakeTransferServer;
  let app: AuthApp | undefined;
  let guard: SecretGuard;

  beforeEach(async () => {
    fake = await new FakeTransferServer({ agentSecret: `test-secret-${randomBytes(16).toString('hex')}` }).start();
    guard = new SecretGuard();
    guard.captureConsole();
  });
  afterEach(async () => {
    jest.useRealTimers();
    jest.restoreAllMocks();
    guard.stopCapturingConsole();
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  it.each<[Failure, string, number[]]>([
    // Backoff 100 ms doubling to 400 ms, "equal jitter" (half fixed, half random; random() is 0.5 here):
    // 75, 150, 300, 300 ms between the end of one attempt and the next. A hanging provider adds its 200 ms.
    ['throws', 'The agentSecret provider failed (Error).', [75, 150, 300, 300]],
    ['throws a string', 'The agentSecret provider failed (it threw a string).', [75, 150, 300, 300]],
    ['rejects', 'The agentSecret provider failed (Error).', [75, 150, 300, 300]],
    ['rejects with a code', 'The agentSecret provider failed (Error EACCES).', [75, 150, 300, 300]],
    ['hangs', `The agentSecret provider did not answer within ${REQUEST_TIMEOUT_MS} ms.`, [275, 350, 500, 500]],
    ['answers empty', 'The agentSecret provider answered an empty string.', [75, 150, 300, 300]],
    ['answers a number', 'The agentSecret provider answered number, not a string.', [75, 150, 300, 300]],
  ])(
    'a provider that %s: SECRET_UNAVAILABLE (%j), retried in the background with backoff, no value anywhere',
    async (failure, message, gaps) => {
      const source = new FailingSource(fake.agentSecret, failure);
      jest.spyOn(Math, 'random').mockReturnValue(0.5);
      useFakeClock();
      // Startup is one attempt; SECRET_UNAVAILABLE does not fail it (logged, retried in the background).
      app = await advanceUntil(
        createAuthApp(
          fakeOptions(fake, {
            agentSecret: source.provider,
            refresh: false,
            requestTimeoutMs: REQUEST_TIMEOUT_MS,
            retry: { baseDelayMs: 100, maxDelayMs: 400 },
          }),
        ),
      );
      guard.watch('app', app);
      expect(source.asked).toHaveLength(1);

      const first = await captureAuthError(app.auth.getAccessToken());
      guard.error('first caller', first);
      expect(first).toMatchObject({ code: 'SECRET_UNAVAILABLE', message });
      expect(first.status).toBeUndefined();
      expect(first.cause).toBeUndefined();

      // Callers meanwhile are answered at once from the backoff: they neither ask the provider nor
      // start anything.
      const refused = await Promise.all(
        Array.from({ length: 100 }, () => captureAuthError(app!.auth.getAccessToken())),
      );
      expect(source.asked).toHaveLength(1);
      refused.forEach((error, i) => guard.error(`caller ${i}`, error));
      expect(new Set(refused.map((e) => `${e.code}: ${e.message}`))).toEqual(
        new Set([`SECRET_UNAVAILABLE: ${message}`]),
      );

      // In the background, with growing gaps.
      await jest.advanceTimersByTimeAsync(gaps.reduce((a, b) => a + b) + 1);
      expect(source.asked).toHaveLength(gaps.length + 1);
      const measured = source.asked.slice(1).map((at, i) => at - (source.asked[i] as number));
      measured.forEach((gap, i) => expect(gap).toBeCloseTo(gaps[i] as number, 3));
      expect(fake.calls.total).toBe(0); // no login without a secret
      expect(app.auth.getStatus()).toMatchObject({ lastError: { code: 'SECRET_UNAVAILABLE', message } });
      const failed = app.events.filter((e) => e.type === 'token.failed');
      expect(failed).toHaveLength(gaps.length + 1); // the startup attempt, then the background ones
      expect(failed.every((e) => e.type === 'token.failed' && e.code === 'SECRET_UNAVAILABLE')).toBe(true);
      expect(failed.filter((e) => e.type === 'token.failed' && e.background)).toHaveLength(gaps.length);
      // Logged once (the same failure again at most once a minute), naming the failure.
      const logged = app.logger.lines.filter((line) => line.includes('SECRET_UNAVAILABLE'));
      expect(logged).toEqual([expect.stringContaining(`Token renewal failed (SECRET_UNAVAILABLE: ${message})`)]);

      // The provider recovers: the background logs in by itself, no caller needed.
      const acquired = firstValueFrom(app.auth.events$.pipe(filter((e) => e.type === 'token.acquired')));
      source.heal();
      while (fake.calls.auth === 0) {
        jest.advanceTimersByTime(10);
        await turn();
      }
      await acquired; // over real sockets, the fake clock standing still
      expect(fake.calls.auth).toBe(1);
      const token = await app.auth.getAccessToken();
      expect(fake.isAccessTokenValid(token)).toBe(true);
      expect(app.logger.lines.at(-2)).toMatch(/^log Token renewal recovered after \d+ s\./);

      jest.useRealTimers();
      await app.close();
      guard.value('status after close', app.auth.getStatus());
      expect(guard.size).toBeGreaterThan(400);
      expect(guard.leaks([fake.agentSecret, source.marker])).toEqual([]);
      // The guard would have seen them: the provider's own message, had it been logged, is found.
      const control = new SecretGuard();
      control.text('the secret', `could not parse "${fake.agentSecret}"`);
      control.text('the message', `${source.marker}: could not parse`);
      expect(control.leaks([fake.agentSecret, source.marker])).toEqual([
        'the secret: secret #0',
        'the message: secret #1',
      ]);
    },
  );

  it('a hanging provider is not waited for at shutdown: waiting callers get SHUTDOWN at once', async () => {
    const source = new FailingSource(fake.agentSecret, 'hangs');
    app = await createAuthApp(
      fakeOptions(fake, { agentSecret: source.provider, fetchOnStartup: false, requestTimeoutMs: 60_000 }),
    );
    guard.watch('app', app);
    const waiting = captureAuthError(app.auth.getAccessToken());
    while (source.asked.length === 0) await sleep(5);
    const closing = performance.now();
    await app.close();
    app = undefined;
    const error: TransferAuthError = await waiting;
    expect(error.code).toBe('SHUTDOWN');
    expect(performance.now() - closing).toBeLessThan(1_000);
    guard.error('waiting caller', error);
    expect(guard.leaks([fake.agentSecret, source.marker])).toEqual([]);
  });

  it('a provider that fails once during a rotation gives way: the failure is reported, the next attempt logs in', async () => {
    let calls = 0;
    const provider = (): string => {
      calls++;
      if (calls === 2) throw new Error(`temporarily unavailable: ${fake.agentSecret}`);
      return fake.agentSecret;
    };
    app = await createAuthApp(
      fakeOptions(fake, { agentSecret: provider, refresh: false, retry: { baseDelayMs: 50, maxDelayMs: 50 } }),
    );
    guard.watch('app', app);
    const error = await captureAuthError(app.auth.forceRefresh());
    guard.error('forced', error);
    expect(error).toMatchObject({ code: 'SECRET_UNAVAILABLE', message: 'The agentSecret provider failed (Error).' });
    expect(fake.calls.auth).toBe(1); // no login with no secret
    // The old token is kept: a provider failure does not drop a usable token.
    expect(fake.isAccessTokenValid(await app.auth.getAccessToken())).toBe(true);
    const token = await app.auth.forceRefresh();
    expect(fake.isAccessTokenValid(token)).toBe(true);
    expect(fake.calls.auth).toBe(2);
    await app.close();
    expect(guard.leaks([fake.agentSecret])).toEqual([]);
  });
});

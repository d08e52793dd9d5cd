import { isAxiosError } from 'axios';
import { AGENTS_PATH, TransferAuthError, TransferHttpService } from 'nestjs-freedompay-transfer-auth';
import { firstValueFrom } from 'rxjs';
import { createAuthApp, fakeOptions, trackFakesAndApps, type AuthApp } from '../support/auth-app';
import { sleep } from '../support/e2e';

/**
 * Regression tests, over real sockets: however many callers there are, and whatever they do, the
 * upstream hears no more than the failure policy allows. 0.1.0 started an attempt (with its retries)
 * for every caller that found no usable token, and a renewal for every 401.
 */
describe('caller storms do not reach the upstream (e2e)', () => {
  const { fakeServer, track } = trackFakesAndApps();
  afterEach(() => jest.restoreAllMocks());

  async function boot(...args: Parameters<typeof fakeOptions>): Promise<AuthApp> {
    return track(await createAuthApp(fakeOptions(...args)));
  }

  it('20 callers hammering getAccessToken() during 2 s of 503s make exactly as many upstream calls as an idle app', async () => {
    // Waits from 600 ms, doubling, with the jitter at its middle (random 0.5: 3/4 of each ceiling), so that
    // the two apps' counts can be compared exact, not within one. The first renewal at t = 0 makes its
    // attempts at 0, 450 and 1,350 ms; it fails, and the background's next renewal makes its first attempt
    // 450 ms later, at 1,800 ms, its second at 2,250 ms. A 2 s window holds exactly 4 calls, with about
    // 200 ms to spare on either side (each call adds its own few ms).
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const retry = { maxAttempts: 3, baseDelayMs: 600, maxDelayMs: 5_000 };
    const WINDOW_MS = 2_000;
    const idleFake = await fakeServer();
    const busyFake = await fakeServer();
    const idle = await boot(idleFake, { fetchOnStartup: false, retry });
    const busy = await boot(busyFake, { fetchOnStartup: false, retry });
    for (const fake of [idleFake, busyFake]) fake.failAlways('any', { kind: 'status', status: 503 });

    // t = 0: one caller each finds no token and starts the first attempt.
    const end = Date.now() + WINDOW_MS;
    const firsts = await Promise.allSettled([idle.auth.getAccessToken(), busy.auth.getAccessToken()]);
    expect(firsts.map((r) => r.status)).toEqual(['rejected', 'rejected']);

    // Then the idle app is left alone, while 20 callers of the busy one ask again at every turn of the loop.
    const outcomes = new Map<string, number>();
    const hammer = async (): Promise<void> => {
      while (Date.now() < end) {
        const outcome = await busy.auth.getAccessToken().then(
          () => 'token',
          (error: unknown) =>
            error instanceof TransferAuthError ? `${error.code} ${error.status ?? ''}` : String(error),
        );
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        await new Promise<void>((resolve) => setImmediate(resolve)); // let timers and sockets run
      }
    };
    // Counted at the window's end: a caller may then still wait for the renewal it joined.
    const counted = new Promise<[number, number]>((resolve) =>
      setTimeout(() => resolve([idleFake.calls.total, busyFake.calls.total]), end - Date.now()),
    );
    await Promise.all(Array.from({ length: 20 }, hammer));
    const [idleCalls, busyCalls] = await counted;

    expect([...outcomes.keys()]).toEqual(['UPSTREAM_UNAVAILABLE 503']);
    const asked = outcomes.get('UPSTREAM_UNAVAILABLE 503') ?? 0;
    expect(asked).toBeGreaterThan(200); // really hammering (over 1,000 on an idle machine; under load, fewer turns)
    expect(idleCalls).toBe(4);
    expect(busyCalls).toBe(idleCalls);
  });

  it('50 sequential Transfer calls to an endpoint answering 401: one renewal, at most 2 auth calls, within 5 s', async () => {
    const fake = await fakeServer();
    const { app, events } = await boot(fake); // fetchOnStartup: one Get token
    const http = app.get(TransferHttpService);
    fake.failAlways('agents', { kind: 'status', status: 401 }); // a permission problem: every token is refused
    const renewalCalls = (): number => fake.calls.auth + fake.calls.refresh - 1;

    const started = Date.now();
    const statuses: unknown[] = [];
    for (let i = 0; i < 50; i++) {
      statuses.push(
        await firstValueFrom(http.get(AGENTS_PATH)).then(
          (response) => response.status,
          (error: unknown) => (isAxiosError(error) ? error.response?.status : String(error)),
        ),
      );
    }
    const elapsed = Date.now() - started;

    // The 401 reaches the caller (as the AxiosError), after one retry with a fresh token per request.
    expect(statuses).toEqual(Array(50).fill(401));
    expect(fake.calls.agents).toBe(100);
    // The claim is about a 5 s window, the minimum spacing of 401-driven renewals: the storm fit in it.
    expect(elapsed).toBeLessThan(5_000);
    // The first 401 renews (here through the refresh token); the 49 that follow within the spacing are
    // ignored and the token stays cached. 0.1.0 made one renewal per request: 50.
    expect(renewalCalls()).toBeGreaterThanOrEqual(1);
    expect(renewalCalls()).toBeLessThanOrEqual(2);
    expect(events.filter((e) => e.type === 'token.invalidated')).toHaveLength(1);
  });

  it('rejected credentials, a caller every 100 ms for 4.5 s: logins follow the doubling cool-down, one error line', async () => {
    const fake = await fakeServer();
    const { auth, logger, events } = await boot(fake, { agentSecret: 'not-the-secret', fetchOnStartup: false });
    // After the k-th rejected login no login for 2^(k-1) s, and none in the background: the (k+1)-th comes
    // no earlier than 1 + 2 + ... + 2^(k-1) = 2^k - 1 s after the first. In W seconds that is at most
    // 1 + floor(log2(W + 1)) logins: 3 in 4.5 s (the 4th would be at 7 s). A caller every 100 ms finds
    // each cool-down over within 100 ms (the 3rd login by about 3.2 s), so it is exactly that many.
    const WINDOW_MS = 4_500;
    const maxLogins = 1 + Math.floor(Math.log2(WINDOW_MS / 1_000 + 1));

    const end = Date.now() + WINDOW_MS;
    const outcomes: string[] = [];
    while (Date.now() < end) {
      outcomes.push(
        await auth.getAccessToken().then(
          () => 'token',
          (error: unknown) => (error instanceof TransferAuthError ? error.code : String(error)),
        ),
      );
      await sleep(100);
    }
    const logins = fake.calls.auth;

    expect(outcomes.length).toBeGreaterThan(30);
    expect(new Set(outcomes)).toEqual(new Set(['INVALID_CREDENTIALS']));
    expect(maxLogins).toBe(3);
    expect(logins).toBe(maxLogins);
    expect(fake.calls.total).toBe(logins); // nothing else: no refresh token was ever held
    expect(events.filter((e) => e.type === 'token.failed')).toHaveLength(logins);
    // The same failure is logged once, then at most once a minute: one line in 4.5 s (at most 2 allowed).
    const errorLines = logger.lines.filter((line) => line.startsWith('error'));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain('INVALID_CREDENTIALS');
  });
});

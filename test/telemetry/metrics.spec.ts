import { DataPointType, type MetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { AGENTS_PATH, TransferHttpService } from 'nestjs-freedompay-transfer-auth';
import { firstValueFrom } from 'rxjs';
import { createAuthApp, fakeOptions } from '../support/auth-app';
import { captureAuthError, expectAuthError, secretsOf, sleep, waitFor } from '../support/e2e';
import { SecretGuard } from '../support/secret-guard';
import { A, M, telemetryRig, type Collected } from './support';

/**
 * The metrics of issue 12, read with an in-memory reader from the real module against the fake upstream
 * over real sockets: names, units, kinds, attributes and values after scripted scenarios.
 */
describe('OpenTelemetry metrics (e2e)', () => {
  const rig = telemetryRig();
  const { fakeServer, boot, store } = rig;

  /** A counter: a monotonic sum with this unit. */
  function expectCounter(c: Collected, name: string, unit: string): void {
    const metric = c.metric(name);
    expect(metric.dataPointType).toBe(DataPointType.SUM);
    expect((metric as SumMetricData).isMonotonic).toBe(true);
    expect(metric.descriptor.unit).toBe(unit);
    expect(metric.descriptor.description).not.toBe('');
  }

  function expectKind(metric: MetricData, kind: DataPointType, unit: string): void {
    expect(metric.dataPointType).toBe(kind);
    expect(metric.descriptor.unit).toBe(unit);
    expect(metric.descriptor.description).not.toBe('');
  }

  /** Every point, as `{ attributes, value }` (counters and gauges). */
  function pointsOf(c: Collected, name: string): { attributes: unknown; value: unknown }[] {
    return c.points(name).map((p) => ({ attributes: p.attributes, value: p.value }));
  }

  /** The points of a counter that counted something: without the series that start at 0 for the alerts. */
  function counted(c: Collected, name: string): { attributes: unknown; value: unknown }[] {
    return pointsOf(c, name).filter((p) => p.value !== 0);
  }

  describe('renewals', () => {
    it('renewal ok: one login counted, its duration in seconds, time left on both tokens ~ the TTLs', async () => {
      const fake = await fakeServer({ accessTtlMs: 3_600_000, refreshTtlMs: 86_400_000 });
      const { auth } = await boot(fakeOptions(fake)); // fetchOnStartup: one Get token
      await auth.getAccessToken();
      const c = await rig.harness.collect();

      expectCounter(c, M.renewals, '{renewal}');
      expect(counted(c, M.renewals)).toEqual([
        { attributes: { [A.name]: 'default', [A.kind]: 'login', [A.outcome]: 'ok' }, value: 1 },
      ]);

      expectKind(c.metric(M.renewalDuration), DataPointType.HISTOGRAM, 's');
      const duration = c.histogram(M.renewalDuration, { [A.kind]: 'login', [A.outcome]: 'ok' });
      expect(duration.count).toBe(1);
      // Seconds, not milliseconds: a loopback call takes well under a second.
      expect(duration.sum).toBeGreaterThan(0);
      expect(duration.sum).toBeLessThan(2);
      expect(duration.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
      expect(c.points(M.renewalDuration)[0]?.attributes).toEqual({
        [A.name]: 'default',
        [A.kind]: 'login',
        [A.outcome]: 'ok',
      });

      expectKind(c.metric(M.accessTimeLeft), DataPointType.GAUGE, 's');
      expectKind(c.metric(M.refreshTimeLeft), DataPointType.GAUGE, 's');
      const [access] = c.gauge(M.accessTimeLeft);
      const [refresh] = c.gauge(M.refreshTimeLeft);
      expect(c.points(M.accessTimeLeft).map((p) => p.attributes)).toEqual([{ [A.name]: 'default' }]);
      expect(c.points(M.refreshTimeLeft).map((p) => p.attributes)).toEqual([{ [A.name]: 'default' }]);
      expect(access).toBeGreaterThan(3_590);
      expect(access).toBeLessThanOrEqual(3_600);
      expect(refresh).toBeGreaterThan(86_390);
      expect(refresh).toBeLessThanOrEqual(86_400);

      // Nothing else happened: no invalidation, no store.
      expect(c.points(M.invalidations)).toEqual([]);
      expect(c.points(M.degraded)).toEqual([]);
      expect(c.points(M.locks)).toEqual([]);
      expect(c.points(M.storeErrors)).toEqual([]);
      expect(c.points(M.adoptions)).toEqual([]);
    });

    it('time left is not reported before the first token (nothing failed yet), and counts down between collections', async () => {
      const fake = await fakeServer({ accessTtlMs: 600_000, refreshTtlMs: 1_200_000 });
      const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
      let c = await rig.harness.collect();
      expect(c.gauge(M.accessTimeLeft)).toEqual([]);
      expect(c.gauge(M.refreshTimeLeft)).toEqual([]);

      await auth.getAccessToken();
      c = await rig.harness.collect();
      const [first] = c.gauge(M.accessTimeLeft);
      expect(first).toBeGreaterThan(590);
      expect(first).toBeLessThanOrEqual(600);
      expect(c.gauge(M.refreshTimeLeft)[0]).toBeGreaterThan(1_190);
      await sleep(60);
      const [later] = (await rig.harness.collect()).gauge(M.accessTimeLeft);
      expect(later).toBeLessThan(first as number);
      expect(later).toBeGreaterThan((first as number) - 5);
    });

    it('refresh ok, then a revoked refresh token: refresh INVALID_CREDENTIALS and a login ok', async () => {
      const fake = await fakeServer();
      const { auth } = await boot(fakeOptions(fake)); // login ok
      const first = await auth.getAccessToken();
      const second = await auth.forceRefresh(); // refresh ok
      expect(second).not.toBe(first);
      fake.revokeRefreshTokens();
      const third = await auth.forceRefresh(); // refresh refused, then Get token
      expect(third).not.toBe(second);
      expect(fake.calls).toMatchObject({ auth: 2, refresh: 2 });

      const c = await rig.harness.collect();
      expect(counted(c, M.renewals)).toEqual(
        expect.arrayContaining([
          { attributes: { [A.name]: 'default', [A.kind]: 'login', [A.outcome]: 'ok' }, value: 2 },
          { attributes: { [A.name]: 'default', [A.kind]: 'refresh', [A.outcome]: 'ok' }, value: 1 },
          {
            attributes: { [A.name]: 'default', [A.kind]: 'refresh', [A.outcome]: 'INVALID_CREDENTIALS' },
            value: 1,
          },
        ]),
      );
      expect(counted(c, M.renewals)).toHaveLength(3);
      expect(c.histogram(M.renewalDuration, { [A.kind]: 'login', [A.outcome]: 'ok' }).count).toBe(2);
      expect(c.histogram(M.renewalDuration, { [A.kind]: 'refresh', [A.outcome]: 'ok' }).count).toBe(1);
      expect(c.histogram(M.renewalDuration, { [A.kind]: 'refresh', [A.outcome]: 'INVALID_CREDENTIALS' }).count).toBe(1);
      // The refreshed token's time left is read from the new pair.
      expect(c.gauge(M.accessTimeLeft)[0]).toBeGreaterThan(3_590);
    });

    it('outage (503): the login is counted UPSTREAM_UNAVAILABLE; a caller refused at once waits 0 s', async () => {
      const fake = await fakeServer();
      // A long backoff: the second caller is refused at once, and no background retry runs meanwhile. One
      // attempt a renewal (a second would come 2.5-5 s later): the attempts are counted in the next test.
      const { auth } = await boot(
        fakeOptions(fake, {
          fetchOnStartup: false,
          retry: { maxAttempts: 1, baseDelayMs: 5_000, maxDelayMs: 10_000 },
        }),
      );
      fake.failAlways('auth', { kind: 'status', status: 503 });
      expectAuthError(await captureAuthError(auth.getAccessToken()), 'UPSTREAM_UNAVAILABLE');
      expectAuthError(await captureAuthError(auth.getAccessToken()), 'UPSTREAM_UNAVAILABLE');
      expect(fake.calls.auth).toBe(1); // the second was refused without a call

      const c = await rig.harness.collect();
      expect(counted(c, M.renewals)).toEqual([
        { attributes: { [A.name]: 'default', [A.kind]: 'login', [A.outcome]: 'UPSTREAM_UNAVAILABLE' }, value: 1 },
      ]);
      // Both callers got an error: counted by outcome, for the callers-refused alert.
      expectCounter(c, M.callerErrors, '{caller}');
      expect(counted(c, M.callerErrors)).toEqual([
        { attributes: { [A.name]: 'default', [A.outcome]: 'UPSTREAM_UNAVAILABLE' }, value: 2 },
      ]);
      expect(c.histogram(M.renewalDuration, { [A.outcome]: 'UPSTREAM_UNAVAILABLE' }).count).toBe(1);

      expectKind(c.metric(M.waitDuration), DataPointType.HISTOGRAM, 's');
      expect(c.points(M.waitDuration).map((p) => p.attributes)).toEqual([
        { [A.name]: 'default', [A.outcome]: 'UPSTREAM_UNAVAILABLE' },
      ]);
      const waits = c.histogram(M.waitDuration, { [A.outcome]: 'UPSTREAM_UNAVAILABLE' });
      expect(waits.count).toBe(2); // the caller who waited for the failed call, and the one refused
      expect(waits.min).toBe(0);
      expect(waits.max).toBeGreaterThan(0);
      // 0 has a bucket of its own: a refusal is told apart from a short wait.
      expect(waits.boundaries[0]).toBe(0);
      expect(waits.counts[0]).toBe(1);
      // No token: time left 0, nothing ok.
      expect(c.gauge(M.accessTimeLeft)).toEqual([0]);
      expect(c.points(M.waitDuration, { [A.outcome]: 'ok' })).toEqual([]);
    });

    it('outage (connection reset): each attempt counted UPSTREAM_UNAVAILABLE, then the recovery counted ok', async () => {
      const fake = await fakeServer();
      const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
      fake.failNext('auth', { kind: 'reset' }, 3); // the renewal's 3 attempts
      expectAuthError(await captureAuthError(auth.getAccessToken()), 'UPSTREAM_UNAVAILABLE');
      const c1 = await rig.harness.collect();
      expect(c1.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'UPSTREAM_UNAVAILABLE' })).toBe(3);
      expect(c1.sum(M.renewals, { [A.outcome]: 'ok' })).toBe(0);
      expect(c1.histogram(M.waitDuration, { [A.outcome]: 'UPSTREAM_UNAVAILABLE' }).count).toBe(1); // one caller

      // forceRefresh() skips the backoff (or joins the background retry that fakeOptions' 10-50 ms backoff starts).
      await expect(auth.forceRefresh()).resolves.toMatch(/^fake-at-/);
      const c2 = await rig.harness.collect();
      expect(c2.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'ok' })).toBe(1);
      expect(c2.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'UPSTREAM_UNAVAILABLE' })).toBe(3);
    });

    it('a blip the attempts absorb: the failed attempt and the good one are counted; the caller waited ok', async () => {
      const fake = await fakeServer();
      const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
      fake.failNext('auth', { kind: 'reset' });
      expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
      const c = await rig.harness.collect();
      expect(c.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'UPSTREAM_UNAVAILABLE' })).toBe(1);
      expect(c.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'ok' })).toBe(1);
      expect(c.histogram(M.waitDuration, { [A.outcome]: 'ok' }).count).toBe(1);
      expect(c.points(M.waitDuration, { [A.outcome]: 'UPSTREAM_UNAVAILABLE' })).toEqual([]);
      expect(c.sum(M.callerErrors)).toBe(0); // the caller got its token: no caller error
    });

    it('rejected credentials: login counted INVALID_CREDENTIALS; a caller refused in the cool-down waits 0 s', async () => {
      const fake = await fakeServer();
      const { auth } = await boot(
        fakeOptions(fake, { fetchOnStartup: false, agentSecret: 'test-secret-wrong-0123456789abcdef' }),
      );
      expectAuthError(await captureAuthError(auth.getAccessToken()), 'INVALID_CREDENTIALS');
      expectAuthError(await captureAuthError(auth.getAccessToken()), 'INVALID_CREDENTIALS'); // cool-down: 1 s
      expect(fake.calls.auth).toBe(1);

      const c = await rig.harness.collect();
      expect(counted(c, M.renewals)).toEqual([
        { attributes: { [A.name]: 'default', [A.kind]: 'login', [A.outcome]: 'INVALID_CREDENTIALS' }, value: 1 },
      ]);
      expect(counted(c, M.callerErrors)).toEqual([
        { attributes: { [A.name]: 'default', [A.outcome]: 'INVALID_CREDENTIALS' }, value: 2 },
      ]);
      expect(c.histogram(M.renewalDuration, { [A.outcome]: 'INVALID_CREDENTIALS' }).count).toBe(1);
      const waits = c.histogram(M.waitDuration, { [A.outcome]: 'INVALID_CREDENTIALS' });
      expect(waits.count).toBe(2);
      expect(waits.min).toBe(0);
      expect(waits.max).toBeGreaterThan(0);
    });

    it('rejected credentials at startup: the init fails, the login is counted, and no gauge is left behind', async () => {
      const fake = await fakeServer();
      await expect(
        createAuthApp(fakeOptions(fake, { agentSecret: 'test-secret-wrong-0123456789abcdef' })),
      ).rejects.toThrow(/rejected the agent credentials/);
      const c = await rig.harness.collect();
      expect(c.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'INVALID_CREDENTIALS' })).toBe(1);
      expect(c.points(M.accessTimeLeft)).toEqual([]);
      expect(c.points(M.refreshTimeLeft)).toEqual([]);
    });
  });

  describe('invalidations and waits', () => {
    it('a 401 storm: one invalidate drops the token, the rest are stale; another within 5 s is spaced', async () => {
      const fake = await fakeServer();
      const { auth } = await boot(fakeOptions(fake));
      const refused = await auth.getAccessToken();
      for (let i = 0; i < 20; i++) auth.invalidate(refused);
      const replacement = await auth.getAccessToken();
      expect(replacement).not.toBe(refused);
      auth.invalidate(replacement); // refused at once too: not renewed again so soon
      await expect(auth.getAccessToken()).resolves.toBe(replacement);

      const c = await rig.harness.collect();
      expectCounter(c, M.invalidations, '{invalidation}');
      const byOutcome = Object.fromEntries(
        c.points(M.invalidations).map((p) => [String(p.attributes[A.outcome]), p.value]),
      );
      expect(byOutcome).toEqual({ dropped: 1, stale: 19, spaced: 1 });
      for (const point of c.points(M.invalidations)) {
        expect(Object.keys(point.attributes).sort()).toEqual([A.name, A.outcome].sort());
        expect(point.attributes[A.name]).toBe('default');
      }
      // One renewal for the whole storm (with the refresh token).
      expect(c.sum(M.renewals)).toBe(2);
      expect(c.sum(M.renewals, { [A.kind]: 'refresh', [A.outcome]: 'ok' })).toBe(1);
    });

    it('a Transfer call answered 401 (TransferHttpService): the token is dropped once and the retry succeeds', async () => {
      const fake = await fakeServer();
      const { app } = await boot(fakeOptions(fake));
      fake.revokeAccessTokens(); // the cached token is refused from now on
      const response = await firstValueFrom(app.get(TransferHttpService).get(AGENTS_PATH));
      expect(response.status).toBe(200);
      expect(fake.calls.agents).toBe(2);

      const c = await rig.harness.collect();
      expect(pointsOf(c, M.invalidations)).toEqual([
        { attributes: { [A.name]: 'default', [A.outcome]: 'dropped' }, value: 1 },
      ]);
      expect(c.sum(M.renewals, { [A.kind]: 'refresh', [A.outcome]: 'ok' })).toBe(1);
      // The retry waited for the renewal the 401 started.
      expect(c.histogram(M.waitDuration, { [A.outcome]: 'ok' }).count).toBeGreaterThanOrEqual(1);
    });

    it('N concurrent callers with no token: N waits recorded, ok, each > 0, one upstream call', async () => {
      const fake = await fakeServer();
      const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
      fake.failNext('auth', { kind: 'delay', ms: 150 });
      const N = 8;
      const tokens = await Promise.all(Array.from({ length: N }, () => auth.getAccessToken()));
      expect(new Set(tokens).size).toBe(1);
      expect(fake.calls.auth).toBe(1);

      let c = await rig.harness.collect();
      expect(c.points(M.waitDuration).map((p) => p.attributes)).toEqual([{ [A.name]: 'default', [A.outcome]: 'ok' }]);
      const waits = c.histogram(M.waitDuration, { [A.outcome]: 'ok' });
      expect(waits.count).toBe(N);
      expect(waits.min).toBeGreaterThanOrEqual(0.1); // the upstream held the call 150 ms
      expect(waits.max).toBeLessThan(5);
      expect(waits.sum).toBeGreaterThanOrEqual(N * 0.1);
      expect(c.histogram(M.renewalDuration, { [A.kind]: 'login', [A.outcome]: 'ok' }).sum).toBeGreaterThanOrEqual(0.1);

      // Cached calls do not wait, and are not recorded.
      for (let i = 0; i < 50; i++) await auth.getAccessToken();
      c = await rig.harness.collect();
      expect(c.histogram(M.waitDuration, { [A.outcome]: 'ok' }).count).toBe(N);
    });
  });

  describe('attributes', () => {
    it('every point carries the registration name; the agent id only with agentIdAttribute: true; no secret', async () => {
      const fake = await fakeServer();
      const unnamed = await boot(fakeOptions(fake));
      const billing = await boot(fakeOptions(fake, { telemetry: { agentIdAttribute: false } }), 'billing');
      const payouts = await boot(fakeOptions(fake, { telemetry: { agentIdAttribute: true } }), 'payouts');
      for (const { auth } of [unnamed, billing, payouts]) {
        const token = await auth.getAccessToken();
        auth.invalidate(token);
        auth.invalidate(token);
        await auth.getAccessToken();
        await auth.forceRefresh();
      }
      fake.failNext('auth', { kind: 'status', status: 500 }, 3);
      fake.failNext('refresh', { kind: 'status', status: 500 });
      // Failures carry the same attributes: refresh 500, then the fallback Get token's 3 attempts, 500.
      expectAuthError(await captureAuthError(payouts.auth.forceRefresh()), 'UPSTREAM_UNAVAILABLE');
      const c = await rig.harness.collect();

      const names = ['default', 'billing', 'payouts'];
      for (const metric of [M.renewals, M.renewalDuration, M.waitDuration, M.invalidations, M.accessTimeLeft]) {
        for (const name of names) {
          expect({ metric, name, reported: c.points(metric, { [A.name]: name }).length > 0 }).toEqual({
            metric,
            name,
            reported: true,
          });
        }
      }
      const all = c.allPoints();
      expect(all.length).toBeGreaterThan(15);
      for (const { metric, attributes } of all) {
        const name = attributes[A.name];
        expect({ metric, name }).toEqual({ metric, name: expect.stringMatching(/^(default|billing|payouts)$/) });
        if (name === 'payouts')
          expect({ metric, agentId: attributes[A.agentId] }).toEqual({ metric, agentId: fake.agentId });
        else expect({ metric, hasAgentId: A.agentId in attributes }).toEqual({ metric, hasAgentId: false });
      }

      const guard = new SecretGuard();
      guard.value('metric points', all);
      guard.value(
        'metric descriptors',
        c.metrics.map((m) => m.descriptor),
      );
      expect(guard.leaks(secretsOf(fake))).toEqual([]);
      expect(JSON.stringify(all)).not.toContain(fake.agentSecret);
    });

    it('telemetry: false records nothing (while a registration beside it does)', async () => {
      const fake = await fakeServer();
      const quiet = await boot(fakeOptions(fake, { telemetry: false }), 'quiet');
      const loud = await boot(fakeOptions(fake), 'loud');
      for (const { auth } of [quiet, loud]) {
        const token = await auth.getAccessToken();
        auth.invalidate(token);
        await auth.getAccessToken();
        await auth.forceRefresh();
      }
      const c = await rig.harness.collect();
      expect(c.points(M.renewals, { [A.name]: 'loud' }).length).toBeGreaterThan(0);
      expect(c.allPoints().filter((p) => p.attributes[A.name] !== 'loud')).toEqual([]);
      await rig.harness.tracerProvider.forceFlush();
      const spans = rig.harness.spans();
      expect(spans.filter((s) => s.attributes[A.name] === 'loud').length).toBeGreaterThan(0);
      expect(spans.filter((s) => s.attributes[A.name] !== 'loud')).toEqual([]);
    });

    it('gauges report nothing once the app is shut down; counters keep their totals', async () => {
      const fake = await fakeServer();
      const app = await boot(fakeOptions(fake, { store: store() }));
      let c = await rig.harness.collect();
      expect(c.gauge(M.accessTimeLeft)).toHaveLength(1);
      expect(c.gauge(M.refreshTimeLeft)).toHaveLength(1);
      expect(c.gauge(M.degraded)).toEqual([0]);
      c = await rig.harness.collect(); // read again: still there while the app runs
      expect(c.gauge(M.accessTimeLeft)).toHaveLength(1);
      await rig.close(app);
      c = await rig.harness.collect();
      expect(c.points(M.accessTimeLeft)).toEqual([]);
      expect(c.points(M.refreshTimeLeft)).toEqual([]);
      expect(c.points(M.degraded)).toEqual([]);
      expect(c.sum(M.renewals, { [A.kind]: 'login', [A.outcome]: 'ok' })).toBe(1);
    });
  });

  describe('with a shared store', () => {
    it('a renewal under the lock: lock acquired, no store error, degraded 0', async () => {
      const fake = await fakeServer();
      const shared = store();
      await boot(fakeOptions(fake, { store: shared }));
      expect(shared.size).toBe(1);
      const c = await rig.harness.collect();
      expectCounter(c, M.locks, '{attempt}');
      expect(pointsOf(c, M.locks)).toEqual([
        { attributes: { [A.name]: 'default', [A.outcome]: 'acquired' }, value: 1 },
      ]);
      expect(c.points(M.storeErrors)).toEqual([]);
      expect(c.points(M.adoptions)).toEqual([]);
      expectKind(c.metric(M.degraded), DataPointType.GAUGE, '1');
      expect(pointsOf(c, M.degraded)).toEqual([{ attributes: { [A.name]: 'default' }, value: 0 }]);
    });

    it('a second app sharing the store adopts the first one’s token: adoptions 1 in its registration', async () => {
      const fake = await fakeServer();
      const shared = store();
      const first = await boot(fakeOptions(fake, { store: shared }), 'first');
      const second = await boot(fakeOptions(fake, { store: shared }), 'second');
      expect(await second.auth.getAccessToken()).toBe(await first.auth.getAccessToken());
      expect(fake.calls.auth).toBe(1);

      const c = await rig.harness.collect();
      expectCounter(c, M.adoptions, '{token}');
      expect(pointsOf(c, M.adoptions)).toEqual([{ attributes: { [A.name]: 'second' }, value: 1 }]);
      expect(c.sum(M.renewals, { [A.name]: 'second' })).toBe(0);
      expect(c.sum(M.renewals, { [A.name]: 'first', [A.kind]: 'login', [A.outcome]: 'ok' })).toBe(1);
      // The adopted token's time left is reported by the second app too.
      expect(c.gauge(M.accessTimeLeft, { [A.name]: 'second' })[0]).toBeGreaterThan(3_590);
    });

    it('a token another app renews later is adopted when the store says it changed (watch)', async () => {
      const fake = await fakeServer();
      const shared = store();
      const first = await boot(fakeOptions(fake, { store: shared }), 'first');
      const second = await boot(fakeOptions(fake, { store: shared }), 'second'); // adopts at startup
      let c = await rig.harness.collect();
      expect(c.sum(M.adoptions, { [A.name]: 'second' })).toBe(1);

      const renewed = await first.auth.forceRefresh();
      const fingerprint = first.auth.getStatus().accessTokenFingerprint;
      await waitFor(() => second.auth.getStatus().accessTokenFingerprint === fingerprint, 'the second app adopting');
      expect(await second.auth.getAccessToken()).toBe(renewed);
      c = await rig.harness.collect();
      expect(pointsOf(c, M.adoptions)).toEqual([{ attributes: { [A.name]: 'second' }, value: 2 }]);
      expect(c.sum(M.renewals, { [A.name]: 'second' })).toBe(0);
      expect(c.sum(M.renewals, { [A.name]: 'first', [A.kind]: 'refresh', [A.outcome]: 'ok' })).toBe(1);
    });

    it('another holder has the lock: busy, then the holder’s token is adopted', async () => {
      const fake = await fakeServer();
      const shared = store();
      const first = await boot(fakeOptions(fake, { store: shared, fetchOnStartup: false }), 'first');
      const second = await boot(fakeOptions(fake, { store: shared, fetchOnStartup: false }), 'second');
      fake.failNext('auth', { kind: 'delay', ms: 300 });
      const pending = first.auth.getAccessToken();
      await fake.waitForCalls(1, 'auth'); // the first holds the lock, its login in flight
      expect(shared.locked).toBe(true);
      const [a, b] = await Promise.all([pending, second.auth.getAccessToken()]);
      expect(b).toBe(a);
      expect(fake.calls.auth).toBe(1);

      const c = await rig.harness.collect();
      expect(c.sum(M.locks, { [A.name]: 'first', [A.outcome]: 'acquired' })).toBe(1);
      expect(c.sum(M.locks, { [A.name]: 'second', [A.outcome]: 'busy' })).toBeGreaterThanOrEqual(1);
      expect(c.sum(M.locks, { [A.name]: 'second', [A.outcome]: 'acquired' })).toBe(0);
      expect(c.sum(M.locks, { [A.outcome]: 'down' })).toBe(0);
      expect(pointsOf(c, M.adoptions)).toEqual([{ attributes: { [A.name]: 'second' }, value: 1 }]);
      expect(c.histogram(M.waitDuration, { [A.name]: 'second', [A.outcome]: 'ok' }).count).toBe(1);
    });

    it('a lock call that throws: lock down, a store error by operation, degraded 1; 0 once it answers', async () => {
      const fake = await fakeServer();
      const shared = store();
      shared.fail.add('lock');
      const { auth } = await boot(fakeOptions(fake, { store: shared }));
      await expect(auth.getAccessToken()).resolves.toMatch(/^fake-at-/); // renewed alone
      expect(shared.calls.write).toBe(0);

      let c = await rig.harness.collect();
      expect(pointsOf(c, M.locks)).toEqual([{ attributes: { [A.name]: 'default', [A.outcome]: 'down' }, value: 1 }]);
      expectCounter(c, M.storeErrors, '{error}');
      expect(pointsOf(c, M.storeErrors)).toEqual([
        {
          attributes: { [A.name]: 'default', [A.storeOperation]: 'lock', [A.errorType]: 'StoreUnavailableError' },
          value: 1,
        },
      ]);
      expect(c.gauge(M.degraded)).toEqual([1]);

      shared.fail.clear();
      await auth.forceRefresh();
      c = await rig.harness.collect();
      expect(c.gauge(M.degraded)).toEqual([0]);
      expect(c.sum(M.locks, { [A.outcome]: 'acquired' })).toBe(1);
      expect(c.sum(M.storeErrors)).toBe(1);
      expect(shared.size).toBe(1);
    });

    it('store errors by operation: a failed write, then a failed read', async () => {
      const fake = await fakeServer();
      const shared = store();
      shared.fail.add('write');
      const { auth } = await boot(fakeOptions(fake, { store: shared }));
      let c = await rig.harness.collect();
      expect(c.sum(M.locks, { [A.outcome]: 'acquired' })).toBe(1);
      expect(pointsOf(c, M.storeErrors)).toEqual([
        {
          attributes: { [A.name]: 'default', [A.storeOperation]: 'write', [A.errorType]: 'StoreUnavailableError' },
          value: 1,
        },
      ]);
      expect(c.gauge(M.degraded)).toEqual([1]);

      shared.fail.clear();
      shared.fail.add('read');
      await auth.forceRefresh();
      c = await rig.harness.collect();
      expect(c.sum(M.storeErrors, { [A.storeOperation]: 'read', [A.errorType]: 'StoreUnavailableError' })).toBe(1);
      expect(c.sum(M.storeErrors, { [A.storeOperation]: 'write' })).toBe(1);
      expect(c.gauge(M.degraded)).toEqual([1]);
    });

    it('a store that hangs past the renewal budget (1.5 s): a read error of type timeout, degraded 1, then 0 when it answers again', async () => {
      const fake = await fakeServer();
      const shared = store();
      shared.hang.add('read');
      const started = Date.now();
      const { auth } = await boot(fakeOptions(fake, { store: shared })); // the startup read waits out 1.5 s
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
      await expect(auth.getAccessToken()).resolves.toMatch(/^fake-at-/);
      // The renewal went on without the store at 1.5 s; the store itself is judged on its own bound (2 s).
      await new Promise((resolve) => setTimeout(resolve, 2_100 - (Date.now() - started)));

      let c = await rig.harness.collect();
      expect(pointsOf(c, M.storeErrors)).toEqual([
        { attributes: { [A.name]: 'default', [A.storeOperation]: 'read', [A.errorType]: 'timeout' }, value: 1 },
      ]);
      expect(c.gauge(M.degraded)).toEqual([1]);

      shared.hang.clear();
      shared.releaseHung();
      await auth.forceRefresh();
      c = await rig.harness.collect();
      expect(c.gauge(M.degraded)).toEqual([0]);
      expect(c.sum(M.storeErrors)).toBe(1);
    });
  });
});

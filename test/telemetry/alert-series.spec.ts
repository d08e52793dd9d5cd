import { DataPointType } from '@opentelemetry/sdk-metrics';
import { INITIAL_OUTCOMES } from '../../lib/telemetry/otel-telemetry';
import { TokenLifecycle } from '../../lib/token-lifecycle/token-lifecycle';
import { resolveTransferAuthOptions } from '../../lib/upstream/resolve-options';
import { fakeClockPerTest, gaugeProbe } from '../review-12/support';
import { fakeOptions } from '../support/auth-app';
import { captureAuthError, expectAuthError, sleep } from '../support/e2e';
import { T0 } from '../unit/lifecycle/support';
import { answer, recorder, StubEndpoint } from '../unit/support/stub-endpoint';
import { A, M, telemetryRig, type Collected } from './support';

/**
 * What the shipped alert rules (prometheus/freedompay-transfer-auth.rules.yml) read: the counter series
 * they count exist at 0 from the module's init, so that Prometheus' `increase()` sees their first event
 * (it ignores a series' first sample); and the expiry of the access token as a Unix time in seconds.
 */
describe('metrics the alert rules read (e2e)', () => {
  const rig = telemetryRig();
  const { fakeServer, boot } = rig;

  /** `[kind, outcome, value]` of every renewals point of registration `name`, sorted. */
  function renewals(c: Collected, name: string): [unknown, unknown, unknown][] {
    return c
      .points(M.renewals, { [A.name]: name })
      .map((p): [unknown, unknown, unknown] => [p.attributes[A.kind], p.attributes[A.outcome], p.value])
      .sort((a, b) => String(a).localeCompare(String(b)));
  }

  function atZero(kind: 'login' | 'refresh'): [string, string, number][] {
    return INITIAL_OUTCOMES[kind].map((outcome): [string, string, number] => [kind, outcome, 0]);
  }

  describe('series at 0 from init', () => {
    it('right after init, before any upstream call: every outcome the rules count is there, at 0', async () => {
      const fake = await fakeServer();
      await boot(fakeOptions(fake, { fetchOnStartup: false }));
      const c = await rig.harness.collect();

      expect(fake.calls.auth + fake.calls.refresh).toBe(0);
      expect(renewals(c, 'default')).toEqual(
        [...atZero('login'), ...atZero('refresh')].sort((a, b) => String(a).localeCompare(String(b))),
      );
      expect(c.metric(M.callerErrors).dataPointType).toBe(DataPointType.SUM);
      expect(
        c
          .points(M.callerErrors)
          .map((p) => [p.attributes, p.value])
          .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      ).toEqual(
        INITIAL_OUTCOMES.callers
          .map((outcome) => [{ [A.name]: 'default', [A.outcome]: outcome }, 0])
          .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      );
      // The outcomes the rules leave out, and what no alert reads, do not start at 0.
      expect(c.points(M.renewals, { [A.outcome]: 'SHUTDOWN' })).toEqual([]);
      expect(c.points(M.invalidations)).toEqual([]);
      expect(c.points(M.waitDuration)).toEqual([]);
    });

    it('the first event counts 1 on its series; the others stay at 0', async () => {
      const fake = await fakeServer();
      await boot(fakeOptions(fake)); // fetchOnStartup: one Get token, ok
      const c = await rig.harness.collect();
      expect(renewals(c, 'default').filter(([, , value]) => value !== 0)).toEqual([['login', 'ok', 1]]);
      expect(c.points(M.renewals)).toHaveLength(INITIAL_OUTCOMES.login.length + INITIAL_OUTCOMES.refresh.length);
      expect(c.sum(M.callerErrors)).toBe(0);
    });

    it('carry the registration’s base attributes: its name, and the agent id with agentIdAttribute', async () => {
      const fake = await fakeServer();
      await boot(fakeOptions(fake, { fetchOnStartup: false }), 'billing');
      await boot(fakeOptions(fake, { fetchOnStartup: false, telemetry: { agentIdAttribute: true } }), 'payouts');
      const c = await rig.harness.collect();
      for (const metric of [M.renewals, M.callerErrors]) {
        const billing = c.points(metric, { [A.name]: 'billing', [A.agentId]: undefined });
        const payouts = c.points(metric, { [A.name]: 'payouts', [A.agentId]: fake.agentId });
        expect(billing.length).toBeGreaterThanOrEqual(INITIAL_OUTCOMES.callers.length);
        expect(payouts.length).toBe(billing.length);
        expect(c.points(metric).length).toBe(2 * billing.length);
      }
    });

    it('telemetry: false: no series at all for that registration', async () => {
      const fake = await fakeServer();
      await boot(fakeOptions(fake, { fetchOnStartup: false, telemetry: false }));
      const c = await rig.harness.collect();
      expect(c.points(M.renewals)).toEqual([]);
      expect(c.points(M.callerErrors)).toEqual([]);
    });
  });

  describe('access token expiry as a Unix timestamp', () => {
    it('nothing before the first token (an idle app is no alert); then now + the time left, in seconds; it does not move between collections', async () => {
      const fake = await fakeServer({ accessTtlMs: 600_000, refreshTtlMs: 1_200_000 });
      const { auth } = await boot(fakeOptions(fake, { fetchOnStartup: false }));
      let c = await rig.harness.collect();
      expect(c.gauge(M.accessExpiration)).toEqual([]);

      await auth.getAccessToken();
      c = await rig.harness.collect();
      expect(c.metric(M.accessExpiration).dataPointType).toBe(DataPointType.GAUGE);
      expect(c.metric(M.accessExpiration).descriptor.unit).toBe('s');
      expect(c.points(M.accessExpiration).map((p) => p.attributes)).toEqual([{ [A.name]: 'default' }]);
      const [expires] = c.gauge(M.accessExpiration) as [number];
      const [left] = c.gauge(M.accessTimeLeft) as [number];
      // Seconds, not milliseconds: about 10 minutes from now (less the safety window and the Date header's second).
      expect(Math.abs(expires - (Date.now() / 1000 + left))).toBeLessThan(1);
      expect(expires - Date.now() / 1000).toBeGreaterThan(590);
      expect(expires - Date.now() / 1000).toBeLessThanOrEqual(600);

      await sleep(30);
      const later = await rig.harness.collect();
      expect(later.gauge(M.accessExpiration)).toEqual([expires]); // a point in time, not a count-down
      expect(later.gauge(M.accessTimeLeft)[0]).toBeLessThan(left);

      // A renewal moves it: a new token, a new expiry.
      await sleep(5);
      await auth.forceRefresh();
      const renewed = (await rig.harness.collect()).gauge(M.accessExpiration)[0] as number;
      expect(renewed).toBeGreaterThan(expires);
    });

    it('0 once a rejected login leaves no token; no series once the app is shut down', async () => {
      const fake = await fakeServer();
      const app = await boot(fakeOptions(fake));
      expect((await rig.harness.collect()).gauge(M.accessExpiration)[0]).toBeGreaterThan(Date.now() / 1000);
      auth401(fake);
      expectAuthError(await captureAuthError(app.auth.forceRefresh()), 'INVALID_CREDENTIALS');
      // forceRefresh() does not drop the token it could not replace: still served, same expiry.
      expect((await rig.harness.collect()).gauge(M.accessExpiration)[0]).toBeGreaterThan(Date.now() / 1000);
      app.auth.invalidate();
      expect((await rig.harness.collect()).gauge(M.accessExpiration)).toEqual([0]);

      await rig.close(app);
      expect((await rig.harness.collect()).points(M.accessExpiration)).toEqual([]);
    });
  });
});

/** Every Get token and Refresh token answers 401 from now on. */
function auth401(fake: {
  failAlways(endpoint: 'auth' | 'refresh', failure: { kind: 'status'; status: number }): void;
}) {
  fake.failAlways('auth', { kind: 'status', status: 401 });
  fake.failAlways('refresh', { kind: 'status', status: 401 });
}

describe('access token expiry: on the local clock the token was placed on (fake clock)', () => {
  const closeAfterTest = fakeClockPerTest();
  const LIFETIME_MS = 600_000;

  it.each([
    ['the upstream runs 1 h ahead of this host', 3_600_000],
    ['the upstream runs 1 h behind this host', -3_600_000],
    ['no skew', 0],
  ])('%s: the local time the token stops being served', async (_name, skewMs) => {
    const probe = gaugeProbe();
    const stub = new StubEndpoint(answer.ok({ lifetimeMs: LIFETIME_MS, refreshLifetimeMs: 2 * LIFETIME_MS }));
    stub.skewMs = skewMs;
    const options = resolveTransferAuthOptions({ agentId: 'agent-1', agentSecret: 'agent-secret-xyz' });
    const lifecycle = closeAfterTest(
      new TokenLifecycle(options, { endpoint: stub, hooks: recorder(), telemetry: probe.telemetry }),
    );
    expect(probe.state().accessExpiresAt()).toBeUndefined(); // before the first token, nothing failed
    await lifecycle.start();
    // The lifetime less the Date header's 1 s and the 5 s safety window, from the local T0: not T0 ± 1 h.
    expect(probe.state().accessExpiresAt()).toBe((T0 + LIFETIME_MS - 6_000) / 1000);
    expect(probe.state().accessExpiresAt()).toBe(T0 / 1000 + (probe.state().accessSecondsLeft() as number));

    await jest.advanceTimersByTimeAsync(60_000);
    expect(probe.state().accessExpiresAt()).toBe((T0 + LIFETIME_MS - 6_000) / 1000); // it does not count down
    lifecycle.close();
    expect(probe.state().accessExpiresAt()).toBeUndefined();
  });
});

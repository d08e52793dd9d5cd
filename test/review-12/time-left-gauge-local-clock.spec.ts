import { resolveTransferAuthOptions } from '../../lib/upstream/resolve-options';
import { TokenLifecycle } from '../../lib/token-lifecycle/token-lifecycle';
import { answer, recorder, StubEndpoint } from '../unit/support/stub-endpoint';
import { fakeClockPerTest, gaugeProbe } from './support';

/**
 * Finding: the time-left gauges (`access_token.time_left`, `refresh_token.time_left`) are
 * `access_expire_at - Date.now()`: the upstream's expiry read on the LOCAL wall clock. The lifecycle
 * itself never does that (the contract places expiry "on the local monotonic and wall clocks from the
 * upstream's Date header": a skewed local clock plays no part), so the gauge and the token disagree by
 * the whole skew, and by any wall-clock step after the token was obtained:
 * - a host 1 h behind the upstream reports about 4,200 s left on a 10-minute token;
 * - a host 1 h ahead reports 0 s on a token that is fresh and served (an alert on time left fires
 *   while everything works);
 * - a wall clock stepped back by NTP after the login adds the step to the gauge, while the lifecycle
 *   (monotonic deadline) renews on time.
 * The gauge should count down on the deadlines the lifecycle uses (monotonic), not on `Date.now()`.
 */

const LIFETIME_MS = 600_000;
const HOUR = 3_600_000;

describe('review 12: the time-left gauges follow the local wall clock, not the token', () => {
  const closeAfterTest = fakeClockPerTest();

  async function withToken(skewMs: number): Promise<ReturnType<typeof gaugeProbe> & { lifecycle: TokenLifecycle }> {
    const probe = gaugeProbe();
    const stub = new StubEndpoint(answer.ok({ lifetimeMs: LIFETIME_MS, refreshLifetimeMs: 2 * LIFETIME_MS }));
    stub.skewMs = skewMs; // the upstream's clock (its Date header and its expiry times) runs this far ahead
    const options = resolveTransferAuthOptions({ agentId: 'agent-1', agentSecret: 'agent-secret-xyz' });
    const lifecycle = closeAfterTest(
      new TokenLifecycle(options, { endpoint: stub, hooks: recorder(), telemetry: probe.telemetry }),
    );
    await lifecycle.start();
    expect(lifecycle.getStatus().state).toBe('valid');
    return { ...probe, lifecycle };
  }

  it('no skew (control): about the lifetime left', async () => {
    const probe = await withToken(0);
    // The usable end: the lifetime less the Date header's 1 s and the 5 s safety window.
    expect(probe.state().accessSecondsLeft()).toBe(LIFETIME_MS / 1000 - 6);
  });

  it.each([
    ['the upstream runs 1 h ahead of this host', HOUR],
    ['the upstream runs 1 h behind this host', -HOUR],
  ])('%s: the gauges still say what is left of the token', async (_name, skewMs) => {
    const probe = await withToken(skewMs);
    const access = probe.state().accessSecondsLeft() as number;
    const refresh = probe.state().refreshSecondsLeft() as number;
    // The token is fresh and served: 600 s left (599 with the Date header's second), not 4,200 or 0.
    expect(access).toBeGreaterThan(550);
    expect(access).toBeLessThanOrEqual(600);
    expect(refresh).toBeGreaterThan(1_150);
    expect(refresh).toBeLessThanOrEqual(1_200);
  });

  it('a wall-clock step back after the login does not add to the time left', async () => {
    const probe = await withToken(0);
    await jest.advanceTimersByTimeAsync(60_000); // a minute of real time passes...
    jest.setSystemTime(Date.now() - HOUR); // ...and NTP steps the wall clock back an hour
    expect(probe.lifecycle.getStatus().state).toBe('valid');
    const access = probe.state().accessSecondsLeft() as number;
    expect(access).toBeLessThanOrEqual(540);
  });
});

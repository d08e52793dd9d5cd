import { fakeOptions } from '../support/auth-app';
import { M, telemetryRig } from '../telemetry/support';

/**
 * Finding: the expiry gauge reads 0 ("no token held") for a registration that is merely idle: with
 * `fetchOnStartup: false` (a documented option) nothing is fetched until the first call, nothing has
 * failed, `getStatus().state` is `idle`, and yet the shipped FreedomPayTokenExpiringUnrenewed
 * (`expiration_timestamp_seconds - time() < 45`, "0 (no token at all) fires too") fires 30 s after every
 * such pod starts and stays firing for as long as it is idle: a warning that pages on healthy pods.
 */
describe('review-18: the access-token expiry gauge of an idle registration', () => {
  const rig = telemetryRig();

  it('is not 0 (what the shipped rule reads as "renewals are failing") while nothing has failed', async () => {
    const fake = await rig.fakeServer();
    const app = await rig.boot(fakeOptions(fake, { fetchOnStartup: false }));
    const c = await rig.harness.collect();
    expect(app.auth.getStatus()).toMatchObject({ state: 'idle' });
    expect(app.auth.getStatus().lastError).toBeUndefined();
    // Absent (nothing to say yet) would be fine; 0 puts the alert's expression at -time() < 45.
    expect(c.gauge(M.accessExpiration)).not.toContain(0);
  });
});

import type { DoctorReport } from '../../lib/cli/doctor-report';
import { inSeconds, isLogin, run, ScriptedUpstream } from './run-bin';

/**
 * A probe answered 429 (rate limited, Retry-After) or 503 (gateway overloaded) says nothing about whether
 * the route exists, yet the doctor takes any status but 404/405 as "exists": it keeps firing the remaining
 * probes at an upstream that asked it to back off, reports every route as existing, then sends the account's
 * real refresh token to a route it never saw answer anything but 429/503.
 */
const REFRESH = 'rt-real-refresh-token-0123456789';

describe.each([
  [429, { 'Retry-After': '60' }],
  [503, { 'Retry-After': '30' }],
])('review 19: every probe answered %i', (status, headers) => {
  let upstream: ScriptedUpstream | undefined;
  afterEach(async () => upstream?.stop());

  it('is not read as "the route exists", and no real refresh token is sent after it', async () => {
    upstream = await new ScriptedUpstream((hit) =>
      isLogin(hit)
        ? [
            200,
            {
              access_token: 'at-0123456789',
              refresh_token: REFRESH,
              access_expire_at: inSeconds(600),
              refresh_expire_at: inSeconds(1200),
            },
          ]
        : [status, { message: 'slow down' }, headers],
    ).start();
    const result = await run(['doctor', '--base-url', upstream.url, '--yes', '--json'], {
      FREEDOMPAY_AGENT_ID: 'agent-1',
      FREEDOMPAY_AGENT_SECRET: 'secret-0123456789',
    });
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(report.calls).toBe(upstream.hits.length);
    const withRealToken = upstream.hits.filter(
      (h) => h.authorization === `Bearer ${REFRESH}` || h.body.includes(REFRESH),
    );
    expect({
      realRefreshTokenSent: withRealToken.map((h) => `${h.method} ${h.path} -> ${h.status}`),
      probesSaidToExist: report.refresh.probes.filter((p) => p.exists === true).length,
      requestsAfterTheFirstRefusal: upstream.hits.length - 2,
    }).toEqual({ realRefreshTokenSent: [], probesSaidToExist: 0, requestsAfterTheFirstRefusal: 0 });
    expect(result.code).toBe(3);
  });
});

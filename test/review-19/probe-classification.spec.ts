import type { DoctorReport } from '../../lib/cli/doctor-report';
import { AUTH, inSeconds, isLogin, run, ScriptedUpstream } from './run-bin';

/**
 * What the doctor makes of answers beyond 404/405 and 2xx: a redirect on a probe is "unknown" (no real token
 * goes there); a real refresh answered 503 stops the run at once with the Retry-After; a refresh answered 200
 * with a token the module would refuse (expired on arrival) did not renew.
 */
const REFRESH = 'rt-real-refresh-token-0123456789';
const env = { FREEDOMPAY_AGENT_ID: 'agent-1', FREEDOMPAY_AGENT_SECRET: 'secret-0123456789' };
const loginAnswer = (): [number, unknown] => [
  200,
  {
    access_token: 'at-0123456789',
    refresh_token: REFRESH,
    access_expire_at: inSeconds(600),
    refresh_expire_at: inSeconds(1200),
  },
];
const hasRealToken = (h: { authorization: string | undefined; body: string }): boolean =>
  h.authorization === `Bearer ${REFRESH}` || h.body.includes(REFRESH);

describe('review 19: probe and refresh answers beyond 404/405 and 2xx', () => {
  let upstream: ScriptedUpstream | undefined;
  afterEach(async () => upstream?.stop());

  it('probes answered with redirects: unknown, no real refresh token sent, nothing recommended', async () => {
    upstream = await new ScriptedUpstream((hit) =>
      isLogin(hit) ? loginAnswer() : [302, {}, { Location: 'http://127.0.0.1:9/elsewhere' }],
    ).start();
    const result = await run(['doctor', '--base-url', upstream.url, '--yes', '--json'], env);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(result.code).toBe(0);
    expect(report.refresh.probes.map((p) => p.exists)).toEqual(Array(9).fill(null));
    expect(report.refresh.supported).toBeNull();
    expect(report.recommended.refresh).toBeNull();
    expect(upstream.hits.filter(hasRealToken)).toEqual([]);
    expect(report.calls).toBe(upstream.hits.length);
    expect(result.stderr).toContain('unknown (a redirect: no real token goes there)');
  });

  it('a real refresh answered 503: the run stops at once, exit 3, the Retry-After said', async () => {
    upstream = await new ScriptedUpstream((hit) => {
      if (isLogin(hit)) return loginAnswer();
      if (hit.method === 'PATCH' && hit.path === AUTH) {
        return hasRealToken(hit) ? [503, { message: 'busy' }, { 'Retry-After': '30' }] : [401, { message: 'no' }];
      }
      return [hit.path === AUTH ? 405 : 404, { message: 'no' }];
    }).start();
    const result = await run(['doctor', '--base-url', upstream.url, '--yes', '--json'], env);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(result.code).toBe(3);
    expect(report.stopped).toEqual({ code: 'UPSTREAM_UNAVAILABLE', status: 503, retryAfterSeconds: 30 });
    expect(result.stderr).toContain('retry after 30 s');
    expect(upstream.hits.at(-1)?.status).toBe(503);
    expect(upstream.hits.filter(hasRealToken)).toHaveLength(1);
    expect(report.calls).toBe(upstream.hits.length);
  });

  it('a refresh answered 200 with an access token expired on arrival did not renew', async () => {
    upstream = await new ScriptedUpstream((hit) => {
      if (isLogin(hit)) return loginAnswer();
      if (hit.method === 'PATCH' && hit.path === AUTH) {
        if (!hasRealToken(hit)) return [401, { message: 'no' }];
        return [
          200,
          {
            access_token: 'at-expired-0123456789',
            refresh_token: 'rt-next-0123456789',
            access_expire_at: inSeconds(-60),
            refresh_expire_at: inSeconds(1200),
          },
        ];
      }
      return [hit.path === AUTH ? 405 : 404, { message: 'no' }];
    }).start();
    const result = await run(['doctor', '--base-url', upstream.url, '--yes', '--json'], env);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(result.code).toBe(0);
    expect(report.recommended.refresh).toBe(false);
    expect(result.stderr).toContain('an answer the module refuses, so it did not renew');
    expect(report.calls).toBe(upstream.hits.length);
  });
});

import type { DoctorReport } from '../../lib/cli/doctor-report';
import { AUTH, inSeconds, isLogin, run, ScriptedUpstream } from './run-bin';

/**
 * The 64 KiB answer cap is the module's guard for token answers; the doctor applies it to the probes too,
 * and any TransferAuthError from the exchange stops the run. A gateway whose 404 page is large (an SPA
 * fallback, an HTML error page with inline assets) on a route that does not exist ends the run with exit 3
 * and "a body larger than 64 KiB", although the status alone ("no such route") was all the probe needed and
 * the real route answered right after it.
 */
describe('review 19: a large 404 page on a probed route', () => {
  let upstream: ScriptedUpstream | undefined;
  afterEach(async () => upstream?.stop());

  it('is "no such route", and the probing goes on to find the real refresh route', async () => {
    let issued = 0;
    const pair = (): Record<string, string> => ({
      access_token: `at-${++issued}-0123456789`,
      refresh_token: `rt-${issued}-0123456789`,
      access_expire_at: inSeconds(600),
      refresh_expire_at: inSeconds(1200),
    });
    const used = new Set<string>();
    upstream = await new ScriptedUpstream((hit) => {
      if (isLogin(hit)) return [200, pair()];
      if (hit.method === 'PATCH' && hit.path === AUTH) {
        const token = /"refresh_token":"([^"]+)"/.exec(hit.body)?.[1] ?? '';
        if (!token.startsWith('rt-') || used.has(token)) return [401, { message: 'invalid refresh token' }];
        used.add(token);
        return [200, pair()];
      }
      if (hit.path === AUTH) return [405, { message: 'method not allowed' }, { Allow: 'POST, PATCH' }];
      return [404, { page: 'x'.repeat(100 * 1024) }];
    }).start();
    const result = await run(['doctor', '--base-url', upstream.url, '--yes', '--json'], {
      FREEDOMPAY_AGENT_ID: 'agent-1',
      FREEDOMPAY_AGENT_SECRET: 'secret-0123456789',
    });
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(result.stderr).not.toContain('larger than 64 KiB');
    expect({ code: result.code, recommended: report.recommended.refresh }).toEqual({
      code: 0,
      recommended: { method: 'PATCH', path: AUTH, tokenIn: 'body' },
    });
  });
});

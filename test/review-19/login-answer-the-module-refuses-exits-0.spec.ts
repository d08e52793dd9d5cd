import type { DoctorReport } from '../../lib/cli/doctor-report';
import { inSeconds, isLogin, run, ScriptedUpstream } from './run-bin';

/**
 * The doctor reads the login's expiry times with Date.parse, not with the module's own reading
 * (parseUpstreamTimestamp + toCachedToken). Answers the module refuses as INVALID_RESPONSE, so that every Get
 * token of the app would fail, are reported as "the login works" with exit 0 (contract: 3 for an invalid
 * answer): a date that is not on the calendar (V8 rolls 30 February over to 1 March) and an access token
 * already expired on arrival (the doctor prints a negative lifetime and carries on).
 */
const future = new Date(Date.now() + 400 * 86_400_000).getUTCFullYear();

describe.each([
  ['a date not on the calendar', `${future}-02-30T10:00:00.000000Z`, inSeconds(86_400 * 400)],
  ['an access token expired on arrival', inSeconds(-3600), inSeconds(86_400)],
])('review 19: a login answer with %s', (_label, accessExpireAt, refreshExpireAt) => {
  let upstream: ScriptedUpstream | undefined;
  afterEach(async () => upstream?.stop());

  it('is an invalid answer (exit 3, login.ok false), as the module would find it', async () => {
    upstream = await new ScriptedUpstream((hit) =>
      isLogin(hit)
        ? [
            200,
            {
              access_token: 'at-0123456789',
              refresh_token: 'rt-0123456789',
              access_expire_at: accessExpireAt,
              refresh_expire_at: refreshExpireAt,
            },
            { Date: new Date().toUTCString() },
          ]
        : [404, { message: 'not found' }],
    ).start();
    const result = await run(['doctor', '--base-url', upstream.url, '--yes', '--json'], {
      FREEDOMPAY_AGENT_ID: 'agent-1',
      FREEDOMPAY_AGENT_SECRET: 'secret-0123456789',
    });
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect({ code: result.code, ok: report.login.ok, loginCode: report.login.code }).toEqual({
      code: 3,
      ok: false,
      loginCode: 'INVALID_RESPONSE',
    });
  });
});

import type { DoctorReport } from '../../lib/cli/doctor-report';
import { AUTH, inSeconds, isLogin, run, ScriptedUpstream } from './run-bin';

/**
 * The login's "fields beyond the four documented ones" are printed by name (plain output and JSON
 * `login.extraFields`). An upstream that echoes a credential as a field NAME (a debug echo keyed by the value,
 * a `{ "<token>": {...} }` map of sessions) has its secret or token printed verbatim: the name filter only
 * replaces characters outside [\w.-], which a typical secret or token does not contain.
 */
const SECRET = 'agentSecretNeverPrinted_0123456789';
const ACCESS = 'at-AbCdEf0123456789-access';
const REFRESH = 'rt-AbCdEf0123456789-refresh';

describe('review 19: extra field names can carry the secret or a token', () => {
  let upstream: ScriptedUpstream | undefined;
  afterEach(async () => upstream?.stop());

  it('never prints the secret or a token, even when the upstream uses them as field names', async () => {
    upstream = await new ScriptedUpstream((hit) =>
      isLogin(hit)
        ? [
            200,
            {
              access_token: ACCESS,
              refresh_token: REFRESH,
              access_expire_at: inSeconds(600),
              refresh_expire_at: inSeconds(1200),
              [SECRET]: 'echo of the agent_secret, keyed by value',
              [ACCESS]: { scope: 'transfer' },
              [REFRESH]: { family: 1 },
            },
          ]
        : [404, { message: 'not found' }],
    ).start();
    const env = { FREEDOMPAY_AGENT_ID: 'agent-1', FREEDOMPAY_AGENT_SECRET: SECRET };
    const json = await run(['doctor', '--base-url', upstream.url, '--yes', '--json'], env);
    const plain = await run(['doctor', '--base-url', upstream.url, '--yes'], env);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as DoctorReport).login.ok).toBe(true);
    expect(upstream.hits.filter(isLogin).length).toBe(2);
    expect(upstream.hits[0]?.path).toBe(AUTH);
    const printed = json.stdout + json.stderr + plain.stdout + plain.stderr;
    expect([SECRET, ACCESS, REFRESH].filter((s) => printed.includes(s))).toEqual([]);
  });
});

import { spawn } from 'node:child_process';
import type { TransferAuthModuleOptions } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import type { DoctorReport } from '../../lib/cli/doctor-report';
import { createAuthApp, fakeOptions, trackFakesAndApps, type FakeServerOptions } from '../support/auth-app';
import { binPath, run, type Run } from '../support/cli';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { main } from '../../lib/cli/main';
import { CountingServer, LocalHttpServer, leakedSecrets, secretsOf, unusedPort } from '../support/e2e';

/**
 * The `doctor` command, run as a child process through the package's `bin` (package.json's path, on the
 * compiled package), against the FakeTransferServer playing each plausible upstream. Checked each time:
 * the exit code, the JSON report, `calls` equal to the requests the fake received (at most 25), and no
 * secret or token of the fake in stdout or stderr. Then the recommended `refresh` option, given to the
 * module, renews through Refresh token (not a login) against the same upstream.
 */
const AUTH = '/v5/partner/transfer/agent/auth';
const SIBLING = '/v5/partner/transfer/agent/refresh';

function credentials(fake: FakeTransferServer): Record<string, string> {
  return { FREEDOMPAY_AGENT_ID: fake.agentId, FREEDOMPAY_AGENT_SECRET: fake.agentSecret };
}

async function doctor(fake: FakeTransferServer, extra: string[] = []): Promise<Run & { report: DoctorReport }> {
  const result = await run(['doctor', '--base-url', fake.url, '--yes', '--json', ...extra], credentials(fake));
  return { ...result, report: JSON.parse(result.stdout) as DoctorReport };
}

/** Get token requests the fake answered with a token (a probe of the login route is answered 400). */
function logins(fake: FakeTransferServer): number {
  return fake.requests.filter((r) => r.endpoint === 'auth' && r.status === 200).length;
}

function expectClean(fake: FakeTransferServer, result: Run): void {
  expect(leakedSecrets(result.stdout + result.stderr, secretsOf(fake))).toEqual([]);
}

describe('doctor, against each plausible upstream', () => {
  const { fakeServer, track } = trackFakesAndApps();

  /** The module, given the doctor's `refresh`, renews through it against a fake of the same upstream. */
  async function expectModuleRefreshes(options: FakeServerOptions, refresh: TransferAuthModuleOptions['refresh']) {
    const fake = await fakeServer(options);
    const { auth } = track(await createAuthApp(fakeOptions(fake, { refresh })));
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 0 });
    await auth.forceRefresh();
    await auth.forceRefresh();
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 2, refreshReused: 0 });
  }

  it('documented-looking: PATCH on the auth path, token in header and body, single-use', async () => {
    const options: FakeServerOptions = {};
    const fake = await fakeServer(options);
    const result = await doctor(fake);
    expect(result.code).toBe(0);
    expect(result.report).toMatchObject({
      baseUrl: fake.url,
      login: {
        ok: true,
        status: 200,
        accessTtlSeconds: 3600,
        refreshTtlSeconds: 86_400,
        extraFields: [],
        unnamedExtraFields: 0,
      },
      refresh: {
        supported: true,
        method: 'PATCH',
        path: AUTH,
        tokenIn: 'both',
        singleUse: true,
        familyRevokedOnReuse: false,
        accepts: { both: true, header: false, body: false },
      },
      recommended: { refresh: { method: 'PATCH', path: AUTH, tokenIn: 'both' } },
    });
    expect(Math.abs(result.report.login.clockSkewSeconds ?? 99)).toBeLessThanOrEqual(1);
    expect(result.report.calls).toBe(fake.calls.total);
    expect(result.report.calls).toBeLessThanOrEqual(25);
    // The probes found the route with made-up tokens: the one real reuse is the doctor's own check.
    expect(fake.calls.refreshReused).toBe(1);
    expect(logins(fake)).toBe(1);
    expectClean(fake, result);
    const recommended = result.report.recommended.refresh;
    if (recommended === false || recommended === null) throw new Error('no recommendation');
    await expectModuleRefreshes(options, recommended);
  });

  it('POST on the sibling .../refresh, token in the body only, reusable refresh tokens', async () => {
    const options: FakeServerOptions = {
      refresh: { method: 'POST', path: SIBLING, tokenIn: 'body' },
      strictRefresh: false,
    };
    const fake = await fakeServer(options);
    const result = await doctor(fake);
    expect(result.code).toBe(0);
    expect(result.report.refresh).toMatchObject({
      supported: true,
      method: 'POST',
      path: SIBLING,
      tokenIn: 'body',
      singleUse: false,
      accepts: { both: true, header: false, body: true },
    });
    expect(result.report.recommended.refresh).toEqual({ method: 'POST', path: SIBLING, tokenIn: 'body' });
    expect(result.report.calls).toBe(fake.calls.total);
    expectClean(fake, result);
    await expectModuleRefreshes(options, { method: 'POST', path: SIBLING, tokenIn: 'body' });
  });

  it('PUT on auth path + /refresh, token in the header only, a reuse revokes the whole family', async () => {
    const path = `${AUTH}/refresh`;
    const options: FakeServerOptions = {
      refresh: { method: 'PUT', path, tokenIn: 'header' },
      revokeFamilyOnReuse: true,
    };
    const fake = await fakeServer(options);
    const result = await doctor(fake);
    expect(result.code).toBe(0);
    expect(result.report.refresh).toMatchObject({
      method: 'PUT',
      path,
      tokenIn: 'header',
      singleUse: true,
      familyRevokedOnReuse: true,
    });
    expect(result.report.calls).toBe(fake.calls.total);
    expectClean(fake, result);
    await expectModuleRefreshes(options, { method: 'PUT', path, tokenIn: 'header' });
  });

  it('Refresh token as a POST on the auth path itself (shared with Get token)', async () => {
    const options: FakeServerOptions = { refresh: { method: 'POST', path: AUTH, tokenIn: 'header' } };
    const fake = await fakeServer(options);
    const result = await doctor(fake);
    expect(result.code).toBe(0);
    expect(result.report.recommended.refresh).toEqual({ method: 'POST', path: AUTH, tokenIn: 'header' });
    expect(result.report.calls).toBe(fake.calls.total);
    expect(logins(fake)).toBe(1);
    expectClean(fake, result);
    await expectModuleRefreshes(options, { method: 'POST', path: AUTH, tokenIn: 'header' });
  });

  it('no refresh call at all: recommends refresh: false, and the module then only logs in', async () => {
    const fake = await fakeServer({ refresh: false });
    const result = await doctor(fake);
    expect(result.code).toBe(0);
    expect(result.report.refresh).toMatchObject({ supported: false, singleUse: null, method: null });
    expect(result.report.recommended).toEqual({ refresh: false });
    // Every candidate probed; only Get token's own route "exists", and a real refresh token fails there.
    expect(result.report.refresh.probes.filter((p) => p.exists)).toEqual([
      { method: 'POST', path: AUTH, status: 400, exists: true },
    ]);
    expect(result.report.calls).toBe(fake.calls.total);
    expect(fake.calls.refresh).toBe(0);
    expectClean(fake, result);

    const { auth } = track(await createAuthApp(fakeOptions(fake, { refresh: false })));
    fake.resetCounters();
    await auth.forceRefresh();
    expect(fake.calls).toMatchObject({ auth: 1, refresh: 0, unknown: 0 });
  });

  it('wrong secret: exit 2, one login, the code named, nothing else sent', async () => {
    const fake = await fakeServer();
    const result = await run(['doctor', '--base-url', fake.url, '--yes', '--json'], {
      FREEDOMPAY_AGENT_ID: fake.agentId,
      FREEDOMPAY_AGENT_SECRET: 'not-the-secret-0123456789',
    });
    expect(result.code).toBe(2);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(report.login).toMatchObject({ ok: false, status: 401, code: 'INVALID_CREDENTIALS' });
    expect(report.recommended).toEqual({ refresh: null });
    expect(report.calls).toBe(1);
    expect(fake.calls.total).toBe(1);
    expect(result.stdout + result.stderr).not.toContain('not-the-secret-0123456789');
    expectClean(fake, result);
  });

  it('no credentials in the environment: exit 64 naming the variable, nothing sent', async () => {
    const fake = await fakeServer();
    const noSecret = await run(['doctor', '--base-url', fake.url, '--yes'], { FREEDOMPAY_AGENT_ID: fake.agentId });
    expect(noSecret.code).toBe(64);
    expect(noSecret.stderr).toContain('FREEDOMPAY_AGENT_SECRET is not set');
    const none = await run(['doctor', '--base-url', fake.url, '--yes'], {});
    expect(none.code).toBe(64);
    expect(none.stderr).toContain('FREEDOMPAY_AGENT_ID is not set');
    expect(fake.calls.total).toBe(0);
  });

  it('no terminal and no --yes: refuses with exit 64 before sending anything', async () => {
    const fake = await fakeServer();
    const result = await run(['doctor', '--base-url', fake.url], credentials(fake));
    expect(result.code).toBe(64);
    expect(result.stderr).toContain('no --yes');
    expect(result.stdout).toContain('at most 25 requests');
    expect(fake.calls.total).toBe(0);
    expectClean(fake, result);
  });

  it('bad flags and a non-loopback http: base URL are usage errors that echo no value', async () => {
    const fake = await fakeServer();
    const unknown = await run(['doctor', '--secret', 'x'], credentials(fake));
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toMatch(/Unknown option '--secret'/);
    const http = await run(['doctor', '--base-url', 'http://example.com', '--yes'], credentials(fake));
    expect(http.code).toBe(64);
    expect(http.stderr).toContain('--base-url');
    expect(fake.calls.total).toBe(0);
  });

  it('an upstream that hangs: the login times out (10 s), exit 3, one request', async () => {
    const fake = await fakeServer();
    fake.failNext('auth', { kind: 'hang' });
    const started = Date.now();
    const result = await doctor(fake);
    expect(result.code).toBe(3);
    expect(Date.now() - started).toBeLessThan(25_000);
    expect(result.report.login).toMatchObject({ ok: false, status: null, code: 'UPSTREAM_UNAVAILABLE' });
    expect(result.report.calls).toBe(1);
    expect(fake.calls.total).toBe(1);
    expectClean(fake, result);
  }, 30_000);

  it('an upstream that fails the login with 503: exit 3, the status reported', async () => {
    const fake = await fakeServer();
    fake.failNext('auth', { kind: 'status', status: 503 });
    const result = await doctor(fake);
    expect(result.code).toBe(3);
    expect(result.report.login).toMatchObject({ ok: false, status: 503, code: 'UPSTREAM_UNAVAILABLE' });
    expect(result.report.calls).toBe(1);
  });

  it('plain output: the steps as they go and the option to use, never a token', async () => {
    const fake = await fakeServer();
    const result = await run(['doctor', '--base-url', fake.url, '--yes'], credentials(fake));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('1. Get token: POST');
    expect(result.stdout).toContain('-> 405: no such route');
    expect(result.stdout).toContain(`Use: refresh: { method: 'PATCH', path: '${AUTH}', tokenIn: 'both' }`);
    expect(result.stdout).toMatch(/\d+ requests sent\./);
    expect(result.stderr).toBe('');
    expectClean(fake, result);
  });
});

describe('the fake subcommand', () => {
  /** `fake` with `args`, once it says it serves: the variables it printed, its output, and a SIGTERM stop. */
  async function startFake(args: string[]) {
    const child = spawn(process.execPath, [binPath(), 'fake', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Stop with Ctrl+C')) resolve();
      });
      void exited.then((code) => reject(new Error(`fake exited with ${code}: ${out}`)));
    });
    const env = Object.fromEntries(
      [...out.matchAll(/^(FREEDOMPAY_\w+)=(.+)$/gm)].map(([, key, value]) => [key as string, value as string]),
    );
    return {
      env,
      output: () => out,
      stop: async () => {
        child.kill('SIGTERM');
        return exited;
      },
    };
  }

  it('serves a FakeTransferServer, prints its URL and credentials, and the doctor reads it right', async () => {
    const fake = await startFake(['--refresh', `POST:${SIBLING}:body`, '--reusable-refresh']);
    try {
      expect(Object.keys(fake.env).sort()).toEqual([
        'FREEDOMPAY_AGENT_ID',
        'FREEDOMPAY_AGENT_SECRET',
        'FREEDOMPAY_BASE_URL',
      ]);
      const url = fake.env['FREEDOMPAY_BASE_URL'] as string;
      const result = await run(['doctor', '--base-url', url, '--yes', '--json'], fake.env);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as DoctorReport;
      expect(report.recommended.refresh).toEqual({ method: 'POST', path: SIBLING, tokenIn: 'body' });
      expect(report.refresh.singleUse).toBe(false);
    } finally {
      expect(await fake.stop()).toBe(0);
    }
    expect(fake.output()).toMatch(/Stopped after \d+ requests/);
  });

  it('--port, --auth-path, --agent-id, --access-ttl, --refresh-ttl and --revoke-family-on-reuse each do what they say', async () => {
    const port = await unusedPort();
    const authPath = '/partner/v9/agent/login';
    const fake = await startFake([
      '--port',
      String(port),
      '--auth-path',
      authPath,
      '--agent-id',
      'agent-from-flag',
      '--access-ttl',
      '120',
      '--refresh-ttl',
      '600',
      '--revoke-family-on-reuse',
    ]);
    try {
      expect(fake.env).toMatchObject({
        FREEDOMPAY_BASE_URL: `http://127.0.0.1:${port}`,
        FREEDOMPAY_AGENT_ID: 'agent-from-flag',
      });
      const url = fake.env['FREEDOMPAY_BASE_URL'] as string;
      const result = await run(['doctor', '--base-url', url, '--auth-path', authPath, '--yes', '--json'], fake.env);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as DoctorReport;
      expect(report.login).toMatchObject({ ok: true, accessTtlSeconds: 120, refreshTtlSeconds: 600 });
      expect(report.refresh).toMatchObject({ singleUse: true, familyRevokedOnReuse: true });
      // The default refresh route follows the auth path, as the module's default does.
      expect(report.recommended.refresh).toEqual({ method: 'PATCH', path: authPath, tokenIn: 'both' });
    } finally {
      expect(await fake.stop()).toBe(0);
    }
  });

  it('a bad --refresh is a usage error', async () => {
    const result = await run(['fake', '--refresh', 'GET:/x'], {});
    expect(result.code).toBe(64);
    expect(result.stderr).toContain('--refresh expects');
  });
});

/** Logs in (with two fields beyond the four) and answers 401 to everything else: every route "exists". */
class EverythingExists extends LocalHttpServer {
  hits = 0;
  protected handle(req: IncomingMessage, res: ServerResponse): void {
    this.hits++;
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const login = req.method === 'POST' && req.url === AUTH && body.includes('agent_secret');
      const soon = (s: number): string => new Date(Date.now() + s * 1000).toISOString().replace('Z', '000Z');
      const answer = login
        ? {
            access_token: 'at-everything-exists',
            refresh_token: 'rt-everything-exists',
            access_expire_at: soon(600),
            refresh_expire_at: soon(1200),
            token_type: 'Bearer',
            'scope<script>': 'x',
            // Credentials as field names (a debug echo keyed by value, a map of sessions by token): counted, never named.
            'secret-never-printed-42': 'echo',
            'at-everything-exists': { scope: 'transfer' },
            rt_everything_exists: { family: 1 },
            everything: 'a word inside a token of the run',
            a3f9c2d1e8b7: 'looks like a key: more than 3 digits',
          }
        : { message: 'no' };
      res.writeHead(login ? 200 : 401, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
    });
  }
}

class RedirectingLogin extends LocalHttpServer {
  constructor(private readonly target: string) {
    super();
  }
  protected handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    res.writeHead(307, { Location: `${this.target}${AUTH}` }).end();
  }
}

describe('doctor, bounds', () => {
  const servers: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
  });
  const env = { FREEDOMPAY_AGENT_ID: 'agent', FREEDOMPAY_AGENT_SECRET: 'secret-never-printed-42' };

  it('an upstream where every route exists and none refreshes: stops at 25 requests, recommends nothing', async () => {
    const server = await new EverythingExists().start();
    servers.push(server);
    const result = await run(['doctor', '--base-url', server.url, '--yes', '--json'], env);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(report.calls).toBe(25);
    expect(server.hits).toBe(25);
    expect(report.refresh.probes).toHaveLength(9);
    expect(report.refresh.probes.every((p) => p.exists)).toBe(true);
    expect(report.recommended).toEqual({ refresh: null });
    expect(report.login.extraFields).toEqual(['token_type']);
    expect(report.login.unnamedExtraFields).toBe(6);
    expect(result.stderr).toContain('Fields beyond the four documented ones: token_type, 6 unnamed fields.');
    expect(result.stderr).toContain('the budget of 25 requests is spent');
    expect(result.stdout + result.stderr).not.toMatch(
      /secret-never-printed-42|at-everything-exists|rt-everything-exists|rt_everything_exists|a3f9c2d1e8b7|scope/,
    );
  });

  it('a redirected login is refused, not followed: exit 3, INVALID_RESPONSE', async () => {
    const target = await new CountingServer().start();
    const server = await new RedirectingLogin(target.url).start();
    servers.push(server, target);
    const result = await run(['doctor', '--base-url', server.url, '--yes', '--json'], env);
    expect(result.code).toBe(3);
    expect((JSON.parse(result.stdout) as DoctorReport).login).toMatchObject({ status: 307, code: 'INVALID_RESPONSE' });
    expect(target.hits).toBe(0);
  });

  it('Ctrl+C while a request hangs: exit 130 at once, the report so far still printed', async () => {
    const fake = await new FakeTransferServer().start();
    servers.push(fake);
    fake.failNext('refresh', { kind: 'hang' });
    const child = spawn(process.execPath, [binPath(), 'doctor', '--base-url', fake.url, '--yes', '--json'], {
      env: { PATH: process.env['PATH'], ...credentials(fake) } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const probing = new Promise<void>((resolve) =>
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('2. Refresh token routes')) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await probing;
    const interrupted = Date.now();
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(Date.now() - interrupted).toBeLessThan(5_000); // not the 10 s request deadline
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.login.ok).toBe(true);
    expect(report.recommended).toEqual({ refresh: null });
    expect(report.calls).toBe(fake.calls.total);
  });

  it('on a terminal it asks first: "n" sends nothing (exit 1), "y" runs', async () => {
    const fake = await new FakeTransferServer().start();
    servers.push(fake);
    const out: string[] = [];
    const questions: string[] = [];
    const io = (answer: string) => ({
      env: credentials(fake),
      out: (text: string) => void out.push(text),
      err: (text: string) => void out.push(text),
      interactive: true,
      ask: async (question: string) => {
        questions.push(question);
        return answer;
      },
      signal: new AbortController().signal,
    });
    expect(await main(['doctor', '--base-url', fake.url], io('n'))).toBe(1);
    expect(fake.calls.total).toBe(0);
    expect(questions).toEqual(['Send them? [y/N] ']);
    expect(await main(['doctor', '--base-url', fake.url], io('y'))).toBe(0);
    expect(fake.calls.total).toBeGreaterThan(10);
    expect(leakedSecrets(out.join(''), secretsOf(fake))).toEqual([]);
  });
});

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { builtPackage } from '../support/built-package';

/** Runs `script` in a fresh Node process; resolves its output and how long it lived after printing `done`. */
function runChild(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; afterDoneMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let doneAt: number | undefined;
    const kill = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (doneAt === undefined && out.includes('done')) doneAt = performance.now();
    });
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, out, afterDoneMs: doneAt === undefined ? Number.NaN : performance.now() - doneAt });
    });
  });
}

const PRELUDE = `
  const { TransferAuthService } = require(process.env.PKG);
  const { Logger } = require('@nestjs/common');
  Logger.overrideLogger(false);
  const auth = new TransferAuthService({
    agentId: process.env.AGENT_ID, agentSecret: process.env.AGENT_SECRET, baseUrl: process.env.BASE_URL,
    requestTimeoutMs: 20000, refresh: false,
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
`;

describe('process exit (finding 5): nothing the package starts in the background keeps a process alive', () => {
  let fake: FakeTransferServer;
  let pkg: string;

  beforeAll(() => {
    pkg = join(builtPackage(), 'index.js');
  }, 120_000);
  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await fake.stop();
  });

  function env(): Record<string, string> {
    return {
      PKG: pkg,
      AGENT_ID: fake.agentId,
      AGENT_SECRET: fake.agentSecret,
      BASE_URL: fake.url,
      NODE_PATH: join(__dirname, '../../node_modules'),
    };
  }

  it('a script whose work is done exits at once although a background renewal hangs upstream', async () => {
    const script = `${PRELUDE}
      (async () => {
        await auth.onModuleInit();
        await sleep(300); // the parent makes the upstream hang meanwhile
        auth.invalidate(await auth.getAccessToken()); // as after a 401: a renewal nobody waits for, which hangs
        const state = auth.getStatus().state;
        await sleep(500); // long enough for the renewal's request to reach the upstream
        console.log('done ' + state);
      })();`;
    const run = runChild(script, env());
    await fake.waitForCalls(1);
    fake.failAlways('any', { kind: 'hang' });
    const { code, out, afterDoneMs } = await run;
    expect(out).toContain('done acquiring');
    expect(fake.calls.total).toBe(2); // the renewal was under way
    expect(code).toBe(0);
    expect(afterDoneMs).toBeLessThan(2_000); // 0.1.0 lived until requestTimeoutMs (here 20 s)
  }, 30_000);

  it('a script that awaits a slow renewal is kept alive until it gets the token', async () => {
    fake.failNext('auth', { kind: 'delay', ms: 1_500 });
    const script = `${PRELUDE}
      (async () => {
        const token = await auth.getAccessToken();
        console.log('done ' + (typeof token === 'string' && token.length > 0));
      })();`;
    const { code, out } = await runChild(script, env());
    expect(out).toContain('done true');
    expect(code).toBe(0);
  }, 30_000);
});

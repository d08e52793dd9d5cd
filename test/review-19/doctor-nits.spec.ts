import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import type { CliIo } from '../../lib/cli/args';
import { runDoctor } from '../../lib/cli/doctor';
import { main } from '../../lib/cli/main';
import { AuthExchange } from '../../lib/upstream/auth-exchange';
import { CountingServer } from '../support/e2e';

/**
 * The review's nits, in-process: a signal at the prompt is an interruption (130 / 143), not "declined";
 * `fake --agent-id ''` is a usage error; a whole-run deadline bounds the doctor whatever each request
 * takes; the auth exchange sends nothing on a signal already aborted; flags are named, values never.
 */
const SECRET = 'pastedAgentSecret0123456789abcdef';

function io(
  env: NodeJS.ProcessEnv,
  ask: (controller: AbortController) => Promise<string> = async () => '',
): CliIo & { text: () => string; controller: AbortController } {
  const controller = new AbortController();
  const out: string[] = [];
  return {
    env,
    out: (text) => void out.push(text),
    err: (text) => void out.push(text),
    interactive: true,
    ask: () => ask(controller),
    signal: controller.signal,
    controller,
    text: () => out.join(''),
  };
}

describe('review 19 nits', () => {
  const servers: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ])('%s at the prompt: exit %i, nothing sent', async (signal, code) => {
    const fake = await new FakeTransferServer().start();
    servers.push(fake);
    const cli = io({ FREEDOMPAY_AGENT_ID: fake.agentId, FREEDOMPAY_AGENT_SECRET: fake.agentSecret }, async (c) => {
      c.abort(signal); // readline's question rejects on the abort; the entry's `ask` then answers ''
      return '';
    });
    expect(await main(['doctor', '--base-url', fake.url], cli)).toBe(code);
    expect(cli.text()).not.toContain('Nothing sent.');
    expect(fake.calls.total).toBe(0);
  });

  it("fake --agent-id '' is a usage error", async () => {
    const cli = io({});
    expect(await main(['fake', '--agent-id', ''], cli)).toBe(64);
    expect(cli.text()).toContain('--agent-id must not be empty');
  });

  it.each([
    [['doctor', `--token=${SECRET}`], "Unknown option '--token'"],
    [['doctor', `--yes=${SECRET}`], "Option '-y, --yes'"],
    [['fake', `-x${SECRET}`], "Unknown option '-x'"],
    [['doctor', `--${SECRET}`], 'Unknown option for doctor (not shown)'],
    [[`${SECRET}`], 'Unknown command (not shown)'],
  ])('%j: the flag named, the value never', async (args, said) => {
    const cli = io({ FREEDOMPAY_AGENT_ID: 'agent', FREEDOMPAY_AGENT_SECRET: SECRET });
    expect(await main(args, cli)).toBe(64);
    expect(cli.text()).toContain(said);
    expect(cli.text()).not.toContain(SECRET.slice(0, 12));
  });

  it('a whole-run deadline ends the run even while a request is inside its own 10 s', async () => {
    const fake = await new FakeTransferServer().start();
    servers.push(fake);
    fake.failNext('auth', { kind: 'hang' });
    const lines: string[] = [];
    const started = Date.now();
    const { report, exitCode } = await runDoctor({
      baseUrl: fake.url,
      authPath: '/v5/partner/transfer/agent/auth',
      agentId: fake.agentId,
      agentSecret: fake.agentSecret,
      requestTimeoutMs: 10_000,
      runDeadlineMs: 300,
      progress: (line) => lines.push(line),
      signal: new AbortController().signal,
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(exitCode).toBe(3);
    expect(report.login).toMatchObject({ ok: false, code: 'UPSTREAM_UNAVAILABLE' });
    expect(report.stopped).toEqual({ code: 'UPSTREAM_UNAVAILABLE', status: null, retryAfterSeconds: null });
    expect(lines.join('\n')).toContain("The run's deadline of 0.3 s passed");
    expect(report.calls).toBe(1);
  });

  it('AuthExchange.send sends nothing on a signal already aborted', async () => {
    const server = await new CountingServer().start();
    servers.push(server);
    const controller = new AbortController();
    controller.abort();
    const exchange = new AuthExchange(server.url, 1_000);
    const request = { call: 'Get token', method: 'POST', path: '/x' } as const;
    await expect(exchange.send(request, controller.signal)).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await expect(exchange.head(request, controller.signal)).rejects.toMatchObject({ code: 'SHUTDOWN' });
    expect(server.hits).toBe(0);
  });
});

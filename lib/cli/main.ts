#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import { TransferAuthError } from '../errors/transfer-auth.error';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../transfer-auth.constants';
import { resolveTransferAuthOptions } from '../upstream/resolve-options';
import { DOCTOR_RUN_DEADLINE_MS, describePlan, MAX_DOCTOR_CALLS } from './doctor-plan';
import { refreshOptionSource, type DoctorReport } from './doctor-report';
import { flagsOf, interruptedExit, UsageError, type CliIo } from './args';
import { runFake } from './fake';
import { packageVersion } from '../utils/package-version';

/** sysexits' EX_USAGE: a bad command line or environment; nothing was sent. */
export const EXIT_USAGE = 64;
/** sysexits' EX_UNAVAILABLE: a package the doctor needs is not installed. */
export const EXIT_UNAVAILABLE = 69;
/** The peer dependencies the doctor's answer validation loads (the module's own DTOs). */
const DOCTOR_PEERS = ['class-validator', 'class-transformer'];
const BIN = 'nestjs-freedompay-transfer-auth';

const HELP = `Usage:
  ${BIN} doctor [--base-url URL] [--auth-path PATH] [--json] [--yes]
  ${BIN} fake [--port N] [--refresh METHOD:PATH:TOKEN_IN | --refresh false] [--reusable-refresh]
              [--revoke-family-on-reuse] [--access-ttl SECONDS] [--refresh-ttl SECONDS]
  ${BIN} --help | --version

doctor  Logs in with FREEDOMPAY_AGENT_ID / FREEDOMPAY_AGENT_SECRET (environment only), finds how the
        upstream serves Refresh token (probing routes with a made-up token first), whether a refresh
        token is single-use, and prints the module's \`refresh\` option to use. At most ${MAX_DOCTOR_CALLS} requests,
        each within 10 s, the whole run within ${DOCTOR_RUN_DEADLINE_MS / 1000} s.
        A probe answered 404/405: no such route; 3xx: unknown (no real token is sent there);
        408/429/5xx: the run stops (exit 3, with the Retry-After); anything else: the route exists.
        Asks before sending on a terminal; --yes skips the question (required without a terminal).
        --json prints only the final JSON object on stdout (progress on stderr).
        Needs the peer dependencies ${DOCTOR_PEERS.join(' and ')} (any Nest app has them).
        Exit: 0 the login works, 2 credentials rejected, 3 upstream unavailable, invalid answer or
        deadline passed, 64 usage (missing variable, bad flag, no terminal and no --yes), 69 a peer
        dependency missing, 1 declined, 130 interrupted (Ctrl+C), 143 terminated (SIGTERM).
fake    Runs the package's FakeTransferServer on 127.0.0.1 for local development and prints its URL and
        the fake's credentials. Stops on Ctrl+C or SIGTERM.
`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(HELP);
        return command === undefined ? EXIT_USAGE : 0;
      case '--version':
      case '-v':
        io.out(`${packageVersion() ?? 'unknown'}\n`);
        return 0;
      case 'doctor':
        return await doctor(rest, io);
      case 'fake':
        return await runFake(rest, io);
      default:
        // Not quoted: a secret pasted in the wrong place would land in the terminal and in CI logs.
        throw new UsageError('Unknown command (not shown): expected doctor, fake, --help or --version.');
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${BIN}: ${error.message}\nRun '${BIN} --help' for usage.\n`);
    return EXIT_USAGE;
  }
}

async function doctor(args: string[], io: CliIo): Promise<number> {
  const flags = flagsOf(
    'doctor',
    () =>
      parseArgs({
        args,
        strict: true,
        allowPositionals: false,
        options: {
          'base-url': { type: 'string' },
          'auth-path': { type: 'string' },
          json: { type: 'boolean', default: false },
          yes: { type: 'boolean', short: 'y', default: false },
          help: { type: 'boolean', short: 'h', default: false },
        },
      }).values,
  );
  if (flags.help) {
    io.out(HELP);
    return 0;
  }
  for (const variable of ['FREEDOMPAY_AGENT_ID', 'FREEDOMPAY_AGENT_SECRET']) {
    if ((io.env[variable] ?? '').trim() === '') {
      throw new UsageError(
        `${variable} is not set: the doctor reads the agent's credentials from the environment only.`,
      );
    }
  }
  let options;
  try {
    options = resolveTransferAuthOptions({
      agentId: io.env['FREEDOMPAY_AGENT_ID'],
      agentSecret: io.env['FREEDOMPAY_AGENT_SECRET'],
      baseUrl: flags['base-url'],
      authPath: flags['auth-path'],
    });
  } catch (error) {
    if (!TransferAuthError.is(error, 'INVALID_CONFIG')) throw error;
    // The message names the option and why, never its value.
    throw new UsageError(error.message.replace('`baseUrl`', '--base-url').replace('`authPath`', '--auth-path'));
  }
  const doctorModule = loadDoctor();
  if (typeof doctorModule === 'string') {
    io.err(
      `${BIN}: the doctor needs the package '${doctorModule}', a peer dependency that is not installed: ` +
        `npm install ${DOCTOR_PEERS.join(' ')}\n`,
    );
    return EXIT_UNAVAILABLE;
  }
  const progress = flags.json ? io.err : io.out;
  const say = (line: string): void => progress(`${line}\n`);
  say(`${BIN} doctor ${packageVersion() ?? 'unknown'}: agent ${options.agentId} at ${options.baseUrl}`);
  for (const line of describePlan(options)) say(line);
  if (!flags.yes) {
    if (!io.interactive) {
      io.err(`${BIN}: not a terminal, and no --yes: refusing to send requests with real credentials.\n`);
      return EXIT_USAGE;
    }
    const answer = await io.ask('Send them? [y/N] ');
    if (io.signal.aborted) return interruptedExit(io.signal);
    if (!/^y(es)?$/i.test(answer.trim())) {
      say('Nothing sent.');
      return 1;
    }
  }
  const { report, exitCode } = await doctorModule.runDoctor({
    baseUrl: options.baseUrl,
    authPath: options.authPath,
    agentId: options.agentId,
    agentSecret: options.agentSecret as string,
    requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
    progress: say,
    signal: io.signal,
  });
  for (const line of summary(report)) say(line);
  if (flags.json) io.out(`${JSON.stringify(report, null, 2)}\n`);
  return io.signal.aborted ? interruptedExit(io.signal) : exitCode;
}

/**
 * The doctor's module, loaded only when the doctor runs: it judges answers with the module's DTOs, which
 * need class-validator and class-transformer (peer dependencies, not the package's own). The name of
 * the missing one when one of them is not installed.
 */
function loadDoctor(): typeof import('./doctor') | string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('./doctor') as typeof import('./doctor');
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const missing = typeof message === 'string' ? /Cannot find module '([^']+)'/.exec(message)?.[1] : undefined;
    const peer = DOCTOR_PEERS.find((name) => missing === name || missing?.startsWith(`${name}/`));
    if (code !== 'MODULE_NOT_FOUND' || peer === undefined) throw error;
    return peer;
  }
}

function summary(report: DoctorReport): string[] {
  const { login, refresh, recommended } = report;
  const lines = ['4. Result:'];
  if (!login.ok) {
    lines.push(
      `   The login failed (${login.code ?? 'no answer'}${login.status === null ? '' : `, HTTP ${login.status}`}).`,
    );
  } else if (recommended.refresh === null) {
    lines.push('   The login works; how Refresh token is served is not known (see above).');
  } else {
    lines.push(`   Use: ${refreshOptionSource(recommended.refresh)}`);
    if (refresh.supported === true) {
      lines.push(
        `   Refresh tokens are ${refresh.singleUse === true ? 'single-use' : refresh.singleUse === false ? 'reusable' : 'of unknown reuse'}` +
          (refresh.familyRevokedOnReuse === true ? '; a reuse revokes the whole family.' : '.'),
      );
    }
  }
  lines.push(`   ${report.calls} requests sent.`);
  return lines;
}

/* istanbul ignore next: the process entry, run by the bin */
if (require.main === module) {
  const controller = new AbortController();
  // The reason is the signal's name: the exit code is 128 + its number (130, 143).
  const stop = (signal: NodeJS.Signals): void => controller.abort(signal);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  // The auth exchange unrefs its sockets (a background renewal must not hold an app open): this holds
  // the process until the command is done.
  const alive = setInterval(() => undefined, 60_000);
  main(process.argv.slice(2), {
    env: process.env,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    interactive,
    ask: async (question) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question, { signal: controller.signal });
      } catch {
        return '';
      } finally {
        rl.close();
      }
    },
    signal: controller.signal,
  })
    .then(
      (code) => {
        process.exitCode = code;
      },
      (error: unknown) => {
        process.stderr.write(`${BIN}: unexpected failure: ${error instanceof Error ? error.name : 'error'}\n`);
        process.exitCode = 70;
      },
    )
    .finally(() => {
      clearInterval(alive);
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    });
}

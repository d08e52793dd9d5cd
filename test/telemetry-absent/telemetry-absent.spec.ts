import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtPackage, repoRoot } from '../support/built-package';

/**
 * `@opentelemetry/api` is an optional peer: without it installed the package works and records nothing,
 * and says nothing about it. The package (compiled, as `npm run build` compiles it) is installed in a
 * folder of its own whose node_modules links every dependency of the repository except `@opentelemetry/*`;
 * a child `node` there proves the API cannot be resolved from the package, then boots a Nest application
 * with the module against a FakeTransferServer (from the package's `./testing` entry): a token, a forced
 * refresh, an invalidation, a shutdown.
 */
const ROOT = repoRoot(__dirname);
const PACKAGE = 'nestjs-freedompay-transfer-auth';
/** What the child prints for the test: `@@ <key> <json>`, one a line; everything else is the app's output. */
const MARK = '@@ ';

const CHILD = `'use strict';
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const report = (key, value) => console.log('${MARK}' + key + ' ' + JSON.stringify(value));
const resolution = (req) => {
  try {
    return { resolved: req.resolve('@opentelemetry/api') };
  } catch (error) {
    return { code: error.code, message: String(error.message).split('\\n')[0] };
  }
};
const entry = require.resolve('${PACKAGE}');
// Resolved as the package resolves it: from the file whose guarded require loads it.
const telemetryFile = join(dirname(entry), 'telemetry', 'otel-telemetry.js');
report('api-from-package', resolution(createRequire(telemetryFile)));
report('api-from-app', resolution(require));

require('reflect-metadata');
const { NestFactory } = require('@nestjs/core');
const { TransferAuthModule, TransferAuthService } = require('${PACKAGE}');
const { FakeTransferServer } = require('${PACKAGE}/testing');

(async () => {
  const fake = await new FakeTransferServer().start();
  try {
    const app = await NestFactory.createApplicationContext(
      TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url }),
      { logger: ['error', 'warn', 'log', 'debug', 'verbose'] },
    );
    const auth = app.get(TransferAuthService);
    const first = await auth.getAccessToken();
    const refreshed = await auth.forceRefresh();
    auth.invalidate(refreshed);
    const renewed = await auth.getAccessToken();
    const status = auth.getStatus();
    await app.close();
    const afterClose = await auth.getAccessToken().then(
      () => 'resolved',
      (error) => error.code,
    );
    report('run', {
      tokens: new Set([first, refreshed, renewed]).size,
      accepted: fake.isAccessTokenValid(renewed),
      auth: fake.calls.auth,
      refresh: fake.calls.refresh,
      state: status.state,
      fingerprint: status.accessTokenFingerprint,
      afterClose,
    });
    // The module the package loaded, asked again: it found no API and keeps that.
    report('loadOpenTelemetry', require(telemetryFile).loadOpenTelemetry());
  } finally {
    await fake.stop();
  }
  report('done', true);
})().catch((error) => {
  console.error('child failed:', error);
  process.exitCode = 1;
});
`;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(cwd: string): Promise<ChildRun> {
  const env = { ...process.env };
  delete env.NODE_PATH; // Jest's or the shell's: the child resolves from its own folder only
  delete env.NODE_OPTIONS;
  env.NO_COLOR = '1'; // Nest's logger prints plain text
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['child.js'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(kill);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The `@@ key value` lines of the child, parsed. */
function reports(stdout: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(MARK)) continue;
    const [key, ...value] = line.slice(MARK.length).split(' ');
    result[key as string] = JSON.parse(value.join(' '));
  }
  return result;
}

describe('without @opentelemetry/api installed', () => {
  let dir: string;
  let run: ChildRun;

  beforeAll(async () => {
    const built = builtPackage(); // compiled once per content of lib/, shared with the other specs
    dir = mkdtempSync(join(tmpdir(), 'telemetry-absent-'));
    const modules = join(dir, 'node_modules');
    const installed = join(modules, PACKAGE);
    // A copy, not a link: a link would resolve to the repository, whose node_modules has the API.
    mkdirSync(installed, { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(installed, 'package.json'));
    cpSync(built, join(installed, 'dist'), { recursive: true });
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      if (name.startsWith('.') || name === '@opentelemetry' || name === PACKAGE) continue;
      symlinkSync(join(ROOT, 'node_modules', name), join(modules, name), 'dir');
    }
    writeFileSync(join(dir, 'child.js'), CHILD);
    run = await runChild(dir);
  }, 150_000);

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('is really absent: the folder has no @opentelemetry, and neither the package nor the app resolves the API', () => {
    expect(existsSync(join(dir, 'node_modules', '@opentelemetry'))).toBe(false);
    expect(existsSync(join(dir, 'node_modules', '@nestjs', 'core'))).toBe(true);
    const got = reports(run.stdout);
    const notFound = { code: 'MODULE_NOT_FOUND', message: "Cannot find module '@opentelemetry/api'" };
    expect({ package: got['api-from-package'], app: got['api-from-app'] }).toEqual({
      package: notFound,
      app: notFound,
    });
    // And the package's own lookup found nothing (the module instance the service used).
    expect(got.loadOpenTelemetry).toBeNull();
  });

  it('boots, gets a token, refreshes, invalidates and shuts down; exits 0 on its own, no error', () => {
    expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(reports(run.stdout)).toMatchObject({
      run: {
        tokens: 3,
        accepted: true,
        auth: 1,
        refresh: 2,
        state: 'valid',
        fingerprint: expect.stringMatching(/^[0-9a-f]{8}$/),
        afterClose: 'SHUTDOWN',
      },
      done: true,
    });
  });

  it('prints no warning or error, and nothing about telemetry, at every log level', () => {
    const appLines = `${run.stdout}\n${run.stderr}`.split('\n').filter((line) => line !== '' && !line.startsWith(MARK));
    expect(appLines.length).toBeGreaterThan(3); // the logger did print: Nest's start, the package's debug lines
    expect(appLines.filter((line) => /telemetry|opentelemetry|otel|metric|span/i.test(line))).toEqual([]);
    expect(appLines.filter((line) => /\bERROR\b|\(node:\d+\)|Warning:/.test(line))).toEqual([]);
    // The one warning: the invalidation (a 401 refused the token), which the test asked for.
    expect(appLines.filter((line) => /\bWARN\b/.test(line))).toEqual([
      expect.stringMatching(/Access token fp=[0-9a-f]{8} was invalidated/),
    ]);
  });
});

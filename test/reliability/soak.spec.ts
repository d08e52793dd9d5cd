import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Runs soak/soak.ts for SOAK_SECONDS (60 by default here) in a child process, compiled on the fly
 * into a temporary directory, and requires it to report no violation. `npm run soak` runs it longer.
 */
const ROOT = join(__dirname, '..', '..');
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);

let out: string;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'transfer-auth-soak-'));
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(ROOT, 'soak', 'tsconfig.json'),
      '--outDir',
      out,
    ],
    { cwd: ROOT },
  );
}, 120_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

it(
  `soaks for ${SECONDS} s with 200 callers and ~30% upstream faults without a violation`,
  async () => {
    const child = spawn(process.execPath, ['--expose-gc', join(out, 'soak', 'soak.js')], {
      cwd: ROOT,
      env: { ...process.env, SOAK_SECONDS: String(SECONDS), NODE_PATH: join(ROOT, 'node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // Never left running: killed if it outlives the test's own timeout budget.
    const guard = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 60) * 1000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(guard);

    // On failure the whole report is in the diff.
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining('VIOLATIONS: none') });
    expect(output).toMatch(/expired\/invalid tokens +0\n/);
    expect(output).toMatch(/unhandled rejections +0\n/);
    expect(output).toMatch(/waits over the bound +0 /);
  },
  (SECONDS + 90) * 1000,
);

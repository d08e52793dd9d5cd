import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * CI's smoke run of the benchmarks: `npm run bench -- --quick` must complete and report every case.
 * No timing is asserted (ratios move with the machine); the figures live in docs/benchmarks.md.
 */
const ROOT = join(__dirname, '..', '..');

// Compiled where `npm run bench` compiles it (bench-dist/, git-ignored): run.js finds the repo from there.
beforeAll(async () => {
  await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'bench', 'tsconfig.json')],
    { cwd: ROOT },
  );
}, 120_000);

it('npm run bench -- --quick completes and reports all eight cases', async () => {
  const child = spawn(process.execPath, ['--expose-gc', join(ROOT, 'bench-dist', 'bench', 'run.js'), '--quick'], {
    cwd: ROOT,
    env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const guard = setTimeout(() => child.kill('SIGKILL'), 150_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(guard);

  expect({ code, tail: output.slice(-2_000) }).toEqual({ code: 0, tail: expect.any(String) });
  for (const id of ['1', '2', '3a', '3b', '4', '5', '6', '7', '8'])
    expect(output).toMatch(new RegExp(`^${id} +\\|`, 'm'));
  // Case 8 measured what it meant to: the SDK got everything of the side that had it, nothing of the others;
  // every stampede, with or without the SDK, made one upstream call (correctness, not timing).
  expect(output).toMatch(/^8 +\| What the SDK recorded\b.*\| met *$/m);
  expect(output).toMatch(/^8 +\| Stampede with and without an SDK: upstream calls per stampede\b.*\| met *$/m);
  expect(output).toMatch(/^8 +\| Cached read with an SDK: upstream calls\b.*\| met *$/m);
  expect(output).not.toMatch(/pending|crashed|Error:/);
  // The quick form never rewrites the committed docs/benchmarks.md.
  const committed = join(ROOT, 'docs', 'benchmarks.md');
  expect(existsSync(committed) && readFileSync(committed, 'utf8')).toContain('# Benchmarks');
}, 180_000);

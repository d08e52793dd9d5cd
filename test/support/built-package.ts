import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** The repository: found upwards from here, so that this also works compiled elsewhere (bench-dist/). */
export function repoRoot(from = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'lib', 'index.ts'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no repository above ${from}`);
  }
}

const ROOT = repoRoot();

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Compiles `lib/` as `npm run build` does, once per content of lib (cached under `.test-build/`, which
 * git ignores), and returns the folder of the compiled package: what a child process `require`s, as a
 * user's app would require `dist/`. Safe when several Jest workers ask at once (build, then rename).
 */
export function builtPackage(): string {
  const hash = createHash('sha256');
  for (const file of sources(join(ROOT, 'lib')).sort()) hash.update(relative(ROOT, file)).update(readFileSync(file));
  const dir = join(ROOT, '.test-build', hash.digest('hex').slice(0, 16));
  if (existsSync(join(dir, 'index.js'))) return dir;
  const tmp = `${dir}.${process.pid}.tmp`;
  mkdirSync(join(ROOT, '.test-build'), { recursive: true });
  execFileSync(
    process.execPath,
    [
      require.resolve('typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      tmp,
      '--declaration',
      'false',
      '--declarationMap',
      'false',
    ],
    { cwd: ROOT, stdio: 'pipe' },
  );
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another worker got there first
  }
  return dir;
}

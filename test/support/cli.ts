import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { builtPackage, repoRoot } from './built-package';

/**
 * The package's `bin` as a user runs it: package.json's path, on the compiled package (dist/cli/main.js
 * in the tarball is <built>/cli/main.js here), as a child process with only PATH and `env`.
 */
export function binPath(): string {
  const root = repoRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const bin = pkg.bin['nestjs-freedompay-transfer-auth'];
  if (bin === undefined) throw new Error('package.json has no bin named nestjs-freedompay-transfer-auth');
  return join(builtPackage(), relative('dist', bin));
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  args: string[],
  env: Record<string, string | undefined>,
  { timeoutMs = 30_000, nodeArgs = [] as string[] } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, binPath(), ...args], {
      env: { PATH: process.env['PATH'], ...env } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, relative } from 'node:path';
import { builtPackage, repoRoot } from '../support/built-package';
import { LocalHttpServer } from '../support/e2e';

/** Helpers of the issue-19 review specs (not a spec): the compiled bin as a child process, as test/doctor does. */
export const AUTH = '/v5/partner/transfer/agent/auth';

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

export interface Hit {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
  status: number;
}

/** A scripted upstream: records every request, answers with `answer` (status, JSON body, headers). */
export class ScriptedUpstream extends LocalHttpServer {
  readonly hits: Hit[] = [];
  constructor(
    private readonly answer: (hit: Omit<Hit, 'status'>, index: number) => [number, unknown, Record<string, string>?],
  ) {
    super();
  }
  protected handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const hit = {
        method: req.method ?? '',
        path: (req.url ?? '').split('?')[0] as string,
        authorization: req.headers.authorization,
        body,
      };
      const [status, payload, headers] = this.answer(hit, this.hits.length);
      this.hits.push({ ...hit, status });
      res.writeHead(status, { 'Content-Type': 'application/json', ...(headers ?? {}) }).end(JSON.stringify(payload));
    });
  }
}

/** An upstream timestamp `seconds` from now, in the upstream's format. */
export function inSeconds(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString().replace('Z', '000Z');
}

export function isLogin(hit: Omit<Hit, 'status'>): boolean {
  return hit.method === 'POST' && hit.path === AUTH && hit.body.includes('agent_secret');
}

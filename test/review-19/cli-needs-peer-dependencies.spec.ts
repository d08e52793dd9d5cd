import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { binPath, run } from './run-bin';

/**
 * Issue 19: the CLI "runs with only the package's own dependencies (no Nest app needed)". The package's
 * dependencies are axios and @nestjs/axios; class-validator and class-transformer are peer dependencies (a Nest
 * app's), yet lib/cli/doctor.ts loads them through the DTOs (dto/agent-auth-request.dto, upstream-answer's
 * validateSync): without the peers even `--version` dies with MODULE_NOT_FOUND and a stack trace.
 * Simulated here with a preload that makes every peer dependency unresolvable, as in a `npm i --omit=peer`,
 * `--legacy-peer-deps` or a pnpm without auto-install-peers.
 */
const PEERS = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/terminus',
  '@opentelemetry/api',
  'class-transformer',
  'class-validator',
  'ioredis',
  'redis',
  'reflect-metadata',
  'rxjs',
];

describe('review 19: the CLI without the peer dependencies installed', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'review-19-peers-'));
    writeFileSync(
      join(dir, 'no-peers.js'),
      `const Module = require('module');
const peers = ${JSON.stringify(PEERS)};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (peers.some((p) => request === p || request.startsWith(p + '/'))) {
    throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
  }
  return resolve.call(this, request, ...rest);
};`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints its version and the doctor help', async () => {
    const nodeArgs = ['--require', join(dir, 'no-peers.js')];
    const version = await run(['--version'], {}, { nodeArgs });
    const missing = /Cannot find module '[@\w/.-]+'/.exec(version.stderr)?.[0];
    expect({ code: version.code, missing }).toEqual({ code: 0, missing: undefined });
    const help = await run(['doctor', '--help'], {}, { nodeArgs });
    expect(help.code).toBe(0);
  });

  it('runs the fake, and the doctor names the peer to install (exit 69) before sending anything', async () => {
    const nodeArgs = ['--require', join(dir, 'no-peers.js')];
    const fake = spawn(process.execPath, [...nodeArgs, binPath(), 'fake'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => fake.on('close', resolve));
    let out = '';
    let err = '';
    fake.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    await new Promise<void>((resolve) => {
      fake.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Stop with Ctrl+C')) resolve();
      });
      fake.on('close', () => resolve());
    });
    const url = /^FREEDOMPAY_BASE_URL=(.+)$/m.exec(out)?.[1];
    try {
      expect({ url: url !== undefined, err }).toEqual({ url: true, err: '' });
      const doctor = await run(
        ['doctor', '--base-url', url as string, '--yes'],
        { FREEDOMPAY_AGENT_ID: 'agent-1', FREEDOMPAY_AGENT_SECRET: 'secret-0123456789' },
        { nodeArgs },
      );
      expect(doctor.code).toBe(69);
      expect(doctor.stderr).toContain("needs the package 'class-validator'");
      expect(doctor.stderr).toContain('npm install class-validator class-transformer');
      expect(doctor.stdout + doctor.stderr).not.toMatch(/\s+at .*\.js:\d+/); // no stack trace
    } finally {
      fake.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(/Stopped after 0 requests/);
  });
});

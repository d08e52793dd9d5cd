import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Redis as IoRedis } from 'ioredis';
import { Redis as IoRedis6 } from 'ioredis-v6';
import { createClient } from 'redis';
import { createClient as createClient6 } from 'redis-v6';
import { TransferAuthError, type StoredTransferToken } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore, type RedisTokenStoreOptions } from 'nestjs-freedompay-transfer-auth/redis';
import { builtPackage } from '../support/built-package';
import { startRedis, type RedisProcess } from '../support/redis/redis-server';

/** What the store accepts, how it prints, and that nobody pays for Redis clients they do not use. */

const ROOT = join(__dirname, '..', '..');
const PASSWORD = 's3cret-pass';

function construct(options: unknown): TransferAuthError {
  try {
    new RedisTokenStore(options as RedisTokenStoreOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(TransferAuthError);
    return error as TransferAuthError;
  }
  throw new Error('Expected the options to be refused.');
}

function files(dir: string, suffix: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, suffix) : path.endsWith(suffix) ? [path] : [];
  });
}

describe('RedisTokenStore options', () => {
  const client = { eval: (): undefined => undefined, duplicate: (): undefined => undefined }; // only its shape is checked here

  it.each([
    ['client', 'missing', {}],
    ['client', 'null', { client: null }],
    ['client', 'a URL string', { client: `redis://:${PASSWORD}@127.0.0.1:6390` }],
    ['client', 'an object without eval', { client: { password: PASSWORD, duplicate: (): undefined => undefined } }],
    ['client', 'the options of a client', { client: { url: `redis://:${PASSWORD}@127.0.0.1:6390` } }],
    ['keyPrefix', 'with braces', { client, keyPrefix: `${PASSWORD}{tag}:` }],
    ['keyPrefix', 'with a space', { client, keyPrefix: `${PASSWORD} x:` }],
    ['keyPrefix', 'not a string', { client, keyPrefix: 42 }],
    ['encryptionKey', '16 bytes', { client, encryptionKey: Buffer.from(PASSWORD.padEnd(16, '!')) }],
    ['encryptionKey', 'a hex string', { client, encryptionKey: randomBytes(32).toString('hex') }],
  ])('`%s` %s: INVALID_CONFIG naming the option, never its value', (option, _what, options) => {
    const error = construct(options);
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain(`\`${option}\``);
    expect(error.message).not.toContain(PASSWORD);
    const key = (options as { encryptionKey?: unknown }).encryptionKey;
    if (typeof key === 'string') expect(error.message).not.toContain(key.slice(0, 8));
    if (Buffer.isBuffer(key)) expect(error.message).not.toContain(key.toString('hex').slice(0, 8));
  });

  it('no options at all: INVALID_CONFIG', () => {
    expect(construct(undefined).code).toBe('INVALID_CONFIG');
  });

  it('accepts a 32-byte Uint8Array as well as a Buffer, and copies it', async () => {
    const redis = await startRedis();
    const app = new IoRedis(redis.url);
    try {
      const bytes = new Uint8Array(randomBytes(32));
      const store = new RedisTokenStore({ client: app, encryptionKey: bytes });
      const now = Date.now();
      const entry = {
        version: 1,
        staleAt: now + 1e4,
        usableUntil: now + 2e4,
        accessExpiresAt: 0,
        refreshExpiresAt: 0,
        obtainedAt: now,
      };
      Object.defineProperty(entry, 'accessToken', { value: 'tok', enumerable: false });
      await store.write('agent', entry as StoredTransferToken, { encryptionKey: randomBytes(32) });
      bytes.fill(0); // the caller reusing its buffer does not change the store's key
      const read = await store.read('agent', { encryptionKey: randomBytes(32) });
      expect(read!.accessToken).toBe('tok');
    } finally {
      app.disconnect();
      await redis.stop();
    }
  });
});

describe('printing a RedisTokenStore', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    // Not `args: ['--requirepass', ...]`: the helper's readiness check (an unauthenticated PING) would then
    // never succeed. The password is set once the server is up; nothing here needs redis-cli afterwards.
    redis = await startRedis();
    await redis.command('CONFIG', 'SET', 'requirepass', PASSWORD);
  });
  afterAll(async () => {
    await redis.stop();
  });

  const url = (): string => `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
  /** Each client, and whether its own printing shows the password (what the store must not pass on). */
  const CLIENTS: [string, boolean, () => Promise<{ client: RedisTokenStoreOptions['client']; close(): void }>][] = [
    [
      'ioredis v5',
      true,
      async () => {
        const c = new IoRedis(url());
        await c.ping();
        return { client: c, close: () => c.disconnect() };
      },
    ],
    [
      'ioredis v6',
      true,
      async () => {
        const c = new IoRedis6(url());
        await c.ping();
        return { client: c, close: () => c.disconnect() };
      },
    ],
    [
      'node-redis v5',
      false,
      async () => {
        const c = createClient({ url: url() });
        await c.connect();
        return { client: c, close: () => c.destroy() };
      },
    ],
    [
      'node-redis v6',
      false,
      async () => {
        const c = createClient6({ url: url() });
        await c.connect();
        return { client: c, close: () => c.destroy() };
      },
    ],
  ];

  it.each(CLIENTS)(
    'with %s: the key prefix only, never the client (its password) or a token',
    async (name, showsPassword, make) => {
      const { client, close } = await make();
      const store = new RedisTokenStore({ client, keyPrefix: 'myapp:' });
      const agent = `agent-${name.replace(/\W/g, '-')}`; // an entry of its own per client
      try {
        // The client's own printing does show the password: the store's must not show the client.
        if (showsPassword) expect(inspect(client, { depth: 8 })).toContain(PASSWORD);
        const now = Date.now();
        const entry = {
          version: 1,
          staleAt: now + 1e4,
          usableUntil: now + 2e4,
          accessExpiresAt: 0,
          refreshExpiresAt: 0,
          obtainedAt: now,
        };
        Object.defineProperty(entry, 'accessToken', { value: 'ACCESS-TOKEN-PRINTED?', enumerable: false });
        const context = { encryptionKey: randomBytes(32) };
        await expect(store.write(agent, entry as StoredTransferToken, context)).resolves.toBe(true);
        const read = await store.read(agent, context);
        expect(read!.accessToken).toBe('ACCESS-TOKEN-PRINTED?');
        const stop = store.watch(agent, () => undefined);

        const printed = [
          inspect(store),
          inspect(store, { depth: 10, showHidden: true }),
          JSON.stringify(store),
          JSON.stringify({ store }),
          `${inspect({ nested: { store } }, { depth: 10 })}`,
          inspect(read, { showHidden: false }),
          JSON.stringify(read),
        ];
        expect(printed[0]).toBe("RedisTokenStore { keyPrefix: 'myapp:' }");
        expect(JSON.parse(printed[2]!)).toEqual({ store: 'RedisTokenStore', keyPrefix: 'myapp:' });
        for (const text of printed) {
          expect(text).not.toContain(PASSWORD);
          expect(text).not.toContain('ACCESS-TOKEN-PRINTED');
          expect(text).not.toMatch(/127\.0\.0\.1|port/i);
        }
        stop();
      } finally {
        store.close();
        close();
      }
    },
  );
});

describe('the main entry without ioredis or redis installed', () => {
  const PACKAGES = /^(ioredis|ioredis-v6|redis|redis-v6|@redis\/[^/]+)(\/.*)?$/;

  it('nothing outside lib/redis imports a Redis client; lib/redis imports their types only', () => {
    for (const file of files(join(ROOT, 'lib'), '.ts')) {
      const text = readFileSync(file, 'utf8');
      const imports = [...text.matchAll(/(?:from|import|require\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      const redisImports = imports.filter((name) => PACKAGES.test(name));
      if (!file.includes(`${join('lib', 'redis')}/`))
        expect({ file, redisImports }).toEqual({ file, redisImports: [] });
      for (const line of text.split('\n').filter((l) => /from\s*['"](ioredis|redis|@redis\/)/.test(l))) {
        expect(line).toMatch(/^\s*import type /);
      }
    }
  });

  it('the compiled package requires neither, and its entries load in a process where neither can be found', () => {
    const dist = builtPackage();
    for (const file of files(dist, '.js')) {
      const required = [...readFileSync(file, 'utf8').matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!);
      expect({ file, required: required.filter((name) => PACKAGES.test(name)) }).toEqual({ file, required: [] });
    }

    // A child in which resolving any of them fails as if not installed (and records who asked).
    const dir = mkdtempSync(join(tmpdir(), 'no-redis-'));
    try {
      const hook = join(dir, 'hide-redis.js');
      writeFileSync(
        hook,
        `const Module = require('node:module');
const resolve = Module._resolveFilename;
globalThis.__asked = [];
Module._resolveFilename = function (request, ...rest) {
  if (${PACKAGES.toString()}.test(request)) {
    globalThis.__asked.push(request);
    const error = new Error("Cannot find module '" + request + "'");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};`,
      );
      const script = `
let hidden = false;
try { require('ioredis'); } catch (e) { hidden = e.code === 'MODULE_NOT_FOUND'; }
try { require('redis'); } catch (e) { hidden = hidden && e.code === 'MODULE_NOT_FOUND'; }
globalThis.__asked.length = 0;
const main = require(${JSON.stringify(join(dist, 'index.js'))});
const testing = require(${JSON.stringify(join(dist, 'testing', 'index.js'))});
const redis = require(${JSON.stringify(join(dist, 'redis', 'index.js'))});
process.stdout.write(JSON.stringify({
  hidden,
  asked: globalThis.__asked,
  service: typeof main.TransferAuthService,
  module: typeof main.TransferAuthModule,
  fake: typeof testing.FakeTransferServer,
  store: typeof redis.RedisTokenStore,
}));`;
      const out = execFileSync(process.execPath, ['--require', hook, '-e', script], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, NODE_PATH: '' },
      });
      expect(JSON.parse(out)).toEqual({
        hidden: true,
        asked: [],
        service: 'function',
        module: 'function',
        fake: 'function',
        store: 'function',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

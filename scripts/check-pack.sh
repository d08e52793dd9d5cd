#!/usr/bin/env bash
# Packs the package as npm would publish it and checks that a fresh NestJS 12 app can use it:
#   (0) the tarball holds what it should (dist, the bin, the alert rules, README, CHANGELOG, LICENSE) and
#       nothing it should not;
#   (a) a CommonJS script `require()`s both entries, boots a Nest 12 application context with
#       TransferAuthModule.forRoot against a FakeTransferServer and gets a token the fake accepts;
#   (b) the same from an ES module with named `import`s (CJS named-export detection must work);
#   (c) `tsc` type-checks a .cts and a .mts file that use the public types against Nest 12 typings;
#   (d) the `/health` entry works with @nestjs/terminus 12 (installed after (a)-(c), which run without it);
#   (e) the `/redis` entry: (a)-(d) load it without ioredis installed; then, with ioredis installed, two
#       application contexts share one token through a redis-server started on a free port.
#   (f) the bin as npm links it: `--version`, then `fake` on a free port and `doctor --yes --json` against it
#       (the right `refresh` option, no secret printed), and `fake` exits 0 on SIGTERM.
# The scratch app lives in a temp dir outside the repo and is removed at the end
# (KEEP_CHECK_PACK_DIR=1 keeps it). Needs the npm registry: when it cannot be reached, prints one line and
# exits 75 (CI skips, not fails). Prints a one-line verdict; exits 1 on failure.
CHECK=check-pack KEEP_VAR=KEEP_CHECK_PACK_DIR
# shellcheck source=scripts/check-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/check-common.sh"

verdict() {
  local nest node
  nest="$(node -p "require('$APP/node_modules/@nestjs/core/package.json').version" 2>/dev/null || echo '?')"
  node="$(node --version)"
  if ((${#failed[@]} == 0)); then
    echo "check-pack: PASS (${passed[*]}) with @nestjs/core $nest on node $node"
    exit 0
  fi
  echo "check-pack: FAIL (${failed[*]}${passed[*]:+; passed: ${passed[*]}}) with @nestjs/core $nest on node $node"
  exit 1
}

registry_reachable || skip_unreachable

# --- pack --------------------------------------------------------------------------------------------
echo "check-pack: packing $REPO (prepack builds dist/) ..."
if ! (cd "$REPO" && npm pack --pack-destination "$WORK" --loglevel=error) >"$LOG" 2>&1; then
  cat "$LOG"
  failed+=("npm-pack")
  verdict
fi
TARBALL="$(ls "$WORK"/*.tgz 2>/dev/null | head -n1)"
if [[ -z "$TARBALL" ]]; then
  failed+=("npm-pack")
  verdict
fi

# --- (0) tarball contents ------------------------------------------------------------------------------
contents() {
  local files missing=() unwanted
  files="$(tar -tzf "$TARBALL" | sed 's#^package/##')"
  for f in package.json README.md CHANGELOG.md LICENSE dist/index.js dist/index.d.ts \
    dist/testing/index.js dist/testing/index.d.ts dist/redis/index.js dist/redis/index.d.ts \
    dist/cli/main.js prometheus/freedompay-transfer-auth.rules.yml; do
    grep -qx "$f" <<<"$files" || missing+=("$f")
  done
  # lib/ may ship (the declaration maps point at it); tests, samples, tooling and build state may not.
  unwanted="$(grep -E '(^test/|^sample-app/|^bench/|^scripts/|^coverage/|\.spec\.ts$|\.tsbuildinfo$|^node_modules/|\.tgz$)' <<<"$files")"
  ((${#missing[@]} == 0)) || echo "missing from the tarball: ${missing[*]}"
  [[ -z "$unwanted" ]] || echo "should not be in the tarball: $unwanted"
  ((${#missing[@]} == 0)) && [[ -z "$unwanted" ]]
}
mkdir -p "$APP"
step contents contents

# --- scratch NestJS 12 app -----------------------------------------------------------------------------
cat >"$APP/package.json" <<JSON
{
  "name": "check-pack-nest12-app",
  "version": "0.0.0",
  "private": true,
  "dependencies": {
    "@nestjs/axios": "^12.0.0",
    "@nestjs/common": "^12.0.0",
    "@nestjs/core": "^12.0.0",
    "axios": "^1.12.0",
    "class-transformer": "^0.5.1",
    "class-validator": "^0.14.0",
    "nestjs-freedompay-transfer-auth": "file:$TARBALL",
    "reflect-metadata": "^0.2.2",
    "rxjs": "^7.8.0"
  },
  "devDependencies": {
    "@types/node": "^20.19.0",
    "typescript": "^5.9.0"
  }
}
JSON

echo "check-pack: installing a NestJS 12 app in $APP ..."
if ! (cd "$APP" && npm install --no-audit --no-fund --no-package-lock --loglevel=error) >"$LOG" 2>&1; then
  registry_reachable || skip_unreachable
  cat "$LOG"
  failed+=("npm-install")
  verdict
fi

# --- (a) CommonJS: require() -------------------------------------------------------------------------
cat >"$APP/check.cjs" <<'JS'
'use strict';
require('reflect-metadata');
const { NestFactory } = require('@nestjs/core');
const { TransferAuthModule, TransferAuthService, TransferAuthError } = require('nestjs-freedompay-transfer-auth');
const { FakeTransferServer } = require('nestjs-freedompay-transfer-auth/testing');
// ioredis is not installed yet: the entry must load without it (it is the app's client, an optional peer).
const { RedisTokenStore } = require('nestjs-freedompay-transfer-auth/redis');

async function main() {
  for (const [name, value] of Object.entries({ TransferAuthModule, TransferAuthService, TransferAuthError, FakeTransferServer, RedisTokenStore })) {
    if (typeof value !== 'function') throw new Error(`require() gave no ${name}`);
  }
  const fake = await new FakeTransferServer().start();
  try {
    const app = await NestFactory.createApplicationContext(
      TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url }),
      { logger: ['error', 'warn'] },
    );
    try {
      const auth = app.get(TransferAuthService);
      const token = await auth.getAccessToken();
      if (!fake.isAccessTokenValid(token)) throw new Error('the fake does not accept the token');
      if ((await auth.getAuthorizationHeader()) !== `Bearer ${token}`) throw new Error('bad Authorization header');
      if (auth.getStatus().state !== 'valid') throw new Error(`state is ${auth.getStatus().state}`);
      if (fake.calls.auth !== 1) throw new Error(`expected 1 Get token call, got ${fake.calls.auth}`);
    } finally {
      await app.close();
    }
  } finally {
    await fake.stop();
  }
  console.log('cjs: ok');
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
JS
step cjs node check.cjs

# --- (b) ESM: named imports ----------------------------------------------------------------------------
cat >"$APP/check.mjs" <<'JS'
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { TransferAuthError, TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

const fake = await new FakeTransferServer().start();
try {
  const app = await NestFactory.createApplicationContext(
    TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url }),
    { logger: ['error', 'warn'] },
  );
  try {
    const auth = app.get(TransferAuthService);
    const token = await auth.getAccessToken();
    if (!fake.isAccessTokenValid(token)) throw new Error('the fake does not accept the token');
    if (fake.calls.auth !== 1) throw new Error(`expected 1 Get token call, got ${fake.calls.auth}`);
    if (typeof TransferAuthError.is !== 'function') throw new Error('TransferAuthError is not the class');
  } finally {
    await app.close();
  }
} finally {
  await fake.stop();
}
console.log('esm: ok');
JS
step esm node check.mjs

# --- (c) TypeScript against Nest 12 typings ------------------------------------------------------------
cat >"$APP/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "experimentalDecorators": true,
    "emitDecoratorMetadata": true,
    "types": ["node"]
  },
  "files": ["check-types.cts", "check-types.mts"]
}
JSON
TYPES_BODY="$(
  cat <<'TS'
const options: TransferAuthModuleOptions = {
  agentId: 'agent',
  agentSecret: 'secret',
  baseUrl: 'https://api.freedompay.kz',
  refresh: { method: 'PATCH', tokenIn: 'header' },
  retry: { maxAttempts: 5 },
  fetchOnStartup: false,
};
const noRefresh: TransferAuthModuleOptions = { agentId: 'agent', agentSecret: 'secret', refresh: false };
// @ts-expect-error tokenIn is 'header' | 'body' | 'both'
const badTokenIn: TransferAuthModuleOptions = { agentId: 'a', agentSecret: 's', refresh: { tokenIn: 'query' } };
// @ts-expect-error agentSecret is required
const noSecret: TransferAuthModuleOptions = { agentId: 'a' };

@Injectable()
class PaymentsService {
  constructor(private readonly auth: TransferAuthService) {}

  async header(): Promise<string> {
    const events: Observable<TransferAuthEvent> = this.auth.events$;
    void events;
    return this.auth.getAuthorizationHeader();
  }

  state(): TransferAuthStatus['state'] {
    return this.auth.getStatus().state;
  }

  async retryOn401(token: string): Promise<string> {
    this.auth.invalidate(token);
    try {
      return await this.auth.forceRefresh();
    } catch (error) {
      if (TransferAuthError.is(error, TransferAuthErrorCode.SHUTDOWN)) return '';
      const code: TransferAuthErrorCode | undefined = error instanceof TransferAuthError ? error.code : undefined;
      throw new Error(String(code));
    }
  }
}

const sync: DynamicModule = TransferAuthModule.forRoot({ ...options, isGlobal: true });
const async: DynamicModule = TransferAuthModule.forRootAsync({
  inject: ['CONFIG'],
  useFactory: (config: { id: string; secret: string }): TransferAuthModuleOptions => ({
    agentId: config.id,
    agentSecret: config.secret,
  }),
});

@Module({ imports: [sync], providers: [PaymentsService] })
class AppModule {}

async function useFake(): Promise<string> {
  const fake: FakeTransferServer = await new FakeTransferServer({ accessTtlMs: 60_000 }).start();
  fake.failNext('auth', { kind: 'status', status: 503, retryAfter: 1 });
  const url: string = fake.url;
  const count: number = fake.calls.auth;
  await fake.stop();
  return `${url}${count}`;
}

export { AppModule, async, noRefresh, badTokenIn, noSecret, useFake };
TS
)"
IMPORTS="$(
  cat <<'TS'
import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import type { Observable } from 'rxjs';
import {
  TransferAuthError,
  TransferAuthErrorCode,
  TransferAuthModule,
  TransferAuthService,
  type TransferAuthEvent,
  type TransferAuthModuleOptions,
  type TransferAuthStatus,
} from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
TS
)"
printf '%s\n\n%s\n' "$IMPORTS" "$TYPES_BODY" >"$APP/check-types.cts"
printf '%s\n\n%s\n' "$IMPORTS" "$TYPES_BODY" >"$APP/check-types.mts"
step tsc npx --no-install tsc -p tsconfig.json

# --- (d) the /health entry with @nestjs/terminus 12 (installed only now: (a) and (b) ran without it) ----
cat >"$APP/check-health.mjs" <<'JS'
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { TransferAuthModule } from 'nestjs-freedompay-transfer-auth';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

const fake = await new FakeTransferServer().start();
try {
  class HealthModule {}
  Module({
    imports: [
      TerminusModule,
      TransferAuthModule.forRoot({ agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url }),
    ],
    providers: [TransferAuthHealthIndicator],
  })(HealthModule);
  const app = await NestFactory.createApplicationContext(HealthModule, { logger: ['error', 'warn'] });
  try {
    const result = await app.get(TransferAuthHealthIndicator).isHealthy('freedompay');
    if (result.freedompay?.status !== 'up') throw new Error(`health: ${JSON.stringify(result)}`);
  } finally {
    await app.close();
  }
} finally {
  await fake.stop();
}
console.log('health: ok');
JS
install_terminus() {
  npm install --no-audit --no-fund --no-package-lock --no-save --loglevel=error '@nestjs/terminus@^12.0.0' &&
    node check-health.mjs
}
step health install_terminus

# --- (e) the /redis entry with ioredis 5, against a redis-server of its own ----------------------------
cat >"$APP/check-redis.mjs" <<'JS'
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { RedisTokenStore } from 'nestjs-freedompay-transfer-auth/redis';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = probe.address();
    probe.close(() => resolve(free));
  });
});
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
const fake = await new FakeTransferServer().start();
const clients = [];
try {
  const app = async () => {
    const client = new Redis({ port, host: '127.0.0.1', retryStrategy: (n) => (n > 50 ? null : 100) });
    clients.push(client);
    const options = { agentId: fake.agentId, agentSecret: fake.agentSecret, baseUrl: fake.url };
    return NestFactory.createApplicationContext(
      TransferAuthModule.forRoot({ ...options, store: new RedisTokenStore({ client }) }),
      { logger: ['error'] },
    );
  };
  await new Promise((resolve) => setTimeout(resolve, 300)); // redis-server binding
  const [a, b] = [await app(), await app()];
  const tokens = [await a.get(TransferAuthService).getAccessToken(), await b.get(TransferAuthService).getAccessToken()];
  await Promise.all([a.close(), b.close()]);
  if (tokens[0] !== tokens[1]) throw new Error('the two contexts do not share the token');
  if (fake.calls.auth !== 1) throw new Error(`expected 1 Get token call, got ${fake.calls.auth}`);
} finally {
  for (const client of clients) client.disconnect();
  await fake.stop();
  server.kill('SIGKILL');
}
console.log('redis: ok');
JS
install_ioredis() {
  command -v redis-server >/dev/null || { echo 'redis-server is not on PATH'; return 1; }
  npm install --no-audit --no-fund --no-package-lock --no-save --loglevel=error 'ioredis@^5.0.0' '@nestjs/terminus@^12.0.0' &&
    node check-redis.mjs
}
step redis install_ioredis

# --- (f) the bin, as npm links it: --version, then `fake` and `doctor` against it ----------------------
cat >"$APP/check-bin.mjs" <<'JS'
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const bin = 'node_modules/.bin/nestjs-freedompay-transfer-auth';
const { version } = JSON.parse(readFileSync('node_modules/nestjs-freedompay-transfer-auth/package.json', 'utf8'));
const printed = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
if (printed !== version) throw new Error(`--version printed ${printed}, the package is ${version}`);

const fake = spawn(bin, ['fake', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
await new Promise((resolve, reject) => {
  fake.on('exit', (code) => reject(new Error(`fake exited with ${code}: ${out}`)));
  fake.stdout.on('data', (chunk) => {
    out += chunk;
    if (out.includes('Stop with Ctrl+C')) resolve();
  });
});
fake.removeAllListeners('exit');
const env = Object.fromEntries([...out.matchAll(/^(FREEDOMPAY_\w+)=(.+)$/gm)].map(([, k, v]) => [k, v]));
try {
  const json = execFileSync(bin, ['doctor', '--base-url', env.FREEDOMPAY_BASE_URL, '--yes', '--json'], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const report = JSON.parse(json);
  const want = { method: 'PATCH', path: '/v5/partner/transfer/agent/auth', tokenIn: 'both' };
  if (JSON.stringify(report.recommended.refresh) !== JSON.stringify(want) || report.refresh.singleUse !== true) {
    throw new Error(`doctor reported ${JSON.stringify(report.recommended)} singleUse ${report.refresh.singleUse}`);
  }
  if (json.includes(env.FREEDOMPAY_AGENT_SECRET)) throw new Error('doctor printed the secret');
} finally {
  const exited = new Promise((resolve) => fake.on('exit', resolve));
  fake.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) throw new Error(`fake exited with ${code} on SIGTERM`);
}
console.log(`bin: ok (${version})`);
JS
step bin node check-bin.mjs

verdict

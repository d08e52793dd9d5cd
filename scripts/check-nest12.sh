#!/usr/bin/env bash
# Builds a fresh NestJS 12 app from the README alone and checks that it works with the packed package:
#   (0) the code blocks of the README (and of docs/recipes.md, its "More recipes") that name a file
#       (`// app.module.ts`, `// vitest.config.mts`, ...) become the app's files, verbatim; its
#       dependencies are the README's (the Vitest row of its testing table included), at Nest 12;
#   (a) `tsc` type-checks the app under `strict` and `exactOptionalPropertyTypes` (skipLibCheck off);
#   (b) the app's own specs (the README's testing recipe) pass under Vitest, the runner the README names
#       for Nest 12 on Node 20;
#   (c) the compiled app (main.ts, the ConfigModule recipe) starts against a FakeTransferServer, gets a
#       token, never prints the secret, and stops on SIGTERM.
# The app lives in a temp dir outside the repo, removed at the end (KEEP_CHECK_NEST12_DIR=1 keeps it).
# Needs the npm registry: when it cannot be reached, prints one line and exits 75 (CI skips, not fails).
# Prints a one-line verdict last; exits 1 on failure.
CHECK=check-nest12 KEEP_VAR=KEEP_CHECK_NEST12_DIR
# shellcheck source=scripts/check-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/check-common.sh"

verdict() {
  local versions
  versions="$(cd "$APP" 2>/dev/null && node -p "['@nestjs/core', 'vitest', 'vite', 'typescript'].map((p) => { try { return p + ' ' + require(p + '/package.json').version } catch { return p + ' ?' } }).join(', ')" 2>/dev/null || echo '?')"
  if ((${#failed[@]} == 0)); then
    echo "check-nest12: PASS (${passed[*]}) with $versions on node $(node --version)"
    exit 0
  fi
  echo "check-nest12: FAIL (${failed[*]}${passed[*]:+; passed: ${passed[*]}}) with $versions on node $(node --version)"
  exit 1
}

registry_reachable || skip_unreachable
mkdir -p "$APP/src"

# --- pack --------------------------------------------------------------------------------------------
echo "check-nest12: packing $REPO (prepack builds dist/) ..."
if ! (cd "$REPO" && npm pack --pack-destination "$WORK" --loglevel=error) >"$LOG" 2>&1; then
  cat "$LOG"
  failed+=("npm-pack")
  verdict
fi
TARBALL="$(ls "$WORK"/*.tgz 2>/dev/null | head -n1)"
[[ -n "$TARBALL" ]] || { failed+=("npm-pack"); verdict; }

# --- (0) the app, from the README --------------------------------------------------------------------
# Files: every ```ts block whose first line is `// <name>.ts` (into src/) or `// <name>.config.mts` (the root).
# Dev dependencies for tests: the install command of the README's "| 12 | 20.19+ | Vitest ..." row.
readme() {
  node - "$REPO" "$APP" <<'JS'
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const [repo, app] = process.argv.slice(2);
const text = readFileSync(join(repo, 'README.md'), 'utf8');
// docs/recipes.md: the README's "More recipes", one link away.
const both = `${text}\n${readFileSync(join(repo, 'docs', 'recipes.md'), 'utf8')}`;
const files = [];
for (const [, body] of both.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
  const name = /^\/\/ ([\w.-]+\.m?ts)\n/.exec(body)?.[1];
  if (name === undefined) continue;
  writeFileSync(join(app, name.endsWith('.config.mts') ? name : join('src', name)), body);
  files.push(name);
}
const row = text.split('\n').find((line) => /^\| 12 \| 20\.19\+ \| Vitest/.test(line));
const install = row && /`(npm i -D [\w@./^~ -]+)`/.exec(row)?.[1];
if (!install) throw new Error('no "| 12 | 20.19+ | Vitest ... | `npm i -D ...` |" row in the README');
for (const needed of ['main.ts', 'app.module.ts', 'payments.module.spec.ts', 'vitest.config.mts']) {
  if (!files.includes(needed)) throw new Error(`the README has no \`// ${needed}\` block`);
}
writeFileSync(join(app, 'install-test-runner.sh'), `${install} --no-audit --no-fund --loglevel=error\n`);
console.log(`files: ${files.join(', ')}; test runner: ${install}`);
JS
}
if ! readme >"$LOG" 2>&1; then
  cat "$LOG"
  failed+=("readme")
  verdict
fi
cat "$LOG"

cat >"$APP/package.json" <<JSON
{ "name": "check-nest12-app", "version": "0.0.0", "private": true }
JSON
cat >"$APP/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2023",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "skipLibCheck": false,
    "experimentalDecorators": true,
    "emitDecoratorMetadata": true,
    "outDir": "dist",
    "rootDir": "src",
    "types": ["node", "vitest/globals"]
  },
  "include": ["src"]
}
JSON

install() {
  npm install --no-audit --no-fund --loglevel=error "$TARBALL" \
    '@nestjs/common@^12.0.0' '@nestjs/core@^12.0.0' '@nestjs/platform-express@^12.0.0' '@nestjs/config@^12.0.0' \
    '@nestjs/terminus@^12.0.0' reflect-metadata rxjs class-validator class-transformer &&
    npm install --no-audit --no-fund --loglevel=error -D '@nestjs/testing@^12.0.0' 'typescript@^5.9.0' '@types/node@^20.19.0' &&
    bash install-test-runner.sh
}
echo "check-nest12: installing NestJS 12 and the README's test runner in $APP ..."
if ! (cd "$APP" && install) >"$LOG" 2>&1; then
  registry_reachable || skip_unreachable
  cat "$LOG"
  failed+=("npm-install")
  verdict
fi

# --- (a) tsc, strict + exactOptionalPropertyTypes ------------------------------------------------------
step tsc npx --no-install tsc -p tsconfig.json --noEmit

# --- (b) the README's testing recipe under Vitest -------------------------------------------------------
step vitest npx --no-install vitest run
grep -E 'Test Files|Tests ' "$LOG" | sed 's/\x1b\[[0-9;]*m//g; s/^/check-nest12: vitest: /' || true

# --- (c) the app itself, against a fake ------------------------------------------------------------------
cat >"$APP/run-app.mjs" <<'JS'
import { spawn } from 'node:child_process';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

const fake = await new FakeTransferServer().start();
const port = String(20000 + Math.floor(Math.random() * 20000));
const app = spawn(process.execPath, ['dist/main.js'], {
  env: {
    ...process.env,
    PORT: port,
    FREEDOMPAY_AGENT_ID: fake.agentId,
    FREEDOMPAY_AGENT_SECRET: fake.agentSecret,
    FREEDOMPAY_BASE_URL: fake.url,
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let output = '';
app.stdout.on('data', (chunk) => (output += chunk));
app.stderr.on('data', (chunk) => (output += chunk));
const exited = new Promise((resolve) => app.on('exit', (code, signal) => resolve(code ?? signal)));
let listening = false;
for (let i = 0; i < 150 && !listening && app.exitCode === null; i++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  listening = await fetch(`http://127.0.0.1:${port}/`).then(
    () => true,
    () => false,
  );
}
const tokenCalls = fake.calls.auth;
app.kill('SIGTERM');
const exit = await exited;
await fake.stop();
const secretShown = output.includes(fake.agentSecret);
console.log(JSON.stringify({ listening, tokenCalls, exit, secretShown }));
// Nest's shutdown hooks close the app, then re-raise the signal: SIGTERM is a clean stop.
if (!listening || tokenCalls !== 1 || (exit !== 0 && exit !== 'SIGTERM') || secretShown) {
  console.log(output);
  process.exit(1);
}
JS
step app sh -c 'npx --no-install tsc -p tsconfig.json && node run-app.mjs'

verdict

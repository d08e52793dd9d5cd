#!/usr/bin/env bash
# Builds a fresh NestJS 12 app from the README and docs/ alone and checks that it works with the packed
# package. The app is what `nest new` makes for Nest 12 (`"type": "module"`, `"module": "nodenext"`,
# `isolatedModules`), with `strict` and `exactOptionalPropertyTypes` on and `skipLibCheck` off:
#   (0) every ```ts block of README.md and docs/*.md becomes a file of the app, verbatim: a block whose
#       first line names a file (`// app.module.ts`, `// vitest.config.mts`, ...) is that file (in src/,
#       or the root for `*.config.mts`); any other block is a module of its own, src/snippets/<doc>-<n>.ts
#       (n: its place among the doc's ```ts blocks), and must be complete (imports included). The packages
#       the blocks import are installed (Nest's at 12), with the README's test runner (the Vitest row of
#       its testing table);
#   (a) `tsc` type-checks every one of them;
#   (b) the app's own specs (the README's testing recipe) pass under Vitest, the runner the README names
#       for Nest 12 on Node 20;
#   (c) the compiled app (main.ts, the ConfigModule recipe) starts against a FakeTransferServer, gets a
#       token, never prints the secret, and stops on SIGTERM;
#   (d) the same app with docs/observability.md's metrics set-up serves /metrics that `promtool check
#       metrics` accepts, with the `_seconds` names, the expiry timestamp gauge and its service.name
#       (promtool must be on PATH: `npm run check:prometheus` installs it, and runs before this in CI).
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
    echo "check-nest12: PASS (${passed[*]}; ${BLOCKS:-no ts blocks}) with $versions on node $(node --version)"
    exit 0
  fi
  echo "check-nest12: FAIL (${failed[*]}${passed[*]:+; passed: ${passed[*]}}) with $versions on node $(node --version)"
  exit 1
}

registry_reachable || skip_unreachable
mkdir -p "$APP/src"

# --- pack --------------------------------------------------------------------------------------------
# CHECK_NEST12_TARBALL=<file.tgz>: use that tarball instead of packing the working tree (e.g. one packed
# from a clean checkout while the tree is being edited).
if [[ -n "${CHECK_NEST12_TARBALL:-}" ]]; then
  cp "$CHECK_NEST12_TARBALL" "$WORK/" || { failed+=("npm-pack"); verdict; }
  echo "check-nest12: using $CHECK_NEST12_TARBALL"
else
  echo "check-nest12: packing $REPO (prepack builds dist/) ..."
  if ! (cd "$REPO" && npm pack --pack-destination "$WORK" --loglevel=error) >"$LOG" 2>&1; then
    cat "$LOG"
    failed+=("npm-pack")
    verdict
  fi
fi
TARBALL="$(ls "$WORK"/*.tgz 2>/dev/null | head -n1)"
[[ -n "$TARBALL" ]] || { failed+=("npm-pack"); verdict; }

# --- (0) the app, from the README and docs/ --------------------------------------------------------
# Also writes extra-deps.txt: the packages the blocks import beyond those installed below, one a line.
blocks() {
  node - "$REPO" "$APP" <<'JS'
const { mkdirSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { builtinModules } = require('node:module');
const { basename, join } = require('node:path');
const [repo, app] = process.argv.slice(2);
const docs = ['README.md', ...readdirSync(join(repo, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const files = new Map(); // name -> { body, doc }
const snippets = [];
const imported = new Set();
const problems = [];
const fragments = [];
mkdirSync(join(app, 'src', 'snippets'), { recursive: true });
for (const doc of docs) {
  const text = readFileSync(join(repo, doc), 'utf8');
  let n = 0;
  for (const [, body] of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    n += 1;
    for (const [, spec] of body.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) imported.add(spec);
    for (const [, spec] of body.matchAll(/^\s*import\s+'([^']+)'/gm)) imported.add(spec);
    const name = /^\/\/ ([\w.-]+\.m?ts)\n/.exec(body)?.[1];
    if (name !== undefined) {
      const seen = files.get(name);
      if (seen !== undefined && seen.body !== body) problems.push(`${doc} and ${seen.doc} show two different \`// ${name}\``);
      files.set(name, { body, doc });
      writeFileSync(join(app, name.endsWith('.config.mts') ? name : join('src', name)), body);
      continue;
    }
    const file = `src/snippets/${basename(doc, '.md').toLowerCase()}-${n}.ts`;
    if (!/^\s*(import|export)\b/m.test(body)) fragments.push(`${doc}, ts block ${n}: a fragment (no import or export): make it a complete module`);
    writeFileSync(join(app, file), body);
    snippets.push(file);
  }
}
// Installed by the script itself (Nest's at 12) or by the test runner's row; node: built-ins need nothing.
const provided = new Set([
  'nestjs-freedompay-transfer-auth', '@nestjs/common', '@nestjs/core', '@nestjs/platform-express',
  '@nestjs/config', '@nestjs/terminus', '@nestjs/testing', 'reflect-metadata', 'rxjs', 'class-validator',
  'class-transformer', 'vitest', 'vite',
]);
const extra = new Set();
for (const spec of imported) {
  if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
  const pkg = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
  if (!provided.has(pkg)) extra.add(pkg);
}
writeFileSync(join(app, 'extra-deps.txt'), [...extra].sort().map((pkg) => `${pkg}\n`).join(''));
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const row = readme.split('\n').find((line) => /^\| 12 \| 20\.19\+ \| Vitest/.test(line));
const install = row && /`(npm i -D [\w@./^~ -]+)`/.exec(row)?.[1];
if (!install) problems.push('no "| 12 | 20.19+ | Vitest ... | `npm i -D ...` |" row in the README');
for (const needed of ['main.ts', 'app.module.ts', 'payments.module.spec.ts', 'vitest.config.mts']) {
  if (!files.has(needed)) problems.push(`the README has no \`// ${needed}\` block`);
}
if (problems.length > 0) throw new Error(problems.join('\n'));
writeFileSync(join(app, 'install-test-runner.sh'), `${install} --no-audit --no-fund --loglevel=error\n`);
console.log(`${files.size + snippets.length} ts blocks: files ${[...files.keys()].join(', ')}; snippets ${snippets.map((s) => basename(s)).join(', ')}`);
console.log(`imported beyond Nest: ${[...extra].sort().join(', ') || 'nothing'}; test runner: ${install}`);
// A fragment is compiled all the same (its errors show what it lacks), and fails the check.
if (fragments.length > 0) {
  console.log(fragments.join('\n'));
  process.exit(3);
}
JS
}
blocks >"$LOG" 2>&1
case $? in
  0) passed+=("blocks") ;;
  3) failed+=("blocks") ;;
  *)
    cat "$LOG"
    failed+=("blocks")
    verdict
    ;;
esac
sed 's/^/check-nest12: /' "$LOG"
BLOCKS="$(grep -o '^[0-9]* ts blocks' "$LOG")"

# What `nest new` writes for Nest 12 (ES modules, nodenext), with strict and exactOptionalPropertyTypes on
# and the libraries' own types checked too.
cat >"$APP/package.json" <<JSON
{ "name": "check-nest12-app", "version": "0.0.0", "private": true, "type": "module" }
JSON
cat >"$APP/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "resolvePackageJsonExports": true,
    "esModuleInterop": true,
    "isolatedModules": true,
    "emitDecoratorMetadata": true,
    "experimentalDecorators": true,
    "allowSyntheticDefaultImports": true,
    "target": "ES2023",
    "outDir": "dist",
    "rootDir": "src",
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "skipLibCheck": false,
    "types": ["node", "vitest/globals"]
  },
  "include": ["src"]
}
JSON

install() {
  npm install --no-audit --no-fund --loglevel=error "$TARBALL" \
    '@nestjs/common@^12.0.0' '@nestjs/core@^12.0.0' '@nestjs/platform-express@^12.0.0' '@nestjs/config@^12.0.0' \
    '@nestjs/terminus@^12.0.0' reflect-metadata rxjs class-validator class-transformer &&
    npm install --no-audit --no-fund --loglevel=error -D '@nestjs/testing@^12.0.0' "typescript@$TYPESCRIPT" '@types/node@^20.19.0' &&
    bash install-test-runner.sh &&
    if [[ -s extra-deps.txt ]]; then xargs npm install --no-audit --no-fund --loglevel=error <extra-deps.txt; fi
}
# `nest new` for Nest 12 asks for TypeScript ^6.0.2; TYPESCRIPT=... tries another.
TYPESCRIPT="${TYPESCRIPT:-^6.0.2}"
echo "check-nest12: installing NestJS 12, TypeScript $TYPESCRIPT, the README's test runner and what the blocks import in $APP ..."
if ! (cd "$APP" && install) >"$LOG" 2>&1; then
  registry_reachable || skip_unreachable
  cat "$LOG"
  failed+=("npm-install")
  verdict
fi

# --- the metrics set-up of docs/observability.md on the README's app (run by (d)) ---------------------------
# Its first ts block is a module (startMetrics, MetricsController): a main that uses it as the doc says.
if [[ -f "$APP/src/snippets/observability-1.ts" ]] && grep -q 'export function startMetrics' "$APP/src/snippets/observability-1.ts"; then
  cat >"$APP/src/metrics-main.ts" <<'TS'
// Written by check-nest12: the README's AppModule with docs/observability.md's metrics set-up.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { MetricsController, startMetrics } from './snippets/observability-1.js';

startMetrics('check-nest12'); // before NestFactory.create, as the doc says

@Module({ imports: [AppModule], controllers: [MetricsController] })
class MetricsAppModule {}

const app = await NestFactory.create(MetricsAppModule, { logger: ['error', 'warn'] });
app.enableShutdownHooks();
await app.listen(Number(process.env['PORT']));
TS
else
  echo "check-nest12: docs/observability.md's first ts block no longer exports startMetrics (src/snippets/observability-1.ts)"
  failed+=("metrics-setup")
fi

# --- (a) tsc, strict + exactOptionalPropertyTypes ------------------------------------------------------
# skipLibCheck is off so that the package's own declarations are checked as the app sees them; errors in
# other libraries' declarations (ioredis 5's imports the untyped `redis-errors`) are theirs: shown, not
# counted (`nest new` sets skipLibCheck, and its users never see them).
typecheck() {
  local out theirs rc=0
  out="$(npx --no-install tsc -p tsconfig.json --noEmit 2>&1)" || rc=$?
  theirs="$(grep -E '^node_modules/' <<<"$out" | grep -vE '^node_modules/nestjs-freedompay-transfer-auth/' || true)"
  [[ -z "$theirs" ]] || echo "other libraries' declarations (not counted): $(cut -d'(' -f1 <<<"$theirs" | sort -u | tr '\n' ' ')"
  # Ours: an error in the app or in this package's declarations, or one elsewhere that names this package.
  if grep -E '^[^ ].*error TS' <<<"$out" | grep -vE '^node_modules/' | grep -q . ||
    grep -qE '^node_modules/nestjs-freedompay-transfer-auth/.*error TS' <<<"$out" ||
    grep -E '^node_modules/.*error TS' <<<"$out" | grep -q 'nestjs-freedompay-transfer-auth'; then
    echo "$out"
    return 1
  fi
  # tsc failed without a line that says why (a crash): a failure, not a pass.
  if ((rc != 0)) && ! grep -qE 'error TS' <<<"$out"; then
    echo "tsc exited $rc without a type error to show for it:"
    echo "$out"
    return 1
  fi
}
step tsc typecheck

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
# Emits even when other libraries' declarations have errors (step (a) judged them); then runs the app.
step app sh -c 'npx --no-install tsc -p tsconfig.json >/dev/null; test -f dist/main.js && node run-app.mjs'

# --- (d) /metrics of the app with the docs' set-up, judged by promtool ------------------------------------
cat >"$APP/run-metrics.mjs" <<'JS'
import { spawn, spawnSync } from 'node:child_process';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';

const fake = await new FakeTransferServer().start();
const port = String(20000 + Math.floor(Math.random() * 20000));
const app = spawn(process.execPath, ['dist/metrics-main.js'], {
  env: { ...process.env, PORT: port, FREEDOMPAY_AGENT_ID: fake.agentId, FREEDOMPAY_AGENT_SECRET: fake.agentSecret, FREEDOMPAY_BASE_URL: fake.url },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let output = '';
app.stdout.on('data', (chunk) => (output += chunk));
app.stderr.on('data', (chunk) => (output += chunk));
const exited = new Promise((resolve) => app.on('exit', (code, signal) => resolve(code ?? signal)));
let scrape;
for (let i = 0; i < 150 && scrape === undefined && app.exitCode === null; i++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  scrape = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => (r.ok ? r.text() : undefined), () => undefined);
}
app.kill('SIGTERM');
await exited;
await fake.stop();
const problems = [];
if (scrape === undefined) problems.push(`no /metrics answer: ${output}`);
else {
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
  if (promtool.error || promtool.status !== 0 || `${promtool.stdout}${promtool.stderr}`.trim() !== '') {
    problems.push(`promtool check metrics: ${promtool.error?.message ?? `${promtool.stdout}${promtool.stderr}`}`);
  }
  for (const needed of [
    'freedompay_transfer_auth_access_token_expiration_timestamp_seconds{',
    'freedompay_transfer_auth_renewal_duration_seconds_bucket{',
    'freedompay_transfer_auth_renewals_total{',
    'service_name="check-nest12"',
  ]) {
    if (!scrape.includes(needed)) problems.push(`/metrics lacks ${needed}`);
  }
  if (scrape.includes(fake.agentSecret)) problems.push('/metrics shows the secret');
}
if (problems.length > 0) {
  console.log(problems.join('\n'));
  process.exit(1);
}
console.log(`metrics: ${scrape.split('\n').filter((l) => l.startsWith('freedompay_')).length} package series, promtool clean`);
JS
metrics_check() {
  command -v promtool >/dev/null || { echo 'promtool is not on PATH: `npm run check:prometheus` installs it'; return 1; }
  test -f dist/metrics-main.js && node run-metrics.mjs
}
step metrics metrics_check
grep -E '^metrics:' "$LOG" | sed 's/^/check-nest12: /' || true

verdict

#!/usr/bin/env bash
# The shipped Prometheus alert rules, the sample's /metrics and the Grafana dashboard, checked by promtool:
#   1. promtool check rules  prometheus/freedompay-transfer-auth.rules.yml
#   2. promtool test rules   prometheus/freedompay-transfer-auth.rules.test.yml (each alert fires and stays quiet)
#   3. promtool check metrics on a real scrape of the sample app (built and started as `npm start` does,
#      against its embedded fake upstream), taken once it holds a token; the app is stopped after. The app
#      is started without the caller's FREEDOMPAY_* and REDIS_URL: a check never logs in to a real upstream
#      with real credentials, nor writes to a real Redis.
#   4. the Grafana dashboard prometheus/freedompay-transfer-auth.grafana.json: its JSON parses; every PromQL
#      of it (targets, query variables' selectors), Grafana's variables put in, passes `promtool check
#      rules` as a recording rule; every metric and label name it uses is in the scrape of step 3 or in an
#      exposition of every instrument of the package (the sample's exporter on the built telemetry, one
#      measurement each: the sample alone has no store series). A self-test breaks copies of it (an expr
#      that does not parse, an unknown metric, label, legend label; not JSON) and expects each to fail.
#   5. a self-test of step 3, run again as a caller would (`--scrape-only`, on the build of step 3): with
#      FREEDOMPAY_* and REDIS_URL pointing at a stand-in that counts connections and a TMPDIR of its own,
#      it must exit 0, leave nothing in that TMPDIR and open no connection to the stand-in.
# Every temp file lives in one directory that the EXIT trap removes, with every child still running; TERM
# and INT end the script through that trap (children are waited for in the background, so a signal is
# handled at once, not when the command in hand ends).
# Without promtool on the PATH it installs Debian's `prometheus` package (with sudo when not root); if that
# fails it says so and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

RULES=prometheus/freedompay-transfer-auth.rules.yml
TESTS=prometheus/freedompay-transfer-auth.rules.test.yml
DASHBOARD=prometheus/freedompay-transfer-auth.grafana.json

install_promtool() {
  echo "promtool not found: installing Debian's prometheus package (apt-get install prometheus)"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then sudo=(sudo -n); else
      echo "check-prometheus: promtool is missing and this is not root, without sudo: install it (apt-get install prometheus, or a release from https://prometheus.io/download/) and run again." >&2
      return 1
    fi
  fi
  # The package would start a prometheus daemon where an init system runs: policy-rc.d forbids it, for this
  # install only, when the file is not there already.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod +x "$policy" && made_policy=1
  fi
  local rc=0
  { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
    --no-install-recommends prometheus >/dev/null; } || rc=$?
  if ((made_policy)); then "${sudo[@]}" rm -f "$policy"; fi
  if ((rc != 0)) || ! command -v promtool >/dev/null; then
    echo "check-prometheus: could not install promtool (apt-get install prometheus failed with exit $rc): install it (Debian/Ubuntu: the prometheus package; else a release from https://prometheus.io/download/) and run again." >&2
    return 1
  fi
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/check-prometheus.XXXXXX")
child='' app=''
# Cannot fail (it runs under set -e): stops what still runs, waits for it, removes the temp files.
cleanup() {
  local pid
  for pid in $child $app; do kill "$pid" 2>/dev/null || true; done
  for pid in $child $app; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# run CMD...: CMD as a job waited for, so that TERM/INT run their trap at once (bash defers a trap while a
# foreground command runs) and the EXIT trap can stop it. Returns CMD's status.
run() {
  local rc=0
  "$@" &
  child=$!
  wait "$child" || rc=$?
  child=''
  return "$rc"
}

scrape_only=0
if [[ ${1:-} == --scrape-only ]]; then scrape_only=1; fi

if ((!scrape_only)); then
  command -v promtool >/dev/null || install_promtool || exit 1
  promtool --version 2>&1 | head -1

  echo "--- promtool check rules"
  run promtool check rules "$RULES"
  echo "--- promtool test rules"
  run promtool test rules "$TESTS"
  run npm run --silent prestart >/dev/null
fi

echo "--- promtool check metrics on the sample app's /metrics"
port=$(node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();})")
log=$scratch/app.log
scrape=$scratch/metrics.txt
# The sample on its embedded fake: without FREEDOMPAY_AGENT_ID it starts one; without REDIS_URL it keeps the
# token in the process. Whatever the caller has set for their own use stays out of it.
unset_env=()
for name in $(compgen -e); do
  case $name in FREEDOMPAY_* | REDIS_URL) unset_env+=(-u "$name") ;; esac
done
env "${unset_env[@]}" PORT="$port" node sample-app/dist/main.js >"$log" 2>&1 &
app=$!

# Once it holds a token (its startup login is done): /auth/status says "valid".
if ! run node -e '
  const url = `http://127.0.0.1:${process.argv[1]}`;
  const deadline = Date.now() + 30_000;
  (async () => {
    for (;;) {
      try {
        const status = await (await fetch(`${url}/auth/status`)).json();
        if (JSON.stringify(status).includes("\"state\":\"valid\"")) break;
      } catch {}
      if (Date.now() > deadline) { console.error("the sample app holds no token after 30 s"); process.exit(1); }
      await new Promise((r) => setTimeout(r, 200));
    }
    process.stdout.write(await (await fetch(`${url}/metrics`)).text());
  })();
' "$port" >"$scrape"; then
  echo "check-prometheus: the sample app did not come up with a token; its output:" >&2
  cat "$log" >&2
  exit 1
fi
grep -q '^freedompay_transfer_auth_access_token_expiration_timestamp_seconds{' "$scrape" || {
  echo "check-prometheus: the scrape has none of the package's metrics:" >&2
  head -20 "$scrape" >&2
  exit 1
}
# promtool prints each problem it finds (and exits non-zero); nothing means clean.
run promtool check metrics <"$scrape" >"$scratch/lint" 2>&1 || {
  cat "$scratch/lint" >&2
  exit 1
}
if [[ -s $scratch/lint ]]; then
  cat "$scratch/lint" >&2
  exit 1
fi
echo "clean: $(grep -c '^freedompay_transfer_auth_' "$scrape") series of the package, $(grep -c '^# TYPE' "$scrape") metrics in all"
((!scrape_only)) || exit 0

echo "--- the Grafana dashboard: its JSON, its PromQL (promtool check rules), its metric and label names"
# The sample's scrape has no series of the store (no Redis here), of caller waits or of invalidations (none
# happened): a second exposition, made by the sample's own MeterProvider and exporter (sample-app/dist/
# metrics.js) from the built package's telemetry, with one measurement on every instrument, holds them all.
# It is checked by promtool too, and must name every instrument of the package's METRIC table.
cat >"$scratch/instruments.js" <<'JS'
const from = (id) => require(require.resolve(id, { paths: [process.cwd()] }));
const { PrometheusSerializer } = from("@opentelemetry/exporter-prometheus");
const { startMetrics } = from("./sample-app/dist/metrics.js");
const { createTelemetry, METRIC } = from("./dist/telemetry/otel-telemetry.js");
(async () => {
  const metrics = startMetrics();
  const t = createTelemetry({ name: "default", agentId: undefined });
  const login = { kind: "login", method: "POST", url: "http://127.0.0.1:1/auth" };
  await t.upstream(login, undefined, async () => 1, () => ({ status: 200, code: undefined }));
  t.loginNotSent("SECRET_UNAVAILABLE");
  t.callersWaited([0.01], "ok");
  t.callersWaited([0], "UPSTREAM_UNAVAILABLE");
  t.invalidated("dropped");
  t.adopted();
  t.lock("acquired");
  t.storeFailed("read", "timeout");
  t.observe({
    accessSecondsLeft: () => 60,
    refreshSecondsLeft: () => 600,
    accessExpiresAt: () => Date.now() / 1000 + 60,
    degraded: () => 0,
  });
  const { resourceMetrics } = await metrics.exporter.collect();
  const text = new PrometheusSerializer().serialize(resourceMetrics);
  await metrics.shutdown();
  const missing = Object.values(METRIC).filter((name) => !text.includes(`\n# TYPE ${name.replace(/\./g, "_")}`));
  if (missing.length > 0) {
    console.error(`check-prometheus: the instruments' exposition lacks ${missing.join(", ")}: measure it in this script`);
    process.exit(1);
  }
  process.stdout.write(text);
})();
JS
instruments=$scratch/instruments.txt
run node "$scratch/instruments.js" >"$instruments"
run promtool check metrics <"$instruments" >"$scratch/lint" 2>&1 || true
if [[ -s $scratch/lint ]]; then
  echo "check-prometheus: promtool check metrics on the instruments' exposition:" >&2
  cat "$scratch/lint" >&2
  exit 1
fi

# dashboard-check.js DASHBOARD RULES SCRAPE...: parses the dashboard; takes every PromQL of it (each
# target's expr; a query variable's label_values(selector, label) is not PromQL: its selector is, and its
# label must exist), puts in Grafana's variables ($__rate_interval, $__interval, $__range: 5m; a variable of
# the dashboard: .*; any other: a problem), and checks that every metric name, label name (matchers,
# by/on clauses, legends' {{label}}) is in a scrape, and that every panel reads $datasource. Then writes
# one recording rule per expression to RULES (JSON: YAML that promtool reads), for promtool to parse.
cat >"$scratch/dashboard-check.js" <<'JS'
const { readFileSync, writeFileSync } = require("node:fs");
const [file, rulesOut, ...expositions] = process.argv.slice(2);
const problems = [];
let dashboard;
try {
  dashboard = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  console.error(`check-prometheus: ${file} is not JSON: ${error.message}`);
  process.exit(1);
}
// What the scrapes hold: series names (a histogram's _bucket, _sum and _count) and label names; and what
// Prometheus adds (job, instance, its ALERTS and up).
const metrics = new Set(["ALERTS", "ALERTS_FOR_STATE", "up"]);
const labels = new Set(["job", "instance", "__name__", "alertname", "alertstate", "severity"]);
for (const exposition of expositions) {
  for (const line of readFileSync(exposition, "utf8").split("\n")) {
    const series = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s/.exec(line);
    if (!series) continue;
    metrics.add(series[1]);
    for (const [, label] of (series[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(label);
  }
}
const variables = new Set((dashboard.templating?.list ?? []).map((v) => v.name));
function substitute(text, where) {
  return text
    .replace(/\$\{?(__rate_interval|__interval|__range)\}?/g, "5m")
    .replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (all, a, b, c) => {
      if (!variables.has(a ?? b ?? c)) problems.push(`${where}: ${all} is no variable of the dashboard`);
      return ".*";
    });
}
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"]);
for (const word of ["group_left", "group_right", "Inf", "NaN", "inf", "nan"]) KEYWORDS.add(word);
// The metric and label names an expression uses (strings, durations and function names left out).
function checkNames(expr, where) {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const used = [];
  s = s.replace(/\{([^}]*)\}/g, (_, body) => {
    for (const [, label] of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) used.push(label);
    return " ";
  });
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, body) => {
    used.push(...body.split(",").map((label) => label.trim()).filter(Boolean));
    return " ";
  });
  s = s.replace(/\[[^\]]*\]/g, " ");
  for (const label of used) if (!labels.has(label)) problems.push(`${where}: label ${label} is in no scrape`);
  for (const [, name, call] of s.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (call || KEYWORDS.has(name)) continue;
    if (!metrics.has(name)) problems.push(`${where}: metric ${name} is in no scrape`);
  }
}
const rules = [];
function promql(expr, record, where) {
  const text = substitute(expr, where);
  if (text.includes("$")) problems.push(`${where}: a "$" is left once the variables are put in: ${text}`);
  checkNames(text, where);
  rules.push({ record, expr: text });
}
let panels = 0;
function walk(list) {
  for (const panel of list ?? []) {
    walk(panel.panels); // a collapsed row holds its panels
    if (panel.type === "row") continue;
    panels += 1;
    const at = `panel ${panel.id} "${panel.title}"`;
    if (!(panel.targets ?? []).length) problems.push(`${at}: no target`);
    if (panel.datasource?.uid !== "${datasource}") problems.push(`${at}: its datasource is not \${datasource}`);
    for (const target of panel.targets ?? []) {
      const where = `${at} ${target.refId}`;
      if (typeof target.expr !== "string" || !target.expr.trim()) {
        problems.push(`${where}: no expr`);
        continue;
      }
      promql(target.expr, `grafana:freedompay_transfer_auth:panel_${panel.id}_${target.refId}`, where);
      for (const [, label] of (target.legendFormat ?? "").matchAll(/\{\{\s*([^}\s]+)\s*\}\}/g)) {
        if (!labels.has(label)) problems.push(`${where}: label ${label} of the legend is in no scrape`);
      }
    }
  }
}
walk(dashboard.panels);
if (panels === 0) problems.push("no panel");
for (const v of dashboard.templating?.list ?? []) {
  if (v.type !== "query") continue;
  const where = `variable ${v.name}`;
  const query = (typeof v.query === "string" ? v.query : v.query?.query) ?? "";
  if (v.definition !== undefined && v.definition !== query) problems.push(`${where}: its definition is not its query`);
  const labelValues = /^\s*label_values\(\s*(?:(.*),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
  const result = /^\s*query_result\((.*)\)\s*$/.exec(query);
  if (labelValues) {
    if (!labels.has(labelValues[2])) problems.push(`${where}: label ${labelValues[2]} is in no scrape`);
    if (labelValues[1]) promql(labelValues[1], `grafana:freedompay_transfer_auth:variable_${v.name}`, where);
  } else if (result) promql(result[1], `grafana:freedompay_transfer_auth:variable_${v.name}`, where);
  else problems.push(`${where}: a query this check does not read: ${JSON.stringify(query)}`);
}
if (problems.length > 0) {
  console.error(`check-prometheus: ${file}:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
writeFileSync(rulesOut, JSON.stringify({ groups: [{ name: "grafana-dashboard", rules }] }, null, 2));
console.log(`${panels} panels, ${rules.length} expressions: the names are in a scrape`);
JS

# check_dashboard FILE: the checks above, then promtool check rules on the expressions. Exit status: theirs.
check_dashboard() {
  local rules=$scratch/dashboard.rules.json
  rm -f "$rules"
  run node "$scratch/dashboard-check.js" "$1" "$rules" "$scrape" "$instruments" || return 1
  run promtool check rules "$rules" >"$scratch/dashboard.lint" 2>&1 || {
    cat "$scratch/dashboard.lint" >&2
    return 1
  }
  grep SUCCESS "$scratch/dashboard.lint"
}
check_dashboard "$DASHBOARD"

echo "--- self-test: broken copies of the dashboard fail that check"
# mutate FROM TO OUT: the dashboard with the first FROM (in its JSON text) replaced by TO.
mutate() {
  node -e '
    const [from, to, out] = process.argv.slice(1);
    const text = require("node:fs").readFileSync(process.env.DASHBOARD, "utf8");
    if (!text.includes(from)) { console.error(`self-test: ${from} is not in the dashboard`); process.exit(1); }
    require("node:fs").writeFileSync(out, text.replace(from, to));
  ' "$@"
}
export DASHBOARD
bad=$scratch/broken.grafana.json
# Each case: what to replace, with what, and what the check must then say.
cases=(
  '[$__rate_interval]))' '[$__rate_interval])))' 'parse error'
  'renewals_total{job=~\"$job\", freedompay_transfer_auth_name=~\"$name\"}[' 'renewal_total{job=~\"$job\", freedompay_transfer_auth_name=~\"$name\"}[' 'metric freedompay_transfer_auth_renewal_total is in no scrape'
  'freedompay_transfer_auth_kind=\"login\"' 'freedompay_transfer_auth_type=\"login\"' 'label freedompay_transfer_auth_type is in no scrape'
  '{{error_type}}' '{{error_kind}}' 'label error_kind of the legend is in no scrape'
  '"schemaVersion"' 'schemaVersion' 'is not JSON'
)
for ((i = 0; i < ${#cases[@]}; i += 3)); do
  mutate "${cases[i]}" "${cases[i + 1]}" "$bad"
  if check_dashboard "$bad" >"$scratch/self-test.out" 2>&1; then
    echo "check-prometheus: self-test failed: the dashboard with ${cases[i]} -> ${cases[i + 1]} passed the check" >&2
    exit 1
  fi
  grep -qF -- "${cases[i + 2]}" "$scratch/self-test.out" || {
    echo "check-prometheus: self-test failed: with ${cases[i]} -> ${cases[i + 1]} the check did not say \"${cases[i + 2]}\":" >&2
    cat "$scratch/self-test.out" >&2
    exit 1
  }
  echo "fails as it should: ${cases[i + 2]}"
done

echo "--- self-test: the scrape above, again, with FREEDOMPAY_* and REDIS_URL set and a TMPDIR of its own"
# A stand-in for the real upstream and the real Redis counts every connection made to it. Once it listens,
# it runs this script with --scrape-only, waits for it, and says what it saw.
run node -e '
  const { spawn } = require("node:child_process");
  const { mkdtempSync, readdirSync } = require("node:fs");
  const { join } = require("node:path");
  const [script, scratch] = process.argv.slice(1);
  let connections = 0;
  const standIn = require("node:net").createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  standIn.listen(0, "127.0.0.1", () => {
    const at = `127.0.0.1:${standIn.address().port}`;
    const tmp = mkdtempSync(join(scratch, "self-test-tmp-"));
    const inner = spawn("bash", [script, "--scrape-only"], {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        TMPDIR: tmp,
        FREEDOMPAY_AGENT_ID: "real-agent",
        FREEDOMPAY_AGENT_SECRET: "real-secret-never-to-be-sent",
        FREEDOMPAY_BASE_URL: `http://${at}`,
        REDIS_URL: `redis://${at}`,
      },
    });
    let out = "";
    inner.stdout.on("data", (d) => (out += d));
    inner.on("close", (code, signal) => {
      standIn.close();
      const problems = [];
      if (code !== 0) problems.push(`it exited ${code ?? signal}`);
      if (!/^clean: /m.test(out)) problems.push("it did not say clean");
      const left = readdirSync(tmp);
      if (left.length > 0) problems.push(`it left ${left.join(", ")} in its TMPDIR`);
      if (connections > 0) problems.push(`it made ${connections} connection(s) to the upstream and Redis of the environment`);
      if (problems.length > 0) {
        console.error(`check-prometheus: self-test failed: ${problems.join("; ")}. Its output:\n${out}`);
        process.exit(1);
      }
      console.log("self-test: exit 0, its TMPDIR left empty, no connection to the environment'\''s upstream or Redis");
    });
  });
' "$0" "$scratch"

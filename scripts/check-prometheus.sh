#!/usr/bin/env bash
# The shipped Prometheus alert rules and the sample's /metrics, checked by promtool:
#   1. promtool check rules  prometheus/freedompay-transfer-auth.rules.yml
#   2. promtool test rules   prometheus/freedompay-transfer-auth.rules.test.yml (each alert fires and stays quiet)
#   3. promtool check metrics on a real scrape of the sample app (built and started as `npm start` does,
#      against its embedded fake upstream), taken once it holds a token; the app is stopped after. The app
#      is started without the caller's FREEDOMPAY_* and REDIS_URL: a check never logs in to a real upstream
#      with real credentials, nor writes to a real Redis.
#   4. a self-test of step 3, run again as a caller would (`--scrape-only`, on the build of step 3): with
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

#!/usr/bin/env bash
# The shipped Prometheus alert rules and the sample's /metrics, checked by promtool:
#   1. promtool check rules  prometheus/freedompay-transfer-auth.rules.yml
#   2. promtool test rules   prometheus/freedompay-transfer-auth.rules.test.yml (each alert fires and stays quiet)
#   3. promtool check metrics on a real scrape of the sample app (built and started as `npm start` does,
#      against its embedded fake upstream), taken once it holds a token; the app is stopped after.
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

command -v promtool >/dev/null || install_promtool || exit 1
echo "$(promtool --version 2>&1 | head -1)"

echo "--- promtool check rules"
promtool check rules "$RULES"
echo "--- promtool test rules"
promtool test rules "$TESTS"

echo "--- promtool check metrics on the sample app's /metrics"
npm run --silent prestart >/dev/null
port=$(node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();})")
log=$(mktemp)
scrape=$(mktemp)
PORT=$port node sample-app/dist/main.js >"$log" 2>&1 &
app=$!
stop_app() {
  kill "$app" 2>/dev/null && wait "$app" 2>/dev/null
  rm -f "$log" "$scrape"
}
trap stop_app EXIT

# Once it holds a token (its startup login is done): /auth/status says "valid".
if ! node -e '
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
lint=$(promtool check metrics <"$scrape" 2>&1) || {
  echo "$lint" >&2
  exit 1
}
if [[ -n $lint ]]; then
  echo "$lint" >&2
  exit 1
fi
echo "clean: $(grep -c '^freedompay_transfer_auth_' "$scrape") series of the package, $(grep -c '^# TYPE' "$scrape") metrics in all"

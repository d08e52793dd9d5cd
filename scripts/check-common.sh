# Sourced by check-pack.sh and check-nest12.sh: their scratch app, their steps, the registry check.
# Set before sourcing: CHECK (the script's name, e.g. check-pack) and KEEP_VAR (the variable that keeps the
# scratch directory, e.g. KEEP_CHECK_PACK_DIR). Defines REPO, WORK, APP, LOG, passed, failed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/$CHECK.XXXXXX")"
APP="$WORK/app"
LOG="$WORK/log"
failed=()
passed=()

cleanup() {
  if [[ "${!KEEP_VAR:-}" == 1 ]]; then echo "$CHECK: scratch app kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

registry_reachable() {
  npm ping --fetch-timeout=15000 --fetch-retries=1 >/dev/null 2>&1
}

skip_unreachable() {
  echo "$CHECK: SKIP: the npm registry ($(npm config get registry)) cannot be reached; nothing was checked"
  exit 75
}

# step NAME COMMAND...: runs the command in the app, records the result, shows its output only when it fails.
step() {
  local name="$1"
  shift
  if (cd "$APP" && "$@") >"$LOG" 2>&1; then
    passed+=("$name")
  else
    failed+=("$name")
    echo "--- $name failed:"
    cat "$LOG"
  fi
}

#!/usr/bin/env bash
# Runs the Microsoft Graph SDK conformance test (tests/sdk) against a real `steward serve`.
#
#   tests/sdk/run.sh <path-to-steward-binary> <database-url>
#
# Starts the server on a free loopback port with a random bootstrap admin token and a manual
# test clock (--test-clock, which adds /ops/clock and /ops/jobs/drain), waits for /readyz, runs
# pytest from the virtualenv made by scripts/python-venv.sh, always stops the server, shows the
# tail of its log when the tests fail, and exits with pytest's status.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 <path-to-steward-binary> <database-url>" >&2
  exit 2
fi
bin=$1
db=$2
[ -x "$bin" ] || { echo "error: $bin is not an executable file" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=$(bash "$root/scripts/python-venv.sh")
py="$venv/bin/python"

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
token=$("$py" -c 'import secrets; print(secrets.token_urlsafe(32))')
base="http://127.0.0.1:$port"
test_clock="2031-03-01T09:00:00Z" # where the server's manual clock starts
work=$(mktemp -d "${TMPDIR:-/tmp}/steward-sdk.XXXXXX")
log="$work/steward.log"
pid=""
test_pid=""

cleanup() {
  if [ -n "$test_pid" ]; then kill "$test_pid" 2>/dev/null || true; fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do # up to 5 s for a graceful stop, then SIGKILL
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --data-dir keeps anything the server writes besides the database out of the working directory.
# --test-clock: the lifecycle tests move time with /ops/clock and run due jobs with
# /ops/jobs/drain instead of sleeping.
STEWARD_BOOTSTRAP_ADMIN_TOKEN="$token" STEWARD_LOG=warn STEWARD_ALLOW_TEST_CLOCK=1 \
  "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --public-url "$base" \
  --data-dir "$work/data" --test-clock "$test_clock" >"$log" 2>&1 &
pid=$!

if command -v curl >/dev/null 2>&1; then
  ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz")" = 200 ]; }
else
  ready() {
    "$py" - "$base/readyz" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
  }
fi

deadline=$((SECONDS + 30))
until ready; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: steward exited before it was ready; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: steward did not answer 200 on $base/readyz within 30 s; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.2
done

export STEWARD_BASE_URL="$base/v1.0"
export STEWARD_TOKEN="$token"
# For `steward token create --user …` (personal tokens) against the server's database.
export STEWARD_TEST_BIN="$bin"
export STEWARD_TEST_DATABASE_URL="$db"
export PYTHONDONTWRITEBYTECODE=1
status=0
# In the background + `wait`, so that INT/TERM reach the traps (and cleanup) at once.
"$py" -m pytest -q -p no:cacheprovider "$root/tests/sdk" &
test_pid=$!
wait "$test_pid" || status=$?
test_pid=""
if [ "$status" -ne 0 ]; then
  echo "---- steward log (last 80 lines of $log) ----" >&2
  tail -n 80 "$log" >&2
fi
exit "$status"

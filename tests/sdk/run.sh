#!/usr/bin/env bash
# Runs the Microsoft Graph SDK conformance test against a real `steward serve`.
# Usage: tests/sdk/run.sh <path-to-steward-binary> <database-url>
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 <steward-binary> <database-url>" >&2; exit 2; }
bin=$1
db=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=$(bash "$root/scripts/python-venv.sh")
py="$venv/bin/python"

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$("$py" -c 'import secrets; print(secrets.token_hex(24))')
work=$(mktemp -d)
log="$work/steward.log"

STEWARD_BOOTSTRAP_ADMIN_TOKEN="$token" STEWARD_LOG=warn \
  "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --data-dir "$work/data" \
  --public-url "http://127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ready=""
for _ in $(seq 1 300); do
  if "$py" - "$port" <<'PY' 2>/dev/null; then ready=1; break; fi
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=1)
c.request("GET", "/readyz")
sys.exit(0 if c.getresponse().status == 200 else 1)
PY
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "steward did not become ready; its log:" >&2
  cat "$log" >&2
  exit 1
fi

set +e
STEWARD_BASE_URL="http://127.0.0.1:$port/v1.0" STEWARD_TOKEN="$token" \
  "$py" -m pytest -q -p no:cacheprovider "$root/tests/sdk"
status=$?
set -e
if [ $status -ne 0 ]; then
  echo "---- steward log (last 60 lines) ----" >&2
  tail -n 60 "$log" >&2
fi
exit $status

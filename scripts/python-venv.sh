#!/usr/bin/env bash
# Creates (once) the Python virtualenv the SDK conformance test uses, with Microsoft's
# msgraph-sdk and pytest pinned, and prints its path. A second run with the right versions
# installed does nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${STEWARD_VENV:-$root/.venv}
req="$root/tests/sdk/requirements.txt"
stamp="$venv/.steward-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  echo "$venv"
  exit 0
fi
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
cp "$req" "$stamp"
echo "$venv"

#!/usr/bin/env bash
# Creates (once) the Python virtualenv the test command uses, with the packages pinned in
# tests/sdk/requirements.txt (Microsoft's msgraph-sdk, pytest, scim2-server, scim2-cli, authlib for
# the test OpenID Connect provider, aiosmtpd for the test SMTP server), and prints its path on stdout (everything else goes to stderr).
#
#   venv=$(scripts/python-venv.sh)        # ${STEWARD_VENV:-<repo>/.venv}
#
# A second run finds the pinned versions already installed and does nothing. Needs python3
# (override with STEWARD_PYTHON) with the venv module; on Debian: apt-get install python3-venv.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${STEWARD_VENV:-$root/.venv}
req="$root/tests/sdk/requirements.txt"
python=${STEWARD_PYTHON:-python3}

# Exit status 0 when every `name==version` line of the requirements file is installed in the venv.
has_pins() {
  "$venv/bin/python" - "$req" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, pinned = line.partition("==")
    try:
        if version(name.strip()) != pinned.strip():
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

if [ -x "$venv/bin/python" ] && has_pins; then
  echo "$venv"
  exit 0
fi

if ! "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
  echo "creating virtualenv $venv" >&2
  if ! "$python" -m venv "$venv" >&2; then
    # Debian without python3-venv has no ensurepip: make the venv without pip and install pip
    # into it with the system pip, when there is one.
    echo "$python -m venv failed; retrying without ensurepip" >&2
    "$python" -m venv --without-pip "$venv" >&2
    "$python" -m pip --version >/dev/null 2>&1 || {
      echo "error: cannot create a virtualenv with pip: install python3-venv (or python3-pip)" >&2
      exit 1
    }
    "$python" -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check pip >&2
  fi
fi

echo "installing $(sed -e '/^#/d' "$req" | tr '\n' ' ')into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
has_pins || { echo "error: $venv does not have the versions pinned in $req after pip install" >&2; exit 1; }
echo "$venv"

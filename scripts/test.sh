#!/usr/bin/env bash
# Steward's whole test suite, as CI runs it:
#   1. the Rust tests (unit, store contract suite on SQLite AND PostgreSQL, HTTP tests) with nextest;
#   2. Microsoft's Graph SDK for Python (msgraph-sdk from PyPI, in a virtualenv) driving a real
#      `steward serve` on a test clock, once on SQLite and once on PostgreSQL;
#   3. three `steward serve` processes sharing one PostgreSQL database (tests/e2e).
# The connector tests start their own peers: a throwaway OpenLDAP slapd (Debian's slapd and
# ldap-utils, installed here when missing), PyPI's scim2-server (in the virtualenv made below)
# and the PostgreSQL below as a role target. The identity tests start a real OpenID Connect
# provider (tests/oidc/provider.py, on PyPI's authlib) and check Steward's own SCIM server with
# PyPI's scim2-cli; the sign-in test serves HTTPS with a throwaway CA made by openssl. The
# browser tests drive Debian's headless Chromium (chromium, chromium-driver: installed here when
# missing, never downloaded) and check pages with axe-core from npm (tests/browser, `npm ci`).
# PostgreSQL: uses $DATABASE_URL when set, else a server on 127.0.0.1:5432, else starts a
# throwaway cluster with pg_virtualenv for the duration of the run. Nothing is skipped: a
# missing peer fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\n==> %s\n' "$*"; }

pg_reachable() { # url
  command -v psql >/dev/null 2>&1 && psql "$1" -qAtc 'select 1' >/dev/null 2>&1
}

if [ -z "${DATABASE_URL:-}" ]; then
  if pg_reachable "postgres://postgres@127.0.0.1:5432/postgres"; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  elif [ -z "${STEWARD_IN_PG_VIRTUALENV:-}" ] && command -v pg_virtualenv >/dev/null 2>&1; then
    say "no PostgreSQL reachable: starting a throwaway cluster with pg_virtualenv"
    export STEWARD_IN_PG_VIRTUALENV=1
    exec pg_virtualenv "$0" "$@"
  elif [ -n "${PGHOST:-}" ]; then
    # inside pg_virtualenv: it exported PGHOST/PGPORT/PGUSER/PGPASSWORD
    export DATABASE_URL="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}/postgres"
  else
    echo "error: PostgreSQL is needed (install the postgresql and postgresql-common packages, or set DATABASE_URL)" >&2
    exit 1
  fi
fi
pg_reachable "$DATABASE_URL" || { echo "error: PostgreSQL at DATABASE_URL does not answer" >&2; exit 1; }
say "PostgreSQL: ${DATABASE_URL%%@*}@…"

# Debian's OpenLDAP server and tools, for the LDAP connector's tests against a real slapd.
debs=()
[ -x /usr/sbin/slapd ] || debs+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || debs+=(ldap-utils)
# openssl makes the throwaway CAs of the LDAPS and HTTPS sign-in tests.
command -v openssl >/dev/null 2>&1 || debs+=(openssl)
# Debian's Chromium and its WebDriver, for the portal's browser tests (headless).
[ -x /usr/bin/chromium ] || debs+=(chromium)
[ -x /usr/bin/chromedriver ] || debs+=(chromium-driver)
if [ ${#debs[@]} -gt 0 ]; then
  say "installing ${debs[*]} from Debian (the LDAP tests run a real slapd, the browser tests Chromium)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: the LDAP and browser tests need ${debs[*]}; install them (apt-get install ${debs[*]}) or run as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
fi

say "Python virtualenv (Graph SDK, pytest, scim2-server, scim2-cli, authlib)"
venv=$(bash scripts/python-venv.sh)
export STEWARD_VENV="$venv"

say "axe-core from npm (the browser tests inject it into pages)"
if ! command -v npm >/dev/null 2>&1; then
  echo "error: the browser tests need Node.js and npm (apt-get install nodejs npm) to install axe-core" >&2
  exit 1
fi
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

say "building"
cargo build --workspace --all-targets --locked

say "Rust tests (SQLite and PostgreSQL)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

say "Microsoft Graph SDK conformance: SQLite"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/steward"
tmp=$(mktemp -d)
sdk_db=""
cleanup() {
  if [ -n "$sdk_db" ]; then psql "$DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS $sdk_db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
bash tests/sdk/run.sh "$bin" "sqlite://$tmp/sdk.db"

say "Microsoft Graph SDK conformance: PostgreSQL"
sdk_db="steward_sdk_$(date +%s)_$$"
psql "$DATABASE_URL" -qAtc "CREATE DATABASE $sdk_db" >/dev/null
bash tests/sdk/run.sh "$bin" "${DATABASE_URL%/*}/$sdk_db"

say "Three steward serve processes on one PostgreSQL database"
# Creates (and drops) its own database next to DATABASE_URL; prints its timings.
STEWARD_TEST_BIN="$bin" PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -s -p no:cacheprovider tests/e2e

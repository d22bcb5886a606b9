#!/usr/bin/env bash
# Makes sure a Postgres server answers for the test suite and prints the URL the tests should use.
#
# The server is the one FERROCAST_TEST_POSTGRES_URL names (default 127.0.0.1:5432). When it is local
# and not running, the newest installed cluster is started, created, or Postgres installed first.
# When the default URL cannot log in (a fresh Debian cluster wants a password over TCP), a dedicated
# role `ferrocast_test` (LOGIN CREATEDB, password `ferrocast_test`) is created if it is missing and
# its URL printed instead; the postgres superuser is never changed. Nothing here ever waits for a
# password prompt. Diagnostics go to stderr; stdout carries only the URL.
set -euo pipefail

default_url="postgres://postgres@127.0.0.1:5432/postgres"
url="${FERROCAST_TEST_POSTGRES_URL:-$default_url}"

# postgres://user[:password]@host[:port]/db?params -> host and port
authority="${url#*://}"
authority="${authority%%/*}"
authority="${authority%%\?*}"
hostport="${authority##*@}"
if [[ "$hostport" == \[* ]]; then
  host="${hostport#\[}"
  host="${host%%\]*}"
  port="${hostport##*\]}"
  port="${port#:}"
else
  host="${hostport%%:*}"
  port=""
  if [[ "$hostport" == *:* ]]; then port="${hostport##*:}"; fi
fi
host="${host:-127.0.0.1}"
port="${port:-5432}"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

is_local() { case "$host" in 127.0.0.1 | localhost | ::1) return 0 ;; *) return 1 ;; esac; }
answers() { pg_isready -q -h "$host" -p "$port" >/dev/null 2>&1; }
logs_in() { psql -w "$1" -qtAc 'SELECT 1' >/dev/null 2>&1; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$1"; else sudo -n -u postgres sh -c "$1"; fi; }

# The newest installed server version (from /usr/lib/postgresql/<version>/bin/postgres), or nothing.
installed_version() {
  local bin newest=""
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$bin" ] || continue
    newest="$(printf '%s\n%s\n' "$newest" "$(basename "$(dirname "$(dirname "$bin")")")" | sed '/^$/d' | sort -V | tail -n 1)"
  done
  printf '%s' "$newest"
}

if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
  echo "pg_isready/psql are missing; installing postgresql-client" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql-client >&2
fi

if ! answers; then
  if ! is_local; then
    echo "Postgres at $host:$port (from FERROCAST_TEST_POSTGRES_URL) does not answer" >&2
    exit 1
  fi
  version="$(installed_version)"
  if [ -z "$version" ]; then
    echo "no Postgres server installed; installing it" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
    version="$(installed_version)"
    [ -n "$version" ] || { echo "installing postgresql did not provide /usr/lib/postgresql/*/bin/postgres" >&2; exit 1; }
  fi
  # An existing cluster on our port, else this version's `main`, created on our port if missing.
  cluster=""
  if command -v pg_lsclusters >/dev/null 2>&1; then
    cluster="$(pg_lsclusters -h 2>/dev/null | awk -v p="$port" '$3 == p { print $1 " " $2; exit }' || true)"
  fi
  if [ -z "$cluster" ]; then
    if [ ! -d "/etc/postgresql/$version/main" ]; then
      echo "creating Postgres $version cluster main on port $port" >&2
      $sudo pg_createcluster --port "$port" "$version" main >&2
    fi
    cluster="$version main"
  fi
  echo "starting Postgres cluster $cluster" >&2
  # shellcheck disable=SC2086 # "$cluster" is "<version> <name>", two arguments
  $sudo pg_ctlcluster --skip-systemctl-redirect $cluster start >&2 || true
  for _ in $(seq 1 30); do answers && break; sleep 1; done
  answers || { echo "Postgres did not come up on $host:$port" >&2; exit 1; }
fi

if ! logs_in "$url"; then
  if [ -n "${FERROCAST_TEST_POSTGRES_URL:-}" ]; then
    echo "cannot log in to Postgres with FERROCAST_TEST_POSTGRES_URL (${url%%@*}@…); fix the URL or unset it" >&2
    exit 1
  fi
  role_url="postgres://ferrocast_test:ferrocast_test@$hostport/postgres"
  if ! logs_in "$role_url"; then
    is_local || { echo "cannot log in to Postgres at $host:$port" >&2; exit 1; }
    echo "creating the Postgres role ferrocast_test for the test suite" >&2
    exists="$(as_postgres "psql -w -p $port -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'ferrocast_test'\"" || true)"
    if [ "$exists" != "1" ]; then
      as_postgres "psql -w -p $port -qc \"CREATE ROLE ferrocast_test LOGIN CREATEDB PASSWORD 'ferrocast_test'\"" >&2
    fi
  fi
  url="$role_url"
  logs_in "$url" || { echo "cannot log in to Postgres as ferrocast_test at $host:$port (the role exists with another password?)" >&2; exit 1; }
fi

echo "$url"

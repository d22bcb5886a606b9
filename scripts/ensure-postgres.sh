#!/usr/bin/env bash
# Makes sure a Postgres server answers on 127.0.0.1:5432 for the test suite, starting the local
# cluster or installing one where none exists, and prints the URL the tests should use.
# Diagnostics go to stderr; stdout carries only the URL.
set -euo pipefail

url="${FERROCAST_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }

if ! answers; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "no Postgres found; installing it" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  fi
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$version" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    $sudo pg_createcluster "$version" main >&2
  fi
  echo "starting Postgres $version" >&2
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 30); do answers && break; sleep 1; done
  answers || { echo "Postgres did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for a password over TCP; give the postgres role the one the tests use.
  as_postgres "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >&2
  url="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  psql "$url" -qtAc 'SELECT 1' >/dev/null || { echo "cannot log in to Postgres as $url" >&2; exit 1; }
fi

echo "$url"

#!/usr/bin/env bash
# Start (or stop) a throw-away PostgreSQL for Corral's tests, under var/pg, on 127.0.0.1.
#   bash scripts/pg.sh up     -> prints CORRAL_TEST_PG_URL=...
#   bash scripts/pg.sh down
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/var/pg"
port="${CORRAL_PG_PORT:-54329}"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
url="postgresql://corral@127.0.0.1:$port/corral_test"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-up}" in
  up)
    if [ -z "$bindir" ]; then
      if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
      else
        echo "PostgreSQL is not installed: run 'sudo apt-get install postgresql' first." >&2; exit 1
      fi
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    fi
    if ! as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >/dev/null
    fi
    as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
      "SELECT 1 FROM pg_roles WHERE rolname='corral'" | grep -q 1 ||
      as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE ROLE corral LOGIN CREATEDB"
    as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='corral_test'" | grep -q 1 ||
      as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE corral_test OWNER corral"
    echo "CORRAL_TEST_PG_URL=$url"
    ;;
  status)
    [ -n "$bindir" ] && [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null
    ;;
  down)
    [ -n "$bindir" ] && [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac

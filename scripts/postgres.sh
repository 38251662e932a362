#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `source scripts/postgres.sh` starts one (initdb and
# pg_ctl from the machine's PostgreSQL, as an unprivileged user, in a temporary folder, on a free
# port on 127.0.0.1), exports TEST_DATABASE_URL, and stops it when the calling shell exits.
# Installs Debian's postgresql package first if it is missing (as root). Does nothing when
# TEST_DATABASE_URL is already set.
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  return 0 2>/dev/null || exit 0
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing PostgreSQL (Debian's postgresql package) for the tests" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$pg_bin" ]; then
  echo "PostgreSQL is not installed: the PostgreSQL tests will be skipped" >&2
  return 0 2>/dev/null || exit 0
fi
pg_dir=$(mktemp -d /tmp/crystals-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$pg_dir"
  as_pg=(runuser -u postgres --)
fi
pg_port=$("${PYTHON:-python3}" -c \
  'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U crystals --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -t 60 \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
"${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U crystals crystals_test
export TEST_DATABASE_URL="postgresql://crystals@127.0.0.1:$pg_port/crystals_test"
stop_postgres() { "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1; rm -rf "$pg_dir"; }
trap stop_postgres EXIT

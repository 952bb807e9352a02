#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: its own cluster in a temporary directory, on a free port of
# 127.0.0.1 (and a unix socket in that directory), trust authentication, superuser `postgres`, database `sahay_test`.
#
#   dir=$(tests/serve/pg_cluster.sh start)   # prints the cluster directory; the server is ready when it returns
#   tests/serve/pg_cluster.sh url "$dir"     # postgresql+psycopg://postgres@127.0.0.1:PORT/sahay_test
#   tests/serve/pg_cluster.sh stop "$dir"    # stops the server (fast shutdown) and removes the directory
#
# PostgreSQL refuses to run as root: as root, initdb and the server run as the `postgres` user (PG_RUN_AS) through
# runuser, and the directory is created in /tmp (not under a root-only folder) and handed to that user.
# The binaries: PG_BINDIR if set, else the newest /usr/lib/postgresql/*/bin (Debian), else initdb on PATH.
# Nothing is ever written outside the cluster directory; a failed start cleans up after itself.
set -euo pipefail

die() { echo "pg_cluster: $*" >&2; exit 1; }

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then
    [ -x "$PG_BINDIR/initdb" ] || die "PG_BINDIR=$PG_BINDIR has no initdb"
    echo "$PG_BINDIR"; return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return; fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"; return
  fi
  die "no PostgreSQL server binaries (Debian: apt-get install postgresql; or set PG_BINDIR)"
}

# Run a command as the cluster's owner: the postgres user when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "${PG_RUN_AS:-postgres}" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  local py
  py=$(command -v python3 || command -v python) || die "python3 is needed to pick a free port"
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd_start() {
  local bindir dir port attempt
  bindir=$(find_bindir)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/sahay-pg.XXXXXX")
  # On any failure from here on (die, or set -e), stop what was started and remove the directory.
  # shellcheck disable=SC2064  # expand $dir now
  trap "[ -n \"\${started:-}\" ] || cmd_stop '$dir' >/dev/null 2>&1 || true" EXIT
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    id -u "${PG_RUN_AS:-postgres}" >/dev/null 2>&1 || die "as root, a '${PG_RUN_AS:-postgres}' user is needed to run PostgreSQL"
    chown "${PG_RUN_AS:-postgres}" "$dir"
  fi
  cd "$dir"  # the owner may not be able to read the caller's working directory
  echo "$bindir" >"$dir/bindir"
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # Durability is not what these tests are about: fsync off makes the per-test CREATE DATABASE fast.
  for attempt in 1 2 3; do
    port=$(free_port)
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off \
          -c full_page_writes=off -c max_connections=300" >/dev/null; then
      echo "$port" >"$dir/port"
      break
    fi
    [ "$attempt" -lt 3 ] || { tail -n 30 "$dir/server.log" >&2 || true; die "the server did not start"; }
  done
  as_owner "$bindir/createdb" -h "$dir" -p "$port" -U postgres sahay_test \
    || { tail -n 30 "$dir/server.log" >&2; die "createdb failed"; }
  started=1
  echo "$dir"
}

cmd_url() {
  local dir=${1:?usage: pg_cluster.sh url DIR}
  [ -f "$dir/port" ] || die "$dir is not a running cluster from pg_cluster.sh start"
  echo "postgresql+psycopg://postgres@127.0.0.1:$(cat "$dir/port")/sahay_test"
}

cmd_stop() {
  local dir=${1:?usage: pg_cluster.sh stop DIR}
  [ -d "$dir" ] || return 0
  case "$(basename "$dir")" in sahay-pg.*) ;; *) die "refusing to remove $dir (not a sahay-pg.* directory)" ;; esac
  if [ -f "$dir/data/postmaster.pid" ] && [ -f "$dir/bindir" ]; then
    # as whoever owns the cluster (when root: the user it was started as, whatever PG_RUN_AS says now)
    if [ "$(id -u)" -eq 0 ]; then
      PG_RUN_AS=$(stat -c %U "$dir/data") as_owner "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop \
        >/dev/null 2>&1 || true
    else
      "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) cmd_start ;;
  url) cmd_url "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  *) die "usage: pg_cluster.sh start | url DIR | stop DIR" ;;
esac

#!/usr/bin/env bash
# A private PostgreSQL cluster for local work and tests.
#
#   pg.sh init     --dir D [--superuser NAME] [--fast]   initdb into D (trust auth, loopback only)
#   pg.sh start    --dir D --port P [--timeout S]        listen on 127.0.0.1:P, socket in D
#   pg.sh stop     --dir D [--timeout S]
#   pg.sh status   --dir D
#   pg.sh createdb --dir D --port P NAME [--owner ROLE]  create role ROLE (LOGIN) and database
#                                                        NAME if missing; prints its URL
#
# Run as root, the server runs as the unprivileged `postgres` user (D is
# chowned to it, and every folder above D must be traversable by it).
# --fast turns off fsync/full_page_writes: for throwaway test clusters only.
# The superuser (default postgres) connects without password over loopback:
#   postgresql://postgres@127.0.0.1:P/postgres
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }
say() { [ -n "${QUIET:-}" ] || echo "pg.sh: $*" >&2; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || die "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: run make deps"

RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the unprivileged 'postgres' user (Debian's postgresql package creates it)"
  RUNAS=(runuser -u postgres --)
fi
as_pg() { (cd / && "${RUNAS[@]}" "$@"); }

init() {
  [ -n "$DIR" ] || die "init: --dir is required"
  if [ -f "$DIR/PG_VERSION" ]; then say "cluster already initialised in $DIR"; return 0; fi
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  if [ ${#RUNAS[@]} -gt 0 ]; then
    chown postgres: "$DIR"
    chmod 700 "$DIR"
    as_pg test -w "$DIR" || die "user postgres cannot reach $DIR: make every folder above it traversable (chmod o+x)"
  fi
  as_pg "$PGBIN/initdb" -D "$DIR" -U "$SUPERUSER" --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$DIR.initdb.log" 2>&1 || { cat "$DIR.initdb.log" >&2; die "initdb failed"; }
  rm -f "$DIR.initdb.log"
  {
    echo "# added by deploy/local/pg.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$DIR'"
    echo "max_connections = 200"
    echo "logging_collector = off"
    echo "log_min_messages = warning"
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
    if [ -n "$FAST" ]; then
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
  } | as_pg tee -a "$DIR/postgresql.conf" >/dev/null
  echo "$SUPERUSER" | as_pg tee "$DIR/ss-superuser" >/dev/null
  say "initialised cluster in $DIR (superuser $SUPERUSER)"
}

running() { as_pg "$PGBIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; }

start() {
  [ -n "$DIR" ] || die "start: --dir is required"
  [ -f "$DIR/PG_VERSION" ] || die "no cluster in $DIR: run pg.sh init first"
  DIR="$(cd "$DIR" && pwd)"
  if [ -z "$PORT" ]; then PORT=$(cat "$DIR/ss-port" 2>/dev/null || true); fi
  [ -n "$PORT" ] || die "start: --port is required"
  if running; then say "already running in $DIR"; return 0; fi
  echo "$PORT" | as_pg tee "$DIR/ss-port" >/dev/null
  # pg_ctl -w waits until the server accepts connections (or the timeout).
  if ! as_pg "$PGBIN/pg_ctl" -D "$DIR" -l "$DIR/postgres.log" -w -t "$TIMEOUT" \
        -o "-p $PORT -k $DIR -h 127.0.0.1" start >/dev/null 2>&1; then
    tail -20 "$DIR/postgres.log" >&2 || true
    die "PostgreSQL did not start on 127.0.0.1:$PORT (see $DIR/postgres.log)"
  fi
  say "PostgreSQL up on 127.0.0.1:$PORT (data $DIR)"
}

stop() {
  [ -n "$DIR" ] || die "stop: --dir is required"
  [ -f "$DIR/PG_VERSION" ] || return 0
  running || return 0
  if ! as_pg "$PGBIN/pg_ctl" -D "$DIR" -m fast -w -t "$TIMEOUT" stop >/dev/null 2>&1; then
    say "fast shutdown timed out: immediate shutdown"
    as_pg "$PGBIN/pg_ctl" -D "$DIR" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
  fi
  if running; then
    local pid; pid=$(head -1 "$DIR/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  fi
  say "stopped PostgreSQL in $DIR"
}

status() {
  [ -n "$DIR" ] || die "status: --dir is required"
  if running; then
    echo "postgres: running on 127.0.0.1:$(cat "$DIR/ss-port" 2>/dev/null) (data $DIR)"
  else
    echo "postgres: stopped ($DIR)"; return 1
  fi
}

psql_su() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d postgres "$@"
}

createdb() {
  [ -n "$DIR" ] && [ -n "$DBNAME" ] || die "createdb: --dir and NAME are required"
  [ -n "$PORT" ] || PORT=$(cat "$DIR/ss-port" 2>/dev/null || true)
  [ -n "$PORT" ] || die "createdb: --port is required"
  SUPERUSER=$(cat "$DIR/ss-superuser" 2>/dev/null || echo "$SUPERUSER")
  local owner=${OWNER:-$SUPERUSER}
  if [ "$owner" != "$SUPERUSER" ]; then
    psql_su -v role="$owner" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SQL
  fi
  psql_su -v db="$DBNAME" -v owner="$owner" <<'SQL' >/dev/null
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  echo "postgresql://$owner@127.0.0.1:$PORT/$DBNAME"
}

cmd=${1:-}; [ $# -gt 0 ] && shift
DIR="" PORT="" SUPERUSER=postgres FAST="" TIMEOUT=60 DBNAME="" OWNER=""
while [ $# -gt 0 ]; do
  case $1 in
    --dir) DIR=$2; shift 2;;
    --port) PORT=$2; shift 2;;
    --superuser) SUPERUSER=$2; shift 2;;
    --owner) OWNER=$2; shift 2;;
    --fast) FAST=1; shift;;
    --timeout) TIMEOUT=$2; shift 2;;
    -q|--quiet) QUIET=1; shift;;
    -*) die "unknown argument: $1 (see --help)";;
    *) DBNAME=$1; shift;;
  esac
done
case $cmd in
  init) init;;
  start) start;;
  stop) stop;;
  status) status;;
  createdb) createdb;;
  -h|--help|help|"") usage;;
  *) die "unknown command: $cmd (init|start|stop|status|createdb)";;
esac

#!/usr/bin/env bash
# A private PostgreSQL cluster for local work and tests.
#
#   pg.sh init     --dir D [--superuser NAME] [--fast]   initdb into D (trust auth, loopback only)
#   pg.sh start    --dir D --port P [--timeout S]        listen on 127.0.0.1:P, socket in D
#   pg.sh stop     --dir D [--timeout S]
#   pg.sh status   --dir D
#   pg.sh createdb --dir D --port P NAME [--owner ROLE]  create role ROLE (LOGIN) and database
#                                                        NAME if missing; prints its URL
#   pg.sh destroy  --dir D                               stop, remove the cluster (and D)
#
# Run as root, the server runs as the unprivileged `postgres` user (D is
# chowned to it). When postgres cannot reach D (a clone under root's home or
# a `mktemp -d`, both mode 700), the cluster lives in
# $SS_PG_HOME/<hash of D>/data (default /var/tmp/shipstream-pg) and D is a
# symbolic link to it; clusters whose D is gone are removed by the next init.
# --fast turns off fsync/full_page_writes: for throwaway test clusters only.
# The superuser (default postgres) connects without password over loopback:
#   postgresql://postgres@127.0.0.1:P/postgres
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }
say() { [ -n "${QUIET:-}" ] || echo "pg.sh: $*" >&2; }
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || die "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: run make deps"

RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the unprivileged 'postgres' user (Debian's postgresql package creates it)"
  RUNAS=(runuser -u postgres --)
fi
as_pg() { (cd / && "${RUNAS[@]}" "$@"); }

# ------------------------------------------------- clusters outside D (root)
HOME_BASE="${SS_PG_HOME:-/var/tmp/shipstream-pg}"

# The folder above D is reachable by the server's user (always, unless root).
reachable() { [ ${#RUNAS[@]} -eq 0 ] || as_pg test -x "$1" 2>/dev/null; }

# Our own base folder: root's, not a link, not writable by others (it sits in
# a world-writable /var/tmp).
home_base() {
  [ -L "$HOME_BASE" ] && die "$HOME_BASE is a symbolic link: refusing it (remove it or set SS_PG_HOME)"
  mkdir -p -m 711 "$HOME_BASE"
  local owner mode
  read -r owner mode < <(stat -c '%u %a' "$HOME_BASE")
  [ "$owner" = 0 ] || die "$HOME_BASE belongs to uid $owner, not root: refusing it (remove it or set SS_PG_HOME)"
  [ $((8#$mode & 8#022)) -eq 0 ] || die "$HOME_BASE is writable by others (mode $mode): refusing it"
  as_pg test -x "$HOME_BASE" || die "user postgres cannot reach $HOME_BASE: set SS_PG_HOME to a folder it can reach"
}

# Removes clusters whose D no longer points at them (make clean, a killed
# test run) and whose server is not running. Caller holds the lock.
collect_orphans() {
  local h origin pid
  for h in "$HOME_BASE"/*/; do
    h=${h%/}
    [ -f "$h/origin" ] || continue
    origin=$(cat "$h/origin")
    [ "$(readlink "$origin" 2>/dev/null)" = "$h/data" ] && continue
    pid=$(head -1 "$h/data/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
    rm -rf "$h"
    say "removed the cluster of $origin (gone) from $h"
  done
}

# init, root, D unreachable: make D a link to $HOME_BASE/<hash>/data.
relocate() {
  local abs=$1 h
  home_base
  exec 9>"$HOME_BASE/.lock"
  flock 9
  collect_orphans
  h="$HOME_BASE/$(printf '%s' "$abs" | sha256sum | cut -c1-16)"
  if [ -d "$h" ]; then
    local pid
    pid=$(head -1 "$h/data/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
      die "a PostgreSQL of $abs still runs from $h/data (pid $pid): stop it first"
    rm -rf "$h"
  fi
  mkdir -m 711 "$h"
  printf '%s\n' "$abs" >"$h/origin"
  mkdir -m 700 "$h/data"
  ln -s "$h/data" "$abs"
  exec 9>&-
  say "postgres cannot reach $(dirname "$abs"): cluster kept in $h/data ($abs links to it)"
}

init() {
  [ -n "$DIR" ] || die "init: --dir is required"
  if [ -f "$DIR/PG_VERSION" ]; then say "cluster already initialised in $DIR"; return 0; fi
  local parent
  mkdir -p "$(dirname "$DIR")"
  parent="$(cd "$(dirname "$DIR")" && pwd -P)"
  # A dangling link (its cluster removed) or an empty folder: start over.
  if [ -L "$DIR" ] && [ ! -e "$DIR" ]; then rm -f "$DIR"; fi
  if [ -d "$DIR" ] && [ ! -L "$DIR" ] && ! reachable "$parent"; then
    rmdir "$DIR" 2>/dev/null || die "user postgres cannot reach $DIR, and it is not empty: remove it"
  fi
  if [ ! -e "$DIR" ] && ! reachable "$parent"; then
    relocate "$parent/$(basename "$DIR")"
  fi
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd -P)"
  if [ ${#RUNAS[@]} -gt 0 ]; then
    chown postgres: "$DIR"
    chmod 700 "$DIR"
    as_pg test -w "$DIR" || die "user postgres cannot write $DIR"
  fi
  local ilog
  ilog=$(mktemp)
  as_pg "$PGBIN/initdb" -D "$DIR" -U "$SUPERUSER" --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$ilog" 2>&1 || { cat "$ilog" >&2; rm -f "$ilog"; die "initdb failed"; }
  rm -f "$ilog"
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

# Removes the cluster: D, and where D links to one of ours, the cluster there.
destroy() {
  [ -n "$DIR" ] || die "destroy: --dir is required"
  [ -e "$DIR" ] || [ -L "$DIR" ] || return 0
  stop
  local link target h
  link="$DIR_GIVEN"
  if [ -L "$link" ]; then
    target=$(readlink "$link")
    h=$(dirname "$target")
    rm -f "$link"
    if [ -f "$h/origin" ] && [ "$(dirname "$h")" = "$HOME_BASE" ]; then rm -rf "$h"; fi
  else
    rm -rf "$DIR"
  fi
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
# The real folder (D may be a link to the cluster kept elsewhere): the server,
# running as postgres, is given paths it can reach.
DIR_GIVEN=$DIR
if [ "$cmd" != init ] && [ -n "$DIR" ] && [ -d "$DIR" ]; then DIR="$(cd "$DIR" && pwd -P)"; fi
case $cmd in
  init) init;;
  start) start;;
  stop) stop;;
  status) status;;
  createdb) createdb;;
  destroy) destroy;;
  -h|--help|help|"") usage;;
  *) die "unknown command: $cmd (init|start|stop|status|createdb|destroy)";;
esac

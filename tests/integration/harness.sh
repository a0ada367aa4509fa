#!/usr/bin/env bash
# Integration test harness: starts a real PostgreSQL and a real Kafka broker
# on free ports in a temporary folder, runs one command with their addresses
# exported, and stops everything when the command ends, fails or is
# interrupted (EXIT, INT, TERM). Exit status: the command's.
#
#   tests/integration/harness.sh -- ctest --test-dir build -L integration --output-on-failure
#
# Exported to the command:
#   SS_TEST_PG_HOST SS_TEST_PG_PORT SS_TEST_PG_USER SS_TEST_PG_DATA
#   SS_TEST_DATABASE_URL   superuser URL to database "postgres"
#   SS_TEST_KAFKA_BOOTSTRAP SS_TEST_KAFKA_DIR
#   SS_TEST_ROOT           the run's temporary folder (removed at the end)
#   SS_KAFKACTL            path of ss-kafkactl
# Options (environment): SS_BIN_DIR (where ss-kafkactl is; default build/bin),
#   SS_TEST_KEEP=1 keeps the temporary folder, SS_TEST_KAFKA_HEAP (512m).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ "${1:-}" = "--" ] && shift
if [ $# -eq 0 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 0 ] && exit 2 || exit 0
fi

log() { echo "harness: $*" >&2; }

# ---------------------------------------------------------------- tools
# shellcheck source=lib.sh
SS_LIB_TOOLS_ONLY=1 source "$HERE/lib.sh"   # ss_find_kafkactl, ss_free_port
SS_KAFKACTL=$(ss_find_kafkactl) || {
  log "ss-kafkactl not found (SS_BIN_DIR or build/bin): build it with 'cmake --build build --target ss-kafkactl'"
  exit 1
}
export SS_KAFKACTL
export SS_BIN_DIR="${SS_BIN_DIR:-$(dirname "$SS_KAFKACTL")}"

# ---------------------------------------------------------------- state
SS_TEST_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ss-test.XXXXXX")
# PostgreSQL runs as `postgres` when we are root: it must traverse this folder.
chmod 711 "$SS_TEST_ROOT"
export SS_TEST_ROOT
PG_DIR="$SS_TEST_ROOT/pg"
KAFKA_DIR="$SS_TEST_ROOT/kafka"
CHILD=""
CLEANED=""
PG_JOB=""

cleanup() {
  local rc=${1:-$?}
  [ -n "$CLEANED" ] && return
  CLEANED=1
  trap '' INT TERM
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    # The command runs in its own process group: stop the whole group.
    kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null
    local deadline=$((SECONDS + 15))
    while kill -0 "$CHILD" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$CHILD" 2>/dev/null || true
  fi
  # Background processes tests started with ss_start_bg (backstop: tests kill
  # their own on exit, but a killed test cannot).
  # Each file says "pid start": signalled only while it is still that process (lib.sh).
  local f pid start
  for f in "$SS_TEST_ROOT"/*/bg/*.pid; do
    [ -f "$f" ] && _ss_pidfile_kill "$f" TERM
  done
  for f in "$SS_TEST_ROOT"/*/bg/*.pid; do
    [ -f "$f" ] || continue
    read -r pid start <"$f" || continue
    local d=$((SECONDS + 5))
    while _ss_pid_is "$pid" "${start:-}" && [ $SECONDS -lt $d ]; do sleep 0.1; done
    _ss_pidfile_kill "$f" KILL || true
  done
  # A PostgreSQL start still in flight would otherwise finish after our stop.
  [ -n "${PG_JOB:-}" ] && wait "$PG_JOB" 2>/dev/null
  "$ROOT/deploy/local/kafka.sh" stop --dir "$KAFKA_DIR" --timeout 20 -q 2>/dev/null || true
  "$ROOT/deploy/local/pg.sh" stop --dir "$PG_DIR" -q 2>/dev/null || true
  if [ -n "${SS_TEST_KEEP:-}" ] || { [ "$rc" -ne 0 ] && [ -n "${SS_TEST_KEEP_ON_FAILURE:-}" ]; }; then
    log "kept $SS_TEST_ROOT"
  else
    # The cluster may live outside SS_TEST_ROOT (pg.sh: root, unreachable TMPDIR).
    "$ROOT/deploy/local/pg.sh" destroy --dir "$PG_DIR" -q 2>/dev/null || true
    rm -rf "$SS_TEST_ROOT"
  fi
  exit "$rc"
}
trap 'cleanup $?' EXIT
trap 'log "interrupted: stopping"; cleanup 130' INT
trap 'log "terminated: stopping"; cleanup 143' TERM

# ---------------------------------------------------------------- PostgreSQL
# Started in the background while the broker's JVM starts.
t0=$SECONDS
(
  "$ROOT/deploy/local/pg.sh" init --dir "$PG_DIR" --fast -q || { log "initdb failed"; exit 1; }
  for attempt in 1 2 3; do
    p=$(ss_free_port 2>/dev/null) || break
    if "$ROOT/deploy/local/pg.sh" start --dir "$PG_DIR" --port "$p" -q 2>"$SS_TEST_ROOT/pg-start.err"; then
      echo "$p" >"$SS_TEST_ROOT/pg.port"; exit 0
    fi
  done
  exit 1
) &
PG_JOB=$!

# ---------------------------------------------------------------- Kafka
# Once per machine: the broker jars from Maven Central (says so when it does).
"$ROOT/deploy/local/kafka.sh" fetch >/dev/null || { log "could not fetch the Kafka jars"; wait "$PG_JOB"; exit 1; }
KAFKA_PORT=""
for attempt in 1 2 3; do
  kp=$(ss_free_port 2>/dev/null) && cp=$(ss_free_port 2>/dev/null) || break
  [ "$kp" = "$cp" ] && continue
  if SS_BIN_DIR="$SS_BIN_DIR" "$ROOT/deploy/local/kafka.sh" start --dir "$KAFKA_DIR" --port "$kp" \
       --controller-port "$cp" --heap "${SS_TEST_KAFKA_HEAP:-512m}" -q 2>"$SS_TEST_ROOT/kafka-start.err"; then
    KAFKA_PORT=$kp; break
  fi
  # A port taken between our check and the broker's bind: start over clean.
  rm -rf "$KAFKA_DIR"
done
if [ -z "$KAFKA_PORT" ]; then
  cat "$SS_TEST_ROOT/kafka-start.err" >&2
  log "Kafka did not start"; wait "$PG_JOB"; exit 1
fi
if ! wait "$PG_JOB"; then
  cat "$SS_TEST_ROOT/pg-start.err" >&2 2>/dev/null
  log "PostgreSQL did not start"; exit 1
fi
PG_PORT=$(cat "$SS_TEST_ROOT/pg.port")

export SS_TEST_PG_HOST=127.0.0.1
export SS_TEST_PG_PORT=$PG_PORT
export SS_TEST_PG_USER=postgres
export SS_TEST_PG_DATA=$PG_DIR
export SS_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
export SS_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
export SS_TEST_KAFKA_DIR=$KAFKA_DIR
log "PostgreSQL 127.0.0.1:$PG_PORT, Kafka $SS_TEST_KAFKA_BOOTSTRAP, in $SS_TEST_ROOT (ready in $((SECONDS - t0)) s)"

# ---------------------------------------------------------------- command
# Own process group (set -m) so that cleanup can stop everything it started;
# wait is interruptible, so INT/TERM reach our traps at once.
set -m
"$@" &
CHILD=$!
set +m
wait "$CHILD"
rc=$?
cleanup "$rc"

# shellcheck shell=bash
# Helpers for bash integration tests (and the bench scripts). Source it; the test must run
# under tests/integration/harness.sh (which ctest -L integration does via tests/run.sh).
#
#   source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
#   url=$(ss_test_createdb mytest)          # fresh database, prints its URL
#   ss_test_migrated_db mytest              # fresh database + migrations; sets DB_URL
#   q "SELECT ..."                          # psql -At on $DB_URL ('|' between columns);
#   q -v n=1 -f file.sql                    #   several arguments: your psql arguments
#   prefix=$(ss_test_prefix)                # unique KAFKA_TOPIC_PREFIX, e.g. it.mytest.1234a.
#   ss_test_create_topics "$prefix"         # the six topics, 12 partitions (or: "$prefix" N)
#   ss_start_bg "$SS_TEST_TMP/gw.log" "$SS_BIN_DIR/shipstream-gateway"   # killed at exit
#   ss_wait_for 10 curl -fsS "http://127.0.0.1:$port/ready"
#   ss_kafkactl consume -t "${prefix}shipments" -n 1 --timeout 10
#   ss_pg_stop; ss_pg_start; ss_kafka_stop; ss_kafka_start   # same data, same port
#   port=$(ss_free_port)
#   v=$(ss_metric "http://127.0.0.1:$port" 'name{l="x"}') || ss_fail "..."  # fails when down
#   ss_pass "what held"; ss_fail "what broke"   # ss_fail exits 1 and shows the bg logs
#   ss_on_exit "command"                     # extra cleanup (do not set your own EXIT trap)
#
# Outside a test (harness.sh itself, bench scripts with their own cleanup):
#   SS_LIB_TOOLS_ONLY=1 source .../lib.sh   # only the first section: ss_free_port,
#                                           # ss_find_kafkactl, ss_field, ss_percentile, ss_psql
#
# Variables: SS_TEST_PG_HOST/PORT/USER/DATA, SS_TEST_DATABASE_URL, SS_TEST_KAFKA_BOOTSTRAP,
# SS_TEST_KAFKA_DIR (from the harness), SS_BIN_DIR, SS_SOURCE_ROOT, SS_KAFKACTL, and
# SS_TEST_TMP (a fresh folder for this test, removed at exit), SS_BG_PID (last ss_start_bg).

SS_LIB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# ---------------------------------------------------------------- tools (no harness needed)
_ss_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# ss_free_port: a TCP port nobody listens on now (below the ephemeral range).
# Concurrent users may still race: start with it and retry on a bind error.
ss_free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((15000 + (RANDOM * 32768 + RANDOM) % 17000))
    if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  echo "ss_free_port: no free port found" >&2
  return 1
}

# ss_find_kafkactl: prints the path of ss-kafkactl ($SS_KAFKACTL, $SS_BIN_DIR, build/bin,
# build-*/bin: the first executable wins); returns 1 when there is none.
ss_find_kafkactl() {
  local c
  for c in "${SS_KAFKACTL:-}" "${SS_BIN_DIR:-}/ss-kafkactl" "$SS_LIB_ROOT/build/bin/ss-kafkactl" \
           "$SS_LIB_ROOT"/build-*/bin/ss-kafkactl; do
    if [ -n "$c" ] && [ -f "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

# ss_field <name> <line>: the integer value of name=N in a "WRK k=v k=v" result line.
ss_field() { sed -n "s/.*[ ]$1=\([0-9]*\).*/\1/p" <<<"$2"; }

# ss_percentile <p> <file>: the p-th percentile (0..100) of the numbers in file (one per
# line) by nearest rank, ceil(p/100 * n) clamped to 1..n: ss_stats_rank of libs/common,
# which the C bench tools use.  Prints nothing for an empty file.
ss_percentile() {
  sort -g "$2" | awk -v p="$1" '{ v[NR] = $1 }
    END { if (NR == 0) exit; r = p / 100 * NR; k = int(r); if (k < r) k++;
          if (k < 1) k = 1; if (k > NR) k = NR; print v[k] }'
}

ss_psql() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# A pid names a process only until it is reaped: on a busy machine (pid_max 32768, tests,
# benches and soaks side by side) a stale pid is soon another program's, and a cleanup that
# signals it kills a stranger (a soak once lost its receiver and gateway to one). So every
# background process is recorded as "pid start" (start: /proc/<pid>/stat field 22, clock
# ticks since boot) and signalled only while both still match.
# _ss_pid_start <pid>: its start time; fails when gone or a zombie.
_ss_pid_start() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  [ "$1" != Z ] && [ -n "${20:-}" ] || return 1
  echo "${20}"
}
# _ss_pid_is <pid> <start>: still that process.
_ss_pid_is() { [ -n "${2:-}" ] && [ "$(_ss_pid_start "$1")" = "$2" ]; }
# _ss_pidfile_kill <file> <signal>: signal the process (and its group) a pid file names,
# if it is still that process.
_ss_pidfile_kill() {
  local pid start
  read -r pid start <"$1" 2>/dev/null || return 1
  _ss_pid_is "$pid" "${start:-}" || return 1
  kill "-$2" -- "-$pid" 2>/dev/null || kill "-$2" "$pid" 2>/dev/null
}

if [ -n "${SS_LIB_TOOLS_ONLY:-}" ]; then return 0; fi

# ---------------------------------------------------------------- test set-up
if [ -z "${SS_TEST_DATABASE_URL:-}" ] || [ -z "${SS_TEST_KAFKA_BOOTSTRAP:-}" ]; then
  echo "FAIL: not under the harness: run tests/integration/harness.sh -- ctest --test-dir build -L integration" >&2
  exit 1
fi

SS_SOURCE_ROOT="${SS_SOURCE_ROOT:-$SS_LIB_ROOT}"
SS_TEST_NAME="$(basename "${0%.sh}" | tr -c 'a-zA-Z0-9_\n' '_' | tr 'A-Z' 'a-z')"
if [ -z "${SS_BIN_DIR:-}" ]; then SS_BIN_DIR="$SS_LIB_ROOT/build/bin"; fi
SS_KAFKACTL=$(ss_find_kafkactl) || SS_KAFKACTL=""
export SS_BIN_DIR SS_SOURCE_ROOT SS_KAFKACTL
SS_TEST_TMP=$(mktemp -d "${SS_TEST_ROOT:-${TMPDIR:-/tmp}}/t.${SS_TEST_NAME}.XXXXXX")
chmod 755 "$SS_TEST_TMP"
mkdir -p "$SS_TEST_TMP/bg"
export SS_TEST_TMP

SS_BG_PIDS=()
SS_BG_LOGS=()
SS_BG_PID=""
_SS_ON_EXIT=()
_SS_PG_STOPPED=""
_SS_KAFKA_STOPPED=""

ss_pass() { echo "PASS: $*"; }

ss_fail() {
  echo "FAIL: $*" >&2
  local i
  for i in "${!SS_BG_LOGS[@]}"; do
    [ -f "${SS_BG_LOGS[$i]}" ] || continue
    echo "----- last lines of ${SS_BG_LOGS[$i]} (pid ${SS_BG_PIDS[$i]}) -----" >&2
    tail -n 25 "${SS_BG_LOGS[$i]}" >&2
  done
  exit 1
}

ss_on_exit() { _SS_ON_EXIT+=("$*"); }

# ss_wait_for <timeout_s> <command...>: poll until the command succeeds.
# Returns 1 (and says so) on deadline; combine with `|| ss_fail ...`.
ss_wait_for() {
  local timeout=$1; shift
  local deadline=$(( $(_ss_now_ms) + ${timeout%.*} * 1000 ))
  local delay=0.05
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ "$(_ss_now_ms)" -ge "$deadline" ]; then
      echo "ss_wait_for: gave up after ${timeout}s: $*" >&2
      return 1
    fi
    sleep "$delay"
    [ "$delay" = 0.05 ] && delay=0.1 || delay=0.2
  done
}

# ss_start_bg <logfile> <command...>: start in the background (own process
# group), stdout+stderr to logfile; sets SS_BG_PID and prints the pid. Stopped
# (TERM, then KILL after 10 s) when the test exits, whatever the reason.
ss_start_bg() {
  local logfile=$1; shift
  mkdir -p "$(dirname "$logfile")"
  set -m
  "$@" >"$logfile" 2>&1 </dev/null &
  SS_BG_PID=$!
  set +m
  SS_BG_PIDS+=("$SS_BG_PID")
  SS_BG_LOGS+=("$logfile")
  # Listed in a file too, with its start time (see _ss_pid_start): found by our cleanup
  # even when started from a $(subshell), and by the harness even if this test is killed.
  echo "$SS_BG_PID $(_ss_pid_start "$SS_BG_PID")" >"$SS_TEST_TMP/bg/$SS_BG_PID.pid"
  echo "$SS_BG_PID"
}

# ss_stop_bg <pid> [timeout_s]: SIGTERM, wait, SIGKILL. Returns the exit status
# of the process when it was ours and exited by itself after TERM.
ss_stop_bg() {
  local pid=$1 t=${2:-10} deadline start="" f="$SS_TEST_TMP/bg/$1.pid" x
  [ -f "$f" ] && read -r x start <"$f"
  # Not (or no longer) the process we started: only collect its status.
  if ! _ss_pid_is "$pid" "$start"; then
    wait "$pid" 2>/dev/null
    local rc0=$?
    rm -f "$f"
    return $rc0
  fi
  kill -TERM "$pid" 2>/dev/null
  deadline=$(( $(_ss_now_ms) + t * 1000 ))
  while _ss_pid_is "$pid" "$start"; do
    if [ "$(_ss_now_ms)" -ge "$deadline" ]; then
      echo "ss_stop_bg: $pid ignored SIGTERM for ${t}s: killing" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.05
  done
  kill -TERM -- "-$pid" 2>/dev/null  # anything it left in its group (not reaped yet: still ours)
  wait "$pid" 2>/dev/null
  local rc=$?
  rm -f "$f"
  return $rc
}

# ---------------------------------------------------------------- HTTP
# ss_metric <base-url> <name{labels}>: one sample of <base-url>/metrics.  Fails (returns 1,
# prints nothing, says why on stderr) when /metrics does not answer or does not declare the
# family ("# TYPE name"): a dead or misnamed service never reads as 0.  A declared family
# without this label set prints 0 (a labelled counter not counted yet).
ss_metric() { _ss_metric "$1" "$2" sample; }

# ss_metric_sum <base-url> <family>: the sum of the family's samples over every label set;
# fails like ss_metric.
ss_metric_sum() { _ss_metric "$1" "$2" sum; }

_ss_metric() {
  local body family=${2%%\{*}
  body=$(curl -fsS --max-time 5 "$1/metrics" 2>&1) ||
    { echo "ss_metric: $1/metrics does not answer: $body" >&2; return 1; }
  grep -q "^# TYPE $family " <<<"$body" ||
    { echo "ss_metric: $1/metrics declares no metric $family" >&2; return 1; }
  awk -v m="$2" -v f="$family" -v mode="$3" '
    mode == "sample" && $1 == m { v = $2; found = 1 }
    mode == "sum" && ($1 == f || index($1, f "{") == 1) { s += $2 }
    END { if (mode == "sum") print s + 0; else print found ? v : 0 }' <<<"$body"
}

# ---------------------------------------------------------------- PostgreSQL
# q <sql>: one statement on $DB_URL, unaligned, tuples only ('|' between columns).
# q <psql args...>: the same connection and format with your own arguments (-c, -f, -v).
q() {
  if [ $# -eq 1 ] && [ "${1#-}" = "$1" ]; then set -- -c "$1"; fi
  ss_psql "${DB_URL:?q: DB_URL is not set}" -At "$@"
}

# ss_test_createdb <name>: drop-if-exists + create; prints a superuser URL to it.
ss_test_createdb() {
  local name
  name=$(echo "$1" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_\n' '_')
  ss_psql "$SS_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null &&
    ss_psql "$SS_TEST_DATABASE_URL" -c "CREATE DATABASE \"$name\"" >/dev/null ||
    { echo "ss_test_createdb: could not create $name" >&2; return 1; }
  echo "postgresql://$SS_TEST_PG_USER@$SS_TEST_PG_HOST:$SS_TEST_PG_PORT/$name"
}

# ss_test_migrated_db <name>: a fresh database with every migration applied
# (shipstream-migrate up; the *.up.sql files when it is not built).  Sets and exports
# DB_URL; ss_fail on any error.
ss_test_migrated_db() {
  DB_URL=$(ss_test_createdb "$1") || ss_fail "createdb $1"
  export DB_URL
  local mig="$SS_BIN_DIR/shipstream-migrate" f
  if [ -x "$mig" ]; then
    DATABASE_URL="$DB_URL" MIGRATIONS_DIR="$SS_SOURCE_ROOT/migrations" "$mig" up \
      >"$SS_TEST_TMP/migrate.log" 2>&1 || { cat "$SS_TEST_TMP/migrate.log" >&2; ss_fail "migrate up on $1"; }
  else
    for f in "$SS_SOURCE_ROOT"/migrations/*.up.sql; do
      ss_psql "$DB_URL" -1 -f "$f" >/dev/null || ss_fail "applying $f on $1"
    done
  fi
}

ss_pg_stop() {
  _SS_PG_STOPPED=1
  "$SS_LIB_ROOT/deploy/local/pg.sh" stop --dir "$SS_TEST_PG_DATA" -q
}

ss_pg_start() {
  "$SS_LIB_ROOT/deploy/local/pg.sh" start --dir "$SS_TEST_PG_DATA" --port "$SS_TEST_PG_PORT" -q &&
    _SS_PG_STOPPED=""
}

# ---------------------------------------------------------------- Kafka
ss_kafkactl() { "$SS_KAFKACTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" "$@"; }

ss_test_prefix() {
  local r
  r=$(printf '%04x%04x' "$RANDOM" "$RANDOM")
  echo "it.${SS_TEST_NAME:0:40}.$$$r."
}

# ss_test_create_topics <prefix> [partitions]: the six topics of ARCHITECTURE.md.
ss_test_create_topics() {
  ss_kafkactl create-topics --prefix "$1" --partitions "${2:-12}" --timeout 30 2>/dev/null ||
    { echo "ss_test_create_topics: failed for prefix $1" >&2; return 1; }
}

ss_kafka_stop() {
  _SS_KAFKA_STOPPED=1
  "$SS_LIB_ROOT/deploy/local/kafka.sh" stop --dir "$SS_TEST_KAFKA_DIR" -q
}

ss_kafka_start() {
  SS_BIN_DIR="$SS_BIN_DIR" "$SS_LIB_ROOT/deploy/local/kafka.sh" start --dir "$SS_TEST_KAFKA_DIR" \
    --port "${SS_TEST_KAFKA_BOOTSTRAP##*:}" -q && _SS_KAFKA_STOPPED=""
}

# ---------------------------------------------------------------- exit
_ss_cleanup() {
  local rc=$?
  trap '' INT TERM
  local i
  set +e
  for ((i = ${#_SS_ON_EXIT[@]} - 1; i >= 0; i--)); do eval "${_SS_ON_EXIT[$i]}"; done
  local pids=() f x
  for f in "$SS_TEST_TMP"/bg/*.pid; do [ -f "$f" ] && read -r x _ <"$f" && pids+=("$x"); done
  for f in "$SS_TEST_TMP"/bg/*.pid; do [ -f "$f" ] && _ss_pidfile_kill "$f" TERM; done
  for i in "${pids[@]}"; do ss_stop_bg "$i" 10 >/dev/null 2>&1 || true; done
  # Leave the servers as the next test expects them.
  if [ -n "$_SS_PG_STOPPED" ]; then ss_pg_start || true; fi
  if [ -n "$_SS_KAFKA_STOPPED" ]; then ss_kafka_start || true; fi
  if [ "$rc" -ne 0 ] && [ -n "${SS_TEST_KEEP_ON_FAILURE:-}" ]; then
    echo "kept for inspection: $SS_TEST_TMP" >&2
  else
    rm -rf "$SS_TEST_TMP"
  fi
  return $rc
}
trap _ss_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- heal
# A test killed by ctest's timeout (SIGKILL: no EXIT trap) may have left the
# harness's PostgreSQL or Kafka stopped; every later test would then fail for
# that one.  Start them again here (same data, same port), once, under a lock:
# tests run side by side, and the ones that stop these servers run alone.
_ss_heal() {
  (
    flock 7
    if [ -n "${SS_TEST_PG_DATA:-}" ] &&
       ! "$SS_LIB_ROOT/deploy/local/pg.sh" status --dir "$SS_TEST_PG_DATA" >/dev/null 2>&1; then
      echo "lib.sh: the harness's PostgreSQL was down (a killed test?): starting it" >&2
      ss_pg_start
    fi
    if [ -n "${SS_TEST_KAFKA_DIR:-}" ] &&
       ! "$SS_LIB_ROOT/deploy/local/kafka.sh" status --dir "$SS_TEST_KAFKA_DIR" >/dev/null 2>&1; then
      echo "lib.sh: the harness's Kafka was down (a killed test?): starting it" >&2
      ss_kafka_start
    fi
  ) 7>"${TMPDIR:-/tmp}/ss-test-heal.$(id -u).lock"
}
_ss_heal

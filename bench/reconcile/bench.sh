#!/usr/bin/env bash
# Reconcile throughput, inside the harness environment (bench/run.sh reconcile):
#   1. backfill: RECONCILE_BENCH_SHIPMENTS (default 20000) preloaded shipments + their
#      trackers, from `shipstream-reconcile backfill` start until the sync worker (running,
#      its partitions assigned) has applied every message it produced (kafka_offsets),
#      objects/s end to end; and the backfill's own rate (objects produced and acknowledged
#      by Kafka per second);
#   2. next to it, same run: a fresh sync worker (new group, empty database) applying the
#      very messages the backfill produced, objects/s from its first applied batch to its
#      last: the sync worker's own rate;
#   1 and 2 are repeated RECONCILE_BENCH_ROUNDS times (default 2), interleaved A B A B so
#   that the load of a shared machine hits both; the results are totals over the rounds.
#   3. one `once` pass over RECONCILE_BENCH_PASS_OBJECTS (default 100000) objects in the
#      window (half shipments, half trackers; empty database: every object missing), seconds.
# The sim runs unthrottled (no faults, no latency).  An uncounted round 0 goes first (see
# below): the sim's cache (up to 32,768 preloaded shipments) and the broker's JIT warm.
#
# What the ratio means: the end-to-end number ends when the sync worker has applied every
# object, so it can never exceed the worker's own rate; on one machine the sim (EasyPost's
# stand-in), the backfill and the worker also share the CPU during 1 and not during 2.
# reconcile_backfill_produce_pct_of_sync_worker says whether the backfill itself keeps up
# with the worker (>= 100 %: the worker is the limit of the end-to-end number).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
N=${RECONCILE_BENCH_SHIPMENTS:-20000}
P=${RECONCILE_BENCH_PASS_OBJECTS:-100000}
ROUNDS=${RECONCILE_BENCH_ROUNDS:-2} # 0: only the pass
BIN=${SS_BIN_DIR:-$ROOT/build/bin}
KCTL=${SS_KAFKACTL:-$BIN/ss-kafkactl}
# shellcheck source=../../tests/integration/lib.sh
SS_LIB_TOOLS_ONLY=1 source "$ROOT/tests/integration/lib.sh"   # ss_free_port
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-reconcile.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
export LC_ALL=C
base=${SS_TEST_DATABASE_URL%/*}
now() { date +%s.%N; }
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; } # user+system s
# The broker's and PostgreSQL's CPU seconds (the postmaster, its children, and the
# children that exited): where the machine's two cores went in each phase.
KAFKA_PID=$(cat "$SS_TEST_KAFKA_DIR/kafka.pid" 2>/dev/null)
PG_PID=$(head -n 1 "$SS_TEST_PG_DATA/postmaster.pid" 2>/dev/null)
pgcpu() {
  awk -v pp="$PG_PID" -v t="$TCK" '$4 == pp { c += $14 + $15 } $1 == pp { c += $14 + $15 + $16 + $17 }
    END { printf "%.2f", c / t }' /proc/[0-9]*/stat 2>/dev/null
}
delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
port() { ss_free_port; } # a port nothing listens on (a random one collided once: the worker died)

mkdb() {
  psql -X -q "$SS_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null || exit 1
  DATABASE_URL="$base/$1" MIGRATIONS_DIR="$ROOT/migrations" "$BIN/shipstream-migrate" up >/dev/null 2>&1 || exit 1
  echo "$base/$1"
}
count() { psql -X -At "$1" -c "SELECT (SELECT count(*) FROM shipments) + (SELECT count(*) FROM trackers)"; }
sim() { # sim <port> <shipments> <days>
  env LISTEN="127.0.0.1:$1" EASYPOST_API_KEY=EZTK_b SIM_PRELOAD_SHIPMENTS="$2" SIM_PRELOAD_DAYS="$3" \
    LOG_LEVEL=warn "$BIN/easypost-sim" 2>"$TMP/sim-$1.log" &
  PIDS+=($!)
  for _ in $(seq 600); do curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done # a loaded machine: up to a minute
  echo "sim did not start" >&2; exit 1
}
worker() { # worker <db> <group> <prefix>; WPORT: its LISTEN port
  WPORT=$(port)
  env DATABASE_URL="$1" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$3" \
    KAFKA_GROUP_ID="$2" LISTEN="127.0.0.1:$WPORT" LOG_LEVEL=warn "$BIN/shipstream-sync-worker" 2>"$TMP/$2.log" &
  PIDS+=($!)
}
# wait_assigned <port> <pid>: until the worker holds its partitions (it has joined the group),
# as a long-running worker does when an operator starts a backfill
wait_assigned() {
  local deadline=$((SECONDS + 120)) a
  while [ $SECONDS -lt $deadline ]; do
    a=$(curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null | awk '$1 == "sync_partitions_assigned" { print $2 }')
    [ "${a:-0}" -gt 0 ] 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "the sync worker (pid $2) exited before its assignment" >&2; return 1; }
    sleep 0.1
  done
  echo "the sync worker got no partitions in 120 s" >&2; return 1
}
# produced <prefix>: messages on the run's topics (the sum of their high watermarks)
produced() {
  local t n=0 c
  for t in shipments trackers addresses batches events; do
    c=$("$KCTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" offsets -t "$1$t" --sum) || return 1
    n=$((n + c))
  done
  echo "$n"
}
# applied <db> <group>: messages the group has applied (kafka_offsets is written in the
# same transaction as the rows, and the topics start at offset 0)
applied() {
  psql -X -At "$1" -c "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE consumer_group = '$2'"
}
# wait_applied <db> <group> <messages> <timeout> <pid>: prints the time the group had applied
# every message; fails at once when the worker is gone.  FIRST_T/FIRST_C (in a file, the
# caller runs it in a subshell): the first time it saw anything applied, and how much.  Counting rows instead ended early:
# a tracker also writes its shipment's row, so (shipments + trackers) reached 2N with about
# half the messages applied, and the worker's rate read twice what it was (session 7).
wait_applied() {
  local deadline=$((SECONDS + $4)) c=0
  while [ $SECONDS -lt $deadline ]; do
    c=$(applied "$1" "$2")
    [ "$c" -gt 0 ] && [ ! -s "$TMP/first.$2" ] && echo "$(now) $c" >"$TMP/first.$2"
    [ "$c" -ge "$3" ] && { now; return 0; }
    if ! kill -0 "$5" 2>/dev/null; then
      echo "the sync worker (pid $5) exited with $c of $3 messages applied" >&2; return 1
    fi
    sleep 0.05
  done
  echo "only $c of $3 messages applied" >&2; return 1
}
# check_rows <db> <n>: PostgreSQL holds the n objects
check_rows() {
  local c; c=$(count "$1")
  [ "$c" -ge "$2" ] || { echo "only $c of $2 rows after every message was applied" >&2; return 1; }
}
reconcile() { # reconcile <sim port> <db> <prefix> args...
  local sp=$1 db=$2 pf=$3 wrap=(); shift 3
  [ -n "${RC_CPU:-}" ] && wrap=(/usr/bin/time -f "%U %S" -o "$RC_CPU") # its CPU seconds, user system
  "${wrap[@]}" env EASYPOST_API_KEY=EZTK_b EASYPOST_API_BASE="http://127.0.0.1:$sp/v2" DATABASE_URL="$db" \
    KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$pf" RECONCILE_STATE_DIR="${RC_STATE:-$TMP}" \
    LOG_LEVEL=warn "$BIN/shipstream-reconcile" "$@"
}

echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
# 1 and 2, interleaved: A (backfill end to end) B (the worker alone) A B ...
SP=$(port); sim "$SP" "$N" 90
SIM_PID=${PIDS[-1]}
SINCE=$(date -u -d '100 days ago' +%FT%TZ)
T_E2E=0 T_PROD=0 T_SW=0
# Round 0 warms up and is not counted: a whole backfill with its worker, so that the sim
# serves every object from its cache (EasyPost's CPU would not be on this machine) and the
# broker's JVM has compiled its produce and fetch paths (a running broker has; a fresh one
# spent 1.5-2 times the CPU in its first round).
for r in $( [ "$ROUNDS" -gt 0 ] && seq 0 "$ROUNDS"); do
  PREFIX="bench.reconcile.$$.$r."
  "$KCTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" create-topics --prefix "$PREFIX" --timeout 60 >/dev/null 2>&1 || { echo "topics failed" >&2; exit 1; }
  # A: the backfill, one worker applying what it produces
  DB1=$(mkdb bench_reconcile_backfill)
  worker "$DB1" "bench-rc-a-$$-$r" "$PREFIX"
  WA=${PIDS[-1]}
  wait_assigned "$WPORT" "$WA" || exit 1
  mkdir -p "$TMP/state-$r"
  la=$(cut -d' ' -f1 /proc/loadavg)
  c_sim=$(cpu "$SIM_PID") c_wa=$(cpu "$WA") c_k=$(cpu "$KAFKA_PID") c_pg=$(pgcpu)
  t0=$(now)
  RC_STATE="$TMP/state-$r" RC_CPU="$TMP/backfill.cpu" reconcile "$SP" "$DB1" "$PREFIX" backfill --since "$SINCE" >"$TMP/backfill.out" 2>"$TMP/backfill.err" ||
    { tail -5 "$TMP/backfill.err" >&2; exit 1; }
  tp=$(now)
  c_sim=$(awk -v a="$c_sim" -v b="$(cpu "$SIM_PID")" 'BEGIN { printf "%.1f", b - a }')
  c_bf=$(awk '{ printf "%.1f", $1 + $2 }' "$TMP/backfill.cpu")
  cat "$TMP/backfill.out" >&2
  M=$(produced "$PREFIX") || { echo "offsets failed" >&2; exit 1; }
  t1=$(wait_applied "$DB1" "bench-rc-a-$$-$r" "$M" 900 "$WA") || exit 1
  check_rows "$DB1" $((2 * N)) || exit 1
  c_wa=$(delta "$c_wa" "$(cpu "$WA")") c_k=$(delta "$c_k" "$(cpu "$KAFKA_PID")") c_pg=$(delta "$c_pg" "$(pgcpu)")
  e2e=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  prod=$(awk -v a="$t0" -v b="$tp" 'BEGIN { printf "%.3f", b - a }')
  if [ "$r" = 0 ]; then
    echo "# warm-up round (not counted): $(awk -v n=$((2 * N)) -v t="$e2e" 'BEGIN{printf "%.0f", n/t}') objects/s end to end" >&2
    kill -TERM "$WA" 2>/dev/null
    continue
  fi
  # B: a fresh worker alone on the same messages
  DB2=$(mkdb bench_reconcile_worker)
  lb=$(cut -d' ' -f1 /proc/loadavg)
  c_kb=$(cpu "$KAFKA_PID") c_pgb=$(pgcpu)
  t0=$(now)
  worker "$DB2" "bench-rc-b-$$-$r" "$PREFIX"
  t1=$(wait_applied "$DB2" "bench-rc-b-$$-$r" "$M" 900 "${PIDS[-1]}") || exit 1
  check_rows "$DB2" $((2 * N)) || exit 1
  c_wb=$(cpu "${PIDS[-1]}") c_kb=$(delta "$c_kb" "$(cpu "$KAFKA_PID")") c_pgb=$(delta "$c_pgb" "$(pgcpu)")
  # its rate from its first applied batch on (its start, the group join, is not the
  # worker's apply rate): the messages applied after that moment over the time they took
  read -r tf cf <"$TMP/first.bench-rc-b-$$-$r"
  sw1=$(awk -v a="$tf" -v b="$t1" -v m="$M" -v c="$cf" -v n=$((2 * N)) 'BEGIN { printf "%.3f", (b - a) * n / (m - c) }')
  kill -TERM "${PIDS[@]: -2}" 2>/dev/null # this round's two workers
  echo "# round $r: backfill $((2 * N)) objects: $(awk -v n=$((2 * N)) -v t="$e2e" 'BEGIN{printf "%.0f", n/t}') objects/s end to end, the backfill itself $(awk -v n=$((2 * N)) -v t="$prod" 'BEGIN{printf "%.0f", n/t}') objects/s (load $la); the sync worker alone $(awk -v n=$((2 * N)) -v t="$sw1" 'BEGIN{printf "%.0f", n/t}') objects/s (load $lb, from its first applied batch); CPU seconds: sim $c_sim and backfill $c_bf while it ran, worker $c_wa (A) / $c_wb (B), broker $c_k (A) / $c_kb (B), PostgreSQL $c_pg (A) / $c_pgb (B)" >&2
  T_E2E=$(awk -v a="$T_E2E" -v b="$e2e" 'BEGIN { print a + b }')
  T_PROD=$(awk -v a="$T_PROD" -v b="$prod" 'BEGIN { print a + b }')
  T_SW=$(awk -v a="$T_SW" -v b="$sw1" 'BEGIN { print a + b }')
done
NT=$((2 * N * ROUNDS))
[ "$ROUNDS" -gt 0 ] && {
bf=$(awk -v n="$NT" -v t="$T_E2E" 'BEGIN { printf "%.0f", n / t }')
bp=$(awk -v n="$NT" -v t="$T_PROD" 'BEGIN { printf "%.0f", n / t }')
sw=$(awk -v n="$NT" -v t="$T_SW" 'BEGIN { printf "%.0f", n / t }')
echo "# $ROUNDS rounds of $((2 * N)) objects: backfill $bf objects/s end to end ($bp objects/s produced); the sync worker alone on the same messages: $sw objects/s" >&2
}

# 3. one pass over P objects in the window, every one missing
PREFIX2="bench.reconcile.pass.$$."
"$KCTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" create-topics --prefix "$PREFIX2" --timeout 60 >/dev/null 2>&1 || { echo "topics failed" >&2; exit 1; }
SP2=$(port); sim "$SP2" $((P / 2)) 2
SIM2=${PIDS[-1]}
DB3=$(mkdb bench_reconcile_pass)
lp=$(cut -d' ' -f1 /proc/loadavg)
c_sim=$(cpu "$SIM2")
t0=$(now)
RC_CPU="$TMP/pass.cpu" reconcile "$SP2" "$DB3" "$PREFIX2" once --window 72h >"$TMP/pass.out" 2>"$TMP/pass.err" || { tail -5 "$TMP/pass.err" >&2; exit 1; }
t1=$(now)
cat "$TMP/pass.out" >&2
pass=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "# pass over $P objects: $pass s (load $lp); CPU seconds: sim $(awk -v a="$c_sim" -v b="$(cpu "$SIM2")" 'BEGIN { printf "%.1f", b - a }'), reconcile $(awk '{ printf "%.1f", $1 + $2 }' "$TMP/pass.cpu")" >&2

echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
[ "$ROUNDS" -gt 0 ] && {
echo "RESULT reconcile_backfill_objects_per_s $bf objects/s $sw"
echo "RESULT reconcile_backfill_pct_of_sync_worker $(awk -v a="$bf" -v b="$sw" 'BEGIN{printf "%.0f", 100*a/b}') % 80"
echo "RESULT reconcile_backfill_produce_objects_per_s $bp objects/s $sw"
echo "RESULT reconcile_backfill_produce_pct_of_sync_worker $(awk -v a="$bp" -v b="$sw" 'BEGIN{printf "%.0f", 100*a/b}') % 100"
}
echo "RESULT reconcile_pass_seconds_${P}_objects $pass s"

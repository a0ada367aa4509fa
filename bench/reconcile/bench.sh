#!/usr/bin/env bash
# Reconcile throughput, inside the harness environment (bench/run.sh reconcile):
#   1. backfill: RECONCILE_BENCH_SHIPMENTS (default 20000) preloaded shipments + their
#      trackers, from `shipstream-reconcile backfill` start until PostgreSQL holds them all
#      (one sync worker running), objects/s end to end;
#   2. next to it, same run: a fresh sync worker (new group, empty database) applying the
#      very messages the backfill produced, objects/s: the sync worker's own rate;
#   3. one `once` pass over RECONCILE_BENCH_PASS_OBJECTS (default 100000) objects in the
#      window (half shipments, half trackers; empty database: every object missing), seconds.
# The sim runs unthrottled (no faults, no latency).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
N=${RECONCILE_BENCH_SHIPMENTS:-20000}
P=${RECONCILE_BENCH_PASS_OBJECTS:-100000}
BIN=${SS_BIN_DIR:-$ROOT/build/bin}
KCTL=${SS_KAFKACTL:-$BIN/ss-kafkactl}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-reconcile.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
export LC_ALL=C
base=${SS_TEST_DATABASE_URL%/*}
now() { date +%s.%N; }
port() { echo $((20000 + RANDOM % 20000)); }

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
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "sim did not start" >&2; exit 1
}
worker() { # worker <db> <group> <prefix>
  env DATABASE_URL="$1" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$3" \
    KAFKA_GROUP_ID="$2" LISTEN="127.0.0.1:$(port)" LOG_LEVEL=warn "$BIN/shipstream-sync-worker" 2>"$TMP/$2.log" &
  PIDS+=($!)
}
# wait_rows <db> <n> <timeout>: prints the time the count reached n
wait_rows() {
  local deadline=$((SECONDS + $3)) c=0
  while [ $SECONDS -lt $deadline ]; do
    c=$(count "$1"); [ "$c" -ge "$2" ] && { now; return 0; }
    sleep 0.2
  done
  echo "only $c of $2 rows" >&2; return 1
}
reconcile() { # reconcile <sim port> <db> <prefix> args...
  local sp=$1 db=$2 pf=$3; shift 3
  env EASYPOST_API_KEY=EZTK_b EASYPOST_API_BASE="http://127.0.0.1:$sp/v2" DATABASE_URL="$db" \
    KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$pf" RECONCILE_STATE_DIR="$TMP" \
    LOG_LEVEL=warn "$BIN/shipstream-reconcile" "$@"
}

echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
# 1. backfill end to end
PREFIX="bench.reconcile.$$."
"$KCTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" create-topics --prefix "$PREFIX" --timeout 60 >/dev/null 2>&1 || { echo "topics failed" >&2; exit 1; }
SP=$(port); sim "$SP" "$N" 90
DB1=$(mkdb bench_reconcile_backfill)
worker "$DB1" "bench-rc-a-$$" "$PREFIX"
t0=$(now)
reconcile "$SP" "$DB1" "$PREFIX" backfill --since "$(date -u -d '100 days ago' +%FT%TZ)" >"$TMP/backfill.out" 2>"$TMP/backfill.err" ||
  { tail -5 "$TMP/backfill.err" >&2; exit 1; }
cat "$TMP/backfill.out" >&2
t1=$(wait_rows "$DB1" $((2 * N)) 900) || exit 1
bf=$(awk -v a="$t0" -v b="$t1" -v n=$((2 * N)) 'BEGIN { printf "%.0f", n / (b - a) }')

# 2. the sync worker alone on the same messages
DB2=$(mkdb bench_reconcile_worker)
t0=$(now)
worker "$DB2" "bench-rc-b-$$" "$PREFIX"
t1=$(wait_rows "$DB2" $((2 * N)) 900) || exit 1
sw=$(awk -v a="$t0" -v b="$t1" -v n=$((2 * N)) 'BEGIN { printf "%.0f", n / (b - a) }')
echo "# backfill $((2 * N)) objects: $bf objects/s end to end; the sync worker alone on the same messages: $sw objects/s (includes its start)" >&2

# 3. one pass over P objects in the window, every one missing
PREFIX2="bench.reconcile.pass.$$."
"$KCTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" create-topics --prefix "$PREFIX2" --timeout 60 >/dev/null 2>&1 || { echo "topics failed" >&2; exit 1; }
SP2=$(port); sim "$SP2" $((P / 2)) 2
DB3=$(mkdb bench_reconcile_pass)
t0=$(now)
reconcile "$SP2" "$DB3" "$PREFIX2" once --window 72h >"$TMP/pass.out" 2>"$TMP/pass.err" || { tail -5 "$TMP/pass.err" >&2; exit 1; }
t1=$(now)
cat "$TMP/pass.out" >&2
pass=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "RESULT reconcile_backfill_objects_per_s $bf objects/s $sw"
echo "RESULT reconcile_backfill_pct_of_sync_worker $(awk -v a="$bf" -v b="$sw" 'BEGIN{printf "%.0f", 100*a/b}') % 80"
echo "RESULT reconcile_pass_seconds_${P}_objects $pass s"

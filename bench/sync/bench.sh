#!/usr/bin/env bash
# Sync worker throughput: shipment events applied per second by one worker and
# by two (same group), from a pre-filled topic, next to PostgreSQL alone taking
# the same rows with the same set-based statements (ss-sync-pgbench: parsing
# and mapping done beforehand, only the transactions timed), same run.
#   SYNC_BENCH_EVENTS (default 200000), SYNC_BATCH_SIZE (default 1000)
# Runs inside the harness environment (bench/run.sh or tests/integration/harness.sh).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
N=${SYNC_BENCH_EVENTS:-200000}
BATCH=${SYNC_BATCH_SIZE:-1000}
BIN=${SS_BIN_DIR:-$ROOT/build/bin}
# shellcheck source=../../tests/integration/lib.sh
SS_LIB_TOOLS_ONLY=1 source "$ROOT/tests/integration/lib.sh"   # ss_find_kafkactl, ss_free_port
KCTL=$(SS_BIN_DIR="$BIN" ss_find_kafkactl) || { echo "ss-kafkactl not built" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-sync.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
export LC_ALL=C
base=${SS_TEST_DATABASE_URL%/*}
now() { date +%s.%N; }

mkdb() {
  psql -X -q "$SS_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null || exit 1
  if [ -x "$BIN/shipstream-migrate" ]; then
    DATABASE_URL="$base/$1" MIGRATIONS_DIR="$ROOT/migrations" "$BIN/shipstream-migrate" up >/dev/null 2>&1 || exit 1
  else
    for f in "$ROOT"/migrations/*.up.sql; do psql -X -q -v ON_ERROR_STOP=1 "$base/$1" -1 -f "$f" >/dev/null || exit 1; done
  fi
  echo "$base/$1"
}

"$BIN/ss-sync-gen" "$TMP" --bench --shipments "$N" --tag b$$ 2>/dev/null || { echo "generator failed" >&2; exit 1; }
bytes=$(( $(wc -c <"$TMP/shipments.tsv") / N ))
PREFIX="bench.sync.$$."
"$KCTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" create-topics --prefix "$PREFIX" --timeout 60 >/dev/null 2>&1 || { echo "topics failed" >&2; exit 1; }
"$KCTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" -X linger.ms=20 produce -t "${PREFIX}shipments" <"$TMP/shipments.tsv" >/dev/null || { echo "produce failed" >&2; exit 1; }
echo "# $N shipment events (~$bytes bytes each) in ${PREFIX}shipments" >&2

count() { psql -X -At "$1" -c "SELECT count(*) FROM processed_events"; }

# run_workers <db_url> <n_workers>: prints events/s from the first to the last applied event
run_workers() {
  local url=$1 n=$2 i port
  for i in $(seq 1 "$n"); do
    port=$(ss_free_port) || exit 1
    env DATABASE_URL="$url" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
      KAFKA_GROUP_ID="bench-$n-$$" LISTEN="127.0.0.1:$port" LOG_LEVEL=warn SYNC_BATCH_SIZE="$BATCH" \
      "$BIN/shipstream-sync-worker" 2>"$TMP/worker-$n-$i.log" &
    PIDS+=($!)
  done
  local c=0 t0="" c0=0 deadline=$((SECONDS + 600))
  while [ "$c" -lt "$N" ] && [ $SECONDS -lt $deadline ]; do
    c=$(count "$url")
    if [ -z "$t0" ] && [ "$c" -gt 0 ]; then t0=$(now); c0=$c; fi
    sleep 0.1
  done
  local t1; t1=$(now)
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  PIDS=()
  [ "$c" -ge "$N" ] || { echo "only $c of $N applied" >&2; echo 0; return; }
  echo "$t0 $t1 $c0" | awk -v n="$N" '{ printf "%.0f\n", (n - $3) / ($2 - $1) }'
}

pg_url=$(mkdb bench_sync_pg)
pg_rate=$("$BIN/ss-sync-pgbench" "$pg_url" "$TMP/shipments.tsv" "$BATCH" 2>"$TMP/pg.log" | awk '{print $2}')
cat "$TMP/pg.log" >&2
one=$(run_workers "$(mkdb bench_sync_one)" 1)
two=$(run_workers "$(mkdb bench_sync_two)" 2)
echo "RESULT sync_one_worker_shipment_events_per_s $one events/s $pg_rate"
echo "RESULT sync_two_workers_shipment_events_per_s $two events/s $pg_rate"
echo "RESULT sync_one_worker_pct_of_postgresql_alone $(awk -v a="$one" -v b="$pg_rate" 'BEGIN{printf "%.0f", 100*a/b}') % 100"
echo "RESULT sync_two_workers_pct_of_postgresql_alone $(awk -v a="$two" -v b="$pg_rate" 'BEGIN{printf "%.0f", 100*a/b}') % 100"

#!/usr/bin/env bash
# Gateway benchmark (issue "Gateway", section Benchmark), inside the harness
# environment (bench/run.sh; alone: SS_BIN_DIR=$PWD/build-x/bin
# tests/integration/harness.sh -- bench/gateway/bench.sh).
#
# 1. Dashboard: 1,000,000 shipments loaded with bench/schema/load.sql into a
#    fresh migrated database, views refreshed, then GET
#    /db/analytics/dashboard?days=30 with ss-bench-paced (tools/paced) at
#    exactly BENCH_GW_RATE req/s (open loop: request i at t0 + i/rate, after
#    a BENCH_GW_WARMUP_SECONDS warm-up at the same rate) on BENCH_GW_CONNS
#    keep-alive connections.  A request that finds them all busy waits, and
#    its latency counts from its scheduled time to the last byte of the
#    answer (coordinated-omission corrected, like wrk2).
#    Baseline, same run: the gateway's own dashboard SQL (extracted from
#    services/gateway/readapi.c, so it cannot drift) through pgbench with the
#    same protocol as the gateway (extended, one parameter), the same number
#    of connections and -R at the same rate (Poisson arrivals); latency is
#    pgbench's per-transaction time, which with -R also counts from the
#    scheduled start (schedule lag included), like ss-bench-paced's.
# 2. /v1 overhead: POST /v1/shipments (the recorded fixture body) through the
#    gateway vs the same POST straight to easypost-sim's /v2/shipments, same
#    wrk settings (paced.lua: BENCH_GW_V1_CONNS connections, each pausing
#    BENCH_GW_V1_DELAY_MS between requests; no fixed rate), alternating
#    twice, medians of the runs.  The gateway produces every result to Kafka
#    (the harness's broker).
#
# Results (RESULT name value unit baseline):
#   gateway_dashboard_rps        achieved rate          (baseline: pgbench's rate)
#   gateway_dashboard_p50_ms     gateway p50            (baseline: SQL alone p50)
#   gateway_dashboard_p99_ms     gateway p99, goal < 5  (baseline: SQL alone p99)
#   gateway_v1_create_p50_ms     via gateway            (baseline: easypost-sim direct)
#   gateway_v1_overhead_p50_ms   difference, goal < 1   (no baseline)
#   gateway_v2_{create,list,buy}_p50_ms   /v2 via the gateway, HTTP Basic
#                                (baseline: easypost-sim direct); list is a page
#                                of 20 (each captured), buy a fresh shipment
#                                each request (bench/gateway/buy.lua), keyless
#   gateway_v2_{create,list,buy}_overhead_p50_ms  difference, goal < 1
#   dashboard_sql_prepared_p50_ms / _p99_ms  the same SQL as a prepared statement
#                                (baseline: unprepared, as the gateway runs it):
#                                what preparing it per connection would save
#   gateway_load_shipments_s     seconds to load the shipments (no baseline)
#
# BENCH_GW_PARTS (default "dashboard v1 v2") and BENCH_GW_V2_OPS (default
# "create list buy") pick what runs, for profiling one part; BENCH_GW_ROUNDS
# (default 2) the alternations of the /v1 and /v2 comparisons.
set -uo pipefail
: "${SS_TEST_DATABASE_URL:?run inside tests/integration/harness.sh (bench/run.sh does)}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export SS_SOURCE_ROOT="${SS_SOURCE_ROOT:-$ROOT}"
export SS_BIN_DIR="${SS_BIN_DIR:-$ROOT/build/bin}"
# shellcheck source=../../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"   # ss_start_bg (stopped at exit), ss_test_createdb, ...

N="${BENCH_GW_SHIPMENTS:-1000000}"
RATE="${BENCH_GW_RATE:-1000}"
CONNS="${BENCH_GW_CONNS:-20}"
SECS="${BENCH_GW_SECONDS:-20}"
WARMUP="${BENCH_GW_WARMUP_SECONDS:-2}"
V1_CONNS="${BENCH_GW_V1_CONNS:-2}"
V1_DELAY="${BENCH_GW_V1_DELAY_MS:-5}"
V1_SECS="${BENCH_GW_V1_SECONDS:-8}"
PARTS=" ${BENCH_GW_PARTS:-dashboard v1 v2} "
V2_OPS="${BENCH_GW_V2_OPS:-create list buy}"
ROUNDS="${BENCH_GW_ROUNDS:-2}"
FIX="${SS_FIXTURES_DIR:-$ROOT/tests/fixtures/easypost}"
CREATE_BODY="$FIX/api/shipment-create.request.json"
API_KEY="gwbench_$(openssl rand -hex 12)"
EP_KEY="EZTK_bench_$(openssl rand -hex 6)"

die() { echo "bench/gateway: $*" >&2; exit 1; }
say() { echo "bench/gateway: $*" >&2; }
for b in shipstream-gateway easypost-sim shipstream-migrate ss-bench-paced; do
  [ -x "$SS_BIN_DIR/$b" ] || die "$SS_BIN_DIR/$b not built"
done
command -v wrk >/dev/null || die "wrk not installed (apt-get install wrk)"
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n 1)
[ -x "$PGBENCH" ] || die "pgbench not found (postgresql-contrib)"
[ -f "$CREATE_BODY" ] || die "$CREATE_BODY missing"
T=$SS_TEST_TMP

ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }
rps() { # successful requests per second of a WRK line
  awk -v r="$(ss_field requests "$1")" -v n="$(ss_field non2xx "$1")" -v d="$(ss_field duration_us "$1")" \
    'BEGIN { printf "%.0f", (r - n) / (d / 1e6) }'
}
# run_wrk <url> <conns> <delay_ms> <seconds> [method body auth]: prints the WRK line;
# fails on any non-2xx answer or socket error.
run_wrk() {
  local out=$T/wrk.out line threads=$(( $2 > 1 ? 2 : 1 ))
  BENCH_METHOD="${5:-GET}" BENCH_BODY="${6:-}" BENCH_AUTH="${7:-}" BENCH_DELAY_MS="$3" \
    wrk -t"$threads" -c"$2" -d"${4}s" --timeout 10s -s "$HERE/paced.lua" "$1" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed on $1"; }
  line=$(grep '^WRK ' "$out") || { cat "$out" >&2; die "no result from wrk on $1"; }
  [ "$(ss_field non2xx "$line")" = 0 ] && [ "$(ss_field socket_errors "$line")" = 0 ] ||
    { cat "$out" >&2; die "errors from $1: $line"; }
  echo "$line"
}
# run_paced <url> <seconds> <auth>: GET at exactly $RATE req/s on $CONNS
# connections (ss-bench-paced), prints the WRK line; fails like run_wrk.
run_paced() {
  local out=$T/paced.out err=$T/paced.err line
  "$SS_BIN_DIR/ss-bench-paced" --url "$1" --rate "$RATE" --duration "$2" --warmup "$WARMUP" \
    --connections "$CONNS" --timeout-ms 10000 --timeline --header "Authorization: $3" >"$out" 2>"$err" ||
    { cat "$out" "$err" >&2; die "ss-bench-paced failed on $1"; }
  sed 's/^/bench\/gateway: /' "$err" >&2
  line=$(grep '^WRK ' "$out") || { cat "$out" "$err" >&2; die "no result from ss-bench-paced on $1"; }
  [ "$(ss_field non2xx "$line")" = 0 ] && [ "$(ss_field socket_errors "$line")" = 0 ] ||
    { cat "$err" >&2; die "errors from $1: $line"; }
  echo "$line"
}

# ------------------------------------------------------------------ data
DB_URL=$(ss_test_createdb bench_gateway) || die "createdb"
DATABASE_URL=$DB_URL MIGRATIONS_DIR="$ROOT/migrations" "$SS_BIN_DIR/shipstream-migrate" up >"$T/migrate.log" 2>&1 ||
  { cat "$T/migrate.log" >&2; die "migrate up"; }
say "loading $N shipments (bench/schema/load.sql)"
t0=$EPOCHREALTIME
ss_psql "$DB_URL" -v n="$N" -f "$ROOT/bench/schema/load.sql" >"$T/load.log" 2>&1 || { cat "$T/load.log" >&2; die "load"; }
t1=$EPOCHREALTIME
ss_psql "$DB_URL" -At -c "SELECT view_name, outcome, duration_ms FROM refresh_analytics_views(false)" >"$T/refresh.log" 2>&1 ||
  { cat "$T/refresh.log" >&2; die "refresh"; }
grep -v '|success|' "$T/refresh.log" | grep -q . && { cat "$T/refresh.log" >&2; die "a view did not refresh"; }
load_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
say "loaded in $load_s s; refresh: $(tr '\n' ' ' <"$T/refresh.log")"

# ------------------------------------------------------------------ services
PREFIX="bench.gateway.$$.$(openssl rand -hex 3)."
ss_test_create_topics "$PREFIX" || die "create topics"
SIM_PORT=$(ss_free_port)
ss_start_bg "$T/sim.log" env LISTEN=127.0.0.1:$SIM_PORT EASYPOST_API_KEY="$EP_KEY" "$SS_BIN_DIR/easypost-sim" >/dev/null
ss_wait_for 15 curl -fsS "http://127.0.0.1:$SIM_PORT/health" || die "easypost-sim did not start"
GW_PORT=$(ss_free_port)
ss_start_bg "$T/gw.log" env LISTEN=127.0.0.1:$GW_PORT DATABASE_URL="$DB_URL" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  EASYPOST_API_KEY="$EP_KEY" EASYPOST_API_BASE="http://127.0.0.1:$SIM_PORT/v2" GATEWAY_API_KEYS="$API_KEY" \
  "$SS_BIN_DIR/shipstream-gateway" >/dev/null
GW="http://127.0.0.1:$GW_PORT"
ss_wait_for 30 curl -fsS "$GW/ready" || { tail "$T/gw.log" >&2; die "gateway not ready (PostgreSQL and Kafka)"; }

DASH="$GW/db/analytics/dashboard?days=30"
curl -fsS -H "Authorization: Bearer $API_KEY" "$DASH" >"$T/dash.json" || die "dashboard request failed"
shipments=$(jq -r '.summary.shipments' "$T/dash.json")
[ "${shipments:-0}" -gt 0 ] || die "dashboard shows no shipments: $(head -c 300 "$T/dash.json")"
say "dashboard: $shipments shipments in 30 days, $(wc -c <"$T/dash.json") bytes"

# ------------------------------------------------------------------ 1. dashboard
has() { [[ $PARTS == *" $1 "* ]]; }
gw_dash="" pg_rps="" pg_p50=0 pg_p99=0 prep_p50=0 prep_p99=0
if has dashboard; then
  gw_dash=$(run_paced "$DASH" "$SECS" "Bearer $API_KEY")
  say "gateway dashboard, $RATE req/s, $CONNS conns, ${SECS}s: $gw_dash"

  # Baseline: the same SQL, straight to PostgreSQL.
  perl -0777 -ne 'if (/dashboard_sql\[\]\s*=\s*(.*?);\n/s) { my ($b, $s) = ($1, "");
      while ($b =~ /"((?:[^"\\]|\\.)*)"/g) { $s .= $1 } $s =~ s/\\(.)/$1/g; $s =~ s/\$1\b/:days/g; print "$s;\n" }' \
    "$ROOT/services/gateway/readapi.c" >"$T/dash.sql"
  grep -q 'mv_daily_shipment_analytics' "$T/dash.sql" || die "could not extract dashboard_sql from services/gateway/readapi.c"
  { echo '\set days 30'; cat "$T/dash.sql"; } >"$T/dash.pgbench"
  # run_pgbench <mode> <seconds>: sets PG_N, PG_P50, PG_P99 (us), PG_RPS
  run_pgbench() {
    rm -f "$T"/pgb.*
    PGOPTIONS="-c TimeZone=UTC" "$PGBENCH" -n -M "$1" -f "$T/dash.pgbench" -c "$CONNS" -j 2 -R "$RATE" -T "$2" \
      -l --log-prefix="$T/pgb" "$DB_URL" >"$T/pgbench.out" 2>&1 || { cat "$T/pgbench.out" >&2; die "pgbench failed"; }
    # per transaction: client tx time_us script epoch epoch_us lag_us; with -R,
    # time_us counts from the scheduled start (lag included), like ss-bench-paced
    cat "$T"/pgb.* | awk '{ print $3 }' >"$T/pg.lat"
    PG_N=$(wc -l <"$T/pg.lat")
    [ "$PG_N" -gt 0 ] || die "pgbench logged no transactions"
    # nearest rank, like ss-bench-paced (ss_stats_rank)
    PG_P50=$(ss_percentile 50 "$T/pg.lat")
    PG_P99=$(ss_percentile 99 "$T/pg.lat")
    PG_RPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$T/pgbench.out" | head -n 1)
    say "SQL alone (pgbench -M $1 -R $RATE -c $CONNS, ${2}s): $PG_N transactions, $PG_RPS tps, latency from schedule p50 $(ms "$PG_P50") ms p99 $(ms "$PG_P99") ms"
  }
  # As the gateway runs it (PQexecParams: unnamed statement, planned every time).
  run_pgbench extended "$SECS"
  pg_p50=$PG_P50 pg_p99=$PG_P99 pg_rps=$PG_RPS
  # For comparison: the same SQL as a prepared statement (planned once per connection).
  run_pgbench prepared "$(( SECS / 2 > 5 ? SECS / 2 : 5 ))"
  prep_p50=$PG_P50 prep_p99=$PG_P99
fi

# ------------------------------------------------------------------ 2. /v1 overhead
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
d50=0 g50=0
SIM_AUTH="Basic $(printf '%s:' "$EP_KEY" | base64 -w0)"
if has v1; then
  code=$(curl -s -o "$T/create.json" -w '%{http_code}' -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
    --data-binary "@$CREATE_BODY" "$GW/v1/shipments")
  [ "$code" = 201 ] || die "POST /v1/shipments answered $code: $(head -c 300 "$T/create.json")"
  code=$(curl -s -o "$T/create.json" -w '%{http_code}' -H "Authorization: $SIM_AUTH" -H 'Content-Type: application/json' \
    --data-binary "@$CREATE_BODY" "http://127.0.0.1:$SIM_PORT/v2/shipments")
  [ "$code" = 201 ] || die "POST /v2/shipments answered $code: $(head -c 300 "$T/create.json")"
  direct=() via=()
  for round in $(seq "$ROUNDS"); do
    d=$(run_wrk "http://127.0.0.1:$SIM_PORT/v2/shipments" "$V1_CONNS" "$V1_DELAY" "$V1_SECS" POST "$CREATE_BODY" "$SIM_AUTH")
    g=$(run_wrk "$GW/v1/shipments" "$V1_CONNS" "$V1_DELAY" "$V1_SECS" POST "$CREATE_BODY" "Bearer $API_KEY")
    say "round $round, easypost-sim direct: $d"
    say "round $round, through the gateway:  $g"
    direct+=("$(ss_field p50_us "$d")"); via+=("$(ss_field p50_us "$g")")
  done
  d50=$(med "${direct[@]}"); g50=$(med "${via[@]}")
fi

# ------------------------------------------------------------------ 3. /v2 overhead
# EasyPost's surface (issue 16): create, list (a page of 20, each element
# captured) and buy (a fresh shipment each request: keyless, so through the
# implicit idempotency key in PostgreSQL) through /v2 with HTTP Basic (as
# EasyPost's clients send it) vs the sim direct, same wrk settings as /v1,
# alternating twice, medians.
GW_AUTH="Basic $(printf '%s:' "$API_KEY" | base64 -w0)"
# collect <n-seconds> <file>: shipments created at the sim, "shp rate" a line (4
# connections without pauses make more than run_buy can buy in as long)
collect() {
  rm -f "$2".*
  BENCH_MODE=collect BENCH_IDS="$2" BENCH_BODY="$CREATE_BODY" BENCH_AUTH="$SIM_AUTH" BENCH_DELAY_MS=0 \
    wrk -t2 -c4 -d"${1}s" --timeout 10s -s "$HERE/buy.lua" "http://127.0.0.1:$SIM_PORT/v2/shipments" >"$T/collect.out" 2>&1 ||
    { cat "$T/collect.out" >&2; die "collecting shipments to buy"; }
  cat "$2".* >"$2"
  say "$(wc -l <"$2") shipments to buy in $2"
}
# run_buy <base-url> <auth> <ids-file>: prints the WRK line; fails like run_wrk
run_buy() {
  local out=$T/wrk.out line
  BENCH_MODE=buy BENCH_IDS="$3" BENCH_AUTH="$2" BENCH_DELAY_MS="$V1_DELAY" BENCH_THREADS=2 \
    wrk -t2 -c"$V1_CONNS" -d"${V1_SECS}s" --timeout 10s -s "$HERE/buy.lua" "$1" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed on buys at $1"; }
  line=$(grep '^WRK ' "$out") || { cat "$out" >&2; die "no result from wrk on buys at $1"; }
  [ "$(ss_field non2xx "$line")" = 0 ] && [ "$(ss_field socket_errors "$line")" = 0 ] ||
    { cat "$out" >&2; die "errors from buys at $1: $line"; }
  [ "$(ss_field requests "$line")" -lt "$(wc -l <"$3")" ] || die "ran out of shipments to buy ($line)"
  echo "$line"
}
LIST_Q="shipments?page_size=20"
declare -A v2d=() v2g=()
for round in $(seq "$ROUNDS"); do
  has v2 || break
  for op in $V2_OPS; do
    case $op in
      create)
        d=$(run_wrk "http://127.0.0.1:$SIM_PORT/v2/shipments" "$V1_CONNS" "$V1_DELAY" "$V1_SECS" POST "$CREATE_BODY" "$SIM_AUTH")
        g=$(run_wrk "$GW/v2/shipments" "$V1_CONNS" "$V1_DELAY" "$V1_SECS" POST "$CREATE_BODY" "$GW_AUTH") ;;
      list)
        d=$(run_wrk "http://127.0.0.1:$SIM_PORT/v2/$LIST_Q" "$V1_CONNS" "$V1_DELAY" "$V1_SECS" GET "" "$SIM_AUTH")
        g=$(run_wrk "$GW/v2/$LIST_Q" "$V1_CONNS" "$V1_DELAY" "$V1_SECS" GET "" "$GW_AUTH") ;;
      buy)
        collect "$V1_SECS" "$T/buy-direct.ids"; collect "$V1_SECS" "$T/buy-gw.ids"
        d=$(run_buy "http://127.0.0.1:$SIM_PORT/v2" "$SIM_AUTH" "$T/buy-direct.ids")
        g=$(run_buy "$GW/v2" "$GW_AUTH" "$T/buy-gw.ids") ;;
    esac
    say "round $round, /v2 $op, easypost-sim direct: $d"
    say "round $round, /v2 $op, through the gateway:  $g"
    v2d[$op]+="$(ss_field p50_us "$d") "; v2g[$op]+="$(ss_field p50_us "$g") "
  done
done
published=$(curl -fsS "$GW/metrics" | awk '/^gateway_events_published_total/ { s += $2 } END { print s + 0 }')
say "gateway queued $published objects for Kafka"

if has dashboard; then
  echo "RESULT gateway_dashboard_rps $(rps "$gw_dash") req/s $pg_rps"
  echo "RESULT gateway_dashboard_p50_ms $(ms "$(ss_field p50_us "$gw_dash")") ms $(ms "$pg_p50")"
  echo "RESULT gateway_dashboard_p99_ms $(ms "$(ss_field p99_us "$gw_dash")") ms $(ms "$pg_p99")"
fi
if has v1; then
  echo "RESULT gateway_v1_create_p50_ms $(ms "$g50") ms $(ms "$d50")"
  echo "RESULT gateway_v1_overhead_p50_ms $(ms $((g50 - d50))) ms"
fi
has v2 || V2_OPS=""
for op in $V2_OPS; do
  # shellcheck disable=SC2086
  od=$(med ${v2d[$op]}); og=$(med ${v2g[$op]})
  echo "RESULT gateway_v2_${op}_p50_ms $(ms "$og") ms $(ms "$od")"
  echo "RESULT gateway_v2_${op}_overhead_p50_ms $(ms $((og - od))) ms"
done
if has dashboard; then
  echo "RESULT dashboard_sql_prepared_p50_ms $(ms "$prep_p50") ms $(ms "$pg_p50")"
  echo "RESULT dashboard_sql_prepared_p99_ms $(ms "$prep_p99") ms $(ms "$pg_p99")"
fi
echo "RESULT gateway_load_shipments_s $load_s s"

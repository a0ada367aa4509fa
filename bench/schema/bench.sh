#!/usr/bin/env bash
# Analytics refresh over 1,000,000 realistic shipments (90 days, 8 carrier/services, 200
# city routes, 50,020 addresses; bench/schema/load.sql) in the harness's PostgreSQL:
#   schema_refresh_plain_all_ms        refresh_analytics_views(false), all three views;
#                                      baseline: one parallel scan of the same shipments
#                                      (SELECT count(*) ... over the 90-day window)
#   schema_refresh_concurrent_all_ms   refresh_analytics_views(true), all three CONCURRENTLY;
#                                      baseline: the plain refresh
#   schema_refresh_concurrent_<view>_ms  each view CONCURRENTLY; baseline: the same view plain
#   schema_refresh_direct_concurrent_all_ms  the three REFRESH ... CONCURRENTLY statements sent
#                                      one by one with the server's default settings (what a
#                                      scheduler that does not call the function does);
#                                      baseline: the function, concurrent
#   schema_load_rows_per_s             shipments loaded per second (the whole load.sql: 50,020
#                                      addresses, the shipments, VACUUM ANALYZE; set-based INSERT ...
#                                      SELECT generate_series, all indexes in place);
#                                      baseline: the same rows into an unindexed, unlogged copy
# Each timing is the median of BENCH_SCHEMA_RUNS (3) runs after one warm-up run.
# Goal: all three views refreshed in under 2 s.  Needs SS_TEST_DATABASE_URL (bench/run.sh).
set -euo pipefail
: "${SS_TEST_DATABASE_URL:?run inside tests/integration/harness.sh (bench/run.sh does)}"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${BENCH_SCHEMA_SHIPMENTS:-1000000}
RUNS=${BENCH_SCHEMA_RUNS:-3}
MIGRATE="${SS_BIN_DIR:-$ROOT/build/bin}/shipstream-migrate"

psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
admin_url=$SS_TEST_DATABASE_URL
db_url="${admin_url%/*}/bench_schema"
psql_q -d "$admin_url" -c "DROP DATABASE IF EXISTS bench_schema WITH (FORCE)" -c "CREATE DATABASE bench_schema"
q() { psql_q -d "$db_url" "$@"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

if [ -x "$MIGRATE" ]; then
  DATABASE_URL="$db_url" MIGRATIONS_DIR="$ROOT/migrations" LOG_LEVEL=warn "$MIGRATE" up >&2
else
  echo "bench/schema: $MIGRATE not built; applying migrations with psql" >&2
  for f in "$ROOT"/migrations/[0-9]*.up.sql; do q -1 -f "$f"; done
fi

echo "bench/schema: loading $N shipments ..." >&2
t0=$(now_ms)
q -v n="$N" -f "$HERE/load.sql" >/dev/null
load_ms=$(( $(now_ms) - t0 ))
# Baseline for the load: the same generated rows into an unlogged table without indexes.
t0=$(now_ms)
q -c "CREATE UNLOGGED TABLE bench_load_baseline (LIKE shipments INCLUDING DEFAULTS)" \
  -c "INSERT INTO bench_load_baseline (id, carrier, service, rate, total_cost, status, created_at, raw)
      SELECT 'shp_' || g, 'USPS', 'Priority', 8.20, 8.20, 'delivered', now() - random() * interval '90 days',
             jsonb_build_object('id', 'shp_' || g, 'from_address', jsonb_build_object('city', 'Austin'),
                                'to_address', jsonb_build_object('city', 'Boston'))
        FROM generate_series(1, $N) g" >/dev/null
base_load_ms=$(( $(now_ms) - t0 ))
q -c "DROP TABLE bench_load_baseline"
echo "bench/schema: loaded in $load_ms ms (unindexed copy: $base_load_ms ms); $(q -c "SELECT pg_size_pretty(pg_total_relation_size('shipments'))") for shipments" >&2

views="mv_daily_shipment_analytics mv_carrier_performance mv_top_routes"
# Warm-up: both modes once.
q -c "SELECT count(*) FROM refresh_analytics_views(false)" -c "SELECT count(*) FROM refresh_analytics_views(true)" >/dev/null

declare -A plain conc
scan=()
plain_all=(); conc_all=(); direct_all=()
for i in $(seq 1 "$RUNS"); do
  t0=$(now_ms)
  q -c "SELECT count(*) FROM shipments WHERE created_at >= now() - interval '90 days' AND carrier IS NOT NULL" >/dev/null
  scan+=($(( $(now_ms) - t0 )))
  out=$(q -F' ' -c "SELECT view_name, duration_ms, outcome FROM refresh_analytics_views(false)")
  grep -qv ' success$' <<<"$out" && { echo "bench/schema: plain refresh failed: $out" >&2; exit 1; }
  tot=0
  while read -r v ms _; do plain[$v]+="$ms "; tot=$(awk -v a="$tot" -v b="$ms" 'BEGIN{print a+b}'); done <<<"$out"
  plain_all+=("$tot")
  out=$(q -F' ' -c "SELECT view_name, duration_ms, outcome FROM refresh_analytics_views(true)")
  grep -qv ' success$' <<<"$out" && { echo "bench/schema: concurrent refresh failed: $out" >&2; exit 1; }
  tot=0
  while read -r v ms _; do conc[$v]+="$ms "; tot=$(awk -v a="$tot" -v b="$ms" 'BEGIN{print a+b}'); done <<<"$out"
  conc_all+=("$tot")
  t0=$(now_ms)
  for v in $views; do q -c "REFRESH MATERIALIZED VIEW CONCURRENTLY $v"; done
  direct_all+=($(( $(now_ms) - t0 )))
done

m_scan=$(printf '%s\n' "${scan[@]}" | median)
m_plain=$(printf '%s\n' "${plain_all[@]}" | median)
m_conc=$(printf '%s\n' "${conc_all[@]}" | median)
m_direct=$(printf '%s\n' "${direct_all[@]}" | median)
echo "RESULT schema_refresh_plain_all_ms $m_plain ms $m_scan"
echo "RESULT schema_refresh_concurrent_all_ms $m_conc ms $m_plain"
for v in $views; do
  mp=$(tr ' ' '\n' <<<"${plain[$v]}" | grep . | median)
  mc=$(tr ' ' '\n' <<<"${conc[$v]}" | grep . | median)
  echo "RESULT schema_refresh_concurrent_${v#mv_}_ms $mc ms $mp"
done
echo "RESULT schema_refresh_direct_concurrent_all_ms $m_direct ms $m_conc"
echo "RESULT schema_load_rows_per_s $(( N * 1000 / (load_ms > 0 ? load_ms : 1) )) rows/s $(( N * 1000 / (base_load_ms > 0 ? base_load_ms : 1) ))"
goal=$(awk -v c="$m_conc" -v p="$m_plain" 'BEGIN{print (c < 2000 && p < 2000) ? "met" : "NOT met"}')
echo "bench/schema: $N shipments: all three views plain $m_plain ms, concurrently $m_conc ms (goal < 2000 ms: $goal); rows: $(q -c "SELECT string_agg(view_name || '=' || rows, ' ') FROM (SELECT DISTINCT ON (view_name) view_name, rows FROM analytics_refresh_log ORDER BY view_name, id DESC) x")" >&2
psql_q -d "$admin_url" -c "DROP DATABASE IF EXISTS bench_schema WITH (FORCE)"

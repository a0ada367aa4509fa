#!/usr/bin/env bash
# Scale benchmark (issue 15, "Benchmark": 2,000,000 shipments and 12,000,000 tracking events).
# Run alone (starts its own PostgreSQL + Kafka through the harness):
#   tests/integration/harness.sh -- bench/scale/bench.sh                      # 2 M / 12 M
#   SCALE_SHIPMENTS=50000 tests/integration/harness.sh -- bench/scale/bench.sh  # quick check
# (2 M / 12 M: about 20-40 min on 2 shared cores, most of it the fill; bench/scale/timeout
# gives bench/run.sh its limit.  SCALE_MIGRATIONS_DIR: another migrations folder.)
# or with the others: bench/run.sh scale (make bench).
#
# 1. Fill: a fresh database (`shipstream-migrate up`), then bench/scale/fill.sql puts
#    SCALE_SHIPMENTS shipments (default 2,000,000) with their recipient address, parcel,
#    3 rates, tracker and SCALE_EVENTS tracking events (default 6 per shipment: 12,000,000)
#    over SCALE_DAYS days (400) straight into the tables with set-based SQL
#    (generate_series, INSERT ... SELECT; indexes built after the rows).  NOT through Kafka
#    and the sync worker: the write path is measured by bench/sync.  When tracking_events is
#    partitioned (migration 0007), its empty legacy partition is dropped and one partition
#    per month of the window is created first, as a database that has run on partitions for
#    the whole window has them.  Prints the fill time and the database size.
# 2. Analytics refresh: refresh_analytics_views(true) (each view REFRESH ... CONCURRENTLY,
#    jit off, as the refresh scheduler runs them), SCALE_RUNS (3) runs after one warm-up,
#    median per view.  Goal < 3 s each.  Baseline: one count(*) over the views' 90-day
#    window of shipments (the machine's scan speed, same run).  With the daily rollups
#    (migration 0011) the first refresh rolls every day of the fill up (timed:
#    scale_rollup_backfill_s), and before each measured run the last SCALE_DIRTY_DAYS (30)
#    days are marked dirty, as the sync worker's updates of recent shipments (deliveries,
#    refunds) leave them: mv_daily_shipment_analytics's time includes recomputing them.
# 3. Dashboard: shipstream-gateway on this database, GET /db/analytics/dashboard?days=30 and
#    ?days=365 with ss-bench-paced at SCALE_RATE (1,000) req/s, open loop, SCALE_CONNS (20)
#    connections, SCALE_SECONDS (20) s after a 2 s warm-up.  Goals p99 < 5 ms (30 days) and
#    < 20 ms (365 days).  Baseline, same run and settings: GET /db/shipments?limit=1 (one
#    indexed row through the same gateway, auth and pool: the machine's noise).  A gateway
#    that refuses days=365 (400) is reported as not meeting that goal.
# 4. Query plans (stderr): EXPLAIN (ANALYZE, BUFFERS) of the gateway's dashboard SQL
#    (extracted from services/gateway/readapi.c) at days=365, of the same year's summary
#    computed from shipments (what a 365-day answer costs without rollups), and of the
#    defining query of the slowest view.
# 5. Dropping a month of tracking events (the oldest whole month of the window): DETACH
#    PARTITION + DROP TABLE when tracking_events is partitioned, else DELETE of the month's
#    rows (committed).  Goal < 1 s.
# 6. What rollups would give (bench/scale/rollup.sql, stderr, no goal; SCALE_ROLLUP=0 skips):
#    a 400-day daily rollup and a monthly route rollup built in full, the daily one refreshed
#    incrementally (last 45 days), and a 365-day dashboard answer from them.
#
# Results (RESULT name value unit baseline):
#   scale_fill_s, scale_vacuum_analyze_s, scale_db_size_mb      (no baseline)
#   scale_refresh_<view>_ms          goal < 3000   (baseline: 90-day window scan)
#   scale_rollup_backfill_s          (0011: the first refresh, every day rolled up; no goal)
#   scale_dashboard_30_p99_ms        goal < 5      (baseline: /db/shipments?limit=1 p99)
#   scale_dashboard_365_p99_ms       goal < 20     (same baseline; absent when refused)
#   scale_dashboard_30_p50_ms, scale_dashboard_365_p50_ms      (baseline: its p50)
#   scale_drop_month_ms              goal < 1000   (no baseline)
# plus "bench/scale: GOAL ..." lines saying met / NOT met.  The temporary database is
# dropped and the temporary files removed on exit.
set -uo pipefail
: "${SS_TEST_DATABASE_URL:?run inside tests/integration/harness.sh (bench/run.sh does)}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export SS_SOURCE_ROOT="${SS_SOURCE_ROOT:-$ROOT}"
export SS_BIN_DIR="${SS_BIN_DIR:-$ROOT/build/bin}"
# shellcheck source=../../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"   # ss_start_bg (stopped at exit), ss_test_createdb, ...

N="${SCALE_SHIPMENTS:-2000000}"
E="${SCALE_EVENTS:-$((N * 6))}"
DAYS="${SCALE_DAYS:-400}"
RUNS="${SCALE_RUNS:-3}"
RATE="${SCALE_RATE:-1000}"
CONNS="${SCALE_CONNS:-20}"
SECS="${SCALE_SECONDS:-20}"
WARMUP="${SCALE_WARMUP_SECONDS:-2}"
API_KEY="scalebench_$(openssl rand -hex 12)"
T=$SS_TEST_TMP

die() { echo "bench/scale: $*" >&2; exit 1; }
say() { echo "bench/scale: $*" >&2; }
for b in shipstream-gateway shipstream-migrate ss-bench-paced; do
  [ -x "$SS_BIN_DIR/$b" ] || die "$SS_BIN_DIR/$b not built"
done
[ "$N" -ge 1000 ] && [ "$DAYS" -ge 70 ] || die "SCALE_SHIPMENTS >= 1000 and SCALE_DAYS >= 70, please"

ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
goal() { # goal <what> <value> <limit> <unit>
  local v
  v=$(awk -v a="$2" -v b="$3" 'BEGIN { print (a < b) ? "met" : "NOT met" }')
  say "GOAL $1: $2 $4 (goal < $3 $4): $v"
}

# ------------------------------------------------------------------ database
DB_URL=$(ss_test_createdb bench_scale) || die "createdb"
export DB_URL
ss_on_exit "ss_psql \"\$SS_TEST_DATABASE_URL\" -c 'DROP DATABASE IF EXISTS bench_scale WITH (FORCE)' >/dev/null 2>&1"
DATABASE_URL=$DB_URL MIGRATIONS_DIR="${SCALE_MIGRATIONS_DIR:-$ROOT/migrations}" "$SS_BIN_DIR/shipstream-migrate" up >"$T/migrate.log" 2>&1 ||
  { cat "$T/migrate.log" >&2; die "migrate up"; }
say "migrated to $(q "SELECT max(version) FROM schema_migrations")"

partitioned=$(q "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = 'tracking_events'::regclass")
if [ "$partitioned" = t ]; then
  # One partition per UTC month of the window (names as partition_maintain() gives them);
  # the empty legacy partition (MINVALUE .. next month) would otherwise take every past row.
  q -v days="$DAYS" >"$T/parts.log" 2>&1 <<'SQL' || { cat "$T/parts.log" >&2; die "monthly partitions"; }
\set ON_ERROR_STOP on
SELECT format('ALTER TABLE tracking_events DETACH PARTITION %s', i.inhrelid::regclass),
       format('DROP TABLE %s', i.inhrelid::regclass)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'tracking_events'::regclass AND c.relname LIKE '%legacy%'
   AND NOT EXISTS (SELECT 1 FROM tracking_events)
\gexec
SELECT format('CREATE TABLE IF NOT EXISTS %I PARTITION OF tracking_events FOR VALUES FROM (%L) TO (%L)',
              'tracking_events_p' || to_char(m, 'YYYYMM'), m AT TIME ZONE 'UTC',
              (m + interval '1 month') AT TIME ZONE 'UTC')
  FROM generate_series(date_trunc('month', (now() AT TIME ZONE 'UTC') - (:days + 1) * interval '1 day'),
                       date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') m
\gexec
SQL
  say "tracking_events is partitioned: $(q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'tracking_events'::regclass") partitions"
else
  say "tracking_events is NOT partitioned in this tree: dropping a month is measured as DELETE"
fi

# ------------------------------------------------------------------ 1. fill
say "filling $N shipments, $E tracking events over $DAYS days (set-based SQL, bench/scale/fill.sql; not through Kafka)"
# The parts of fill.sql (see its head): one psql each, side by side where they can be.
FILL_PIDS=() FILL_LOGS=()
fill_part() { # fill_part <name> [psql -v args]: started in the background
  local name=$1; shift
  q -v n="$N" -v e="$E" -v days="$DAYS" "$@" -f "$HERE/fill.sql" >"$T/fill.$name.log" 2>&1 &
  FILL_PIDS+=($!) FILL_LOGS+=("$T/fill.$name.log")
}
fill_wait() { # fill_wait <phase>: waits for the started parts, says how long each statement took
  local i rc=0 t=$EPOCHREALTIME
  for i in "${!FILL_PIDS[@]}"; do
    wait "${FILL_PIDS[$i]}" || { cat "${FILL_LOGS[$i]}" >&2; rc=1; }
  done
  for i in "${FILL_LOGS[@]}"; do
    awk -v part="$(basename "$i" .log)" '/^fill: / { step = substr($0, 7) } /^Time: / { t[step] += $2; if (!(step in seen)) { seen[step] = 1; o[++n] = step } }
      END { for (i = 1; i <= n; i++) printf "bench/scale:   %-22s %-30s %8.1f s\n", substr(part, 6), o[i], t[o[i]] / 1000 }' "$i" >&2
  done
  FILL_PIDS=() FILL_LOGS=()
  [ $rc = 0 ] || die "fill: $1 failed"
  say "fill: $1 done at $(secs "$FILL_T0" "$EPOCHREALTIME") s"
}
H=$((N / 2))
FILL_T0=$EPOCHREALTIME
t0=$EPOCHREALTIME
fill_part stage -v part=stage
fill_wait "stage (indexes off, shipments staged)"
fill_part shipments1 -v part=shipments -v lo=1 -v hi="$H"
fill_part shipments2 -v part=shipments -v lo=$((H + 1)) -v hi="$N"
fill_part events1 -v part=events -v lo=1 -v hi="$H"
fill_part events2 -v part=events -v lo=$((H + 1)) -v hi="$N"
fill_part rates -v part=rates
fill_part trackers -v part=trackers
fill_part others -v part=others
fill_wait "rows"
for tbl in $(q "SELECT DISTINCT tbl FROM scale_ddl WHERE kind IN (2, 3)"); do
  fill_part "index_$tbl" -v part=index -v tbl="$tbl"
done
fill_wait "indexes"
fill_part finish -v part=finish
fill_wait "foreign keys"
t1=$EPOCHREALTIME
# VACUUM (ANALYZE) as autovacuum would have done, one session per table (side by side)
vpids=()
for tbl in $(q "SELECT string_agg(c.oid::regclass::text, ' ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"); do
  q "VACUUM (ANALYZE) $tbl" >"$T/vacuum.$tbl.log" 2>&1 &
  vpids+=($!)
done
for p in "${vpids[@]}"; do wait "$p" || { cat "$T"/vacuum.*.log >&2; die "vacuum"; }; done
t2=$EPOCHREALTIME
fill_s=$(secs "$t0" "$t1")
vac_s=$(secs "$t1" "$t2")
db_mb=$(q "SELECT round(pg_database_size(current_database()) / 1048576.0)")
say "filled in $fill_s s, VACUUM (ANALYZE) $vac_s s; database $db_mb MB"
q -F' ' -c "SELECT t, n, pg_size_pretty(s) FROM (VALUES
   ('shipments', (SELECT count(*) FROM shipments), pg_total_relation_size('shipments')),
   ('tracking_events', (SELECT count(*) FROM tracking_events),
    (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
      WHERE c.oid = 'tracking_events'::regclass OR c.oid IN (SELECT relid FROM pg_partition_tree('tracking_events')))),
   ('rates', (SELECT count(*) FROM rates), pg_total_relation_size('rates')),
   ('addresses', (SELECT count(*) FROM addresses), pg_total_relation_size('addresses')),
   ('parcels', (SELECT count(*) FROM parcels), pg_total_relation_size('parcels')),
   ('trackers', (SELECT count(*) FROM trackers), pg_total_relation_size('trackers'))) v(t, n, s)" |
  while read -r t n s; do say "  $t: $n rows, $s"; done
q -F' ' -c "SELECT mode, status, count(*) FROM shipments GROUP BY 1, 2 ORDER BY 1, 3 DESC" | tr '\n' ';' |
  sed 's/^/bench\/scale:   shipments by mode, status: /; s/$/\n/' >&2
say "  span $(q "SELECT min(created_at)::date || ' .. ' || max(created_at)::date FROM shipments");" \
    "last 30 days $(q "SELECT count(*) FROM shipments WHERE created_at >= now() - interval '30 days'")," \
    "returns $(q "SELECT count(*) FROM shipments WHERE is_return")," \
    "refund requests $(q "SELECT count(*) FROM shipments WHERE refund_status IS NOT NULL")"

# ------------------------------------------------------------------ 2. refresh
rollups=$(q "SELECT to_regclass('analytics_dirty_days') IS NOT NULL")
t0=$EPOCHREALTIME
views=$(q "SELECT string_agg(view_name, ' ') FROM refresh_analytics_views(false)") || die "first refresh"
t1=$EPOCHREALTIME
backfill_s=$(secs "$t0" "$t1")
say "views: $views (first refresh $backfill_s s$([ "$rollups" = t ] && echo ", every day rolled up"))"
DIRTY="${SCALE_DIRTY_DAYS:-30}"
declare -A took
scan=()
for i in $(seq 0 "$RUNS"); do
  t0=$EPOCHREALTIME
  q "SELECT count(*) FROM shipments WHERE created_at >= now() - interval '90 days' AND carrier IS NOT NULL" >/dev/null
  t1=$EPOCHREALTIME
  if [ "$rollups" = t ]; then
    q "INSERT INTO analytics_dirty_days (day) SELECT generate_series((now() AT TIME ZONE 'UTC')::date - ($DIRTY - 1),
         (now() AT TIME ZONE 'UTC')::date, interval '1 day')::date" >/dev/null || die "marking $DIRTY days dirty"
  fi
  out=$(q -F' ' -c "SELECT view_name, duration_ms, outcome FROM refresh_analytics_views(true)") || die "refresh"
  grep -qv ' success$' <<<"$out" && die "a view did not refresh: $out"
  [ "$i" = 0 ] && continue   # warm-up
  scan+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
  while read -r v d _; do took[$v]+="$d "; done <<<"$out"
  say "refresh run $i: $(tr '\n' ' ' <<<"$out")"
done
m_scan=$(printf '%s\n' "${scan[@]}" | median)
slowest="" slowest_ms=0
declare -A refresh_ms
for v in $views; do
  m=$(tr ' ' '\n' <<<"${took[$v]}" | grep . | median)
  refresh_ms[$v]=$m
  awk -v a="$m" -v b="$slowest_ms" 'BEGIN { exit !(a > b) }' && { slowest=$v; slowest_ms=$m; }
done

# ------------------------------------------------------------------ 3. dashboard
PREFIX="bench.scale.$$.$(openssl rand -hex 3)."
ss_test_create_topics "$PREFIX" || die "create topics"
GW_PORT=$(ss_free_port)
ss_start_bg "$T/gw.log" env LISTEN=127.0.0.1:$GW_PORT DATABASE_URL="$DB_URL" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  EASYPOST_API_KEY="EZTK_scale_unused" EASYPOST_API_BASE="http://127.0.0.1:9/v2" GATEWAY_API_KEYS="$API_KEY" \
  "$SS_BIN_DIR/shipstream-gateway" >/dev/null
GW="http://127.0.0.1:$GW_PORT"
ss_wait_for 30 curl -fsS "$GW/ready" || { tail "$T/gw.log" >&2; die "gateway not ready"; }

# run_paced <url>: GET at exactly $RATE req/s (open loop); prints the WRK line.
run_paced() {
  local out=$T/paced.out err=$T/paced.err line
  "$SS_BIN_DIR/ss-bench-paced" --url "$1" --rate "$RATE" --duration "$SECS" --warmup "$WARMUP" \
    --connections "$CONNS" --timeout-ms 10000 --header "Authorization: Bearer $API_KEY" >"$out" 2>"$err" ||
    { cat "$out" "$err" >&2; die "ss-bench-paced failed on $1"; }
  line=$(grep '^WRK ' "$out") || { cat "$out" "$err" >&2; die "no result from ss-bench-paced on $1"; }
  [ "$(ss_field non2xx "$line")" = 0 ] && [ "$(ss_field socket_errors "$line")" = 0 ] ||
    { cat "$err" >&2; die "errors from $1: $line"; }
  echo "$line"
}
code_of() { curl -s -o "$T/probe.json" -w '%{http_code}' -H "Authorization: Bearer $API_KEY" "$1"; }

BASE_URL="$GW/db/shipments?limit=1"
[ "$(code_of "$BASE_URL")" = 200 ] || die "GET /db/shipments?limit=1: $(head -c 300 "$T/probe.json")"
declare -A served
for d in 30 365; do
  c=$(code_of "$GW/db/analytics/dashboard?days=$d")
  if [ "$c" = 200 ]; then
    served[$d]=1
    say "dashboard days=$d: $(jq -c '{days, shipments: .summary.shipments, daily: (.daily | length)}' "$T/probe.json")"
  else
    say "dashboard days=$d answered $c: $(head -c 200 "$T/probe.json")"
  fi
done
[ -n "${served[30]:-}" ] || die "the dashboard does not answer days=30"

base=$(run_paced "$BASE_URL"); say "baseline /db/shipments?limit=1: $base"
d30=$(run_paced "$GW/db/analytics/dashboard?days=30"); say "dashboard days=30: $d30"
d365=""
if [ -n "${served[365]:-}" ]; then
  d365=$(run_paced "$GW/db/analytics/dashboard?days=365"); say "dashboard days=365: $d365"
fi
base2=$(run_paced "$BASE_URL"); say "baseline again: $base2"
# the baseline: the better of the two runs around the dashboard runs
b99=$(printf '%s\n' "$(ss_field p99_us "$base")" "$(ss_field p99_us "$base2")" | sort -n | head -n 1)
b50=$(printf '%s\n' "$(ss_field p50_us "$base")" "$(ss_field p50_us "$base2")" | sort -n | head -n 1)

# ------------------------------------------------------------------ 4. plans
perl -0777 -ne 'if (/dashboard_sql\[\]\s*=\s*(.*?);\n/s) { my ($b, $s) = ($1, "");
    while ($b =~ /"((?:[^"\\]|\\.)*)"/g) { $s .= $1 } $s =~ s/\\(.)/$1/g; print "$s\n" }' \
  "$ROOT/services/gateway/readapi.c" >"$T/dash.sql"
if grep -q 'mv_daily_shipment_analytics\|analytics_days' "$T/dash.sql"; then
  sed -i 's/\$1\b/365/g; s/\$2\b/'"'"'production'"'"'/g' "$T/dash.sql"
  say "EXPLAIN ANALYZE of the gateway's dashboard SQL at days=365:"
  { echo "SET TimeZone = 'UTC';"; printf 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) %s;\n' "$(cat "$T/dash.sql")"; } >"$T/explain.sql"
  q -f "$T/explain.sql" 2>&1 | sed 's/^/bench\/scale:   /' >&2
else
  say "could not extract dashboard_sql from services/gateway/readapi.c: no plan"
fi
say "EXPLAIN ANALYZE of a 365-day summary straight from shipments (no rollup):"
q -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
      SELECT count(*), sum(coalesce(total_cost, rate)), count(*) FILTER (WHERE status = 'delivered'),
             sum(transit_days), count(transit_days), count(*) FILTER (WHERE on_time), count(on_time)
        FROM shipments
       WHERE created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '364 days') AT TIME ZONE 'UTC'
         AND carrier IS NOT NULL AND service IS NOT NULL AND mode = 'production'" 2>&1 |
  sed 's/^/bench\/scale:   /' >&2
if [ -n "$slowest" ]; then
  say "EXPLAIN ANALYZE of the slowest view's query ($slowest, $slowest_ms ms to refresh):"
  def=$(q "SELECT pg_get_viewdef('$slowest'::regclass)")
  q -c "SET jit = off" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${def%;}" 2>&1 | sed 's/^/bench\/scale:   /' >&2
fi

# ------------------------------------------------------------------ 5. drop a month
# The oldest whole UTC month of the window.
month=$(q "SELECT date_trunc('month', (now() AT TIME ZONE 'UTC') - ($DAYS - 31) * interval '1 day')::date")
lo="$month 00:00:00+00"
hi=$(q "SELECT ('$month'::date + interval '1 month')::date")" 00:00:00+00"
rows=$(q "SELECT count(*) FROM tracking_events WHERE occurred_at >= '$lo' AND occurred_at < '$hi'")
if [ "$partitioned" = t ]; then
  part=$(q "SELECT 'tracking_events_p' || to_char('$month'::date, 'YYYYMM')")
  [ "$(q "SELECT to_regclass('$part') IS NOT NULL")" = t ] || die "no partition $part"
  how="DETACH PARTITION $part + DROP TABLE"
  t0=$EPOCHREALTIME
  q -c "BEGIN" -c "ALTER TABLE tracking_events DETACH PARTITION $part" -c "DROP TABLE $part" -c "COMMIT" >/dev/null ||
    die "detach + drop $part"
  t1=$EPOCHREALTIME
else
  how="DELETE (tracking_events is not partitioned here; the partitioned figure comes after migration 0007 is merged)"
  t0=$EPOCHREALTIME
  q "DELETE FROM tracking_events WHERE occurred_at >= '$lo' AND occurred_at < '$hi'" >/dev/null || die "delete month"
  t1=$EPOCHREALTIME
fi
drop_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
left=$(q "SELECT count(*) FROM tracking_events WHERE occurred_at >= '$lo' AND occurred_at < '$hi'")
[ "$left" = 0 ] || die "$left rows of $month left after dropping the month"
say "dropped $month ($rows tracking events) by $how in $drop_ms ms"

# ------------------------------------------------------------------ 6. rollups (what if)
# bench/scale/rollup.sql: what daily and monthly rollups over the whole window would cost to
# build, to refresh incrementally and to answer 365 days from (informational, no goal).
if [ "${SCALE_ROLLUP:-1}" = 1 ]; then
  q -f "$HERE/rollup.sql" >"$T/rollup.log" 2>&1 || { cat "$T/rollup.log" >&2; die "rollup.sql"; }
  awk '/^rollup: / { step = substr($0, 9); if (!(step in seen)) { seen[step] = 1; o[++n] = step } next }
       /^Time: / { t[step] += $2; k = ++c[step]; v[step, k] = $2 }
       END { for (i = 1; i <= n; i++) { s = o[i]; m = c[s]
               if (m >= 10) { for (a = 1; a <= m; a++) { y = v[s, a]; for (j = a - 1; j >= 1 && x[j] > y; j--) x[j + 1] = x[j]; x[j + 1] = y }
                             printf "bench/scale: rollup (what if) %-45s median %.3f ms, max %.3f ms over %d\n", s, x[int((m + 1) / 2)], x[m], m; delete x }
               else if (m > 0) printf "bench/scale: rollup (what if) %-45s %.1f ms\n", s, t[s]
               else printf "bench/scale: rollup (what if) %s\n", s } }' "$T/rollup.log" >&2
fi

# ------------------------------------------------------------------ results
echo "RESULT scale_fill_s $fill_s s"
echo "RESULT scale_vacuum_analyze_s $vac_s s"
echo "RESULT scale_db_size_mb $db_mb MB"
[ "$rollups" = t ] && echo "RESULT scale_rollup_backfill_s $backfill_s s"
for v in $views; do echo "RESULT scale_refresh_${v#mv_}_ms ${refresh_ms[$v]} ms $m_scan"; done
echo "RESULT scale_dashboard_30_p50_ms $(ms "$(ss_field p50_us "$d30")") ms $(ms "$b50")"
echo "RESULT scale_dashboard_30_p99_ms $(ms "$(ss_field p99_us "$d30")") ms $(ms "$b99")"
if [ -n "$d365" ]; then
  echo "RESULT scale_dashboard_365_p50_ms $(ms "$(ss_field p50_us "$d365")") ms $(ms "$b50")"
  echo "RESULT scale_dashboard_365_p99_ms $(ms "$(ss_field p99_us "$d365")") ms $(ms "$b99")"
fi
echo "RESULT scale_drop_month_ms $drop_ms ms"

say "at $N shipments / $E tracking events over $DAYS days ($(uptime | sed 's/.*load/load/')):"
say "GOAL (info) fill $fill_s s + VACUUM ANALYZE $vac_s s, database $db_mb MB"
goal "dashboard days=30 p99 at $RATE req/s (baseline /db/shipments?limit=1 p99 $(ms "$b99") ms)" \
  "$(ms "$(ss_field p99_us "$d30")")" 5 ms
if [ -n "$d365" ]; then
  goal "dashboard days=365 p99 at $RATE req/s (baseline $(ms "$b99") ms)" "$(ms "$(ss_field p99_us "$d365")")" 20 ms
else
  say "GOAL dashboard days=365 p99 < 20 ms: NOT met (this gateway does not serve days=365)"
fi
for v in $views; do goal "refresh $v (baseline: 90-day scan $m_scan ms$([ "$rollups" = t ] && echo "; $DIRTY dirty days rolled up first"))" "${refresh_ms[$v]}" 3000 ms; done
goal "drop a month of tracking events ($how, $rows rows)" "$drop_ms" 1000 ms

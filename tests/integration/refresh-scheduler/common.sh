# shellcheck shell=bash
# Shared setup of the refresh-scheduler integration tests.  Source after
# setting nothing; provides:
#   (lib.sh: ss_test_migrated_db <name> sets DB_URL; q "<sql>" is psql -At on it)
#   rs_start <id> [VAR=v...]  starts a scheduler (LISTEN on a free port), waits for
#                             /health; sets RS_PORT[id], RS_PID[id], RS_LOG[id]
#   rs_metric <id> <name{labels}>   a metric value (ss_metric: fails when /metrics is down)
#   rs_metric_sum <id> <family>     the sum over every label set (ss_metric_sum)
#   rs_role <id>              leader|standby|down (from /ready)
#   rs_log_count [where]      rows in analytics_refresh_log
#   rs_notify [n]             n notifications on shipstream_analytics_dirty
#   rs_add_shipment <id> <status> [carrier] [service] [cost]
#   rs_slow_views <seconds>   makes every refresh take that long (test database only)
# shellcheck source=../lib.sh
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

RS_BIN="$SS_BIN_DIR/shipstream-refresh-scheduler"
[ -x "$RS_BIN" ] || ss_fail "$RS_BIN not built"
RS_KEY="rs-test-key-$$"
declare -A RS_PORT RS_PID RS_LOG

rs_start() {
  local id=$1; shift
  local port
  port=$(ss_free_port) || ss_fail "no free port"
  RS_PORT[$id]=$port
  RS_LOG[$id]="$SS_TEST_TMP/scheduler-$id.log"
  ss_start_bg "${RS_LOG[$id]}" env DATABASE_URL="$DB_URL" LISTEN="127.0.0.1:$port" \
    GATEWAY_API_KEYS="other-key,$RS_KEY" LOG_FORMAT=text LOG_LEVEL=debug \
    REFRESH_MIN_INTERVAL_SECONDS=2 REFRESH_LOCK_RETRY_SECONDS=1 \
    REFRESH_RETRY_BASE_MS=500 REFRESH_RETRY_MAX_MS=2000 "$@" "$RS_BIN" >/dev/null
  RS_PID[$id]=$SS_BG_PID
  ss_wait_for 15 curl -fsS "http://127.0.0.1:$port/health" || ss_fail "scheduler $id did not start"
}

rs_url() { echo "http://127.0.0.1:${RS_PORT[$1]}${2:-}"; }

rs_metric() { ss_metric "$(rs_url "$1")" "$2"; }
rs_metric_sum() { ss_metric_sum "$(rs_url "$1")" "$2"; }

rs_role() {
  local body
  body=$(curl -sS "$(rs_url "$1" /ready)" 2>/dev/null) || { echo down; return; }
  case "$body" in
    *'"status":"ready"'*'"role":"leader"'*) echo leader ;;
    *'"status":"ready"'*'"role":"standby"'*) echo standby ;;
    *) echo down ;;
  esac
}
rs_is() { [ "$(rs_role "$1")" = "$2" ]; }

rs_log_count() { q "SELECT count(*) FROM analytics_refresh_log ${1:+WHERE $1}"; }
rs_log_at_least() { [ "$(rs_log_count "${2:-}")" -ge "$1" ]; }

rs_notify() {
  local i n=${1:-1}
  for ((i = 1; i <= n; i++)); do echo "NOTIFY shipstream_analytics_dirty, 'test $i';"; done |
    ss_psql "$DB_URL" >/dev/null
}

rs_add_shipment() {
  q "INSERT INTO shipments (id, status, carrier, service, total_cost, created_at, updated_at,
       delivered_at)
     VALUES ('$1', '$2', '${3:-USPS}', '${4:-Priority}', ${5:-7.50}, now(), now(),
       CASE WHEN '$2' = 'delivered' THEN now() END)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, delivered_at = EXCLUDED.delivered_at"
}

# Makes each view's refresh take $1 seconds (test database only): every view is
# rebuilt as its own query behind an InitPlan that sleeps (once per refresh).  Since
# migration 0011 the views read the rollup tables, not analytics_shipments.
rs_slow_views() {
  ss_psql "$DB_URL" -v secs="$1" >/dev/null <<'SQL' || ss_fail "rs_slow_views"
\set ON_ERROR_STOP on
CREATE OR REPLACE FUNCTION rs_test_slow(secs float8) RETURNS boolean LANGUAGE sql VOLATILE
  AS 'SELECT true FROM pg_sleep(secs)';
CREATE TEMP TABLE rs_views AS
SELECT v.n, v.name, pg_get_viewdef(v.name::regclass) AS def,
       (SELECT array_agg(indexdef) FROM pg_indexes WHERE tablename = v.name) AS idx
  FROM (VALUES (1, 'mv_daily_shipment_analytics'), (2, 'mv_carrier_performance'),
               (3, 'mv_top_routes')) v(n, name);
DROP MATERIALIZED VIEW mv_top_routes, mv_carrier_performance, mv_daily_shipment_analytics;
SELECT format('CREATE MATERIALIZED VIEW %I AS SELECT * FROM (%s) x WHERE (SELECT rs_test_slow(%s))',
              name, rtrim(def, ';'), :'secs') FROM rs_views ORDER BY n \gexec
SELECT i FROM rs_views, unnest(idx) i ORDER BY n \gexec
SQL
}

# Fails when two analytics_refresh_log rows overlap in time.
rs_assert_no_overlap() {
  local n
  n=$(q "SELECT count(*) FROM analytics_refresh_log a JOIN analytics_refresh_log b
           ON a.id < b.id AND a.started_at < b.finished_at AND b.started_at < a.finished_at")
  [ "$n" = 0 ] || ss_fail "$n pairs of refreshes overlapped in time:
$(q "SELECT id, view_name, started_at, finished_at FROM analytics_refresh_log ORDER BY started_at")"
}

rs_post_refresh() { # <id> [key] -> prints the HTTP status
  local h=()
  [ -n "${2:-}" ] && h=(-H "Authorization: Bearer $2")
  curl -sS -o "$SS_TEST_TMP/post.out" -w '%{http_code}' -X POST "${h[@]}" "$(rs_url "$1" /refresh)"
}

# No refresh statement running and the last refresh finished more than 3 s ago.
rs_quiet() {
  [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shipstream-refresh-scheduler' AND state = 'active' AND query LIKE 'REFRESH%'")" = 0 ] &&
    [ "$(q "SELECT coalesce(max(finished_at) < now() - interval '3 s', true) FROM analytics_refresh_log")" = t ]
}

#!/usr/bin/env bash
# A failing refresh is logged with its error and retried with backoff; the
# other views still refresh; once fixed, the view refreshes again.
set -uo pipefail
source "$(dirname "$0")/common.sh"

ss_test_migrated_db rs_failure
rs_start a
ss_wait_for 10 rs_is a leader || ss_fail "not leader"
ss_wait_for 10 rs_log_at_least 3 "outcome = 'success'" || ss_fail "no first refresh"

# Without a unique index, REFRESH ... CONCURRENTLY of mv_top_routes fails (55000).
q "DROP INDEX mv_top_routes_key"
rs_add_shipment shp_fail_1 delivered
t0=$(q "SELECT clock_timestamp()")
rs_notify 1
ss_wait_for 10 rs_log_at_least 1 "view_name = 'mv_top_routes' AND outcome = 'failed' AND started_at > '$t0'" ||
  ss_fail "failure of mv_top_routes not logged"
err=$(q "SELECT error FROM analytics_refresh_log WHERE view_name = 'mv_top_routes' AND outcome = 'failed' ORDER BY id DESC LIMIT 1")
case "$err" in 55000*concurrently*) ;; *) ss_fail "unexpected error text: $err" ;; esac
ss_pass "failed refresh logged with its error: $err"
for v in mv_daily_shipment_analytics mv_carrier_performance; do
  rs_log_at_least 1 "view_name = '$v' AND outcome = 'success' AND started_at > '$t0'" ||
    ss_fail "$v was not refreshed next to the failing view"
done
[ "$(q "SELECT sum(delivered_count) FROM mv_daily_shipment_analytics")" = 1 ] || ss_fail "daily view not current"
ss_pass "the other views still refreshed"

# Retried with backoff (REFRESH_RETRY_BASE_MS=500, max 2000, minimum interval 2 s), no notification needed.
ss_wait_for 15 rs_log_at_least 3 "view_name = 'mv_top_routes' AND outcome = 'failed' AND started_at > '$t0'" ||
  ss_fail "the failed view was not retried"
fails=$(rs_metric a 'refresh_failures_total{view="mv_top_routes"}') || ss_fail "no /metrics"
[ "$fails" -ge 3 ] || ss_fail "refresh_failures_total{view=mv_top_routes} = $fails"
# Only the failed view is retried: no extra refreshes of the healthy ones.
ok_daily=$(rs_log_count "view_name = 'mv_daily_shipment_analytics' AND started_at > '$t0'")
[ "$ok_daily" -le 2 ] || ss_fail "healthy views refreshed $ok_daily times while only mv_top_routes needed retries"
ss_pass "retried with backoff ($fails failures counted), healthy views left alone"

# Fixed: the next retry succeeds.
# (t1 before the fix: a retry may start between the fix and a later clock read)
t1=$(q "SELECT clock_timestamp()")
q "CREATE UNIQUE INDEX mv_top_routes_key ON mv_top_routes (mode, from_city, from_state, from_country, to_city, to_state, to_country)"
ss_wait_for 15 rs_log_at_least 1 "view_name = 'mv_top_routes' AND outcome = 'success' AND started_at > '$t1'" ||
  ss_fail "mv_top_routes did not recover after the fix"
ss_pass "after the fix, mv_top_routes refreshes again"

# statement_timeout bounds a refresh.
ss_stop_bg "${RS_PID[a]}" 15 || ss_fail "stop a"
rs_slow_views 3
rs_start b REFRESH_STATEMENT_TIMEOUT_MS=500
ss_wait_for 10 rs_log_at_least 1 "outcome = 'failed' AND error LIKE '57014%'" ||
  ss_fail "a refresh longer than REFRESH_STATEMENT_TIMEOUT_MS was not cancelled"
ss_pass "REFRESH_STATEMENT_TIMEOUT_MS cancels a long refresh (57014 logged)"

# SIGTERM in the middle of a (3 s) refresh: after SHUTDOWN_GRACE_MS the
# statement is cancelled (PQcancel), the lock released, exit 0.
ss_stop_bg "${RS_PID[b]}" 15 || ss_fail "stop b"
rs_start c SHUTDOWN_GRACE_MS=300
refreshing() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shipstream-refresh-scheduler' AND state = 'active' AND query LIKE 'REFRESH%'")" = 1 ]; }
ss_wait_for 10 refreshing || ss_fail "no refresh in flight"
t0=${EPOCHREALTIME/./}
ss_stop_bg "${RS_PID[c]}" 15; rc=$?
ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
[ "$rc" = 0 ] || ss_fail "exit status $rc after SIGTERM"
[ "$ms" -lt 6000 ] || ss_fail "stopping took ${ms} ms"
lockers() { q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = (8319097881615561265::bigint & 4294967295)"; }
[ "$(lockers)" = 0 ] || ss_fail "advisory lock still held after exit"
rs_log_at_least 1 "outcome = 'failed' AND error LIKE '57014%user request%'" || ss_fail "cancelled refresh not logged"
ss_pass "SIGTERM mid-refresh: cancelled after the grace, logged, lock released, exit 0 in ${ms} ms"

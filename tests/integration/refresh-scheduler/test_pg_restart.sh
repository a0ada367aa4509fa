#!/usr/bin/env bash
# PostgreSQL restarted: the scheduler reconnects with backoff, LISTENs again,
# re-takes the lock, refreshes once to catch up, and a later NOTIFY still
# triggers a refresh -- without a restart of its own.
set -uo pipefail
source "$(dirname "$0")/common.sh"

ss_test_migrated_db rs_pg_restart
rs_start a
ss_wait_for 10 rs_is a leader || ss_fail "not leader"
ss_wait_for 10 rs_log_at_least 3 "outcome = 'success'" || ss_fail "no first refresh"
pid=${RS_PID[a]}

ss_pg_stop || ss_fail "pg stop"
ss_wait_for 10 rs_is a down || ss_fail "/ready still 200 with PostgreSQL down"
code=$(rs_post_refresh a "$RS_KEY"); [ "$code" = 503 ] || ss_fail "POST /refresh with PostgreSQL down: $code"
v=$(rs_metric a refresh_leader) || ss_fail "the scheduler's /metrics does not answer with PostgreSQL down"
[ "$v" = 0 ] || ss_fail "still claims leadership with PostgreSQL down"
ss_pass "PostgreSQL down: /ready 503, POST /refresh 503, refresh_leader 0"
sleep 2   # stay down across a few reconnect attempts
ss_pg_start || ss_fail "pg start"
ss_wait_for 20 rs_is a leader || ss_fail "did not come back as leader"
kill -0 "$pid" || ss_fail "the scheduler died"
ss_pass "PostgreSQL back: reconnected, lock re-taken (same process)"

# Catch-up refresh after reconnecting.
ss_wait_for 15 rs_log_at_least 6 "outcome = 'success'" || ss_fail "no catch-up refresh after the restart"
ss_pass "catch-up refresh after reconnect"

# A later NOTIFY still triggers a refresh (LISTEN re-issued).
ss_wait_for 20 rs_quiet || ss_fail "never quiet after the restart"
rs_add_shipment shp_restart_1 delivered
delivered_is() { [ "$(q "SELECT coalesce(sum(delivered_count), 0) FROM mv_daily_shipment_analytics")" = "$1" ]; }
delivered_is 0 || ss_fail "view changed without a notification"
rs_notify 1
ss_wait_for 10 delivered_is 1 || ss_fail "NOTIFY after the restart did not refresh the views"
ss_pass "NOTIFY after the restart refreshes the views"

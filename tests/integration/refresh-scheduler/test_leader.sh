#!/usr/bin/env bash
# Two schedulers: one refresher at a time (advisory lock), the other stands by,
# never two refreshes at once; kill -9 the active one (in the middle of a
# refresh), the standby takes over.
set -uo pipefail
source "$(dirname "$0")/common.sh"

ss_test_migrated_db rs_leader
rs_add_shipment shp_leader_1 delivered
rs_slow_views 0.4            # each view refresh takes ~0.4 s: overlaps would show

rs_start a
ss_wait_for 10 rs_is a leader || ss_fail "a is not the leader"
rs_start b
ss_wait_for 10 rs_is b standby || ss_fail "b is not standby ($(rs_role b))"
v=$(rs_metric b refresh_leader) || ss_fail "b: no /metrics"
[ "$v" = 0 ] || ss_fail "b reports refresh_leader $v"
v=$(rs_metric a refresh_leader) || ss_fail "a: no /metrics"
[ "$v" = 1 ] || ss_fail "a reports refresh_leader $v"
ss_pass "a leader, b standby (/ready and refresh_leader)"

code=$(rs_post_refresh b "$RS_KEY")
[ "$code" = 409 ] && grep -q '"code":"standby"' "$SS_TEST_TMP/post.out" ||
  ss_fail "POST /refresh on the standby: $code $(cat "$SS_TEST_TMP/post.out")"
ss_pass "POST /refresh on the standby -> 409 standby"

# Keep both busy for a while: notifications and forced refreshes on a.
for i in 1 2 3; do
  rs_notify 5
  rs_post_refresh a "$RS_KEY" >/dev/null
  sleep 1
done
ss_wait_for 15 rs_log_at_least 9 || ss_fail "not enough refreshes"
# The standby's own count (all views and outcomes): it must answer, a dead standby is no pass.
runs=$(rs_metric_sum b refresh_runs_total) || ss_fail "the standby's /metrics does not answer"
[ "$runs" = 0 ] || ss_fail "the standby refreshed $runs times"
rs_is b standby || ss_fail "b is no longer a live standby ($(rs_role b))"
rs_assert_no_overlap
ss_pass "only a refreshed ($(rs_log_count) log rows), no overlap"

# kill -9 a while a REFRESH is running.
refreshing() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shipstream-refresh-scheduler' AND state = 'active' AND query LIKE 'REFRESH%'")" -ge 1 ]; }
rs_post_refresh a "$RS_KEY" >/dev/null
ss_wait_for 10 refreshing || ss_fail "no refresh in flight to kill"
kill -KILL "${RS_PID[a]}"
t_kill=$(q "SELECT clock_timestamp()")
ss_wait_for 20 rs_is b leader || ss_fail "b did not take over"
ss_pass "a killed (-9) mid-refresh; b took over"
ss_wait_for 15 rs_log_at_least 3 "started_at > '$t_kill' AND outcome = 'success'" ||
  ss_fail "no refreshes after the takeover"
runs=$(rs_metric_sum b refresh_runs_total) || ss_fail "b's /metrics does not answer"
[ "$runs" -ge 3 ] || ss_fail "new refresh rows are not from b (b counted $runs runs)"
rs_notify 1
n=$(rs_log_count)
ss_wait_for 15 rs_log_at_least $((n + 3)) || ss_fail "b does not answer notifications"
rs_assert_no_overlap
ss_pass "b refreshes after the takeover (catch-up and NOTIFY); still no overlap"

# a restarted comes back as standby.
rs_start a2
ss_wait_for 10 rs_is a2 standby || ss_fail "restarted a is not standby ($(rs_role a2))"
ss_pass "a restarted -> standby"

#!/usr/bin/env bash
# A NOTIFY makes a change visible within REFRESH_MIN_INTERVAL_SECONDS plus the
# refresh time; a burst of 100 notifications costs a handful of refreshes.
set -uo pipefail
source "$(dirname "$0")/common.sh"

ss_test_migrated_db rs_notify
rs_start a
ss_wait_for 10 rs_is a leader || ss_fail "scheduler is not the leader"
# Taking the lock triggers one catch-up refresh of the three views.
ss_wait_for 10 rs_log_at_least 3 "outcome = 'success'" || ss_fail "no catch-up refresh"
ss_pass "leader, catch-up refresh of the 3 views logged"

# --- a change signalled by NOTIFY becomes visible
delivered() { q "SELECT coalesce(sum(delivered_count), 0) FROM mv_daily_shipment_analytics"; }
[ "$(delivered)" = 0 ] || ss_fail "unexpected delivered count before the change"
rs_add_shipment shp_notify_1 delivered
rs_add_shipment shp_notify_2 in_transit
t0=${EPOCHREALTIME/./}
rs_notify 1
delivered_is() { [ "$(delivered)" = "$1" ]; }
ss_wait_for 10 delivered_is 1 ||
  ss_fail "delivered count did not reach 1 within 10 s of the NOTIFY"
t1=${EPOCHREALTIME/./}
ms=$(( (t1 - t0) / 1000 ))
[ "$ms" -le 4000 ] || ss_fail "change visible only after ${ms} ms (min interval 2 s)"
[ "$(q "SELECT total_shipments FROM mv_carrier_performance WHERE carrier = 'USPS'")" = 2 ] ||
  ss_fail "carrier view not refreshed"
ss_pass "NOTIFY -> visible in the views after ${ms} ms"

# --- a burst of 100 notifications
ss_wait_for 15 rs_quiet || ss_fail "scheduler never went quiet"
before=$(rs_log_count)
nbefore=$(rs_metric a notifications_received_total) || ss_fail "no /metrics"
for i in $(seq 1 100); do echo "NOTIFY shipstream_analytics_dirty, 'burst $i'; SELECT pg_sleep(0.01);"; done |
  ss_psql "$DB_URL" >/dev/null
notified() { [ "$(rs_metric a notifications_received_total)" -ge $((nbefore + 100)) ]; }
ss_wait_for 10 notified || true
nafter=$(rs_metric a notifications_received_total) || ss_fail "no /metrics after the burst"
got=$((nafter - nbefore))
[ "$got" -ge 100 ] || ss_fail "only $got of 100 notifications counted"
ss_wait_for 20 rs_quiet || ss_fail "scheduler never went quiet after the burst"
rows=$(( $(rs_log_count) - before ))
cycles=$(( rows / 3 ))
echo "burst of 100 notifications -> $rows refresh log rows ($cycles cycles)"
[ "$rows" -ge 3 ] || ss_fail "the burst caused no refresh"
[ "$rows" -le 12 ] || ss_fail "the burst caused $rows refreshes: not coalesced"
rs_assert_no_overlap
ss_pass "burst of 100 notifications -> $rows view refreshes"

# --- HTTP: health, ready, metrics, POST /refresh auth
code=$(curl -s -o /dev/null -w '%{http_code}' "$(rs_url a /health)"); [ "$code" = 200 ] || ss_fail "/health $code"
code=$(curl -s -o "$SS_TEST_TMP/ready" -w '%{http_code}' "$(rs_url a /ready)")
[ "$code" = 200 ] && grep -q '"role":"leader"' "$SS_TEST_TMP/ready" || ss_fail "/ready $code $(cat "$SS_TEST_TMP/ready")"
curl -fsS "$(rs_url a /metrics)" >"$SS_TEST_TMP/metrics" || ss_fail "/metrics"
for m in 'refresh_duration_seconds_count{view="mv_top_routes"}' \
         'refresh_last_success_timestamp_seconds{view="mv_daily_shipment_analytics"}' \
         'refresh_failures_total{view="mv_carrier_performance"}' \
         'refresh_runs_total{view="mv_top_routes",outcome="success"}' \
         'housekeeping_rows_deleted_total{table="processed_events"}' \
         'refresh_leader' 'notifications_received_total'; do
  grep -qF "$m " "$SS_TEST_TMP/metrics" || ss_fail "metric $m missing"
done
v=$(rs_metric a refresh_leader) || ss_fail "no /metrics"
[ "$v" = 1 ] || ss_fail "refresh_leader = $v, want 1"
code=$(rs_post_refresh a); [ "$code" = 401 ] || ss_fail "POST /refresh without key: $code"
code=$(rs_post_refresh a wrong-key); [ "$code" = 401 ] || ss_fail "POST /refresh wrong key: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(rs_url a /refresh)" -H "Authorization: Bearer $RS_KEY")
[ "$code" = 405 ] || ss_fail "GET /refresh: $code"
ss_wait_for 15 rs_quiet || ss_fail "not quiet"
before=$(rs_log_count)
code=$(rs_post_refresh a "$RS_KEY"); [ "$code" = 202 ] || ss_fail "POST /refresh with key: $code $(cat "$SS_TEST_TMP/post.out")"
grep -q '"status":"accepted"' "$SS_TEST_TMP/post.out" || ss_fail "POST /refresh body: $(cat "$SS_TEST_TMP/post.out")"
ss_wait_for 10 rs_log_at_least $((before + 3)) || ss_fail "POST /refresh did not refresh the 3 views"
grep -q "$RS_KEY" "${RS_LOG[a]}" && ss_fail "the API key appears in the log"
ss_pass "HTTP: /health /ready /metrics; POST /refresh 401 without/with wrong key, 202 with key"

# --- GATEWAY_AUTH: no keys -> refuses to start; GATEWAY_AUTH=off -> starts
out=$(env -u GATEWAY_API_KEYS DATABASE_URL="$DB_URL" LISTEN="127.0.0.1:$(ss_free_port)" "$RS_BIN" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q GATEWAY_API_KEYS <<<"$out" || ss_fail "without keys: rc=$rc $out"
ss_pass "refuses to start without GATEWAY_API_KEYS (exit 2)"

# --- SIGTERM: exits 0
ss_stop_bg "${RS_PID[a]}" 15; rc=$?
[ "$rc" = 0 ] || ss_fail "exit status after SIGTERM: $rc"
ss_pass "SIGTERM -> exit 0"

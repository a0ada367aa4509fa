#!/usr/bin/env bash
# A reader keeps reading a view while it is being refreshed (CONCURRENTLY),
# without waiting: each read has lock_timeout 100 ms and statement_timeout 1 s
# while the refresh of that view takes ~3 s.
set -uo pipefail
source "$(dirname "$0")/common.sh"

ss_test_migrated_db rs_readers
for i in 1 2 3 4; do rs_add_shipment "shp_read_$i" delivered; done
rs_start a
ss_wait_for 10 rs_is a leader || ss_fail "not leader"
ss_wait_for 10 rs_log_at_least 3 "outcome = 'success'" || ss_fail "no first refresh"
rs_slow_views 3

read_view() { # <view>: one bounded read, prints the query time in ms (psql \timing)
  local out
  out=$(PGOPTIONS="-c lock_timeout=100 -c statement_timeout=1000" \
    psql -X -At "$DB_URL" -c '\timing on' -c "SELECT count(*) FROM $1" 2>"$SS_TEST_TMP/read.err") ||
    ss_fail "read of $1 during its refresh failed: $(cat "$SS_TEST_TMP/read.err")"
  out=$(sed -n 's/^Time: \([0-9]*\).*/\1/p' <<<"$out")
  echo "${out:-0}"
}
refreshing() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'REFRESH MATERIALIZED VIEW CONCURRENTLY $1'")" = 1 ]; }

# Views built on analytics_shipments are slow now (a view computed from another
# view may stay fast): read each view that is seen refreshing, during its refresh.
before=$(rs_log_count)
code=$(rs_post_refresh a "$RS_KEY"); [ "$code" = 202 ] || ss_fail "POST /refresh $code"
seen=""
cycle_done() { rs_log_at_least $((before + 3)); }
while ! cycle_done; do
  for v in mv_daily_shipment_analytics mv_carrier_performance mv_top_routes; do
    case " $seen " in *" $v "*) continue ;; esac
    refreshing "$v" || continue
    max=0; n=0
    while refreshing "$v" && [ "$n" -lt 5 ]; do
      ms=$(read_view "$v"); n=$((n + 1))
      [ "$ms" -gt "$max" ] && max=$ms
      sleep 0.2
    done
    seen="$seen $v"
    ss_pass "$v: $n reads during its refresh, none waited (slowest query ${max} ms)"
  done
  sleep 0.05
done
[ -n "$seen" ] || ss_fail "no read overlapped a refresh"
ss_wait_for 15 rs_log_at_least 2 "concurrent AND duration_ms > 2500 AND outcome = 'success'" ||
  ss_fail "slow concurrent refreshes not logged"
ss_pass "the refreshes were concurrent and took > 2.5 s"

# Control: the same read DOES fail during a plain (non-concurrent) REFRESH, so
# the check above can catch a scheduler that blocks readers.
psql -X -q "$DB_URL" -c "REFRESH MATERIALIZED VIEW mv_daily_shipment_analytics" >/dev/null 2>&1 &
plain=$!
plain_running() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'REFRESH MATERIALIZED VIEW mv_daily_shipment_analytics'")" = 1 ]; }
ss_wait_for 10 plain_running || ss_fail "plain refresh not seen"
if PGOPTIONS="-c lock_timeout=100 -c statement_timeout=1000" \
   psql -X -At "$DB_URL" -c "SELECT count(*) FROM mv_daily_shipment_analytics" >/dev/null 2>&1; then
  ss_fail "control: a read during a plain REFRESH did not wait (the reader check proves nothing)"
fi
wait "$plain"
ss_pass "control: the same read fails during a plain REFRESH (lock_timeout)"

#!/usr/bin/env bash
# REFRESH MATERIALIZED VIEW CONCURRENTLY on populated views does not block readers: a reader
# with lock_timeout reads every view while a refresh transaction holds its locks (and the
# same reader is blocked by a plain REFRESH, so the check can fail); then refreshes and
# reads overlap for real.
source "$(dirname "$0")/common.sh"
ss_test_migrated_db schema_refresh_concurrent
q -v n=100000 -f "$SS_SOURCE_ROOT/bench/schema/load.sql" >/dev/null || ss_fail "loading 100,000 shipments"
q -c "SELECT count(*) FROM refresh_analytics_views()" >/dev/null || ss_fail "first refresh"
views="mv_daily_shipment_analytics mv_carrier_performance mv_top_routes"
for v in $views; do
  n=$(q -c "SELECT count(*) FROM $v"); [ "$n" -gt 0 ] || ss_fail "$v empty after refresh"
done

# A session that runs statements we feed it, keeping its transaction open.
fifo="$SS_TEST_TMP/refresher.fifo"
mkfifo "$fifo"
ss_start_bg "$SS_TEST_TMP/refresher.log" env PGAPPNAME=schema_refresher \
  psql -X -q -v ON_ERROR_STOP=1 -d "$DB_URL" -f "$fifo" >/dev/null
exec 7>"$fifo"
ss_on_exit "exec 7>&-"
holds() { # holds <mode> <view...>: the refresher holds <mode> on every view
  local mode=$1; shift
  local v
  for v in "$@"; do
    [ "$(q -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE a.application_name = 'schema_refresher' AND l.granted AND l.mode = '$mode'
                 AND l.relation = '$v'::regclass")" = 1 ] || return 1
  done
}
read_all() { # each view readable within lock_timeout, with rows
  local v n
  for v in $views; do
    n=$(PGOPTIONS="-c lock_timeout=2s" q -c "SELECT count(*) FROM $v") || return 1
    [ "$n" -gt 0 ] || return 1
  done
}

q -c "UPDATE shipments SET status = 'delivered', delivered_at = created_at + interval '2 days'
       WHERE id IN (SELECT id FROM shipments WHERE status = 'in_transit' LIMIT 500)" >/dev/null
echo "BEGIN; SELECT count(*) FROM refresh_analytics_views(true);" >&7
ss_wait_for 60 holds ExclusiveLock $views || ss_fail "refresher never held its locks: $(cat "$SS_TEST_TMP/refresher.log")"
read_all || ss_fail "a reader was blocked by REFRESH ... CONCURRENTLY"
echo "COMMIT;" >&7
ss_wait_for 30 bash -c "! psql -X -At -d '$DB_URL' -c \"SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'schema_refresher' AND l.relation = 'mv_top_routes'::regclass\" | grep -q 1" ||
  ss_fail "refresher did not commit"
ss_pass "readers read all three views while a CONCURRENTLY refresh held them"

# Control: a plain REFRESH does block the same reader (the check above can fail).
echo "BEGIN; REFRESH MATERIALIZED VIEW mv_top_routes;" >&7
ss_wait_for 60 holds AccessExclusiveLock mv_top_routes || ss_fail "plain refresh never held its lock"
err=$(PGOPTIONS="-c lock_timeout=500ms" q -c "SELECT count(*) FROM mv_top_routes" 2>&1) &&
  ss_fail "reader was not blocked by a plain REFRESH: $err"
echo "$err" | grep -q "lock timeout" || ss_fail "unexpected error: $err"
echo "ROLLBACK;" >&7
ss_pass "control: a plain REFRESH blocks the reader (lock timeout)"

# Real overlap: 5 concurrent refreshes in a loop while the reader polls.
ss_start_bg "$SS_TEST_TMP/loop.log" bash -c "for i in 1 2 3 4 5; do
    psql -X -q -v ON_ERROR_STOP=1 -At -d '$DB_URL' -c \"SELECT string_agg(outcome, ',') FROM refresh_analytics_views(true)\" || exit 1
  done" >/dev/null
loop=$SS_BG_PID
reads=0
while kill -0 "$loop" 2>/dev/null; do
  read_all || ss_fail "a read failed or was blocked during concurrent refreshes"
  reads=$((reads + 1))
done
wait "$loop" || ss_fail "refresh loop failed: $(cat "$SS_TEST_TMP/loop.log")"
[ "$(grep -c '^success,success,success$' "$SS_TEST_TMP/loop.log")" = 5 ] || ss_fail "refresh loop: $(cat "$SS_TEST_TMP/loop.log")"
[ "$reads" -ge 1 ] || ss_fail "no read overlapped the refreshes"
ss_pass "$reads rounds of reads of all views during 5 concurrent refreshes, none blocked"

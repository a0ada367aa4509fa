#!/usr/bin/env bash
# kill -9 in the middle of a stream, restart: exact final state, no duplicates.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_kill9 --shipments 2200 --dup 10 --ooo 5 --seed 3
for t in shipments trackers addresses; do sw_produce "$t"; done
sw_start a SYNC_BATCH_SIZE=200
_some() { [ "$(sw_processed)" -ge 1500 ]; }
ss_wait_for 60 _some || ss_fail "nothing applied"
kill -KILL "${SW_PID[a]}"
mid=$(sw_processed)
echo "killed with $mid of $UNIQUE applied"
[ "$mid" -lt "$UNIQUE" ] || ss_fail "stream finished before the kill; make it longer"
sw_start b SYNC_BATCH_SIZE=200
sw_wait_applied 120
sw_check_state
n=$(q "SELECT count(*) - count(DISTINCT (tracker_id, occurred_at, detail_hash)) FROM tracking_events")
[ "$n" = 0 ] || ss_fail "duplicate tracking events: $n"
ss_pass "kill -9 and restart: exact state, no duplicate rows"

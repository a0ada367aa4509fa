#!/usr/bin/env bash
# Two workers in one group share the partitions; SIGTERM one: it exits 0,
# leaves the group and the other takes everything; a third joins; kill -9
# one mid-stream: the survivor takes over; exact state.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_two --shipments 2200 --dup 10 --ooo 5 --seed 5
sw_start a SYNC_BATCH_SIZE=100
sw_start b SYNC_BATCH_SIZE=100
_both_assigned() { [ "$(grep -c 'assigned' "${SW_LOG[a]}")" -ge 1 ] && [ "$(grep -c 'assigned' "${SW_LOG[b]}")" -ge 1 ]; }
ss_wait_for 30 _both_assigned || ss_fail "not both assigned"
sw_produce shipments
_both_consumed() { [ "$(sw_metric a sync_messages_consumed_total)" -gt 0 ] && [ "$(sw_metric b sync_messages_consumed_total)" -gt 0 ]; }
ss_wait_for 60 _both_consumed || ss_fail "the partitions were not shared"
echo "a consumed $(sw_metric a sync_messages_consumed_total), b consumed $(sw_metric b sync_messages_consumed_total)"
ss_pass "two workers share the partitions"

ss_stop_bg "${SW_PID[a]}" 20
rc=$?
[ "$rc" = 0 ] || ss_fail "SIGTERM exit status $rc"
# Left the group: b gets all 60 partitions well before the 6 s session timeout would expire
t0=$SECONDS
_b_all() { grep -q 'assigned 60 partition' "${SW_LOG[b]}"; }
ss_wait_for 20 _b_all || ss_fail "b never got all partitions"
echo "b took all partitions after $((SECONDS - t0)) s"
ss_pass "SIGTERM: exit 0, left the group, the other worker took over"

sw_start c SYNC_BATCH_SIZE=100
sw_produce trackers
sw_produce addresses
_c_consumed() { [ "$(sw_metric c sync_messages_consumed_total)" -gt 0 ]; }
ss_wait_for 60 _c_consumed || ss_fail "c consumed nothing"
kill -KILL "${SW_PID[b]}"
echo "killed b with $(sw_processed) of $UNIQUE applied"
sw_wait_applied 180
sw_check_state
ss_pass "kill -9 of one worker: the other took over; exact state"

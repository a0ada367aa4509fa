#!/usr/bin/env bash
# Two workers in one group share the partitions; SIGTERM one: it exits 0,
# leaves the group and the other takes everything; a third joins and gets its
# share; kill -9 one mid-stream: the survivor takes over its partitions; exact
# state.
#
# Every stream is produced only after the group has settled on the assignment
# the step is about (eager protocol: a joining worker gets partitions only after
# the others' next heartbeat, up to 1 s later, and a busy worker drains thousands
# of messages in that time -- producing earlier let the old owner apply
# everything before the newcomer got a partition).
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_two --shipments 2200 --dup 10 --ooo 5 --seed 5
sw_start a SYNC_BATCH_SIZE=100
sw_start b SYNC_BATCH_SIZE=100
_shared() { [ "$(sw_assigned a)" = 30 ] && [ "$(sw_assigned b)" = 30 ]; }
ss_wait_for 30 _shared || ss_fail "a and b did not settle on 30 partitions each (a $(sw_assigned a), b $(sw_assigned b))"
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
_b_all() { [ "$(sw_assigned b)" = 60 ]; }
ss_wait_for 20 _b_all || ss_fail "b never got all partitions"
echo "b took all partitions after $((SECONDS - t0)) s"
ss_pass "SIGTERM: exit 0, left the group, the other worker took over"

sw_start c SYNC_BATCH_SIZE=100
_c_joined() { [ "$(sw_assigned b)" = 30 ] && [ "$(sw_assigned c)" = 30 ]; }
ss_wait_for 30 _c_joined || ss_fail "b and c did not settle on 30 partitions each (b $(sw_assigned b), c $(sw_assigned c))"
sw_produce trackers
_c_consumed() { [ "$(sw_metric c sync_messages_consumed_total)" -gt 0 ]; }
ss_wait_for 60 _c_consumed || ss_fail "c consumed nothing"
ss_pass "a third worker joins and gets its share"

kill -KILL "${SW_PID[b]}"
echo "killed b with $(sw_processed) of $UNIQUE applied"
# Produced after the kill: half of it lands on b's partitions, applied only if c takes them.
sw_produce addresses
t0=$SECONDS
_c_all() { [ "$(sw_assigned c)" = 60 ]; }
ss_wait_for 60 _c_all || ss_fail "c never took b's partitions"
echo "c took all partitions after $((SECONDS - t0)) s"
sw_wait_applied 180
sw_check_state
ss_pass "kill -9 of one worker: the other took over; exact state"

#!/usr/bin/env bash
# kill -9 in the middle of a stream, restart: exact final state, and the new worker resumes
# exactly where the killed one's last PostgreSQL transaction ended (offsets in the same
# transaction as the rows): it applies only what was not applied, skips only the
# redeliveries that were not skipped yet.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_kill9 --shipments 2200 --dup 10 --ooo 5 --seed 3
total=$(cat "$GEN/shipments.tsv" "$GEN/trackers.tsv" "$GEN/addresses.tsv" | wc -l)
for t in shipments trackers addresses; do sw_produce "$t"; done
sw_start a SYNC_BATCH_SIZE=200
_some() { [ "$(sw_processed)" -ge 1500 ]; }
ss_wait_for 60 _some || ss_fail "nothing applied"
kill -KILL "${SW_PID[a]}"
# a's sessions are gone (its open transaction rolled back) before we read what it committed.
_a_gone() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'shipstream-sync-worker%'")" = 0 ]; }
ss_wait_for 30 _a_gone || ss_fail "the killed worker's PostgreSQL sessions did not end"
# One snapshot: the events a applied and the messages a committed.
IFS='|' read -r mid committed < <(q "SELECT (SELECT count(*) FROM processed_events WHERE event_id LIKE 'evt\_${TAG}\_%'),
  (SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE consumer_group = '$GROUP')")
echo "killed with $mid of $UNIQUE events applied, $committed of $total messages committed"
[ "$mid" -lt "$UNIQUE" ] || ss_fail "stream finished before the kill; make it longer"
[ "$committed" -ge "$mid" ] || ss_fail "fewer messages committed ($committed) than events applied ($mid)"

sw_start b SYNC_BATCH_SIZE=200
sw_wait_applied 120
sw_check_state
# b's counters are added after each of its commits: wait until they cover the rest.
b_applied() { ss_metric_sum "http://127.0.0.1:${SW_PORT[b]}" sync_events_applied_total; }
b_dups() { sw_metric b sync_duplicates_skipped_total; }
_b_counted() { [ $(( $(b_applied) + $(b_dups) )) = $((total - committed)) ]; }
ss_wait_for 30 _b_counted || ss_fail "b counted $(b_applied) applied + $(b_dups) duplicates, want $((total - committed)) messages"
applied=$(b_applied) || ss_fail "b: no /metrics"
dups=$(b_dups) || ss_fail "b: no /metrics"
[ "$applied" = $((UNIQUE - mid)) ] ||
  ss_fail "b applied $applied events, want $((UNIQUE - mid)) (a had applied $mid of $UNIQUE): re-applied or lost events"
[ $((committed - mid + dups)) = "$DUPS" ] ||
  ss_fail "b skipped $dups duplicates, a $((committed - mid)): $((committed - mid + dups)), want the $DUPS redeliveries once each"
[ "$(q "SELECT sum(next_offset) FROM kafka_offsets WHERE consumer_group = '$GROUP'")" = "$total" ] ||
  ss_fail "kafka_offsets do not end at the $total messages"
ss_pass "kill -9 and restart: exact state; b applied the $applied events a had not and skipped $dups redeliveries (a: $((committed - mid)))"

#!/usr/bin/env bash
# 10,000 events, 10 % duplicate deliveries, 5 % older versions after newer
# ones: the tables equal the model row by row; SIGTERM exits 0.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_exact --shipments 2200 --dup 10 --ooo 5 --seed 1

sw_start a
ss_wait_for 30 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${SW_PORT[a]}/ready) = 200 ]" ||
  ss_fail "worker never ready"
for t in shipments trackers addresses; do sw_produce "$t"; done
total=$(( $(wc -l <"$GEN/shipments.tsv") + $(wc -l <"$GEN/trackers.tsv") + $(wc -l <"$GEN/addresses.tsv") ))
echo "delivered $total messages ($UNIQUE unique, $DUPS duplicates, $OOO moved out of order)"
[ "$total" -ge 10000 ] || ss_fail "fewer than 10,000 messages"
sw_wait_applied 120
sw_check_state

dups=$(sw_metric a sync_duplicates_skipped_total) || ss_fail "no /metrics"
stale=$(sw_metric a sync_stale_skipped_total) || ss_fail "no /metrics"
consumed=$(sw_metric a sync_messages_consumed_total) || ss_fail "no /metrics"
echo "metrics: consumed=$consumed duplicates=$dups stale=$stale"
[ "$consumed" = "$total" ] || ss_fail "consumed $consumed of $total"
[ "$dups" = "$DUPS" ] || ss_fail "duplicates skipped $dups, expected $DUPS"
[ "$stale" -gt 0 ] || ss_fail "no stale version counted"
q "SELECT count(*) FROM kafka_offsets WHERE consumer_group = '$GROUP'" | grep -qx '[1-9][0-9]*' || ss_fail "no kafka_offsets"
# offsets in PostgreSQL = the end of every partition
pg_sum=$(q "SELECT sum(next_offset) FROM kafka_offsets WHERE consumer_group = '$GROUP'")
[ "$pg_sum" = "$total" ] || ss_fail "kafka_offsets sum $pg_sum, expected $total"
ss_pass "duplicates and stale versions skipped; offsets recorded"
# The group's offsets in Kafka (lag tools, KEDA) follow within SYNC_KAFKA_COMMIT_MS,
# also for the last batch, after which nothing else arrives.
kafka_lag() {
  local t sum=0 n
  for t in shipments trackers addresses; do
    n=$(ss_kafkactl offsets -t "${PREFIX}$t" -g "$GROUP" --sum 2>/dev/null) || return 1
    sum=$((sum + n))
  done
  echo "$sum"
}
_no_lag() { [ "$(kafka_lag)" = 0 ]; }
ss_wait_for 15 _no_lag || ss_fail "the group's Kafka offsets lag by $(kafka_lag) messages"
ss_pass "the group's Kafka offsets reached the end of every partition"

ss_stop_bg "${SW_PID[a]}" 20
rc=$?
[ "$rc" = 0 ] || ss_fail "SIGTERM exit status $rc"
grep -q "stopped" "${SW_LOG[a]}" || ss_fail "no clean stop in the log"
ss_pass "SIGTERM: exit 0"

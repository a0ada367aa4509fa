#!/usr/bin/env bash
# Poison mixed in: bad JSON, not an envelope, a money string PostgreSQL's
# numeric refuses, an integer out of range, a timestamp that is not one.
# Each lands in the DLQ once with its reason; everything else is applied.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_poison --shipments 400 --dup 10 --ooo 5 --seed 2 --poison
sw_start a
for t in shipments trackers addresses; do sw_produce "$t"; done
sw_wait_applied 120
sw_check_state
ss_kafkactl consume -t "${PREFIX}dlq" -n "$POISON" --timeout 30 --headers >"$SS_TEST_TMP/dlq.tsv" ||
  ss_fail "DLQ holds fewer than $POISON messages"
cat "$SS_TEST_TMP/dlq.tsv" | cut -c1-300
# nothing more arrives
sleep 0 # the offsets below prove the worker moved on
n=$(ss_kafkactl consume -t "${PREFIX}dlq" --until-end --timeout 10 | wc -l)
[ "$n" = "$POISON" ] || ss_fail "DLQ holds $n messages, expected $POISON"
for r in invalid_json invalid_envelope unmappable sqlstate_22P02 sqlstate_22003; do
  c=$(grep -c "reason=$r" "$SS_TEST_TMP/dlq.tsv")
  [ "$c" = 1 ] || ss_fail "reason $r: $c messages"
done
grep -q "original_topic=${PREFIX}shipments" "$SS_TEST_TMP/dlq.tsv" || ss_fail "no original_topic header"
grep -q "original_offset=" "$SS_TEST_TMP/dlq.tsv" || ss_fail "no original_offset header"
n=$(q "SELECT count(*) FROM shipments WHERE id LIKE '%poison%'")
[ "$n" = 0 ] || ss_fail "poison shipment rows: $n"
total=$(( $(wc -l <"$GEN/shipments.tsv") + $(wc -l <"$GEN/trackers.tsv") + $(wc -l <"$GEN/addresses.tsv") ))
pg_sum=$(q "SELECT sum(next_offset) FROM kafka_offsets WHERE consumer_group = '$GROUP'")
[ "$pg_sum" = "$total" ] || ss_fail "kafka_offsets sum $pg_sum, expected $total (stalled partition?)"
ss_pass "each poison message dead-lettered once with its reason; every partition moved on"

#!/usr/bin/env bash
# Stopping and starting the harness's Kafka broker (lib.sh) keeps topics,
# their partition counts and the messages in them, on the same address.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

prefix=$(ss_test_prefix)
ss_test_create_topics "$prefix" || ss_fail "create topics"
ss_test_create_topics "$prefix" || ss_fail "create topics twice must be fine"
topics=$(ss_kafkactl topics | grep -c "^${prefix//./\\.}[a-z]*	12$" || true)
[ "$topics" = 6 ] || ss_fail "expected 6 topics with 12 partitions, found $topics"
ss_pass "six topics with 12 partitions, creation idempotent"

seq 1 200 | awk '{printf "shp_%d\tv%d\n", $1 % 17, $1}' | ss_kafkactl produce -t "${prefix}shipments" ||
  ss_fail "produce before restart"
[ "$(ss_kafkactl offsets -t "${prefix}shipments" --sum)" = 200 ] || ss_fail "200 messages expected"

ss_kafka_stop
if ss_kafkactl wait --timeout 2 2>/dev/null; then ss_fail "broker still answers after stop"; fi
if echo "k	v" | ss_kafkactl produce -t "${prefix}shipments" --timeout 3 2>/dev/null; then
  ss_fail "produce succeeded with the broker stopped"
fi
ss_pass "broker stopped: produce fails within its timeout"

ss_kafka_start || ss_fail "broker did not start again"
ss_kafkactl wait --timeout 30 || ss_fail "broker does not answer after start"
topics=$(ss_kafkactl topics | grep -c "^${prefix//./\\.}[a-z]*	12$" || true)
[ "$topics" = 6 ] || ss_fail "after restart: expected 6 topics with 12 partitions, found $topics"
ss_wait_for 30 test "$(ss_kafkactl offsets -t "${prefix}shipments" --sum 2>/dev/null)" = 200 ||
  ss_fail "messages lost across restart"
n=$(ss_kafkactl consume -t "${prefix}shipments" -n 200 --timeout 30 | wc -l)
[ "$n" = 200 ] || ss_fail "consumed $n of 200 after restart"
echo "k	after" | ss_kafkactl produce -t "${prefix}shipments" || ss_fail "produce after restart"
ss_pass "after stop/start: topics, partitions and 200 messages kept; produce works"

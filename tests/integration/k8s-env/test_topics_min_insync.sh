#!/usr/bin/env bash
# ss-kafkactl create-topics sets min.insync.replicas on the topics it creates:
# --min-insync M explicitly (the prod overlay's Job: --replication 3
# --min-insync 2), 2 by default with replication >= 3, the broker's default
# otherwise; M above the replication is refused. Read back from the broker
# with Kafka's own ConfigCommand (the harness runs one broker, so replication
# 3 itself cannot be created here).
set -uo pipefail
# shellcheck source=../lib.sh
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

[ -x "$SS_KAFKACTL" ] || ss_fail "ss-kafkactl not built"
CACHE=$("$SS_LIB_ROOT/deploy/local/kafka.sh" fetch) || ss_fail "no Kafka jars"
PREFIX=$(ss_test_prefix)

ss_kafkactl create-topics --prefix "$PREFIX" --topics explicit --replication 1 --min-insync 1 --timeout 30 \
  2>"$SS_TEST_TMP/explicit.err" || { cat "$SS_TEST_TMP/explicit.err"; ss_fail "create-topics --min-insync 1"; }
grep -q "created ${PREFIX}explicit (min.insync.replicas 1)" "$SS_TEST_TMP/explicit.err" ||
  ss_fail "create-topics does not say it set min.insync.replicas: $(cat "$SS_TEST_TMP/explicit.err")"
ss_kafkactl create-topics --prefix "$PREFIX" --topics plain --timeout 30 2>/dev/null || ss_fail "create-topics"

# Dynamic (per-topic) configs only: the broker's default does not show.
java -cp "$CACHE/libs/*" kafka.admin.ConfigCommand --bootstrap-server "$SS_TEST_KAFKA_BOOTSTRAP" \
  --describe --entity-type topics >"$SS_TEST_TMP/configs.txt" 2>"$SS_TEST_TMP/configs.err" ||
  { cat "$SS_TEST_TMP/configs.err"; ss_fail "ConfigCommand --describe"; }
grep -A5 "for topic ${PREFIX}explicit are" "$SS_TEST_TMP/configs.txt" | grep -q 'min.insync.replicas=1 .*DYNAMIC_TOPIC_CONFIG' ||
  { cat "$SS_TEST_TMP/configs.txt"; ss_fail "${PREFIX}explicit has no topic-level min.insync.replicas=1"; }
ss_pass "--min-insync 1: the broker has min.insync.replicas=1 on the topic"
grep -q "for topic ${PREFIX}plain are" "$SS_TEST_TMP/configs.txt" || ss_fail "ConfigCommand did not list ${PREFIX}plain"
sed -n "/for topic ${PREFIX}plain are/,/for topic/p" "$SS_TEST_TMP/configs.txt" | grep -q 'min.insync.replicas' &&
  ss_fail "${PREFIX}plain (replication 1, no --min-insync) got a topic-level min.insync.replicas"
ss_pass "replication 1 without --min-insync: broker default, no topic override"

ss_kafkactl create-topics --prefix "$PREFIX" --topics toomany --replication 1 --min-insync 2 --timeout 10 \
  2>"$SS_TEST_TMP/toomany.err"
rc=$?
[ "$rc" = 2 ] && grep -q 'above --replication' "$SS_TEST_TMP/toomany.err" ||
  ss_fail "--min-insync 2 with --replication 1: exit $rc, $(cat "$SS_TEST_TMP/toomany.err")"
ss_pass "--min-insync above --replication refused (exit 2)"

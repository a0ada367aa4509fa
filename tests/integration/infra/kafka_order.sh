#!/usr/bin/env bash
# 10,000 keyed messages through the real broker with the idempotent producer,
# consumed back by a consumer group: nothing lost, nothing duplicated, each
# key in one partition and in order.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

prefix=$(ss_test_prefix)
ss_test_create_topics "$prefix" || ss_fail "create topics"
topic="${prefix}events"
seq 1 10000 | awk '{printf "key%d\t%d\n", $1 % 250, $1}' | ss_kafkactl produce -t "$topic" ||
  ss_fail "produce"
ss_kafkactl consume -t "$topic" -g "$prefix.group" -n 10000 --timeout 60 >"$SS_TEST_TMP/out" ||
  ss_fail "consume through the group"
awk -F'\t' '
  { n++; if (seen[$4]++) dup++
    if (($3 in part) && part[$3] != $1) moved++
    if (($3 in last) && $4 + 0 <= last[$3]) disorder++
    part[$3] = $1; last[$3] = $4 + 0; parts[$1] = 1 }
  END { printf "%d %d %d %d %d\n", n, dup, moved, disorder, length(parts) }' "$SS_TEST_TMP/out" >"$SS_TEST_TMP/stats"
read -r n dup moved disorder nparts <"$SS_TEST_TMP/stats"
[ "$n" = 10000 ] || ss_fail "consumed $n of 10000"
[ "$dup" = 0 ] || ss_fail "$dup duplicates"
[ "$moved" = 0 ] || ss_fail "$moved messages of a key in another partition"
[ "$disorder" = 0 ] || ss_fail "$disorder messages out of order within their key"
[ "$nparts" -ge 6 ] || ss_fail "only $nparts partitions used by 250 keys"
ss_pass "10000 messages, 250 keys over $nparts partitions, per-key order kept, no loss or duplicate"

# The group committed its offsets: a second run of the group gets nothing new.
if ss_kafkactl consume -t "$topic" -g "$prefix.group" -n 1 --timeout 3 >/dev/null 2>&1; then
  ss_fail "group re-read messages it had committed"
fi
ss_pass "consumer group committed its offsets"

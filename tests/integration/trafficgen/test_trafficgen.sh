#!/usr/bin/env bash
# shipstream-trafficgen against the real stack: gateway + easypost-sim +
# PostgreSQL (migrated) + Kafka.  At a small rate with buying on, its report
# must say every request succeeded and count rate x duration creates and buys,
# and Kafka must hold exactly those shipments (checked independently of the
# report).  With a wrong API key it must report the 401s and exit non-zero.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"   # gw_start_sim, gw_start

TG="$SS_BIN_DIR/shipstream-trafficgen"
[ -x "$TG" ] || ss_fail "$TG not built"
RATE=8 DURATION=3
N=$((RATE * DURATION))

ss_test_migrated_db it_trafficgen
PREFIX=$(ss_test_prefix)
ss_test_create_topics "$PREFIX" 3 || ss_fail "create topics"
gw_start_sim
gw_start

# run_tg <key> <outfile>: runs the generator, sets TG_RC and REPORT (its JSON line).
run_tg() {
  local t0=$SECONDS
  timeout 60 env GATEWAY_URL="$GW" GATEWAY_API_KEY="$1" TRAFFIC_RATE=$RATE TRAFFIC_DURATION=$DURATION \
    TRAFFIC_CONCURRENCY=3 TRAFFIC_BUY=1 TRAFFIC_TIMEOUT_MS=10000 LOG_LEVEL=warn \
    "$TG" >"$2" 2>"$2.err"
  TG_RC=$?
  TG_SECS=$((SECONDS - t0))
  REPORT=$(grep '^{' "$2" | tail -n 1)
  jq -e . <<<"$REPORT" >/dev/null 2>&1 || { cat "$2" "$2.err"; ss_fail "no JSON report line (exit $TG_RC)"; }
}
check() { # <jq expression> <what>
  jq -e "$1" <<<"$REPORT" >/dev/null || ss_fail "$2: report $REPORT"
  ss_pass "$2"
}

# ---- the good run
run_tg "$API_KEY" "$SS_TEST_TMP/good.out"
cat "$SS_TEST_TMP/good.out"
[ "$TG_RC" = 0 ] || { cat "$SS_TEST_TMP/good.out.err"; ss_fail "trafficgen exited $TG_RC on a healthy stack"; }
ss_pass "exit status 0"
check ".failed == 0 and .create.errors == 0 and .buy.errors == 0 and .create.transport_errors == 0" "no failed requests"
check ".started == $N and .succeeded == $N" "$N iterations ($RATE/s x ${DURATION}s) started and succeeded"
check ".create.requests == $N and .create.ok == $N and .create.by_status[\"201\"] == $N" "$N shipments created (201)"
check ".buy.requests == $N and .buy.ok == $N" "$N shipments bought"
# The schedule: iterations start at the rate, so the run takes about the duration
# (the last start is at (N-1)/RATE s), neither instantly nor much longer.
check ".elapsed_s >= $(((N - 1) / RATE)) - 0.2 and .elapsed_s < $DURATION + 5" "elapsed time follows the rate"
check ".achieved_rate > $RATE * 0.7 and .achieved_rate < $RATE * 1.5" "achieved rate within tolerance of $RATE/s"
check ".late == 0" "no start was late at this rate"
check ".create.p50_ms > 0 and .create.p99_ms >= .create.p50_ms and .buy.p50_ms > 0" "latency percentiles reported"

# Independently of the report: the gateway produced one shipment.created and one
# shipment.purchased per iteration, for N distinct shipments.
ss_kafkactl consume -t "${PREFIX}shipments" -n $((2 * N)) --timeout 30 >"$SS_TEST_TMP/shipments.tsv" 2>/dev/null ||
  ss_fail "fewer than $((2 * N)) messages on ${PREFIX}shipments ($(wc -l <"$SS_TEST_TMP/shipments.tsv"))"
cut -f4- "$SS_TEST_TMP/shipments.tsv" | jq -s '{created: [.[] | select(.type == "shipment.created")] | length,
    purchased: [.[] | select(.type == "shipment.purchased")] | length,
    ids: [.[] | .object.id] | unique | length,
    bought_ids: [.[] | select(.type == "shipment.purchased") | .object.id] | unique | length}' \
  >"$SS_TEST_TMP/kafka.json" 2>/dev/null || ss_fail "envelopes on ${PREFIX}shipments are not JSON"
jq -e ".created == $N and .purchased == $N and .ids == $N and .bought_ids == $N" "$SS_TEST_TMP/kafka.json" >/dev/null ||
  ss_fail "Kafka: expected $N created + $N purchased for $N shipments, got $(jq -c . "$SS_TEST_TMP/kafka.json")"
ss_pass "Kafka holds $N shipment.created and $N shipment.purchased for $N distinct shipments"

# ---- a wrong API key: every create is refused, reported, exit non-zero
run_tg "wrong-$API_KEY" "$SS_TEST_TMP/bad.out"
[ "$TG_RC" != 0 ] || ss_fail "trafficgen exited 0 although every request got 401: $REPORT"
ss_pass "wrong key: exit status $TG_RC"
check ".succeeded == 0 and .failed == $N" "wrong key: all $N iterations reported failed"
check ".create.requests == $N and .create.by_status[\"401\"] == $N and .create.errors == $N" "wrong key: $N creates answered 401"
check ".buy.requests == 0" "wrong key: nothing bought"
grep -q 'status 401' "$SS_TEST_TMP/bad.out" || ss_fail "the text report does not show the 401s"
ss_pass "the text report shows the 401s"
echo "PASS: it_trafficgen"

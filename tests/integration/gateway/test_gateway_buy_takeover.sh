#!/usr/bin/env bash
# A keyed buy is never made twice (issue 18): an unknown outcome (EasyPost timed
# out) is not taken over until its lease has passed the longest call the first
# request could still be making; the takeover checks EasyPost first and buys
# nothing when the check fails; without PostgreSQL nothing is bought.
# EASYPOST_TIMEOUT_MS=1000 + GATEWAY_BUY_LEASE_MARGIN_MS=1500: a 2.5 s lease.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$(dirname "$0")/common.sh"

gw_setup_db gw_takeover
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
gw_start_sim
gw_start EASYPOST_TIMEOUT_MS=1000 GATEWAY_BUY_LEASE_MARGIN_MS=1500 GATEWAY_IDEMPOTENCY_WAIT_MS=0
SIM="http://127.0.0.1:$SIM_PORT"

# Buy calls the gateway made to EasyPost (every outcome).
buy_calls() {
  curl -fsS "$GW/metrics" | awk '/^gateway_easypost_calls_total\{.*op="buy"/ {n += $NF} END {print n + 0}'
}
sim_fault() { curl -fsS -u "$EP_KEY:" -H 'Content-Type: application/json' -d "{\"queue\":[$1]}" "$SIM/sim/faults" >/dev/null || ss_fail "sim faults"; }
key_state() { ss_psql "$DB_URL" -Atc "SELECT status FROM idempotency_keys WHERE key = '$1'"; }
lease_over() { [ "$(ss_psql "$DB_URL" -Atc "SELECT lease_until < now() FROM idempotency_keys WHERE key = '$1'")" = t ]; }

new_shipment() {
  EXTRA_CURL=()
  call POST /v1/shipments "$FIX/api/shipment-create.request.json"; expect 201 "create shipment"
  SHP=$(jq -r .id <<<"$BODY"); RATE=$(jq -r '.rates | min_by(.rate|tonumber) | .id' <<<"$BODY")
  printf '{"rate":{"id":"%s"}}' "$RATE" >"$SS_TEST_TMP/buy.json"
}

# --- 1. EasyPost answers after the gateway gave up: outcome unknown, not taken over at once
new_shipment
K="takeover-$SHP"
sim_fault '"latency=2000"'            # the buy reaches the sim, which buys after 2 s
EXTRA_CURL=(-H "Idempotency-Key: $K")
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 504 "buy past EASYPOST_TIMEOUT_MS"
[ "$(key_state "$K")" = unknown ] || ss_fail "key state after a timeout: $(key_state "$K") (want unknown)"
ss_pass "a timed-out buy is recorded as unknown, not failed"
[ "$(buy_calls)" = 1 ] || ss_fail "buy calls after the first attempt: $(buy_calls)"
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 409 "retry within the lease"
[ "$(buy_calls)" = 1 ] || ss_fail "a retry within the lease called buy again: $(buy_calls) buy calls"
ss_pass "a retry within the lease does not buy (the first call may still be running at EasyPost)"

# --- 2. after the lease: the takeover checks EasyPost, finds it bought, buys nothing
ss_wait_for 20 lease_over "$K" || ss_fail "lease never ended"
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 200 "retry after the lease"
jq -e --arg id "$SHP" '.id == $id and (.postage_label|type) == "object"' <<<"$BODY" >/dev/null || ss_fail "recovered answer: ${BODY:0:200}"
[ "$(buy_calls)" = 1 ] || ss_fail "the takeover bought again: $(buy_calls) buy calls"
[ "$(key_state "$K")" = completed ] || ss_fail "key state: $(key_state "$K")"
curl -fsS "$GW/metrics" | grep -q 'gateway_idempotent_buys_total{outcome="recovered"} 1' || ss_fail "recovered not counted"
ss_pass "the takeover found the shipment bought: one purchase, answer recovered"
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 200 "replay"
grep -qi '^Idempotent-Replayed: true' <<<"$HDRS" || ss_fail "not a replay"

# --- 3. the takeover's check fails: 503, nothing bought; the next attempt checks again
new_shipment
K2="check-$SHP"
calls0=$(buy_calls)
sim_fault '"latency=2000"'
EXTRA_CURL=(-H "Idempotency-Key: $K2")
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 504 "second timed-out buy"
ss_wait_for 20 lease_over "$K2" || ss_fail "lease never ended"
# The retrieve is not retried on a 500: one makes the check fail.
sim_fault '"500"'
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 503 "takeover whose check fails"
jq -e '.error.code == "easypost_check_failed"' <<<"$BODY" >/dev/null || ss_fail "503 code: $BODY"
[ "$(buy_calls)" = $((calls0 + 1)) ] || ss_fail "a failed check led to a buy: $(buy_calls) calls (was $calls0 + 1)"
[ "$(key_state "$K2")" = unknown ] || ss_fail "key state after a failed check: $(key_state "$K2")"
ss_pass "a failed check answers 503 and buys nothing"
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 200 "next attempt checks again at once"
[ "$(buy_calls)" = $((calls0 + 1)) ] || ss_fail "bought again after the check: $(buy_calls)"
ss_pass "the next attempt checked again and found it bought (one purchase)"

# --- 4. PostgreSQL unreachable during the claim: 503, nothing bought
gw2_port=$(ss_free_port); dead=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/gw2.log" env LISTEN=127.0.0.1:$gw2_port \
  DATABASE_URL="postgresql://127.0.0.1:$dead/none" GATEWAY_DB_CONNECT_TIMEOUT_S=1 \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  EASYPOST_API_KEY=$EP_KEY EASYPOST_API_BASE="$SIM_URL" GATEWAY_API_KEYS="$API_KEY" \
  "$SS_BIN_DIR/shipstream-gateway" >/dev/null
ss_wait_for 20 curl -fsS "http://127.0.0.1:$gw2_port/health" || ss_fail "second gateway did not start"
new_shipment
code=$(curl -sS -o "$SS_TEST_TMP/b2" -w '%{http_code}' -X POST -H "Authorization: Bearer $API_KEY" \
  -H "Idempotency-Key: nopg-$SHP" -H 'Content-Type: application/json' --data-binary "@$SS_TEST_TMP/buy.json" \
  "http://127.0.0.1:$gw2_port/v1/shipments/$SHP/buy")
[ "$code" = 503 ] || ss_fail "keyed buy without PostgreSQL: $code $(cat "$SS_TEST_TMP/b2")"
n=$(curl -fsS "http://127.0.0.1:$gw2_port/metrics" | awk '/^gateway_easypost_calls_total\{.*op="buy"/ {n += $NF} END {print n + 0}')
[ "$n" = 0 ] || ss_fail "the gateway without PostgreSQL called buy: $n"
curl -fsS -u "$EP_KEY:" "$SIM_URL/shipments/$SHP" | jq -e '.postage_label == null' >/dev/null || ss_fail "shipment was bought"
ss_pass "PostgreSQL unreachable during the claim: 503, nothing bought"

#!/usr/bin/env bash
# Issue 16's day, end to end: the official easypost-python client pointed at the gateway's
# /v2 (backed by easypost-sim) runs a shipping team's day (easypost_day.py: every answer
# equal to the sim's own), then PostgreSQL (through the gateway's capture, Kafka and the
# sync worker, plus one refund.successful webhook through the webhook-receiver) holds every
# object the day created with its state, and the dashboard's spend equals the net spend
# computed by hand from the day's rates.  Unknown paths, 413, 502 and 401: it_gateway_v2.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$(dirname "$0")/common.sh"
PY=$("$SS_SOURCE_ROOT/tests/python/venv.sh") || ss_fail "tests/python/venv.sh"

# A production key (the sim's objects take the key's mode): the dashboard's default view.
EP_KEY="EZAK_day_$RANDOM"
SECRET="day-secret-$RANDOM"
ss_test_migrated_db gw_day
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" 3 || ss_fail "topics"
SW_PORT=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/sw.log" env LISTEN=127.0.0.1:$SW_PORT DATABASE_URL="$DB_URL" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  KAFKA_GROUP_ID="day-$RANDOM" "$SS_BIN_DIR/shipstream-sync-worker" >/dev/null
WH_PORT=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/wh.log" env LISTEN=127.0.0.1:$WH_PORT KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" EASYPOST_WEBHOOK_SECRET="$SECRET" "$SS_BIN_DIR/shipstream-webhook-receiver" >/dev/null
# One simulated day per real day: no tracker step and no refund completes mid-comparison.
gw_start_sim SIM_TIME_SCALE=86400
gw_start
SIM="http://127.0.0.1:$SIM_PORT"
ss_wait_for 30 curl -fsS "http://127.0.0.1:$WH_PORT/ready" || ss_fail "webhook-receiver not ready"
# The worker consumes before the day begins (versions applied as they come, not in one backlog).
assigned() { [ "$(ss_metric "http://127.0.0.1:$SW_PORT" sync_partitions_assigned)" -gt 0 ]; }
ss_wait_for 45 assigned || ss_fail "the sync worker was assigned no partition"

# --- 1. the day through the gateway, every answer compared with the sim's
DAY="$SS_TEST_TMP/day.json"
"$PY" "$SS_SOURCE_ROOT/tests/integration/gateway/easypost_day.py" --gateway --out "$DAY" \
  --api-base "$GW/v2" --key "$API_KEY" --sim-base "$SIM" --sim-key "$EP_KEY" ||
  ss_fail "easypost_day.py through the gateway"
ss_pass "the day through the gateway: every answer as the sim's"
d() { jq -r "$1" "$DAY"; }

# --- 2. the carrier confirms the refund asked with POST /v2/refunds: refund.successful
# (EasyPost's Event, the Refund now "refunded"), signed, to the webhook-receiver.
RF=$(d '.refunds_created[0].id'); RF_SHP=$(d '.refunds_created[0].shipment_id')
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
jq -c --arg now "$NOW" '.refunds_created[0] as $r | {object: "Event", id: ("evt_day" + ($r.id | ltrimstr("rfnd_"))),
  description: "refund.successful", mode: $r.mode, previous_attributes: {status: "submitted"},
  created_at: $now, updated_at: $now, result: ($r + {status: "refunded", updated_at: $now})}' "$DAY" >"$SS_TEST_TMP/ev.json"
SIG=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$SS_TEST_TMP/ev.json" | cut -d' ' -f1)
c=$(curl -sS -o "$SS_TEST_TMP/wh.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H "X-Hmac-Signature: hmac-sha256-hex=$SIG" --data-binary "@$SS_TEST_TMP/ev.json" \
  "http://127.0.0.1:$WH_PORT/webhooks/easypost")
[ "$c" = 200 ] || ss_fail "refund.successful webhook: $c $(cat "$SS_TEST_TMP/wh.out")"
ss_pass "refund.successful for $RF ($RF_SHP) accepted by the webhook-receiver"

# --- 3. PostgreSQL: every object of every 2xx answer, then each one's state
declare -A TABLE=([Shipment]=shipments [Tracker]=trackers [Address]=addresses [Batch]=batches
  [Refund]=refunds [Pickup]=pickups [ScanForm]=scan_forms [Insurance]=insurances)
missing() { # prints the captured ids of the eight types not yet in their tables
  local t ids
  for t in "${!TABLE[@]}"; do
    ids=$(jq -r --arg t "$t" '(.captured[$t] // []) | map("'"'"'" + . + "'"'"'") | join(",")' "$DAY")
    [ -n "$ids" ] || continue
    q "SELECT x FROM unnest(ARRAY[$ids]::text[]) x WHERE x NOT IN (SELECT id FROM ${TABLE[$t]})"
  done
}
none_missing() { [ -z "$(missing)" ]; }
# sql_is <sql> <want>: for ss_wait_for
sql_is() { [ "$(q "$1")" = "$2" ]; }
ss_wait_for 45 none_missing || ss_fail "captured objects not in PostgreSQL: $(missing | head -20 | tr '\n' ' ')"
for t in "${!TABLE[@]}"; do
  n=$(jq --arg t "$t" '(.captured[$t] // []) | length' "$DAY")
  [ "$n" -gt 0 ] || ss_fail "the day captured no $t"
  printf '%s=%s ' "$t" "$n"
done; echo
ss_pass "every Shipment, Tracker, Address, Batch, Refund, Pickup, ScanForm and Insurance answered is in PostgreSQL"
ss_wait_for 30 sql_is "SELECT refund_status FROM shipments WHERE id = '$RF_SHP'" refunded ||
  ss_fail "refund.successful did not mark $RF_SHP: $(q "SELECT refund_status FROM shipments WHERE id = '$RF_SHP'")"

# want <what> <sql> <expected>: the state, read once everything above was applied
want() {
  local got; got=$(q "$2")
  [ "$got" = "$3" ] || ss_fail "$1: got '$got', want '$3' ($2)"
}
B0=$(d '.bought[0].id'); B1=$(d '.bought[1].id'); B2=$(d '.bought[2].id'); RET=$(d '.return.id')
BT=$(d '.batch.id'); inl() { jq -r "$1 | map(\"'\" + . + \"'\") | join(\",\")" "$DAY"; }
want "bought, insured" "SELECT mode, carrier IS NOT NULL, tracking_code IS NOT NULL, tracker_id IS NOT NULL, refund_status IS NULL, raw->>'insurance', total_cost FROM shipments WHERE id = '$B0'" \
  "production|t|t|t|t|100.00|$(d '.bought[0].rate | tonumber + 1 | tostring')"
want "refunded through the shipment (not confirmed yet)" "SELECT refund_status FROM shipments WHERE id = '$B1'" submitted
want "refunded through POST /refunds, then refund.successful" "SELECT refund_status FROM shipments WHERE id = '$B2'" refunded
[ "$RF_SHP" = "$B2" ] || ss_fail "the Refund of POST /refunds is for $RF_SHP, not $B2"
want "its Refund" "SELECT status, shipment_id, mode FROM refunds WHERE id = '$RF'" "refunded|$B2|production"
want "the shipment's own Refund" "SELECT count(*) FROM refunds WHERE shipment_id = '$B1' AND status = 'submitted'" 1
want "the return" "SELECT is_return, carrier IS NOT NULL, refund_status IS NULL FROM shipments WHERE id = '$RET'" "t|t|t"
want "outbound ones are not returns" "SELECT count(*) FROM shipments WHERE id IN ('$B0','$B1','$B2') AND NOT is_return" 3
want "the batch" "SELECT state, num_shipments, raw->>'label_url' IS NOT NULL, raw->'scan_form'->>'id' IS NOT NULL FROM batches WHERE id = '$BT'" \
  "label_generated|2|t|t"
want "the batch's shipments: batch_id, bought" "SELECT count(*) FROM shipments WHERE id IN ($(inl '.batch.shipments')) AND batch_id = '$BT' AND carrier IS NOT NULL AND mode = 'production'" 2
want "removed from the batch, never bought" "SELECT batch_id IS NULL, carrier IS NULL FROM shipments WHERE id = '$(d .not_bought)'" "t|t"
for p in $(d '.pickups | keys[]'); do
  want "pickup $p" "SELECT status, confirmation IS NOT NULL, mode FROM pickups WHERE id = '$p'" "$(d ".pickups[\"$p\"]")|t|production"
done
want "the scan form" "SELECT status, tracking_codes = '$(d '.scan_form.tracking_codes | tojson')'::jsonb FROM scan_forms WHERE id = '$(d .scan_form.id)'" "created|t"
want "the insurance" "SELECT amount, mode, reference FROM insurances WHERE id = '$(d .insurance)'" "100.00000|production|day-insurance"
want "the tracker" "SELECT tracking_code, mode FROM trackers WHERE id = '$(d .tracker)'" "EZ1000000001|production"
want "the addresses" "SELECT count(*) FROM addresses WHERE id IN ($(inl '.addresses')) AND mode = 'production'" 3
ss_pass "PostgreSQL: bought and insured, refund submitted, refund refunded (Refund and webhook), the return, the batch with its shipments' batch_id, pickups scheduled and canceled, the scan form, the insurance, the tracker, the addresses"

# --- 4. the dashboard's spend: net of refunds, returns apart, production by default.
# The day's lowest rates for a 15.4 oz parcel from 94107 (the sim prices from weight and
# distance): written out, and checked against what the day bought.
R_90277=4.50; R_02116=7.30; R_70130=5.30; R_RETURN=7.30; INSURANCE_FEE=1.00
bought=$(d '[.bought[] | (.to_zip | .[0:5]) + "=" + .rate] | join(" ")')
read -r b1 b2 b3 br fee < <(d '[(.bought[] | .rate), .return.rate, .insured.fees[0].amount] | join(" ")')
awk -v a="$b1 $b2 $b3 $br $fee" -v b="$R_90277 $R_02116 $R_70130 $R_RETURN $INSURANCE_FEE" \
  'BEGIN { n = split(a, x); split(b, y); for (i = 1; i <= n; i++) if (x[i] + 0 != y[i] + 0) exit 1; exit n != 5 }' ||
  ss_fail "the day's prices are not the ones written here: $bought, return $br, insurance fee $fee"
[ "$(d '[.bought[] | .to_zip[0:5]] | join(" ")')" = "90277 02116 70130" ] || ss_fail "destinations: $bought"
# outbound, not refunded: B0 (+ its insurance fee), B1 (refund only submitted: still spend),
# the batch's two (to 90277 and 70130); B2 refunded; the return apart.
SPEND=$(echo "$R_90277 + $INSURANCE_FEE + $R_02116 + $R_90277 + $R_70130" | bc)
q "SELECT * FROM refresh_analytics_views(false)" >/dev/null || ss_fail "refresh_analytics_views"
call GET "/db/analytics/dashboard?days=7"; expect 200 "dashboard (production by default)"
check() { # <jq condition> <what>
  jq -e "$1" <<<"$BODY" >/dev/null || ss_fail "$2: $(jq -c .summary <<<"$BODY")"
  ss_pass "$2"
}
check ".mode == \"production\" and .summary.shipments == 4 and (.summary.total_cost | tonumber) == $SPEND" \
  "spend: 4 labels, $SPEND (= $R_90277 + $INSURANCE_FEE + $R_02116 + $R_90277 + $R_70130)"
check "(.summary.refunded == 1) and (.summary.refunded_cost | tonumber) == $R_70130" "refunded: 1, $R_70130 (not spend)"
check "(.summary.refund_pending == 1) and (.summary.refund_pending_cost | tonumber) == $R_02116" "refund pending: 1, $R_02116 (still spend)"
check "(.summary.returns == 1) and (.summary.returns_cost | tonumber) == $R_RETURN" "returns apart: 1, $R_RETURN"
call GET "/db/analytics/dashboard?days=7&mode=test"; expect 200 "dashboard mode=test"
check '.mode == "test" and .summary.shipments == 0 and .summary.total_cost == "0"' "test mode: nothing (the day used a production key)"

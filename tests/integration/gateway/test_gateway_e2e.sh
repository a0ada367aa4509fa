#!/usr/bin/env bash
# End to end: create -> buy through the gateway; the sync worker writes the
# shipment into PostgreSQL (with its rate and addresses); easypost-sim plays
# tracker webhooks into the webhook receiver and they show up in the
# shipment's timeline in /db/shipments/{id}.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$(dirname "$0")/common.sh"
for b in shipstream-sync-worker shipstream-webhook-receiver easypost-sim shipstream-gateway; do
  [ -x "$SS_BIN_DIR/$b" ] || { echo "SKIP: $b is not built"; exit 77; }
done

ss_test_migrated_db gw_e2e
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
SECRET="s3cret-$RANDOM"

WH_PORT=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/wh.log" env LISTEN=127.0.0.1:$WH_PORT KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" EASYPOST_WEBHOOK_SECRET="$SECRET" "$SS_BIN_DIR/shipstream-webhook-receiver" >/dev/null
SW_PORT=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/sw.log" env LISTEN=127.0.0.1:$SW_PORT DATABASE_URL="$DB_URL" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  KAFKA_GROUP_ID="e2e-$RANDOM" "$SS_BIN_DIR/shipstream-sync-worker" >/dev/null
# one simulated day per second: the whole journey in a few seconds
gw_start_sim SIM_WEBHOOK_URL="http://127.0.0.1:$WH_PORT/webhooks/easypost" EASYPOST_WEBHOOK_SECRET="$SECRET" SIM_TIME_SCALE=1
gw_start
ss_wait_for 30 curl -fsS "http://127.0.0.1:$WH_PORT/ready" || ss_fail "webhook receiver not ready"
ss_wait_for 30 curl -fsS "http://127.0.0.1:$SW_PORT/ready" || ss_fail "sync worker not ready"

call POST /v1/shipments "$FIX/api/shipment-create.request.json"; expect 201 "create"
SHP=$(jq -r .id <<<"$BODY"); RATE=$(jq -r '.rates[0].id' <<<"$BODY"); RATE_AMT=$(jq -r '.rates[0].rate' <<<"$BODY")
printf '{"rate":{"id":"%s"}}' "$RATE" >"$SS_TEST_TMP/buy.json"
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 200 "buy"

synced() {
  curl -fsS -H "Authorization: Bearer $API_KEY" "$GW/db/shipments/$SHP" >"$SS_TEST_TMP/db.json" &&
  jq -e --arg r "$RATE" '.selected_rate.id == $r and .from_address.city != null and .to_address.city != null and .carrier != null' "$SS_TEST_TMP/db.json"
}
ss_wait_for 60 synced || ss_fail "bought shipment not in /db/shipments/$SHP: $(cat "$SS_TEST_TMP/db.json" 2>/dev/null | head -c 600)"
jq -e --arg a "$RATE_AMT" '(.selected_rate.rate | tonumber) == ($a | tonumber)' "$SS_TEST_TMP/db.json" >/dev/null || ss_fail "rate amount"
ss_pass "create -> buy -> /db/shipments/$SHP with its rate and addresses"

timeline() {
  curl -fsS -H "Authorization: Bearer $API_KEY" "$GW/db/shipments/$SHP" >"$SS_TEST_TMP/db.json" &&
  jq -e '(.tracking_events | length) >= 2 and .status != "unknown"' "$SS_TEST_TMP/db.json"
}
ss_wait_for 90 timeline || ss_fail "tracker webhooks never reached the timeline: $(head -c 800 "$SS_TEST_TMP/db.json")"
ss_pass "tracker webhooks from easypost-sim in the timeline: $(jq -c '[.tracking_events[].status]' "$SS_TEST_TMP/db.json"), status $(jq -r .status "$SS_TEST_TMP/db.json")"

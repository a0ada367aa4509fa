#!/usr/bin/env bash
# GET /openapi.json serves services/gateway/openapi.json without a key, and the document is
# true: a valid OpenAPI 3.1 document (openapi-spec-validator), EasyPost's recorded answers fit
# its schemas, its paths and methods equal `shipstream-gateway --routes`, the /db parameters it
# lists are the ones the gateway knows, and every answer fetched here from a running gateway
# (seeded /db data, errors included) has a documented status, Content-Type and body schema.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
DOC="$SS_SOURCE_ROOT/services/gateway/openapi.json"
PY=$("$SS_SOURCE_ROOT/tests/python/venv.sh") || ss_fail "the tests' Python environment (tests/python/venv.sh)"
check() { "$PY" "$HERE/openapi_check.py" "$@"; }

ss_test_migrated_db openapi
PREFIX=$(ss_test_prefix)
gw_start_sim
gw_start

# 1. Served without a key, as JSON, byte for byte the file in the repository.
served="$SS_TEST_TMP/served.json"
code=$(curl -sS -o "$served" -D "$SS_TEST_TMP/h" -w '%{http_code}' "$GW/openapi.json") || code=000
[ "$code" = 200 ] || ss_fail "GET /openapi.json without a key: $code"
grep -qi '^content-type: application/json' "$SS_TEST_TMP/h" || ss_fail "Content-Type: $(grep -i content-type "$SS_TEST_TMP/h")"
cmp -s "$served" "$DOC" || ss_fail "the served document differs from services/gateway/openapi.json"
ss_pass "GET /openapi.json: 200, application/json, no key, the repository's file"

# 2. A valid 3.1 document whose EasyPost schemas accept what EasyPost really sends.
check spec "$served" "$FIX/api" || ss_fail "the document is not valid (above)"

# 3. Its paths and methods are the routes the gateway registers.
"$SS_BIN_DIR/shipstream-gateway" --routes >"$SS_TEST_TMP/routes" 2>"$SS_TEST_TMP/routes.err" \
  || ss_fail "shipstream-gateway --routes failed: $(head -c 300 "$SS_TEST_TMP/routes.err")"
check routes "$served" "$SS_TEST_TMP/routes" || ss_fail "document and routes differ (above)"

# 4. Answers of the running gateway against the document: EasyPost's (from easypost-sim;
# expect= where the sim serves the call today, otherwise whatever status comes must be a
# documented one with its schema), /db's on seeded data, errors, the rest.
ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "seed"
INSERT INTO addresses (id, mode, name, street1, city, state, zip, country, verified, created_at, updated_at) VALUES
  ('adr_oa_from', 'test', 'Elizabeth Swan', '179 N Harbor Dr', 'Redondo Beach', 'CA', '90277', 'US', true, now(), now()),
  ('adr_oa_to', 'production', 'Jack Sparrow', '388 Townsend St', 'San Francisco', 'CA', '94107', 'US', NULL, now(), now());
INSERT INTO parcels (id, mode, length, width, height, weight) VALUES ('prcl_oa', 'test', 10, 8, 4, 15.4);
INSERT INTO shipments (id, mode, status, tracking_code, tracker_id, carrier, service, selected_rate_id, rate,
                       total_cost, currency, delivery_days, est_delivery_date, delivered_at, from_address_id,
                       to_address_id, parcel_id, is_return, created_at, updated_at, raw)
SELECT 'shp_oa_' || i, CASE WHEN i % 2 = 0 THEN 'test' ELSE 'production' END,
       CASE WHEN i = 1 THEN 'delivered' ELSE 'in_transit' END, '94001' || i, 'trk_oa_' || i, 'USPS', 'Priority',
       CASE WHEN i = 1 THEN 'rate_oa_1' END, 8.20 + i, 8.20 + i, 'USD', 2,
       now() - interval '1 day', CASE WHEN i = 1 THEN now() - interval '2 days' END, 'adr_oa_from', 'adr_oa_to',
       'prcl_oa', i = 3, now() - i * interval '1 day', now(),
       jsonb_build_object('id', 'shp_oa_' || i, 'object', 'Shipment',
         'from_address', jsonb_build_object('city', 'Redondo Beach', 'state', 'CA', 'country', 'US'),
         'to_address', jsonb_build_object('city', 'San Francisco', 'state', 'CA', 'country', 'US'))
FROM generate_series(1, 3) i;
INSERT INTO rates (id, shipment_id, carrier, service, rate, currency, delivery_days, retail_rate, list_rate)
VALUES ('rate_oa_1', 'shp_oa_1', 'USPS', 'Priority', 9.20, 'USD', 2, 10.20, 9.50);
INSERT INTO trackers (id, mode, tracking_code, status, carrier, shipment_id) VALUES
  ('trk_oa_1', 'production', '940011', 'delivered', 'USPS', 'shp_oa_1');
INSERT INTO tracking_events (tracker_id, shipment_id, occurred_at, status, message, city, state, country, zip) VALUES
  ('trk_oa_1', 'shp_oa_1', now() - interval '3 days', 'in_transit', 'Accepted', 'Redondo Beach', 'CA', 'US', '90277'),
  ('trk_oa_1', 'shp_oa_1', now() - interval '2 days', 'delivered', 'Delivered', 'San Francisco', 'CA', 'US', '94107');
INSERT INTO kafka_offsets (consumer_group, topic, partition, next_offset) VALUES ('shipstream-sync', 'it.none.shipments', 0, 3);
SELECT * FROM refresh_analytics_views(false);
SQL
cursor=$(curl -fsS -H "Authorization: Bearer $API_KEY" "$GW/db/shipments?limit=1" | jq -r .next_cursor)
[ -n "$cursor" ] && [ "$cursor" != null ] || ss_fail "no next_cursor on a page of 1 of 3 shipments"
acursor=$(curl -fsS -H "Authorization: Bearer $API_KEY" "$GW/db/addresses?limit=1" | jq -r .next_cursor)
# Shipments made here first (their ids and rates go into bodies); every other object is made
# by the requests below, which keep what later ones need (save=).
mkshp() {
  curl -fsS -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
    --data-binary "@$FIX/api/shipment-create.request.json" "$GW/v2/shipments" || ss_fail "create a shipment"
}
shp=$(mkshp); A=$(jq -r .id <<<"$shp")
jq '{rate: {id: .rates[0].id}}' <<<"$shp" >"$SS_TEST_TMP/buy.json"
B=$(mkshp | jq -r .id); C=$(mkshp | jq -r .id)
T=$SS_TEST_TMP
jq -n --arg s "$B" '{batch: {shipments: [{id: $s}]}}' >"$T/batch.json"
jq -n --arg s "$C" '{shipments: [{id: $s}]}' >"$T/batch_shipments.json"
jq -n --arg s "$A" '{scan_form: {shipments: [{id: $s}]}}' >"$T/scan_form.json"
echo '{"amount": "100.00"}' >"$T/insure.json"
echo '{"file_format": "PDF"}' >"$T/pdf.json"
addr=$(jq '.shipment.from_address' "$FIX/api/shipment-create.request.json")
jq -n --argjson a "$addr" '{address: $a}' >"$T/address.json"
jq -n --argjson a "$addr" --arg s "$A" '{pickup: {address: $a, shipment: {id: $s}, reference: "openapi",
  min_datetime: "2030-01-01T10:00:00Z", max_datetime: "2030-01-01T16:00:00Z",
  is_account_address: false, instructions: "front desk"}}' >"$T/pickup.json"
echo '{"carrier": "USPS", "service": "NextDay"}' >"$T/pickup_buy.json"
jq -n --argjson a "$addr" '{insurance: {from_address: $a, to_address: $a, tracking_code: "EZ1000000001",
  carrier: "USPS", amount: "100.00", reference: "openapi"}}' >"$T/insurance.json"
echo '{"refund": {"carrier": "USPS", "tracking_codes": ["@TC_B@"]}}' >"$T/refund.json"
cat >"$SS_TEST_TMP/requests" <<EOF2
POST /v2/shipments body=$FIX/api/shipment-create.request.json expect=201
GET /v2/shipments/$A expect=200
GET /v2/shipments?page_size=2 expect=200
POST /v2/shipments/$B/rerate expect=200
POST /v2/shipments/$A/buy body=$T/buy.json expect=200
GET /v2/shipments/$A/label?file_format=PDF expect=200
POST /v2/shipments/$A/insure body=$T/insure.json expect=200
POST /v2/scan_forms body=$T/scan_form.json expect=200 save=SF
GET /v2/scan_forms/@SF@ expect=200
GET /v2/scan_forms expect=200
POST /v2/batches body=$T/batch.json expect=200 save=BATCH
POST /v2/batches/@BATCH@/add_shipments body=$T/batch_shipments.json expect=200
POST /v2/batches/@BATCH@/remove_shipments body=$T/batch_shipments.json expect=200
POST /v2/batches/@BATCH@/buy expect=200
POST /v2/batches/@BATCH@/label body=$T/pdf.json expect=200
POST /v2/batches/@BATCH@/scan_form expect=200
GET /v2/batches/@BATCH@ expect=200
GET /v2/batches expect=200
GET /v2/shipments/$B expect=200 save=TC_B=tracking_code
POST /v2/refunds body=$T/refund.json expect=201 save=RFND=0.id
GET /v2/refunds/@RFND@ expect=200
GET /v2/refunds expect=200
POST /v2/shipments/$A/refund expect=200
POST /v2/pickups body=$T/pickup.json expect=200 save=PICKUP
POST /v2/pickups/@PICKUP@/buy body=$T/pickup_buy.json expect=200
POST /v2/pickups/@PICKUP@/cancel expect=200
GET /v2/pickups/@PICKUP@ expect=200
GET /v2/pickups expect=200
POST /v2/insurances body=$T/insurance.json expect=201 save=INS
GET /v2/insurances/@INS@ expect=200
GET /v2/insurances expect=200
POST /v2/trackers body=$FIX/api/tracker-create.request.json expect=200 save=TRK
GET /v2/trackers/@TRK@ expect=200
GET /v2/trackers expect=200
POST /v2/addresses body=$T/address.json expect=201 save=ADR
GET /v2/addresses/@ADR@ expect=200
GET /v2/addresses/@ADR@/verify expect=200
POST /v2/addresses/create_and_verify body=$FIX/api/address-create-and-verify.request.json expect=200
GET /v2/addresses expect=200
GET /v2/events?page_size=5 expect=200 save=EVT=events.0.id
GET /v2/events/@EVT@ expect=200
POST /v2/shipments body=$FIX/api/error-422.request.json expect=422
GET /v2/shipments/shp_doesnotexist expect=404
GET /v2/shipments/$A nokey expect=401
GET /v2/parcels/prcl_doesnotexist expect=404
POST /v1/shipments body=$FIX/api/shipment-create.request.json expect=201
GET /v1/shipments/$A expect=200
GET /db/shipments expect=200
GET /db/shipments?limit=1 expect=200
GET /db/shipments?limit=1&cursor=$cursor expect=200
GET /db/shipments?status=delivered&carrier=USPS&created_from=2020-01-01 expect=200
GET /db/shipments?mode=all expect=200
GET /db/shipments?mode=test expect=200
GET /db/shipments/shp_oa_1 expect=200
GET /db/shipments/shp_oa_2 expect=200
GET /db/shipments/shp_missing expect=404
GET /db/shipments?limit=0 expect=400
GET /db/shipments?cursor=zz expect=400
GET /db/shipments nokey expect=401
POST /db/shipments expect=405
GET /db/addresses expect=200
GET /db/addresses?q=sparrow expect=200
GET /db/addresses?limit=1&cursor=$acursor expect=200
GET /db/addresses?limit=500 expect=400
GET /db/analytics/dashboard expect=200
GET /db/analytics/dashboard?days=7&mode=all expect=200
GET /db/analytics/dashboard?mode=test expect=200
GET /db/analytics/dashboard?days=401 expect=400
GET /db/analytics/dashboard nokey expect=401
GET /db/pipeline expect=200
GET /db/pipeline?x=1 expect=400
GET /openapi.json nokey expect=200
GET /health nokey expect=200
GET /ready nokey
GET /metrics nokey expect=200
GET / nokey expect=302
GET /dashboard nokey expect=200
GET /dashboard/dashboard.js nokey expect=200
GET /dashboard/nothing.js nokey expect=404
EOF2
check http "$served" "$GW" "$API_KEY" "$SS_TEST_TMP/requests" || ss_fail "answers that do not match the document (above)"
check params "$served" "$GW" "$API_KEY" || ss_fail "/db parameters differ from the document (above)"
ss_pass "openapi: the document is valid and true"

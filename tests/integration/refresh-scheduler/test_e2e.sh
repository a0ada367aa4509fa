#!/usr/bin/env bash
# End to end: a delivered tracker.updated webhook (signed, through the webhook
# receiver, Kafka and the sync worker, which NOTIFYs) moves the dashboard's
# delivered count (mv_daily_shipment_analytics) within a minute.
# Skips (exit 77) when the sync worker or webhook receiver is not built.
set -uo pipefail
source "$(dirname "$0")/common.sh"

for b in shipstream-sync-worker shipstream-webhook-receiver; do
  if [ ! -x "$SS_BIN_DIR/$b" ]; then
    echo "SKIP: $SS_BIN_DIR/$b is not built; the end-to-end refresh test needs it"
    exit 77
  fi
done

ss_test_migrated_db rs_e2e
prefix=$(ss_test_prefix)
ss_test_create_topics "$prefix" 3 || ss_fail "topics"
secret="e2e-secret-$$"

# A purchased shipment in transit, created today (inside the 90-day window).
q "INSERT INTO shipments (id, status, tracking_code, tracker_id, carrier, service, total_cost,
     currency, created_at, updated_at)
   VALUES ('shp_e2e_1', 'in_transit', 'E2E0001', 'trk_e2e_1', 'FedEx', 'FEDEX_GROUND', 12.34,
     'USD', now() - interval '1 hour', now() - interval '1 hour')"

rport=$(ss_free_port); wport=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/receiver.log" env LISTEN="127.0.0.1:$rport" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$prefix" \
  EASYPOST_WEBHOOK_SECRET="$secret" LOG_FORMAT=text "$SS_BIN_DIR/shipstream-webhook-receiver" >/dev/null
ss_start_bg "$SS_TEST_TMP/worker.log" env LISTEN="127.0.0.1:$wport" DATABASE_URL="$DB_URL" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$prefix" \
  KAFKA_GROUP_ID="rs-e2e-$$" LOG_FORMAT=text "$SS_BIN_DIR/shipstream-sync-worker" >/dev/null
rs_start a REFRESH_MIN_INTERVAL_SECONDS=5
ss_wait_for 30 curl -fsS "http://127.0.0.1:$rport/ready" || ss_fail "webhook receiver not ready"
ss_wait_for 30 curl -fsS "http://127.0.0.1:$wport/ready" || ss_fail "sync worker not ready"
ss_wait_for 10 rs_log_at_least 3 "outcome = 'success'" || ss_fail "no first refresh"
delivered() { q "SELECT coalesce(sum(delivered_count), 0) FROM mv_daily_shipment_analytics WHERE carrier = 'FedEx'"; }
[ "$(delivered)" = 0 ] || ss_fail "delivered count not 0 at the start"
[ "$(q "SELECT coalesce(sum(shipment_count), 0) FROM mv_daily_shipment_analytics WHERE carrier = 'FedEx'")" = 1 ] ||
  ss_fail "the shipment is not in the dashboard"

# The real tracker.updated fixture, turned into a delivery of our shipment.
body=$(python3 - "$SS_FIXTURES_DIR/event-tracker-updated.json" <<'PY'
import json, sys, datetime
ev = json.load(open(sys.argv[1]))
now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
ev['id'] = 'evt_e2e_delivered_1'
ev['created_at'] = ev['updated_at'] = now
t = ev['result']
t.update(id='trk_e2e_1', shipment_id='shp_e2e_1', tracking_code='E2E0001', status='delivered',
         status_detail='arrived_at_destination', updated_at=now,
         est_delivery_date=now)
d = dict(t['tracking_details'][-1])
d.update(status='delivered', status_detail='arrived_at_destination', message='Delivered',
         description='Delivered', datetime=now)
t['tracking_details'].append(d)
print(json.dumps(ev, separators=(',', ':')))
PY
) || ss_fail "building the webhook body"
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
t0=${EPOCHREALTIME/./}
code=$(curl -sS -o "$SS_TEST_TMP/wh.out" -w '%{http_code}' -X POST \
  -H 'Content-Type: application/json' -H "X-Hmac-Signature: hmac-sha256-hex=$sig" \
  --data-binary "$body" "http://127.0.0.1:$rport/webhooks/easypost")
[ "$code" = 200 ] || ss_fail "webhook answered $code: $(cat "$SS_TEST_TMP/wh.out")"
delivered_is_1() { [ "$(delivered)" = 1 ]; }
ss_wait_for 60 delivered_is_1 ||
  ss_fail "delivered count did not move within 60 s (shipment: $(q "SELECT status, delivered_at FROM shipments WHERE id = 'shp_e2e_1'"))"
ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
[ "$(rs_metric a notifications_received_total)" -ge 1 ] || ss_fail "no NOTIFY from the sync worker reached the scheduler"
ss_pass "delivered tracker.updated webhook -> dashboard delivered count 0 -> 1 in ${ms} ms"

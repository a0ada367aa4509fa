#!/usr/bin/env bash
# Every object type lands in PostgreSQL (migration 0006), through Kafka into the real worker:
# Refund, Pickup, ScanForm, Insurance in their tables, any other type with an id in the raw
# archive (easypost_objects), an Event read from the API in easypost_events under its own id,
# a Batch's shipments get their batch columns.  Refunds mark their shipment behind their own
# gate: a refund seen before its shipment still marks it (placeholder row, then filled), an
# older shipment version does not unmark it, an older Refund does not override a newer
# shipment's own refund_status.  Stale versions and replays change nothing.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_objects --shipments 1
N=0
# env_line <file> <source> <type> <object_type> <object_id> <updated_at> <object json> [event json]
# appends one envelope (key = object id; event id evt_<TAG>_o<N>, or the Event's) to
# $SS_TEST_TMP/<file>.tsv
env_line() {
  local file=$1 src=$2 type=$3 otype=$4 oid=$5 upd=$6 obj=$7 ev=${8:-}
  N=$((N + 1))
  local eid="evt_${TAG}_o$N"
  [ -n "$ev" ] && eid=$(jq -r .id <<<"$ev")
  printf '%s\t{"schema_version":1,"event_id":"%s","type":"%s","source":"%s","object_type":"%s","object_id":"%s","updated_at":"%s","received_at":"2026-11-30T12:00:00Z","request_id":null,"object":%s%s}\n' \
    "$oid" "$eid" "$type" "$src" "$otype" "$oid" "$upd" "$obj" "${ev:+,\"event\":$ev}" >>"$SS_TEST_TMP/$file.tsv"
}
produce() { # <file> <topic>
  ss_kafkactl produce -t "${PREFIX}$2" <"$SS_TEST_TMP/$1.tsv" >/dev/null || ss_fail "produce $1"
}
applied_all() { [ "$(q "SELECT count(*) FROM processed_events WHERE event_id LIKE 'evt\_${TAG}\_o%' OR event_id LIKE 'evt\_wh${TAG}%'")" = "$N" ]; }
wait_applied() { ss_wait_for 60 applied_all || ss_fail "only $(q "SELECT count(*) FROM processed_events WHERE event_id LIKE 'evt\_${TAG}\_o%' OR event_id LIKE 'evt\_wh${TAG}%'") of $N envelopes applied"; }

T0=2026-11-20T08:00:00Z T1=2026-11-20T09:00:00Z T2=2026-11-20T10:00:00Z T3=2026-11-20T10:05:00Z T5=2026-11-20T12:00:00Z
S1="shp_${TAG}_1" S2="shp_${TAG}_2"
ship() { # <id> <updated_at> <refund_status json>
  printf '{"id":"%s","object":"Shipment","mode":"production","created_at":"%s","updated_at":"%s","status":"pre_transit","is_return":false,"refund_status":%s,"batch_id":null,"batch_status":null,"batch_message":null,"tracking_code":"9400%s","selected_rate":{"id":"rate_%s","object":"Rate","carrier":"USPS","service":"Priority","rate":"12.00","currency":"USD"},"fees":[]}' \
    "$1" "$T0" "$2" "$3" "$1" "$1"
}

sw_start a
ss_wait_for 30 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${SW_PORT[a]}/ready) = 200 ]" || ss_fail "worker never ready"

# 1. The refund first: submitted (T2), then refund.successful (T3) as a webhook whose Refund
#    says no status, then the submitted version again (stale) under a new event id.
env_line r1 gateway refund.created Refund "rfnd_${TAG}_1" "$T2" \
  "{\"id\":\"rfnd_${TAG}_1\",\"object\":\"Refund\",\"mode\":\"production\",\"shipment_id\":\"$S1\",\"tracking_code\":\"9400$S1\",\"carrier\":\"USPS\",\"status\":\"submitted\",\"confirmation_number\":null,\"created_at\":\"$T2\",\"updated_at\":\"$T2\"}"
produce r1 events
wait_applied
env_line r2 webhook refund.successful Refund "rfnd_${TAG}_1" "$T3" \
  "{\"id\":\"rfnd_${TAG}_1\",\"object\":\"Refund\",\"mode\":\"production\",\"shipment_id\":\"$S1\",\"tracking_code\":\"9400$S1\",\"carrier\":\"USPS\",\"confirmation_number\":\"C123\",\"created_at\":\"$T2\",\"updated_at\":\"$T3\"}" \
  "{\"object\":\"Event\",\"id\":\"evt_wh${TAG}_1\",\"description\":\"refund.successful\",\"mode\":\"production\"}"
produce r2 events
wait_applied
env_line r3 gateway refund.retrieved Refund "rfnd_${TAG}_1" "$T2" \
  "{\"id\":\"rfnd_${TAG}_1\",\"object\":\"Refund\",\"mode\":\"production\",\"shipment_id\":\"$S1\",\"status\":\"submitted\",\"created_at\":\"$T2\",\"updated_at\":\"$T2\"}"
produce r3 events
wait_applied
got=$(q "SELECT coalesce(status, 'NULL') || '|' || confirmation_number || '|' || (raw->>'id') FROM refunds WHERE id = 'rfnd_${TAG}_1'")
[ "$got" = "NULL|C123|rfnd_${TAG}_1" ] || ss_fail "refunds row after the stale version: '$got'"
got=$(q "SELECT refund_status || '|' || (created_at IS NULL) || '|' || to_char(refund_updated_at AT TIME ZONE 'UTC', 'HH24:MI') FROM shipments WHERE id = '$S1'")
[ "$got" = "refunded|true|10:05" ] || ss_fail "refund before its shipment: '$got'"
[ "$(q "SELECT description || '|' || object_type FROM easypost_events WHERE id = 'evt_wh${TAG}_1'")" = "refund.successful|Refund" ] ||
  ss_fail "the webhook Event is not in easypost_events"
ss_pass "a refund before its shipment marks it (placeholder refunded at 10:05); the older Refund changes nothing"

# 2. The shipment arrives, older (T1) than the refund and without refund_status: filled in,
#    still refunded.  S2: its own refund_status submitted (T1), then a Refund refunded from
#    T0 (older): the shipment's newer word stands.
env_line s1 gateway shipment.purchased Shipment "$S1" "$T1" "$(ship "$S1" "$T1" null)"
env_line s1 gateway shipment.purchased Shipment "$S2" "$T1" "$(ship "$S2" "$T1" '"submitted"')"
produce s1 shipments
wait_applied
# S1 again, newer than its stored version (T2) but older than the refund (T3), saying
# submitted: the shipment's other columns follow it, its refund_status does not.
env_line s2 gateway shipment.retrieved Shipment "$S1" "$T2" "$(ship "$S1" "$T2" '"submitted"')"
produce s2 shipments
wait_applied
env_line r4 gateway refund.retrieved Refund "rfnd_${TAG}_2" "$T0" \
  "{\"id\":\"rfnd_${TAG}_2\",\"object\":\"Refund\",\"mode\":\"production\",\"shipment_id\":\"$S2\",\"status\":\"refunded\",\"created_at\":\"$T0\",\"updated_at\":\"$T0\"}"
produce r4 events
wait_applied
got=$(q "SELECT id || ':' || refund_status || ':' || carrier || ':' || total_cost || ':' || mode FROM shipments WHERE id IN ('$S1', '$S2') ORDER BY id")
expect="$S1:refunded:USPS:12.00:production
$S2:submitted:USPS:12.00:production"
[ "$got" = "$expect" ] || ss_fail "shipments after the shipment and the older refund: '$got'"
got=$(q "SELECT to_char(updated_at AT TIME ZONE 'UTC', 'HH24:MI') || '|' || to_char(refund_updated_at AT TIME ZONE 'UTC', 'HH24:MI') FROM shipments WHERE id = '$S1'")
[ "$got" = "10:00|10:05" ] || ss_fail "$S1 versions (shipment|refund): '$got', expected 10:00|10:05"
[ "$(q "SELECT status FROM refunds WHERE id = 'rfnd_${TAG}_2'")" = refunded ] || ss_fail "refund 2 not stored"
ss_pass "shipment versions older than the refund keep it (without and with a refund_status of their own); an older Refund does not override the shipment's own refund_status"

# 3. Every other type; a Batch carrying S1; stale versions (pickup) and an Event from the API.
env_line o1 gateway pickup.created Pickup "pickup_${TAG}_1" "$T2" \
  "{\"id\":\"pickup_${TAG}_1\",\"object\":\"Pickup\",\"mode\":\"production\",\"status\":\"scheduled\",\"reference\":\"ref1\",\"confirmation\":\"WTC123\",\"min_datetime\":\"$T2\",\"max_datetime\":\"$T3\",\"is_account_address\":false,\"instructions\":\"front door\",\"address\":{\"id\":\"adr_${TAG}_p\",\"object\":\"Address\"},\"pickup_rates\":[],\"created_at\":\"$T1\",\"updated_at\":\"$T2\"}"
env_line o1 gateway pickup.retrieved Pickup "pickup_${TAG}_1" "$T1" \
  "{\"id\":\"pickup_${TAG}_1\",\"object\":\"Pickup\",\"mode\":\"production\",\"status\":\"unknown\",\"created_at\":\"$T1\",\"updated_at\":\"$T1\"}"
env_line o1 gateway scan_form.created ScanForm "sf_${TAG}_1" "$T2" \
  "{\"id\":\"sf_${TAG}_1\",\"object\":\"ScanForm\",\"status\":\"created\",\"message\":null,\"address\":{\"id\":\"adr_${TAG}_s\"},\"tracking_codes\":[\"9400$S1\",\"9400$S2\"],\"form_url\":\"https://example.invalid/sf.pdf\",\"form_file_type\":null,\"batch_id\":\"batch_${TAG}_1\",\"confirmation\":null,\"created_at\":\"$T2\",\"updated_at\":\"$T2\"}"
env_line o1 gateway insurance.created Insurance "ins_${TAG}_1" "$T2" \
  "{\"id\":\"ins_${TAG}_1\",\"object\":\"Insurance\",\"mode\":\"production\",\"reference\":null,\"status\":\"pending\",\"amount\":\"100.00000\",\"provider\":\"easypost\",\"provider_id\":null,\"shipment_id\":\"$S2\",\"tracking_code\":\"9400$S2\",\"tracker\":{\"id\":\"trk_${TAG}_i\",\"object\":\"Tracker\"},\"fee\":{\"object\":\"Fee\",\"type\":\"InsuranceFee\",\"amount\":\"1.00000\",\"charged\":true},\"from_address\":{\"id\":\"adr_${TAG}_f\"},\"to_address\":{\"id\":\"adr_${TAG}_t\"},\"created_at\":\"$T2\",\"updated_at\":\"$T2\"}"
env_line o1 gateway carrier_account.retrieved CarrierAccount "ca_${TAG}_1" "$T2" \
  "{\"id\":\"ca_${TAG}_1\",\"object\":\"CarrierAccount\",\"type\":\"UspsAccount\",\"created_at\":\"$T1\",\"updated_at\":\"$T2\"}"
env_line o1 gateway event.retrieved Event "evt_api${TAG}_1" "$T2" \
  "{\"id\":\"evt_api${TAG}_1\",\"object\":\"Event\",\"mode\":\"production\",\"description\":\"tracker.updated\",\"status\":\"completed\",\"result\":{\"id\":\"trk_${TAG}_x\",\"object\":\"Tracker\"},\"created_at\":\"$T2\",\"updated_at\":\"$T2\"}"
produce o1 events
env_line b1 gateway batch.updated Batch "batch_${TAG}_1" "$T5" \
  "{\"id\":\"batch_${TAG}_1\",\"object\":\"Batch\",\"mode\":\"production\",\"state\":\"purchased\",\"num_shipments\":1,\"reference\":null,\"label_url\":null,\"scan_form\":null,\"status\":{\"created\":0,\"postage_purchased\":1},\"shipments\":[{\"id\":\"$S1\",\"batch_status\":\"postage_purchased\",\"batch_message\":null,\"reference\":null,\"tracking_code\":\"9400$S1\"}],\"created_at\":\"$T1\",\"updated_at\":\"$T5\"}"
produce b1 batches
wait_applied
# S2 in a batch (T5), then a version of S2 from before the batch (T3, not in a batch): the
# batch's word stands for the batch columns, the rest follows the shipment.
env_line b2 gateway batch.updated Batch "batch_${TAG}_2" "$T5" \
  "{\"id\":\"batch_${TAG}_2\",\"object\":\"Batch\",\"mode\":\"production\",\"state\":\"created\",\"shipments\":[{\"id\":\"$S2\",\"batch_status\":\"created\",\"batch_message\":\"queued\"}],\"created_at\":\"$T1\",\"updated_at\":\"$T5\"}"
produce b2 batches
wait_applied
env_line s3 gateway shipment.retrieved Shipment "$S2" "$T3" "$(ship "$S2" "$T3" '"submitted"')"
produce s3 shipments
wait_applied
check() { # <what> <sql> <expected>
  local got; got=$(q "$2")
  [ "$got" = "$3" ] || ss_fail "$1: '$got', expected '$3'"
}
check pickup "SELECT status || '|' || confirmation || '|' || address_id || '|' || is_account_address || '|' || to_char(max_datetime AT TIME ZONE 'UTC', 'HH24:MI') FROM pickups WHERE id = 'pickup_${TAG}_1'" \
  "scheduled|WTC123|adr_${TAG}_p|false|10:05"
check scan_form "SELECT status || '|' || batch_id || '|' || address_id || '|' || jsonb_array_length(tracking_codes) || '|' || (raw->>'form_url') FROM scan_forms WHERE id = 'sf_${TAG}_1'" \
  "created|batch_${TAG}_1|adr_${TAG}_s|2|https://example.invalid/sf.pdf"
check insurance "SELECT status || '|' || amount || '|' || fee_amount || '|' || shipment_id || '|' || tracker_id || '|' || to_address_id FROM insurances WHERE id = 'ins_${TAG}_1'" \
  "pending|100.00000|1.00000|$S2|trk_${TAG}_i|adr_${TAG}_t"
check archive "SELECT object_type || '|' || (raw->>'type') || '|' || to_char(updated_at AT TIME ZONE 'UTC', 'HH24:MI') FROM easypost_objects WHERE id = 'ca_${TAG}_1'" \
  "CarrierAccount|UspsAccount|10:00"
check "API Event" "SELECT description || '|' || object_type || '|' || object_id || '|' || (payload->>'id') FROM easypost_events WHERE id = 'evt_api${TAG}_1'" \
  "tracker.updated|Tracker|trk_${TAG}_x|evt_api${TAG}_1"
check "batch columns" "SELECT batch_id || '|' || batch_status || '|' || refund_status FROM shipments WHERE id = '$S1'" \
  "batch_${TAG}_1|postage_purchased|refunded"
check "batch columns against an older shipment" "SELECT batch_id || '|' || batch_status || '|' || batch_message || '|' || to_char(updated_at AT TIME ZONE 'UTC', 'HH24:MI') FROM shipments WHERE id = '$S2'" \
  "batch_${TAG}_2|created|queued|10:05"
check "gateway envelopes of typed objects are not in easypost_events" \
  "SELECT count(*) FROM easypost_events WHERE object_id IN ('pickup_${TAG}_1', 'sf_${TAG}_1', 'ins_${TAG}_1', 'ca_${TAG}_1', 'rfnd_${TAG}_1')" 1
ss_pass "Pickup, ScanForm, Insurance in their tables (the older pickup version ignored), CarrierAccount archived, an API Event by its id, a Batch's shipment marked"

# 4. Replays: everything again, same event ids: nothing changes.
snap() { q "SELECT md5(string_agg(j::text, '|' ORDER BY j::text)) FROM (
  SELECT to_jsonb(s) - 'synced_at' FROM shipments s UNION ALL SELECT to_jsonb(r) - 'synced_at' FROM refunds r
  UNION ALL SELECT to_jsonb(p) - 'synced_at' FROM pickups p UNION ALL SELECT to_jsonb(f) - 'synced_at' FROM scan_forms f
  UNION ALL SELECT to_jsonb(i) - 'synced_at' FROM insurances i UNION ALL SELECT to_jsonb(o) - 'synced_at' FROM easypost_objects o
  UNION ALL SELECT to_jsonb(e) - 'received_at' FROM easypost_events e) y(j)"; }
before=$(snap)
dups0=$(sw_metric a sync_duplicates_skipped_total) || ss_fail "metrics"
for f in r1 r2 r3 r4 o1; do produce $f events; done
produce s1 shipments; produce s2 shipments; produce s3 shipments; produce b1 batches; produce b2 batches
dups_all() { [ "$(sw_metric a sync_duplicates_skipped_total)" -ge $((dups0 + N)) ]; }
ss_wait_for 60 dups_all || ss_fail "replays not all seen as duplicates: $(sw_metric a sync_duplicates_skipped_total) - $dups0 of $N"
[ "$(snap)" = "$before" ] || ss_fail "a replay changed a row"
ss_pass "replaying all $N envelopes changes nothing"

ss_stop_bg "${SW_PID[a]}" 20 || ss_fail "worker did not stop cleanly"

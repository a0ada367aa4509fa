#!/usr/bin/env bash
# Rolling upgrade: envelopes written by the writers this version replaced
# (tests/fixtures/envelopes/v1: gateway json-c, receiver splicer, generator
# snprintf), produced to the topics the old producers chose, are applied by
# the new worker: every object lands in its table with the values it
# carries, every webhook Event is in easypost_events under its event id
# (also those whose object has a table), nothing is dead-lettered.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_v1 --shipments 1
command -v jq >/dev/null || ss_fail "jq missing"

V1="$SS_SOURCE_ROOT/tests/fixtures/envelopes/v1"
# name -> the topic the old producers sent it to (see the README there)
declare -A OLD_TOPIC=(
  [gateway-shipment-create]=shipments [gateway-shipment-buy]=shipments
  [gateway-tracker-create]=trackers [gateway-tracker-retrieve]=trackers
  [gateway-address-create-and-verify]=addresses [gateway-batch-create]=batches
  [webhook-tracker-updated]=trackers [webhook-batch-created]=batches
  [webhook-refund-successful]=events [webhook-scan-form-created]=events
  [webhook-shipment-result]=events [webhook-unknown-result]=events
  [gen-shipments]=shipments [gen-trackers]=trackers [gen-addresses]=addresses
)
for name in "${!OLD_TOPIC[@]}"; do
  [ -f "$V1/$name.json" ] || ss_fail "fixture $name missing"
  # one line per message for ss-kafkactl: newlines (whitespace between tokens in
  # webhook-shipment-result, whose result was spliced as sent) become spaces
  printf '%s\t%s\n' "$(cat "$V1/$name.key")" "$(tr '\n' ' ' <"$V1/$name.json")" >>"$SS_TEST_TMP/${OLD_TOPIC[$name]}.tsv"
done
[ "$(ls "$V1"/*.json | wc -l)" = "${#OLD_TOPIC[@]}" ] || ss_fail "a v1 fixture is not produced by this test"

sw_start a
ss_wait_for 30 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${SW_PORT[a]}/ready) = 200 ]" ||
  ss_fail "worker never ready"
for t in shipments trackers addresses batches events; do
  [ -f "$SS_TEST_TMP/$t.tsv" ] || continue
  ss_kafkactl produce -t "${PREFIX}$t" <"$SS_TEST_TMP/$t.tsv" >/dev/null || ss_fail "produce $t"
done

ids=$(for name in "${!OLD_TOPIC[@]}"; do jq -r .event_id "$V1/$name.json"; done | sort -u)
nids=$(wc -l <<<"$ids")
[ "$nids" = "${#OLD_TOPIC[@]}" ] || ss_fail "fixture event ids are not unique"
idlist=$(sed "s/.*/'&'/" <<<"$ids" | paste -sd,)
applied() { [ "$(q "SELECT count(*) FROM processed_events WHERE event_id IN ($idlist)")" = "$nids" ]; }
ss_wait_for 60 applied || ss_fail "only $(q "SELECT count(*) FROM processed_events WHERE event_id IN ($idlist)") of $nids envelopes applied"
if grep -q "dead-lettered" "${SW_LOG[a]}"; then
  grep "dead-lettered" "${SW_LOG[a]}" | head -5 >&2
  ss_fail "a v1 envelope was dead-lettered"
fi
ss_pass "all $nids v1 envelopes applied, none dead-lettered"

# Every object in its table, with the values it carries.
# Refund and ScanForm have tables since migration 0006 (they were only in easypost_events).
declare -A TABLE=([Shipment]=shipments [Tracker]=trackers [Address]=addresses [Batch]=batches
                  [Refund]=refunds [ScanForm]=scan_forms)
checked=0
for name in "${!OLD_TOPIC[@]}"; do
  f="$V1/$name.json"
  otype=$(jq -r .object_type "$f")
  oid=$(jq -r .object_id "$f")
  table=${TABLE[$otype]:-}
  [ -n "$table" ] || continue
  got=$(q "SELECT count(*) FROM $table WHERE id = '$oid'")
  [ "$got" = 1 ] || ss_fail "$name: no $table row $oid"
  case $otype in
    Shipment)
      want=$(jq -r '.object | [.status, (.tracking_code // ""), (.selected_rate.carrier // "")] | join("|")' "$f")
      got=$(q "SELECT status || '|' || coalesce(tracking_code, '') || '|' || coalesce(carrier, '') FROM shipments WHERE id = '$oid'") ;;
    Tracker)
      want=$(jq -r '.object | [.status, .tracking_code] | join("|")' "$f")
      got=$(q "SELECT status || '|' || tracking_code FROM trackers WHERE id = '$oid'") ;;
    Address)
      want=$(jq -r '.object | [.city, .zip] | join("|")' "$f")
      got=$(q "SELECT city || '|' || zip FROM addresses WHERE id = '$oid'") ;;
    Batch)
      want=$(jq -r '.object.state' "$f")
      got=$(q "SELECT state FROM batches WHERE id = '$oid'") ;;
    Refund)
      want=$(jq -r '.object | [.shipment_id, .tracking_code] | join("|")' "$f")
      got=$(q "SELECT shipment_id || '|' || tracking_code FROM refunds WHERE id = '$oid'") ;;
    ScanForm)
      want=$(jq -r '.object.updated_at' "$f" | cut -c1-19)
      got=$(q "SELECT to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM scan_forms WHERE id = '$oid'") ;;
  esac
  [ "$got" = "$want" ] || ss_fail "$name: $table $oid holds '$got', the envelope carries '$want'"
  checked=$((checked + 1))
done
[ "$checked" -ge 14 ] || ss_fail "only $checked objects checked"
# refund.successful marks its shipment (a placeholder row: shp_9 was never sent).
got=$(q "SELECT refund_status || '|' || (created_at IS NULL) FROM shipments WHERE id = 'shp_9'")
[ "$got" = "refunded|true" ] || ss_fail "refund.successful did not mark shp_9: '$got'"
ss_pass "$checked objects in their tables with the values they carry; the refund marks its shipment"

# Every webhook Event traceable by its event id, with its result.
nwh=0
for name in "${!OLD_TOPIC[@]}"; do
  f="$V1/$name.json"
  [ "$(jq -r '.source == "webhook" and (.event != null)' "$f")" = true ] || continue
  eid=$(jq -r .event_id "$f")
  want=$(jq -r '[.type, .object_type, .object_id] | join("|")' "$f")
  got=$(q "SELECT description || '|' || object_type || '|' || object_id FROM easypost_events WHERE id = '$eid'")
  [ "$got" = "$want" ] || ss_fail "$name: easypost_events $eid is '$got', expected '$want'"
  same=$(q "SELECT payload->'result' = '$(jq -c .object "$f" | sed "s/'/''/g")'::jsonb AND payload->>'id' = '$eid' FROM easypost_events WHERE id = '$eid'")
  [ "$same" = t ] || ss_fail "$name: easypost_events payload is not the Event with its result"
  nwh=$((nwh + 1))
done
[ "$nwh" = 6 ] || ss_fail "$nwh webhook fixtures checked, expected 6"
nev=$(q "SELECT count(*) FROM easypost_events")
[ "$nev" = 6 ] || ss_fail "easypost_events holds $nev rows, expected the 6 webhook Events"
ss_pass "every webhook Event in easypost_events by its id (trackers, batches and shipments included); gateway and generator envelopes not"

ss_stop_bg "${SW_PID[a]}" 20 || ss_fail "worker did not stop cleanly"

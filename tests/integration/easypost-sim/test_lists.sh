#!/usr/bin/env bash
# easypost-sim list endpoints: EasyPost's pagination (page_size, before_id, after_id,
# start/end_datetime, has_more, newest first) over preloaded history and live objects,
# preloaded objects retrievable by id, POST /sim/preload, the list bad-input hooks.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
port=$(ss_free_port)
U="http://127.0.0.1:$port"
ss_start_bg "$SS_TEST_TMP/sim.log" env LISTEN="127.0.0.1:$port" SIM_PRELOAD_SHIPMENTS=250 \
  SIM_PRELOAD_DAYS=10 LOG_FORMAT=text "$SS_BIN_DIR/easypost-sim" >/dev/null
ss_wait_for 10 curl -fsS "$U/health" || ss_fail "sim did not start"
get() { curl -fsS -u k: "$U$1"; }

# all pages, newest first, each id once
before=""; : >"$SS_TEST_TMP/ids"
for i in $(seq 1 10); do
  p=$(get "/v2/shipments?page_size=100${before:+&before_id=$before}") || ss_fail "list page $i"
  jq -r '.shipments[] | [.created_at, .id] | @tsv' <<<"$p" >>"$SS_TEST_TMP/ids"
  [ "$(jq .has_more <<<"$p")" = true ] || break
  before=$(jq -r '.shipments[-1].id' <<<"$p")
done
[ "$(wc -l <"$SS_TEST_TMP/ids")" = 250 ] || ss_fail "$(wc -l <"$SS_TEST_TMP/ids") shipments listed, expected 250"
[ "$(cut -f2 "$SS_TEST_TMP/ids" | sort -u | wc -l)" = 250 ] || ss_fail "an id listed twice"
sort -r -c "$SS_TEST_TMP/ids" 2>/dev/null || ss_fail "not newest first"
ss_pass "250 preloaded shipments in 3 pages, newest first, each once"

# a preloaded shipment and its tracker are retrievable and agree with the list
id=$(sed -n 100p "$SS_TEST_TMP/ids" | cut -f2)
s=$(get "/v2/shipments/$id") || ss_fail "GET preloaded $id"
t=$(get "/v2/trackers/$(jq -r .tracker.id <<<"$s")") || ss_fail "GET its tracker"
[ "$(jq -r .shipment_id <<<"$t")" = "$id" ] && [ "$(jq -r .status <<<"$t")" = "$(jq -r .status <<<"$s")" ] &&
  [ "$(jq '.rates | length' <<<"$s")" = 10 ] && [ "$(jq -r .selected_rate.shipment_id <<<"$s")" = "$id" ] ||
  ss_fail "preloaded shipment/tracker disagree"
ss_pass "preloaded shipment $id and its tracker ($(jq -r .status <<<"$t"), $(jq '.tracking_details | length' <<<"$t") details)"

# start/end_datetime bound created_at; after_id: only newer ones
mid=$(sed -n 125p "$SS_TEST_TMP/ids" | cut -f1)
# the 125 newest were created at or after $mid (second precision): 100 + 25
p=$(get "/v2/shipments?page_size=100&start_datetime=$mid")
[ "$(jq '.shipments | length' <<<"$p")" = 100 ] && [ "$(jq .has_more <<<"$p")" = true ] || ss_fail "start_datetime page 1"
p=$(get "/v2/shipments?page_size=100&start_datetime=$mid&before_id=$(jq -r '.shipments[-1].id' <<<"$p")")
[ "$(jq '.shipments | length' <<<"$p")" = 25 ] && [ "$(jq .has_more <<<"$p")" = false ] || ss_fail "start_datetime page 2: $(jq '.shipments | length' <<<"$p")"
# and none of the older ones is newer than $mid
p=$(get "/v2/shipments?page_size=100&end_datetime=$mid")
[ "$(jq --arg m "$mid" '[.shipments[] | select(.created_at > $m)] | length' <<<"$p")" = 0 ] || ss_fail "end_datetime"
a=$(sed -n 3p "$SS_TEST_TMP/ids" | cut -f2)
n=$(get "/v2/shipments?page_size=100&after_id=$a" | jq '.shipments | length')
[ "$n" = 2 ] || ss_fail "after_id: $n newer, expected 2"
code=$(curl -s -o /dev/null -w '%{http_code}' -u k: "$U/v2/shipments?page_size=101")
[ "$code" = 422 ] || ss_fail "page_size 101: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u k: "$U/v2/shipments?before_id=shp_nope")
[ "$code" = 422 ] || ss_fail "unknown before_id: $code"
ss_pass "start/end_datetime, after_id, page_size > 100 and unknown before_id refused"

# a live shipment lists first, above the history
addr='{"name":"A","street1":"1 Main St","city":"Boston","state":"MA","zip":"02116","country":"US"}'
live=$(curl -fsS -u k: "$U/v2/shipments" -H 'Content-Type: application/json' \
  -d "{\"shipment\":{\"from_address\":$addr,\"to_address\":$addr,\"parcel\":{\"weight\":10}}}" | jq -r .id)
[ "$(get '/v2/shipments?page_size=1' | jq -r '.shipments[0].id')" = "$live" ] || ss_fail "live shipment not first"
ss_pass "a live shipment lists before the history"

# POST /sim/preload replaces the history; hooks
curl -fsS -X POST "$U/sim/preload" -d '{"shipments":1000,"days":30}' >/dev/null || ss_fail "preload"
n=$(get '/v2/trackers?page_size=100&end_datetime=2099-01-01T00:00:00Z' | jq '.trackers | length')
[ "$n" = 100 ] || ss_fail "trackers after preload: $n"
curl -fsS -X POST "$U/sim/faults" -d '{"list":"unknown_type"}' >/dev/null
[ "$(get '/v2/trackers?page_size=2' | jq '[.trackers[] | select(.object != "Tracker")] | length')" = 1 ] ||
  ss_fail "unknown_type hook"
curl -fsS -X POST "$U/sim/faults" -d '{"list":"malformed"}' >/dev/null
get '/v2/trackers?page_size=2' | jq . >/dev/null 2>&1 && ss_fail "malformed hook gave JSON"
curl -fsS -X POST "$U/sim/faults" -d '{"list":"repeat","list_count":2}' >/dev/null
p1=$(get '/v2/trackers?page_size=5' | jq -c '[.trackers[].id]')
p2=$(get "/v2/trackers?page_size=5&before_id=$(jq -r '.[-1]' <<<"$p1")" | jq -c '[.trackers[].id]')
[ "$p1" = "$p2" ] || ss_fail "repeat hook"
curl -fsS -X POST "$U/sim/faults" -d '{"rate_429":100,"retry_after":3}' >/dev/null
h=$(curl -s -D - -o /dev/null -u k: "$U/v2/trackers")
grep -qi '^Retry-After: 3' <<<"$h" && grep -q ' 429' <<<"$h" || ss_fail "429 with Retry-After: $h"
curl -fsS -X POST "$U/sim/faults" -d '{"rate_429":0}' >/dev/null
[ "$(curl -fsS "$U/metrics" | awk '$1 == "sim_list_calls_total{object=\"shipments\"}" { print $2 }')" -ge 8 ] ||
  ss_fail "sim_list_calls_total"
ss_pass "POST /sim/preload, unknown_type / malformed / repeat hooks, 429 with Retry-After, list call counter"

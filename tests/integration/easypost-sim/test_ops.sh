#!/usr/bin/env bash
# easypost-sim's other /v2 operations (address verify, rerate, label, insure, refund,
# refunds, insurances, batches, pickups, scan forms, events): answers shaped like
# EasyPost's recorded ones (the shapes below are those of easypost-python's cassettes
# test_address_verify, test_shipment_regenerate_rates, test_shipment_convert_label,
# test_shipment_insure, test_shipment_refund, test_refund_create, test_insurance_create,
# test_batch_*, test_pickup_*, test_scanform_create, test_event_retrieve, and of
# $SS_FIXTURES_DIR), EasyPost's errors (404, 422 codes, 402 without funds), state that
# stays (bought, refunded, batch label, canceled pickup, scan form), returns, mode from
# the key, Bearer and Basic auth, pagination of the new lists, the object cap.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
port=$(ss_free_port)
U="http://127.0.0.1:$port"
ss_start_bg "$SS_TEST_TMP/sim.log" env LISTEN="127.0.0.1:$port" SIM_TIME_SCALE=1 LOG_FORMAT=text \
  "$SS_BIN_DIR/easypost-sim" >/dev/null
ss_wait_for 10 curl -fsS "$U/health" || ss_fail "sim did not start"

KEY=EZTK_ops
# call METHOD PATH [BODY]: prints the body, then the status on the last line
call() {
  local m=$1 p=$2 b=${3-}
  curl -sS -X "$m" -u "$KEY:" -H 'Content-Type: application/json' ${b:+-d "$b"} \
    -w '\n%{http_code}' "$U/v2$p"
}
# ok METHOD PATH [BODY] [STATUS]: the body, failing unless the status is STATUS (200)
ok() {
  local r st
  r=$(call "$1" "$2" "${3-}") || ss_fail "$1 $2: curl"
  st=${r##*$'\n'}
  [ "$st" = "${4:-200}" ] || ss_fail "$1 $2: status $st, expected ${4:-200}: ${r%$'\n'*}"
  printf '%s' "${r%$'\n'*}"
}
# err METHOD PATH BODY STATUS CODE: an EasyPost error body with that status and code
err() {
  local r st body
  r=$(call "$1" "$2" "$3")
  st=${r##*$'\n'}
  body=${r%$'\n'*}
  [ "$st" = "$4" ] || ss_fail "$1 $2: status $st, expected $4: $body"
  jq -e --arg c "$5" '(.error|keys) == ["code","errors","message"] and .error.code == $c
    and (.error.errors|type) == "array" and (.error.message|type) == "string"' \
    <<<"$body" >/dev/null || ss_fail "$1 $2: not a $5 error body: $body"
}
# conforms SHAPE: every key of SHAPE present with the same JSON type, recursively
# (null on either side matches anything; arrays: first elements compared).
CONF='def conf($s): if $s == null or . == null then true
  elif ($s|type) == "object" then (type == "object") and
    ([($s|to_entries[]) as $e | has($e.key) and (.[$e.key] | conf($e.value))] | all)
  elif ($s|type) == "array" then (type == "array") and
    (if ($s|length) > 0 and length > 0 then (.[0] | conf($s[0])) else true end)
  else type == ($s|type) end;'
conforms() {
  jq -e --argjson s "$1" "$CONF conf(\$s)" >/dev/null || ss_fail "$2: shape differs from EasyPost's: $(head -c 600)"
}

ADDR='{"id":"adr_x","object":"Address","created_at":"t","updated_at":"t","name":"n","company":null,
  "street1":"s","street2":null,"city":"c","state":"s","zip":"z","country":"US","phone":null,
  "email":null,"mode":"test","carrier_facility":null,"residential":null,"federal_tax_id":null,
  "state_tax_id":null,"verifications":{}}'
RATE='{"id":"rate_x","object":"Rate","created_at":"t","updated_at":"t","mode":"test","service":"s",
  "carrier":"c","rate":"6.07","currency":"USD","retail_rate":"8.85","retail_currency":"USD",
  "list_rate":"6.57","list_currency":"USD","billing_type":"easypost","delivery_days":3,
  "delivery_date":null,"delivery_date_guaranteed":false,"est_delivery_days":3,"shipment_id":"s",
  "carrier_account_id":"ca"}'
FEE='{"object":"Fee","type":"LabelFee","amount":"0.00000","charged":true,"refunded":false}'
LABEL='{"object":"PostageLabel","id":"pl","created_at":"t","updated_at":"t","date_advance":0,
  "integrated_form":"none","label_date":"t","label_resolution":300,"label_size":"4x6",
  "label_type":"default","label_file_type":"image/png","label_url":"u","label_pdf_url":null,
  "label_zpl_url":null,"label_epl2_url":null,"label_file":null}'
SHIPMENT=$(jq -n --argjson a "$ADDR" --argjson r "$RATE" --argjson f "$FEE" --argjson l "$LABEL" \
  '{id:"shp",created_at:"t",is_return:false,messages:[],mode:"test",options:{currency:"USD",
  payment:{type:"SENDER"},date_advance:0},reference:null,status:"unknown",tracking_code:null,
  updated_at:"t",batch_id:null,batch_status:null,batch_message:null,customs_info:null,
  from_address:$a,insurance:null,order_id:null,parcel:{id:"p",object:"Parcel",created_at:"t",
  updated_at:"t",length:10.0,width:8.0,height:4.0,predefined_package:null,weight:15.4,mode:"test"},
  postage_label:$l,rates:[$r],refund_status:null,scan_form:null,selected_rate:$r,tracker:null,
  to_address:$a,usps_zone:4,return_address:$a,buyer_address:$a,forms:[],fees:[$f],
  object:"Shipment"}')
REFUND='{"id":"rfnd","object":"Refund","created_at":"t","updated_at":"t","tracking_code":"9400",
  "confirmation_number":null,"status":"submitted","carrier":"USPS","shipment_id":"shp"}'
SCANFORM=$(jq -n --argjson a "$ADDR" '{id:"sf",object:"ScanForm",created_at:"t",updated_at:"t",
  tracking_codes:["9400"],address:$a,status:"created",message:null,form_url:"u",
  form_file_type:null,batch_id:"batch",confirmation:null}')
BATCH='{"id":"batch","object":"Batch","mode":"test","state":"created","num_shipments":1,
  "reference":null,"created_at":"t","updated_at":"t","scan_form":null,"shipments":[{"batch_status":
  "created","batch_message":null,"reference":null,"tracking_code":null,"id":"shp"}],"status":
  {"created":1,"queued_for_purchase":0,"creation_failed":0,"postage_purchased":0,
  "postage_purchase_failed":0},"pickup":null,"label_url":null}'
PICKUP=$(jq -n --argjson a "$ADDR" '{id:"pickup",object:"Pickup",created_at:"t",updated_at:"t",
  mode:"test",status:"unknown",reference:null,min_datetime:"t",max_datetime:"t",
  is_account_address:false,instructions:"i",messages:[],confirmation:null,address:$a,
  carrier_accounts:[],pickup_rates:[{mode:"test",service:"NextDay",rate:"0.00",currency:"USD",
  created_at:"t",updated_at:"t",carrier:"USPS",pickup_id:"p",id:"pr",object:"PickupRate"}]}')
INSURANCE=$(jq -n --argjson a "$ADDR" --argjson f "$FEE" '{id:"ins",object:"Insurance",mode:"test",
  reference:null,status:"pending",amount:"100.00000",provider:"easypost",provider_id:null,
  to_address:$a,from_address:$a,shipment_id:null,tracker:{id:"trk",object:"Tracker"},
  tracking_code:"9400",fee:$f,messages:[],created_at:"t",updated_at:"t"}')
EVENT='{"description":"d","id":"evt","user_id":"user","status":"pending","created_at":"t",
  "mode":"test","object":"Event"}'
[ -f "$SS_FIXTURES_DIR/api/batch-create.response.json" ] &&
  jq -e --argjson s "$BATCH" "$CONF conf(\$s)" "$SS_FIXTURES_DIR/api/batch-create.response.json" >/dev/null ||
  ss_fail "the Batch shape here does not match fixtures/easypost/api/batch-create.response.json"

FROM='{"name":"Jack Sparrow","street1":"388 Townsend St","street2":"Apt 20","city":"San Francisco",
  "state":"CA","zip":"94107","country":"US","email":"test@example.com","phone":"5555555555"}'
TO='{"name":"Elizabeth Swan","street1":"179 N Harbor Dr","city":"Redondo Beach","state":"CA",
  "zip":"90277","country":"US"}'
SHP="{\"from_address\":$FROM,\"to_address\":$TO,\"parcel\":{\"length\":10,\"width\":8,\"height\":4,\"weight\":15.4}}"
new_shipment() { ok POST /shipments "{\"shipment\":${1:-$SHP}}" 201 | jq -r .id; }
cheapest() { ok GET "/shipments/$1" | jq -r '.rates | min_by(.rate|tonumber) | .id'; }
buy() { ok POST "/shipments/$1/buy" "{\"rate\":{\"id\":\"$(cheapest "$1")\"}}"; }

# ---- addresses: verify (a verified copy under a new id), 422 with EasyPost's details
a=$(ok POST /addresses "{\"address\":$FROM}" 201)
aid=$(jq -r .id <<<"$a")
v=$(ok GET "/addresses/$aid/verify")
jq -c .address <<<"$v" | conforms "$ADDR" "address verify"
jq -e --arg id "$aid" '.address.id != $id and (.address.id|startswith("adr_")) and
  .address.street1 == "388 TOWNSEND ST APT 20" and (.address.zip|test("^94107-[0-9]{4}$"))
  and .address.verifications.delivery.success == true' <<<"$v" >/dev/null || ss_fail "verify: $v"
bad=$(ok POST /addresses '{"address":{"street1":"invalid"}}' 201 | jq -r .id)
err GET "/addresses/$bad/verify" "" 422 ADDRESS.VERIFY.FAILURE
call GET "/addresses/$bad/verify" | head -n -1 | jq -e '.error.errors[0] | keys == ["code","field","message","suggestion"]
  and .code == "E.ADDRESS.NOT_FOUND"' >/dev/null || ss_fail "verify failure details"
err GET /addresses/adr_nope/verify "" 404 NOT_FOUND
ss_pass "addresses verify: verified copy (new id, ZIP+4), 422 ADDRESS.VERIFY.FAILURE with details, 404"

# ---- shipments: rerate, label, insure, refund; errors and state
sid=$(new_shipment)
old=$(ok GET "/shipments/$sid" | jq -c '[.rates[].id]')
rr=$(ok POST "/shipments/$sid/rerate")
jq -e 'keys == ["rates"] and (.rates|length) == 10' <<<"$rr" >/dev/null || ss_fail "rerate: $rr"
jq -c .rates[0] <<<"$rr" | conforms "$RATE" "rerate rate"
jq -e --argjson old "$old" '[.rates[].id] as $n | ($n - $old) == $n' <<<"$rr" >/dev/null ||
  ss_fail "rerate kept old rate ids"
[ "$(ok GET "/shipments/$sid" | jq -c '[.rates[].id]')" = "$(jq -c '[.rates[].id]' <<<"$rr")" ] ||
  ss_fail "the shipment does not hold the new rates"
err GET "/shipments/$sid/label?file_format=ZPL" "" 422 SHIPMENT.POSTAGE.REQUIRED
err POST "/shipments/$sid/insure" '{"amount":"100"}' 422 SHIPMENT.INSURANCE.FAILURE
err POST "/shipments/$sid/refund" '{}' 422 SHIPMENT.REFUND.FAILURE
b=$(buy "$sid")
conforms "$SHIPMENT" "buy" <<<"$b"
err POST "/shipments/$sid/buy" "{\"rate\":{\"id\":\"$(cheapest "$sid")\"}}" 422 SHIPMENT.POSTAGE.EXISTS
code=$(jq -r .tracking_code <<<"$b")
[ "$(ok GET "/shipments/$sid" | jq -r .tracking_code)" = "$code" ] || ss_fail "bought shipment changed"
l=$(ok GET "/shipments/$sid/label?file_format=ZPL")
conforms "$SHIPMENT" "label" <<<"$l"
jq -e '.postage_label.label_zpl_url|test("^https://.*\\.zpl$")' <<<"$l" >/dev/null || ss_fail "label: no zpl url"
err GET "/shipments/$sid/label?file_format=GIF" "" 422 PARAMETER.INVALID
i=$(ok POST "/shipments/$sid/insure" '{"amount":"100"}')
conforms "$SHIPMENT" "insure" <<<"$i"
jq -e '.insurance == "100.00" and (.fees|map(select(.type=="InsuranceFee"))[0].amount) == "1.00000"' \
  <<<"$i" >/dev/null || ss_fail "insure: $(jq -c '{insurance,fees}' <<<"$i")"
err POST "/shipments/$sid/insure" '{"amount":"100"}' 422 SHIPMENT.INSURANCE.FAILURE
ins=$(ok GET /insurances | jq -c --arg s "$sid" '.insurances[] | select(.shipment_id == $s)')
conforms "$INSURANCE" "insurance of a shipment" <<<"$ins"
r=$(ok POST "/shipments/$sid/refund" '{}')
conforms "$SHIPMENT" "refund" <<<"$r"
[ "$(jq -r .refund_status <<<"$r")" = submitted ] || ss_fail "refund: refund_status $(jq .refund_status <<<"$r")"
err POST "/shipments/$sid/refund" '{}' 422 SHIPMENT.REFUND.FAILURE
ss_wait_for 10 bash -c "curl -fsS -u $KEY: $U/v2/shipments/$sid | jq -e '.refund_status == \"refunded\"'" ||
  ss_fail "refund_status never became refunded"
s=$(ok GET "/shipments/$sid")
jq -e '.refund_status == "refunded" and (.fees|map(select(.type=="PostageFee"))[0].refunded) == true
  and .selected_rate != null' <<<"$s" >/dev/null || ss_fail "refunded shipment: $(jq -c '{refund_status,fees}' <<<"$s")"
rf=$(ok GET /refunds | jq -c --arg s "$sid" '.refunds[] | select(.shipment_id == $s)')
conforms "$REFUND" "refund object" <<<"$rf"
[ "$(jq -r .status <<<"$rf")" = refunded ] || ss_fail "Refund status $(jq .status <<<"$rf")"
ev=$(ok GET "/events?page_size=100" | jq -r '[.events[] | select(.description == "refund.successful")][0].id')
e=$(ok GET "/events/$ev")
jq -e --arg s "$sid" '.object == "Event" and .result.object == "Refund" and .result.shipment_id == $s' \
  <<<"$e" >/dev/null || ss_fail "refund.successful event: $e"
ok GET "/events?page_size=2" | jq -c '.events[0]' | conforms "$EVENT" "events list"
err GET /events/evt_nope "" 404 NOT_FOUND
sleep 1.2 # one more simulated day: a refunded shipment stays refunded
[ "$(ok GET "/shipments/$sid" | jq -r .refund_status)" = refunded ] || ss_fail "refund undone"
ss_pass "shipments: rerate (new rates kept), label ZPL, insure (fee, Insurance), refund submitted -> refunded (fee refunded, Refund, refund.successful), 422s, stays refunded"

# ---- POST /refunds: a bare list, 201; a shipment already refunded is rejected
s2=$(new_shipment)
c2=$(buy "$s2" | jq -r .tracking_code)
rl=$(ok POST /refunds "{\"refund\":{\"carrier\":\"USPS\",\"tracking_codes\":[\"$c2\",\"$code\",\"EZ000\"]}}" 201)
jq -e 'type == "array" and length == 3 and ([.[].status] == ["submitted","rejected","not_applicable"])' \
  <<<"$rl" >/dev/null || ss_fail "refunds create: $rl"
jq -c '.[0]' <<<"$rl" | conforms "$REFUND" "POST /refunds"
ok GET "/shipments/$s2" | jq -e '.refund_status == "submitted" or .refund_status == "refunded"' >/dev/null ||
  ss_fail "POST /refunds did not mark the shipment"
rid=$(jq -r '.[0].id' <<<"$rl")
[ "$(ok GET "/refunds/$rid" | jq -r .id)" = "$rid" ] || ss_fail "GET refund"
err POST /refunds '{"refund":{"carrier":"USPS"}}' 422 PARAMETER.REQUIRED
ss_pass "POST /v2/refunds: 201 [submitted, rejected, not_applicable], shipment marked"

# ---- insurances
in=$(ok POST /insurances "{\"insurance\":{\"from_address\":$FROM,\"to_address\":$TO,\"carrier\":\"USPS\",\"amount\":\"100\",\"tracking_code\":\"9400100208303109500690\"}}" 201)
conforms "$INSURANCE" "POST /insurances" <<<"$in"
jq -e '.status == "pending" and .amount == "100.00000" and .fee.amount == "1.00000" and
  .tracker.tracking_code == "9400100208303109500690" and .to_address.street1 == "179 N HARBOR DR"' \
  <<<"$in" >/dev/null || ss_fail "insurance: $in"
[ "$(ok GET "/insurances/$(jq -r .id <<<"$in")" | jq -r .status)" = pending ] || ss_fail "GET insurance"
err POST /insurances '{"insurance":{"amount":"5"}}' 422 PARAMETER.REQUIRED
ss_pass "insurances: create (pending, fee, tracker, verified addresses), retrieve, 422"

# ---- batches: create with shipments, 422 label before buy, buy, label, scan form; state kept
bt=$(ok POST /batches "{\"batch\":{\"shipments\":[$SHP,$SHP]}}")
conforms "$BATCH" "batch create" <<<"$bt"
bid=$(jq -r .id <<<"$bt")
jq -e '.state == "created" and .num_shipments == 2 and .status.created == 2' <<<"$bt" >/dev/null || ss_fail "batch: $bt"
err POST "/batches/$bid/label" '{"file_format":"PDF"}' 422 BATCH.LABEL.FAILURE
s3=$(new_shipment)
ok POST "/batches/$bid/add_shipments" "{\"shipments\":[{\"id\":\"$s3\"}]}" | jq -e '.num_shipments == 3' >/dev/null || ss_fail "add_shipments"
[ "$(ok GET "/shipments/$s3" | jq -r .batch_id)" = "$bid" ] || ss_fail "added shipment has no batch_id"
ok POST "/batches/$bid/remove_shipments" "{\"shipments\":[{\"id\":\"$s3\"}]}" |
  jq -e --arg s "$s3" '.num_shipments == 2 and ([.shipments[].id] | index($s) == null)' >/dev/null || ss_fail "remove_shipments"
err POST "/batches/$bid/add_shipments" '{"shipments":[{"id":"shp_nope"}]}' 404 NOT_FOUND
bb=$(ok POST "/batches/$bid/buy" '{}')
conforms "$BATCH" "batch buy" <<<"$bb"
jq -e '.state == "purchased" and .status.postage_purchased == 2 and all(.shipments[]; .tracking_code != null)' \
  <<<"$bb" >/dev/null || ss_fail "batch buy: $bb"
err POST "/batches/$bid/buy" '{}' 422 BATCH.STATE.INVALID
bl=$(ok POST "/batches/$bid/label" '{"file_format":"PDF"}')
jq -e '.state == "label_generated" and (.label_url|test("^https://.*\\.pdf$"))' <<<"$bl" >/dev/null || ss_fail "batch label: $bl"
# The label's batch.updated Event (the newest; lists carry no result) says what the status
# was: it once carried freed memory here.
lev=$(ok GET "/events?page_size=100" | jq -r '[.events[] | select(.description == "batch.updated")][0].id')
ok GET "/events/$lev" | jq -e --arg b "$bid" '.result.id == $b and .result.state == "label_generated"
  and .previous_attributes.status == "purchased"' >/dev/null ||
  ss_fail "batch label: batch.updated previous_attributes.status is not \"purchased\": $(ok GET "/events/$lev" | jq -c .previous_attributes)"
bs=$(ok POST "/batches/$bid/scan_form" '{}')
jq -c .scan_form <<<"$bs" | conforms "$SCANFORM" "batch scan form"
jq -e '(.scan_form.tracking_codes|length) == 2 and .scan_form.batch_id == .id' <<<"$bs" >/dev/null || ss_fail "batch scan form: $bs"
g=$(ok GET "/batches/$bid")
jq -e --arg u "$(jq -r .label_url <<<"$bl")" '.label_url == $u and .num_shipments == 2 and .scan_form.id != null' \
  <<<"$g" >/dev/null || ss_fail "batch state lost: $g"
first=$(jq -r '.shipments[0].id' <<<"$g")
ok GET "/shipments/$first" | jq -e --arg b "$bid" '.batch_id == $b and .batch_status == "postage_purchased" and .scan_form.id != null' \
  >/dev/null || ss_fail "batch shipment state"
ok GET "/batches?page_size=5" | jq -e --arg b "$bid" '.batches[0].id == $b and .has_more == false' >/dev/null || ss_fail "batches list"
err GET /batches/batch_nope "" 404 NOT_FOUND
ss_pass "batches: create, add/remove, buy, 422 label before buy and buy twice, label_url, scan form, state kept"

# ---- scan forms
s4=$(new_shipment)
err POST /scan_forms "{\"scan_form\":{\"shipments\":[{\"id\":\"$s4\"}]}}" 422 SCAN_FORM.VALIDATION.ERROR
c4=$(buy "$s4" | jq -r .tracking_code)
sf=$(ok POST /scan_forms "{\"scan_form\":{\"shipments\":[{\"id\":\"$s4\"}]}}")
conforms "$SCANFORM" "POST /scan_forms" <<<"$sf"
sfid=$(jq -r .id <<<"$sf")
ok GET "/scan_forms/$sfid" | jq -e --arg c "$c4" '.tracking_codes == [$c] and .batch_id != null' >/dev/null || ss_fail "GET scan form"
[ "$(ok GET "/shipments/$s4" | jq -r .scan_form.id)" = "$sfid" ] || ss_fail "shipment does not carry its scan form"
err POST /scan_forms "{\"scan_form\":{\"shipments\":[{\"id\":\"$s4\"}]}}" 422 SCAN_FORM.VALIDATION.ERROR
err POST /scan_forms '{"scan_form":{"shipments":[{"id":"shp_nope"}]}}' 404 NOT_FOUND
ss_pass "scan forms: create for a bought shipment, listed on it, 422 unbought/already scanned, 404"

# ---- pickups: create, buy, cancel; 422s; state; pagination of a new list
pk() { ok POST /pickups "{\"pickup\":{\"address\":$FROM,\"min_datetime\":\"2025-03-08\",\"max_datetime\":\"2025-03-08\",\"instructions\":\"Pickup at front door\",\"reference\":\"$1\"}}"; }
p=$(pk one)
conforms "$PICKUP" "pickup create" <<<"$p"
pid=$(jq -r .id <<<"$p")
jq -e '.status == "unknown" and .min_datetime == "2025-03-08T00:00:00Z"' <<<"$p" >/dev/null || ss_fail "pickup: $p"
err POST "/pickups/$pid/cancel" '{}' 422 PICKUP.CANCEL.FAILURE
err POST "/pickups/$pid/buy" '{"carrier":"USPS","service":"Teleport"}' 422 PICKUP.RATE.NOT_FOUND
pb=$(ok POST "/pickups/$pid/buy" '{"carrier":"USPS","service":"NextDay"}')
jq -e '.status == "scheduled" and (.confirmation|test("^WTC[0-9]{8}$"))' <<<"$pb" >/dev/null || ss_fail "pickup buy: $pb"
err POST "/pickups/$pid/buy" '{"carrier":"USPS","service":"NextDay"}' 422 PICKUP.BUY.FAILURE
[ "$(ok POST "/pickups/$pid/cancel" '{}' | jq -r .status)" = canceled ] || ss_fail "pickup cancel"
[ "$(ok GET "/pickups/$pid" | jq -r .status)" = canceled ] || ss_fail "canceled pickup not kept"
err POST /pickups '{"pickup":{"min_datetime":"2025-03-08"}}' 422 PARAMETER.REQUIRED
pk two >/dev/null
pk three >/dev/null
p1=$(ok GET "/pickups?page_size=2")
jq -e '(.pickups|length) == 2 and .has_more == true and ([.pickups[].reference] == ["three","two"])' \
  <<<"$p1" >/dev/null || ss_fail "pickups page 1: $(jq -c '[.pickups[].reference], .has_more' <<<"$p1")"
p2=$(ok GET "/pickups?page_size=2&before_id=$(jq -r '.pickups[-1].id' <<<"$p1")")
jq -e '([.pickups[].reference] == ["one"]) and .has_more == false' <<<"$p2" >/dev/null || ss_fail "pickups page 2"
err GET "/pickups?before_id=pickup_nope" "" 422 PARAMETER.INVALID
ss_pass "pickups: create, buy, cancel, 422s, canceled kept, list pages newest first"

# ---- lists of every new collection, 404 of every unknown id
for c in addresses batches pickups scan_forms refunds insurances; do
  ok GET "/$c?page_size=1" | jq -e --arg c "$c" '(keys == ([$c, "has_more"]|sort)) and (.[$c]|length) == 1' >/dev/null ||
    ss_fail "GET /v2/$c"
done
for p in addresses/adr_nope batches/batch_nope pickups/pickup_nope scan_forms/sf_nope refunds/rfnd_nope \
  insurances/ins_nope shipments/shp_nope/rerate; do
  m=GET; [ "$p" = shipments/shp_nope/rerate ] && m=POST
  err "$m" "/$p" '{}' 404 NOT_FOUND
done
err POST "/shipments/$sid/teleport" '{}' 404 NOT_FOUND
ss_pass "lists of addresses, batches, pickups, scan_forms, refunds, insurances; 404s"

# ---- returns
rs=$(ok POST /shipments "{\"shipment\":{\"from_address\":$TO,\"to_address\":$FROM,\"parcel\":{\"weight\":8},\"is_return\":true}}" 201)
rsid=$(jq -r .id <<<"$rs")
rb=$(buy "$rsid")
jq -e '.is_return == true and .tracker.is_return == true and .tracking_code != null' <<<"$rb" >/dev/null ||
  ss_fail "return: $(jq -c '{is_return, t: .tracker.is_return}' <<<"$rb")"
ss_pass "returns: is_return on the shipment and its tracker"

# ---- 402 without funds: nothing bought, and the buy goes through once funded
curl -fsS "$U/sim/funds" -d '{"balance":"1.00"}' >/dev/null || ss_fail "POST /sim/funds"
s5=$(new_shipment)
err POST "/shipments/$s5/buy" "{\"rate\":{\"id\":\"$(cheapest "$s5")\"}}" 402 PAYMENT.INSUFFICIENT_FUNDS
ok GET "/shipments/$s5" | jq -e '.selected_rate == null and .tracking_code == null' >/dev/null || ss_fail "402 bought anyway"
curl -fsS "$U/sim/funds" -d '{"balance":"100"}' >/dev/null
buy "$s5" >/dev/null
bal=$(curl -fsS "$U/sim/funds" | jq -r .balance)
want=$(ok GET "/shipments/$s5" | jq -r '10000 - (.selected_rate.rate|tonumber*100|round)')
[ "$(jq -rn --arg b "$bal" '$b|tonumber*100|round')" = "$want" ] || ss_fail "balance $bal after the buy"
curl -fsS "$U/sim/funds" -d '{"unlimited":true}' | jq -e .unlimited >/dev/null || ss_fail "unlimited"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/sim/funds" -d '{"balance":"-3"}')" = 400 ] || ss_fail "bad balance accepted"
ss_pass "402 PAYMENT.INSUFFICIENT_FUNDS leaves the shipment unbought; funded buy debits the balance ($bal)"

# ---- auth: Bearer and Basic; mode from the key
b1=$(curl -fsS -H "Authorization: Bearer EZTK_ops" "$U/v2/shipments/$s5" | jq -r .id)
[ "$b1" = "$s5" ] || ss_fail "Bearer"
pm=$(curl -fsS -u prodkey: -H 'Content-Type: application/json' "$U/v2/shipments" -d "{\"shipment\":$SHP}")
jq -e '.mode == "production" and .from_address.mode == "production" and .rates[0].mode == "production"
  and .parcel.mode == "production"' <<<"$pm" >/dev/null || ss_fail "production key: $(jq -c .mode <<<"$pm")"
tm=$(curl -fsS -H "Authorization: Bearer test_abc" -H 'Content-Type: application/json' "$U/v2/pickups" -d "{\"pickup\":{\"address\":$FROM,\"min_datetime\":\"2025-03-08\",\"max_datetime\":\"2025-03-09\"}}")
[ "$(jq -r .mode <<<"$tm")" = test ] || ss_fail "test key"
ss_pass "Bearer and Basic accepted; mode production for a production key, test for EZTK/test keys"

# ---- the object cap: SIM_MAX_OBJECTS bounds what is kept
port2=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/sim2.log" env LISTEN="127.0.0.1:$port2" SIM_MAX_OBJECTS=16 LOG_FORMAT=text \
  "$SS_BIN_DIR/easypost-sim" >/dev/null
ss_wait_for 10 curl -fsS "http://127.0.0.1:$port2/health" || ss_fail "sim 2 did not start"
ids=()
for n in $(seq 1 24); do # each pickup stores 2 objects (itself, its address)
  r=$(curl -fsS -u k: "http://127.0.0.1:$port2/v2/pickups" -d "{\"pickup\":{\"address\":$FROM,\"min_datetime\":\"2025-03-08\",\"max_datetime\":\"2025-03-08\"}}")
  r=${r#*\"id\":\"} # the first member is the id (no jq per call: keeps the test short)
  ids+=("${r%%\"*}")
done
[ "$(curl -s -o /dev/null -w '%{http_code}' -u k: "http://127.0.0.1:$port2/v2/pickups/${ids[0]}")" = 404 ] ||
  ss_fail "the oldest pickup was not evicted"
[ "$(curl -fsS -u k: "http://127.0.0.1:$port2/v2/pickups/${ids[23]}" | jq -r .id)" = "${ids[23]}" ] || ss_fail "newest pickup gone"
n=$(curl -fsS -u k: "http://127.0.0.1:$port2/v2/pickups?page_size=100" | jq '.pickups|length')
[ "$n" -le 8 ] && [ "$n" -ge 1 ] || ss_fail "$n pickups listed with SIM_MAX_OBJECTS=16 (each pickup also stores its address)"
ss_pass "SIM_MAX_OBJECTS=16: the oldest evicted (404), $n pickups kept"

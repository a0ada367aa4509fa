#!/usr/bin/env bash
# The gateway's shipping API in front of easypost-sim: pass-through bodies, the
# Kafka hand-off, idempotent buys, auth, EasyPost errors, the read API's
# parameter checks, PostgreSQL and Kafka outages.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$(dirname "$0")/common.sh"

ss_test_migrated_db gw_api
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
gw_start_sim
gw_start

# --- auth: /v1 and /db need a key; /health /ready /metrics do not
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$GW/v1/shipments" -d '{}'); [ "$CODE" = 401 ] || ss_fail "no key: $CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$GW/db/shipments"); [ "$CODE" = 401 ] || ss_fail "wrong key: $CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${API_KEY}x" "$GW/db/shipments"); [ "$CODE" = 401 ] || ss_fail "key+suffix: $CODE"
ss_pass "missing and wrong keys -> 401"
curl -fsS "$GW/metrics" | grep -q 'gateway_auth_failures_total 3' || ss_fail "metrics open and counting auth failures"
ss_wait_for 20 curl -fsS "$GW/ready" || ss_fail "ready with PostgreSQL and Kafka up"
ss_pass "/metrics and /ready need no key"

# --- create: EasyPost's body and status, then the object on the shipments topic
call POST /v1/shipments "$FIX/api/shipment-create.request.json"; expect 201 "create shipment"
SHP=$(jq -r .id <<<"$BODY"); RATE=$(jq -r '.rates | min_by(.rate|tonumber) | .id' <<<"$BODY")
[[ $SHP == shp_* && $RATE == rate_* ]] || ss_fail "create answer has no shp_/rate_ ids"
jq -e '.rates[0].rate | type == "string"' <<<"$BODY" >/dev/null || ss_fail "money is not a string"
out=$("$SS_KAFKACTL" consume -b "$SS_TEST_KAFKA_BOOTSTRAP" -t "${PREFIX}shipments" -n 1 --timeout 20) || ss_fail "nothing on the shipments topic"
key=$(cut -f3 <<<"$out"); val=$(cut -f4- <<<"$out")
[ "$key" = "$SHP" ] || ss_fail "key $key != $SHP"
jq -e --arg id "$SHP" '.schema_version == 1 and .type == "shipment.created" and .source == "gateway" and .object.id == $id and (.event_id|startswith("gwe_"))' <<<"$val" >/dev/null || ss_fail "envelope: $val"
ss_pass "shipment.created envelope on ${PREFIX}shipments keyed by $SHP"

# --- idempotent buy: same key+body replays, other body refused
printf '{"rate":{"id":"%s"}}' "$RATE" >"$SS_TEST_TMP/buy.json"
EXTRA_CURL=(-H "Idempotency-Key: k1-$SHP")
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 200 "buy"
first="$BODY"; TRACK=$(jq -r .tracking_code <<<"$BODY")
[ -n "$TRACK" ] && [ "$TRACK" != null ] || ss_fail "bought shipment has no tracking code"
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 200 "same key, same body"
[ "$BODY" = "$first" ] || ss_fail "replayed body differs"
grep -qi '^Idempotent-Replayed: true' <<<"$HDRS" || ss_fail "replay not marked"
ss_pass "same key + same body returns the first answer byte for byte"
printf '{"rate":{"id":"%s"},"insurance":"100.00"}' "$RATE" >"$SS_TEST_TMP/buy2.json"
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy2.json"; expect 422 "same key, different body"
jq -e '.error.code == "idempotency_key_reused"' <<<"$BODY" >/dev/null || ss_fail "422 code: $BODY"
EXTRA_CURL=()
out=$("$SS_KAFKACTL" consume -b "$SS_TEST_KAFKA_BOOTSTRAP" -t "${PREFIX}shipments" -n 2 --timeout 20) || ss_fail "purchase not on topic"
[ "$(grep -c '"shipment.purchased"' <<<"$out")" = 1 ] || ss_fail "expected exactly one shipment.purchased event: $out"
ss_pass "one shipment.purchased event for the keyed buy"

# --- concurrent buys with one key buy once
call POST /v1/shipments "$FIX/api/shipment-create.request.json"; expect 201 "second shipment"
SHP2=$(jq -r .id <<<"$BODY"); RATE2=$(jq -r '.rates[0].id' <<<"$BODY")
printf '{"rate":{"id":"%s"}}' "$RATE2" >"$SS_TEST_TMP/buy3.json"
pids=()
for i in 1 2 3 4 5 6; do
  curl -sS -o "$SS_TEST_TMP/c$i" -w '%{http_code}' -H "Authorization: Bearer $API_KEY" \
    -H "Idempotency-Key: conc-$SHP2" -H 'Content-Type: application/json' \
    --data-binary "@$SS_TEST_TMP/buy3.json" "$GW/v1/shipments/$SHP2/buy" >"$SS_TEST_TMP/c$i.code" &
  pids+=($!)
done
wait "${pids[@]}"   # not a bare wait: the services are our children too
for i in 1 2 3 4 5 6; do
  [ "$(cat "$SS_TEST_TMP/c$i.code")" = 200 ] || ss_fail "concurrent buy $i: $(cat "$SS_TEST_TMP/c$i.code") $(head -c 300 "$SS_TEST_TMP/c$i")"
  cmp -s "$SS_TEST_TMP/c1" "$SS_TEST_TMP/c$i" || ss_fail "concurrent answers differ"
done
n=$(q "SELECT count(*) FROM idempotency_keys WHERE key = 'conc-$SHP2' AND status = 'completed'")
[ "$n" = 1 ] || ss_fail "idempotency row: $n"
buys=$(grep -c '"shipment.purchased"' < <("$SS_KAFKACTL" consume -b "$SS_TEST_KAFKA_BOOTSTRAP" -t "${PREFIX}shipments" -n 4 --timeout 20))
[ "$buys" = 2 ] || ss_fail "expected 2 purchases in total (one per shipment), saw $buys"
ss_pass "six concurrent requests with one key: one buy, six identical answers"

# --- retrieve, trackers, addresses
call GET "/v1/shipments/$SHP"; expect 200 "retrieve shipment"
[ "$(jq -r .tracking_code <<<"$BODY")" = "$TRACK" ] || ss_fail "retrieved tracking code"
call POST /v1/trackers "$FIX/api/tracker-create.request.json"; expect 200 "create tracker"
TRK=$(jq -r .id <<<"$BODY"); [[ $TRK == trk_* ]] || ss_fail "tracker id $TRK"
call GET "/v1/trackers/$TRK"; expect 200 "retrieve tracker"
call POST /v1/addresses/create_and_verify "$FIX/api/address-create-and-verify.request.json"; expect 200 "address create_and_verify"
out=$("$SS_KAFKACTL" consume -b "$SS_TEST_KAFKA_BOOTSTRAP" -t "${PREFIX}addresses" -n 1 --timeout 20) || ss_fail "no address event"
jq -e '.type == "address.created"' <<<"$(cut -f4- <<<"$out")" >/dev/null || ss_fail "address envelope"
ss_pass "tracker.created / address.created handed to Kafka"

# --- EasyPost's errors come back with EasyPost's status and body
cp "$FIX/api/error-422.request.json" "$SS_TEST_TMP/e422.json"
call POST /v1/shipments "$SS_TEST_TMP/e422.json"; expect 422 "EasyPost 422 passed through"
jq -e '.error.code == "PARAMETER.REQUIRED"' <<<"$BODY" >/dev/null || ss_fail "422 body: $BODY"
call GET /v1/shipments/shp_doesnotexist; expect 404 "EasyPost 404 passed through"
echo 'not json' >"$SS_TEST_TMP/bad.json"
call POST /v1/shipments "$SS_TEST_TMP/bad.json"; expect 400 "malformed JSON body"
head -c 2000000 /dev/zero | tr '\0' ' ' >"$SS_TEST_TMP/big.json"
call POST /v1/shipments "$SS_TEST_TMP/big.json"; expect 413 "body over the limit"

# wrong EasyPost key, 429 and 500 from EasyPost, EasyPost unreachable
saved_sim=$SIM_URL
gw_start_sim SIM_FAULT_RATE_500=100; SIM500=$SIM_URL
gw_start_sim SIM_FAULT_RATE_429=100; SIM429=$SIM_URL
SIM_URL=$saved_sim
for case in "401 EASYPOST_API_KEY=wrong_key" "500 EASYPOST_API_BASE=$SIM500" "429 EASYPOST_API_BASE=$SIM429" \
            "502 EASYPOST_API_BASE=http://127.0.0.1:$(ss_free_port)/v2"; do
  want=${case%% *}; env_kv=${case#* }
  gw_start "$env_kv"
  call GET "/v1/shipments/$SHP"; expect "$want" "EasyPost error ($env_kv)"
  jq -e '.error.code' <<<"$BODY" >/dev/null || ss_fail "error body for $want: $BODY"
  ss_stop_bg "$GW_PID" || ss_fail "gateway exit status after SIGTERM"
done
gw_start

# --- read API: parameters are checked and named
for q in "limit=0:limit" "limit=abc:limit" "created_from=yesterday:created_from" "cursor=zz:cursor" "colour=red:colour" \
         "mode=live:mode"; do
  call GET "/db/shipments?${q%%:*}"; expect 400 "bad parameter ${q%%:*}"
  jq -e --arg p "${q##*:}" '.error.message | contains($p)' <<<"$BODY" >/dev/null || ss_fail "400 does not name ${q##*:}: $BODY"
done
call GET "/db/analytics/dashboard?days=401"; expect 400 "days out of range"
call GET /db/shipments/shp_unknown; expect 404 "unknown shipment id"

# keyset pagination over rows written directly
ss_psql "$DB_URL" -c "INSERT INTO shipments (id, mode, status, carrier, service, created_at, updated_at)
  SELECT 'shp_page' || lpad(g::text, 3, '0'), 'production', CASE WHEN g % 2 = 0 THEN 'delivered' ELSE 'in_transit' END,
         'USPS', 'Priority', '2025-01-01T00:00:00Z'::timestamptz + g * interval '1 hour', now()
  FROM generate_series(1, 25) g" >/dev/null
seen=""; cursor=""; pages=0
while :; do
  call GET "/db/shipments?limit=10&status=delivered${cursor:+&cursor=$cursor}"; expect 200 "page $pages"
  seen="$seen $(jq -r '.shipments[].id' <<<"$BODY" | tr '\n' ' ')"
  jq -e 'all(.shipments[]; .status == "delivered")' <<<"$BODY" >/dev/null || ss_fail "status filter"
  cursor=$(jq -r '.next_cursor // empty' <<<"$BODY"); pages=$((pages + 1))
  [ -z "$cursor" ] && break
  [ $pages -gt 5 ] && ss_fail "pagination does not end"
done
[ "$(wc -w <<<"$seen")" = 12 ] || ss_fail "12 delivered rows expected, saw: $seen"
[ "$(tr ' ' '\n' <<<"$seen" | grep . | sort -r | tr '\n' ' ')" = "$(tr ' ' '\n' <<<"$seen" | grep . | tr '\n' ' ')" ] || ss_fail "not newest first: $seen"
[ "$pages" = 2 ] || ss_fail "expected 2 pages, got $pages"
ss_pass "keyset pagination: 12 rows over 2 pages, newest first, no repeats"

# --- PostgreSQL down: /db 503 quickly, /v1 still works, /ready names it
ss_pg_stop
start=$(date +%s%N)
call GET /db/shipments; expect 503 "/db with PostgreSQL stopped"
ms=$(( ($(date +%s%N) - start) / 1000000 )); [ $ms -lt 5000 ] || ss_fail "/db took ${ms} ms to say 503"
call POST /v1/shipments "$FIX/api/shipment-create.request.json"; expect 201 "/v1 with PostgreSQL stopped"
CODE=$(curl -s -o "$SS_TEST_TMP/r" -w '%{http_code}' "$GW/ready"); [ "$CODE" = 503 ] && grep -q postgresql "$SS_TEST_TMP/r" || ss_fail "/ready: $CODE $(cat "$SS_TEST_TMP/r")"
# ... but no connection details (libpq's message names host, port, user, database): logs only.
# Answers over 2.5 s: after a failed connect the gateway waits about a second before the
# next attempt, so some of them follow a real attempt (and its libpq message).
for i in 1 2 3 4 5 6 7 8; do
  CODE=$(curl -s -o "$SS_TEST_TMP/r" -w '%{http_code}' "$GW/ready"); [ "$CODE" = 503 ] || ss_fail "/ready: $CODE"
  call GET /db/shipments; expect 503 "/db with PostgreSQL stopped ($i)" >/dev/null
  for secret in "$SS_TEST_PG_HOST" ":$SS_TEST_PG_PORT" "port $SS_TEST_PG_PORT" "${DB_URL##*/}"; do
    ! grep -qF -- "$secret" "$SS_TEST_TMP/r" || ss_fail "/ready body leaks '$secret': $(cat "$SS_TEST_TMP/r")"
    ! grep -qF -- "$secret" <<<"$BODY" || ss_fail "/db 503 body leaks '$secret': $BODY"
  done
  sleep 0.3
done
grep -qF "$SS_TEST_PG_PORT" "$SS_TEST_TMP/gw.$GW_PORT.log" || ss_fail "the log should keep the connection error"
ss_pass "/ready names postgresql, without host, port or database (those are in the log)"
ss_pg_start
ss_wait_for 20 curl -fsS -H "Authorization: Bearer $API_KEY" "$GW/db/shipments" || ss_fail "/db back after PostgreSQL restart"
ss_pass "/db recovers without restarting the gateway"

# --- Kafka down: /v1 answers without waiting; the event arrives after the broker is back
ss_kafka_stop
start=$(date +%s%N)
call POST /v1/shipments "$FIX/api/shipment-create.request.json"; expect 201 "/v1 with Kafka stopped"
ms=$(( ($(date +%s%N) - start) / 1000000 )); [ $ms -lt 3000 ] || ss_fail "/v1 waited ${ms} ms with Kafka down"
LATE=$(jq -r .id <<<"$BODY")
ss_kafka_start
ss_wait_for 60 bash -c "'$SS_KAFKACTL' consume -b '$SS_TEST_KAFKA_BOOTSTRAP' -t '${PREFIX}shipments' -n 100 --timeout 3 | grep -q '$LATE'" \
  || ss_fail "event produced while Kafka was down never arrived"
ss_pass "event queued during the outage delivered after Kafka came back"

ss_stop_bg "$GW_PID" || ss_fail "gateway did not exit 0 on SIGTERM"
ss_pass "SIGTERM: exit 0"

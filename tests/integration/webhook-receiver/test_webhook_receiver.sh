#!/usr/bin/env bash
# shipstream-webhook-receiver over real HTTP against a real Kafka broker:
# signatures (NFKD, rotation, random per-run secret), limits, strict parsing,
# routing and keys, 503 while the broker is down and recovery without restart.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh" || { echo "FAIL: cannot source lib.sh" >&2; exit 1; }

BIN="$SS_BIN_DIR/shipstream-webhook-receiver"
FIX="${SS_FIXTURES_DIR:-$SS_SOURCE_ROOT/tests/fixtures/easypost}"
TRACKER="$FIX/event-tracker-updated.json"
BATCH="$FIX/event-batch-created.json"
[ -x "$BIN" ] || ss_fail "no $BIN"
[ -f "$TRACKER" ] || ss_fail "no fixture $TRACKER"

SECRET_NFC=$'s\xc3\xa9cret'        # what a user types: é precomposed
SECRET_NFKD=$'se\xcc\x81cret'      # the HMAC key: e + combining acute
PREV_SECRET="prev-$(openssl rand -hex 12)"
RAND_SECRET="rand-$(openssl rand -hex 16)"  # ASCII: NFKD is the identity
SIG_TRACKER=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db
SIG_TRACKER_NFC=7f1669d6699d0b937cc1e69402423bdd2be0a8bcf571d34a8116765f1741219b

# sign <key bytes> <file>: the hex HMAC-SHA256, computed here, never by the service.
sign() { openssl dgst -sha256 -hmac "$1" -r <"$2" | cut -d' ' -f1; }

# The test's own signer agrees with EasyPost's recorded signature.
[ "$(sign "$SECRET_NFKD" "$TRACKER")" = "$SIG_TRACKER" ] || ss_fail "test signer disagrees with the fixture"
[ "$(sign "$SECRET_NFC" "$TRACKER")" = "$SIG_TRACKER_NFC" ] || ss_fail "NFC signature of the fixture differs"

prefix=$(ss_test_prefix)
ss_test_create_topics "$prefix" || ss_fail "create topics"

# ---------------------------------------------------------------- refuse to start
out=$(env -u EASYPOST_WEBHOOK_SECRET LISTEN=$(ss_free_port) KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  timeout 10 "$BIN" 2>&1); rc=$?
[ $rc -eq 2 ] || ss_fail "no secret: exit $rc, want 2"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || ss_fail "no secret: want one line, got: $out"
grep -q EASYPOST_WEBHOOK_SECRET <<<"$out" || ss_fail "no secret: line does not name the variable: $out"
out=$(EASYPOST_WEBHOOK_SECRET= timeout 10 "$BIN" 2>&1); rc=$?
[ $rc -eq 2 ] || ss_fail "empty secret: exit $rc, want 2"
out=$(EASYPOST_WEBHOOK_SECRET=$'s\xc3(' timeout 10 "$BIN" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q EASYPOST_WEBHOOK_SECRET <<<"$out" || ss_fail "invalid UTF-8 secret: exit $rc: $out"
grep -q $'s\xc3(' <<<"$out" && ss_fail "the error quotes the secret"
ss_pass "no secret -> exit 2 naming EASYPOST_WEBHOOK_SECRET"

# ---------------------------------------------------------------- receiver A
port=$(ss_free_port)
URL="http://127.0.0.1:$port/webhooks/easypost"
log="$SS_TEST_TMP/receiver.log"
ss_start_bg "$log" env LISTEN="127.0.0.1:$port" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$prefix" EASYPOST_WEBHOOK_SECRET="$SECRET_NFC" \
  EASYPOST_WEBHOOK_SECRET_PREVIOUS="$PREV_SECRET" WEBHOOK_PRODUCE_TIMEOUT_MS=2000 \
  WEBHOOK_THREADS=8 LOG_LEVEL=info "$BIN" >/dev/null
RPID=$SS_BG_PID
ss_wait_for 30 curl -fsS "http://127.0.0.1:$port/ready" || ss_fail "receiver never ready"

# post <file> <header line or ""> [curl args...]: prints the status; the body goes to $SS_TEST_TMP/resp
post() {
  local file=$1 hdr=$2; shift 2
  local args=(-sS -o "$SS_TEST_TMP/resp" -D "$SS_TEST_TMP/resp.h" -w '%{http_code}' --max-time 20
              -H 'Content-Type: application/json' --data-binary "@$file")
  [ -n "$hdr" ] && args+=(-H "$hdr")
  curl "${args[@]}" "$@" "$URL"
}
expect() { # expect <want status> <what> <post args...>
  local want=$1 what=$2; shift 2
  local got; got=$(post "$@")
  [ "$got" = "$want" ] || ss_fail "$what: status $got, want $want: $(cat "$SS_TEST_TMP/resp" 2>/dev/null)"
}
error_code() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$SS_TEST_TMP/resp"; }

# consume_has <topic> <key> <event id>: the event is on the topic with that key.
consume_has() {
  ss_kafkactl consume -t "$1" --until-end --timeout 20 2>/dev/null |
    awk -F'\t' -v k="$2" -v id="$3" '$3 == k && index($4, "\"event_id\":\"" id "\"") { found = 1 } END { exit !found }'
}

# Both fixtures with sécret -> 200, on the right topic with the right key.  A broker that
# has just started may not lead the new topics' partitions yet: the receiver rightly answers
# 503 (EasyPost retries it); the first webhook is retried as EasyPost would, up to 30 s.
first_accepted() { [ "$(post "$TRACKER" "X-Hmac-Signature: hmac-sha256-hex=$SIG_TRACKER")" = 200 ]; }
ss_wait_for 30 first_accepted || ss_fail "tracker fixture never accepted: $(cat "$SS_TEST_TMP/resp" 2>/dev/null)"
expect 200 "tracker fixture" "$TRACKER" "X-Hmac-Signature: hmac-sha256-hex=$SIG_TRACKER"
grep -q '"status":"accepted"' "$SS_TEST_TMP/resp" && grep -q '"event_id":"evt_1"' "$SS_TEST_TMP/resp" ||
  ss_fail "tracker fixture: body $(cat "$SS_TEST_TMP/resp")"
consume_has "${prefix}trackers" "1" "evt_1" || ss_fail "tracker event not on ${prefix}trackers with key 1 (tracking code)"
batch_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["id"])' "$BATCH")
batch_evt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$BATCH")
expect 200 "batch fixture" "$BATCH" \
  "X-Hmac-Signature: hmac-sha256-hex=e93977c8ccb20363d51a62b3fe1fc402b7829be1152da9e88cf9e8d07115a46b"
consume_has "${prefix}batches" "$batch_id" "$batch_evt" || ss_fail "batch event not on ${prefix}batches with key $batch_id"
ss_pass "both fixtures with secret sécret -> 200, trackers/key=tracking code, batches/key=batch id"

# The value is the envelope: source webhook, the Event's result as object.
ss_kafkactl consume -t "${prefix}trackers" -n 1 --timeout 20 2>/dev/null | cut -f4 |
  python3 -c 'import json,sys; e=json.loads(sys.stdin.readline()); assert e["source"]=="webhook" and e["type"]=="tracker.updated" and e["object"]["object"]=="Tracker" and e["object"]["weight"]==614.4, e' ||
  ss_fail "tracker envelope is not as expected"
ss_pass "envelope carries the tracker as received"

# Signature without NFKD -> 401 signature_invalid, and the answer does not reveal the expected value.
expect 401 "NFC signature" "$TRACKER" "X-Hmac-Signature: hmac-sha256-hex=$SIG_TRACKER_NFC"
[ "$(error_code)" = signature_invalid ] || ss_fail "NFC signature: code $(error_code)"
grep -q "$SIG_TRACKER" "$SS_TEST_TMP/resp" "$SS_TEST_TMP/resp.h" && ss_fail "401 reveals the expected signature"
ss_pass "signature computed without NFKD -> 401 signature_invalid"

# One changed byte -> 401.
# (GNU sed keeps the missing final newline: same length, one byte differs.)
sed 's/614\.4/614.5/' "$TRACKER" >"$SS_TEST_TMP/changed.json"
[ "$(cmp -l "$TRACKER" "$SS_TEST_TMP/changed.json" | wc -l)" = 1 ] || ss_fail "test: want exactly one changed byte"
expect 401 "changed byte" "$SS_TEST_TMP/changed.json" "X-Hmac-Signature: hmac-sha256-hex=$SIG_TRACKER"
[ "$(error_code)" = signature_invalid ] || ss_fail "changed byte: code $(error_code)"
ss_pass "one changed byte -> 401"

# No header -> 401 signature_missing; empty header too.
expect 401 "no header" "$TRACKER" ""
[ "$(error_code)" = signature_missing ] || ss_fail "no header: code $(error_code)"
expect 401 "malformed header" "$TRACKER" "X-Hmac-Signature: sha256=$SIG_TRACKER"
[ "$(error_code)" = signature_invalid ] || ss_fail "malformed header: code $(error_code)"
ss_pass "no header -> 401 signature_missing; malformed -> 401 signature_invalid"

# Header name in lower case (and mixed) -> accepted.
expect 200 "lower-case header" "$TRACKER" "x-hmac-signature: hmac-sha256-hex=$SIG_TRACKER"
expect 200 "mixed-case header" "$TRACKER" "X-HMAC-Signature: hmac-sha256-hex=$SIG_TRACKER"
ss_pass "lower-case header name -> 200"

# Previous secret during rotation -> accepted.
expect 200 "previous secret" "$BATCH" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$PREV_SECRET" "$BATCH")"
expect 401 "unknown secret" "$BATCH" "X-Hmac-Signature: hmac-sha256-hex=$(sign "other-$PREV_SECRET" "$BATCH")"
ss_pass "previous secret -> 200; any other -> 401"

# 5 MiB body (the limit is 4 MiB) -> 413 promptly, without the body being read (Content-Length).
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$SS_TEST_TMP/big.json"
t0=$(_ss_now_ms)
expect 413 "5 MiB body" "$SS_TEST_TMP/big.json" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$SS_TEST_TMP/big.json")" \
  -H 'Expect:'
t=$(( $(_ss_now_ms) - t0 ))
[ $t -lt 3000 ] || ss_fail "413 took ${t} ms"
# Same with chunked transfer encoding: counted while reading.
expect 413 "5 MiB chunked body" "$SS_TEST_TMP/big.json" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$SS_TEST_TMP/big.json")" \
  -H 'Transfer-Encoding: chunked'
ss_pass "5 MiB body -> 413 in ${t} ms (Content-Length and chunked)"

# Signed non-JSON -> 400; signed JSON that is not an Event -> 400.
printf 'this is not json' >"$SS_TEST_TMP/nonjson"
expect 400 "non-JSON" "$SS_TEST_TMP/nonjson" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$SS_TEST_TMP/nonjson")"
printf '{"object":"Tracker","id":"trk_1","tracking_code":"1"}' >"$SS_TEST_TMP/notevent"
expect 400 "not an Event" "$SS_TEST_TMP/notevent" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$SS_TEST_TMP/notevent")"
printf '{"object":"Event","id":"evt_x","description":"tracker.updated","result":"trk_1"}' >"$SS_TEST_TMP/noresult"
expect 400 "result not an object" "$SS_TEST_TMP/noresult" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$SS_TEST_TMP/noresult")"
ss_pass "signed non-JSON -> 400; signed non-Event -> 400"

# Unknown event type -> events topic, not dropped.
rid="rfnd_$(openssl rand -hex 6)"
printf '{"object":"Event","id":"evt_%s","description":"refund.successful","mode":"test","result":{"object":"Refund","id":"%s","tracking_code":"EZ%s","status":"submitted"}}' \
  "$rid" "$rid" "$rid" >"$SS_TEST_TMP/refund.json"
expect 200 "refund.successful" "$SS_TEST_TMP/refund.json" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$SS_TEST_TMP/refund.json")"
consume_has "${prefix}events" "EZ$rid" "evt_$rid" || ss_fail "refund.successful not on ${prefix}events"
ss_pass "unknown event type (refund.successful) -> events topic"

# Routing by the object's type, not the description: an Event whose result is a
# Shipment -> shipments topic, keyed by the shipment id (it went to events before).
sid="shp_$(openssl rand -hex 6)"
printf '{"object":"Event","id":"evt_%s","description":"shipment.invoice.updated","mode":"test","result":{"object":"Shipment","id":"%s","tracking_code":"EZ%s","status":"delivered"}}' \
  "$sid" "$sid" "$sid" >"$SS_TEST_TMP/shipment.json"
expect 200 "shipment result" "$SS_TEST_TMP/shipment.json" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$SS_TEST_TMP/shipment.json")"
consume_has "${prefix}shipments" "$sid" "evt_$sid" || ss_fail "Event with a Shipment result not on ${prefix}shipments with key $sid"
consume_has "${prefix}events" "$sid" "evt_$sid" && ss_fail "Event with a Shipment result also on ${prefix}events"
ss_pass "Event whose result is a Shipment -> shipments topic, key = shipment id"

# Same event twice -> accepted twice.
before=$(ss_kafkactl offsets -t "${prefix}batches" --sum 2>/dev/null)
expect 200 "duplicate 1" "$BATCH" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$BATCH")"
expect 200 "duplicate 2" "$BATCH" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$BATCH")"
after=$(ss_kafkactl offsets -t "${prefix}batches" --sum 2>/dev/null)
[ $((after - before)) -eq 2 ] || ss_fail "duplicate: batches grew by $((after - before)), want 2"
ss_pass "same event twice -> 200 twice, both on Kafka"

# Metrics by outcome.
m=$(curl -fsS "http://127.0.0.1:$port/metrics") || ss_fail "no /metrics"
for o in accepted unsigned bad_signature too_large bad_body; do
  grep -Eq "^webhook_requests_total\{outcome=\"$o\"\} [1-9]" <<<"$m" || ss_fail "metrics: no $o count"
done
grep -q '^webhook_produce_duration_seconds_bucket' <<<"$m" && grep -q '^webhook_request_duration_seconds_bucket' <<<"$m" ||
  ss_fail "metrics: latency histograms missing"
ss_pass "metrics count every outcome"

# Broker down -> 503 with Retry-After within the bounded wait; back -> 200 without a restart.
ss_kafka_stop || ss_fail "could not stop kafka"
t0=$(_ss_now_ms)
expect 503 "broker down" "$BATCH" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$BATCH")"
t=$(( $(_ss_now_ms) - t0 ))
[ "$(error_code)" = kafka_unavailable ] || ss_fail "broker down: code $(error_code)"
grep -qi '^Retry-After: [0-9]' "$SS_TEST_TMP/resp.h" || ss_fail "503 without Retry-After"
[ $t -lt 5000 ] || ss_fail "503 took ${t} ms (bound 2000 ms + overhead)"
ss_wait_for 20 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/ready)\" = 503 ]" ||
  ss_fail "/ready stays 200 with the broker down"
ss_pass "broker stopped -> 503 + Retry-After in ${t} ms; /ready 503"
ss_kafka_start || ss_fail "could not restart kafka"
ok200() { [ "$(post "$BATCH" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$SECRET_NFKD" "$BATCH")")" = 200 ]; }
ss_wait_for 90 ok200 || ss_fail "no 200 after the broker came back"
kill -0 "$RPID" || ss_fail "receiver died"
ss_pass "broker back -> 200 again, same receiver process"

# Graceful stop: exit 0, producer flushed.
ss_stop_bg "$RPID" 20; rc=$?
[ $rc -eq 0 ] || ss_fail "SIGTERM: exit $rc"
grep -q 'flushed' "$log" || ss_fail "no flush on stop"
# Nothing secret or body-like in the log.
grep -q "$PREV_SECRET" "$log" && ss_fail "log contains the previous secret"
grep -q "$SIG_TRACKER" "$log" && ss_fail "log contains a signature"
grep -q 'Last updated at' "$log" && ss_fail "log contains body text"
ss_pass "SIGTERM -> exit 0 after flushing; no secrets or bodies in the log"

# ---------------------------------------------------------------- receiver B: random secret
port=$(ss_free_port)
URL="http://127.0.0.1:$port/webhooks/easypost"
ss_start_bg "$SS_TEST_TMP/receiver-b.log" env LISTEN="127.0.0.1:$port" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$prefix" EASYPOST_WEBHOOK_SECRET="$RAND_SECRET" "$BIN" >/dev/null
ss_wait_for 30 curl -fsS "http://127.0.0.1:$port/ready" || ss_fail "receiver B never ready"
expect 200 "random secret, tracker" "$TRACKER" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$RAND_SECRET" "$TRACKER")"
expect 200 "random secret, batch" "$BATCH" "X-Hmac-Signature: hmac-sha256-hex=$(sign "$RAND_SECRET" "$BATCH")"
expect 401 "fixture signature under another secret" "$TRACKER" "X-Hmac-Signature: hmac-sha256-hex=$SIG_TRACKER"
ss_pass "random per-run secret, signatures computed by the test -> 200"

# ---------------------------------------------------------------- receiver C: unsigned allowed explicitly
port=$(ss_free_port)
URL="http://127.0.0.1:$port/webhooks/easypost"
ss_start_bg "$SS_TEST_TMP/receiver-c.log" env -u EASYPOST_WEBHOOK_SECRET LISTEN="127.0.0.1:$port" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$prefix" WEBHOOK_ALLOW_UNSIGNED=1 "$BIN" >/dev/null
ss_wait_for 30 curl -fsS "http://127.0.0.1:$port/ready" || ss_fail "receiver C never ready"
expect 200 "unsigned allowed" "$BATCH" ""
ss_pass "WEBHOOK_ALLOW_UNSIGNED=1 without a secret starts and accepts"

echo "PASS: webhook-receiver"

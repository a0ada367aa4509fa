#!/usr/bin/env bash
# Limits that agree end to end (docs/architecture.md, "Limits"), on a real
# broker (message.max.bytes from deploy/local/kafka.sh), topics made by
# ss-kafkactl create-topics, the real receiver and sync worker, PostgreSQL:
#   - a signed 3 MB webhook -> 200 -> its padded content in PostgreSQL;
#   - a signed webhook of exactly WEBHOOK_MAX_BODY_BYTES (4 MiB) -> 200 -> PostgreSQL;
#   - one byte more -> 413 (final), never 503;
#   - an envelope over the producer's limit (KAFKA_MESSAGE_MAX_BYTES lowered) -> 413, not 503;
#   - a 3 MB gateway envelope (THE writer + the shipstream producer) -> shipments.raw.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh" || { echo "FAIL: cannot source lib.sh" >&2; exit 1; }
export LC_ALL=C

RECV="$SS_BIN_DIR/shipstream-webhook-receiver"
WORKER="$SS_BIN_DIR/shipstream-sync-worker"
PRODUCE="$SS_BIN_DIR/ss-limits-produce"
FIX="${SS_FIXTURES_DIR:-$SS_SOURCE_ROOT/tests/fixtures/easypost}"
for b in "$RECV" "$WORKER" "$PRODUCE"; do [ -x "$b" ] || ss_fail "no $b"; done

ss_test_migrated_db limits
PREFIX=$(ss_test_prefix)
ss_test_create_topics "$PREFIX" 3 || ss_fail "create topics"
SECRET="lim-$(openssl rand -hex 16)"
T="$SS_TEST_TMP"

# ---------------------------------------------------------------- services
wport=$(ss_free_port)
ss_start_bg "$T/worker.log" env DATABASE_URL="$DB_URL" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" KAFKA_GROUP_ID="lim-$$" LISTEN="127.0.0.1:$wport" LOG_FORMAT=text \
  "$WORKER" >/dev/null
ss_wait_for 20 curl -fsS "http://127.0.0.1:$wport/health" || ss_fail "worker did not start"

# start_receiver <name> [VAR=v...]: sets URL_<name>
start_receiver() {
  local name=$1 port; shift
  port=$(ss_free_port)
  ss_start_bg "$T/receiver-$name.log" env LISTEN="127.0.0.1:$port" \
    KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
    EASYPOST_WEBHOOK_SECRET="$SECRET" WEBHOOK_PRODUCE_TIMEOUT_MS=20000 WEBHOOK_THREADS=8 \
    LOG_FORMAT=text "$@" "$RECV" >/dev/null
  ss_wait_for 30 curl -fsS "http://127.0.0.1:$port/ready" || ss_fail "receiver $name never ready"
  printf -v "URL_$name" '%s' "http://127.0.0.1:$port"
}
start_receiver main # defaults: WEBHOOK_MAX_BODY_BYTES 4 MiB, message.max.bytes 8 MiB
start_receiver small KAFKA_MESSAGE_MAX_BYTES=2097152

# make_event <out> <event id> <tracker id> <total bytes>: the tracker.updated fixture with
# its last tracking detail's message padded so that the compact body is exactly that long.
make_event() {
  python3 - "$FIX/event-tracker-updated.json" "$@" <<'PY'
import json, sys
src, out, evt, trk, total = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
e = json.load(open(src))
e["id"] = evt
r = e["result"]
r["id"] = trk
r["tracking_code"] = "LIM" + trk
det = r["tracking_details"][-1]
det["message"] = ""
base = len(json.dumps(e, separators=(",", ":")).encode())
n = total - base
assert n > 0, "total too small"
# Varied text (not one repeated byte), plain ASCII: its length in bytes is exact.
chunk = "".join("%07d " % i for i in range(n // 8 + 1))
det["message"] = chunk[:n]
body = json.dumps(e, separators=(",", ":")).encode()
assert len(body) == total, (len(body), total)
open(out, "wb").write(body)
PY
}
sign() { openssl dgst -sha256 -hmac "$SECRET" -r <"$1" | cut -d' ' -f1; }

# post <base url> <file>: prints the status; the answer in $T/resp
post() {
  curl -sS -o "$T/resp" -w '%{http_code}' --max-time 60 -H 'Content-Type: application/json' \
    -H "X-Hmac-Signature: hmac-sha256-hex=$(sign "$2")" --data-binary "@$2" "$1/webhooks/easypost"
}
error_code() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$T/resp"; }
md5_of_message() { python3 -c 'import json,sys,hashlib; e=json.load(open(sys.argv[1])); print(hashlib.md5(e["result"]["tracking_details"][-1]["message"].encode()).hexdigest())' "$1"; }

# in_pg <tracker id> <md5 of the padded message>: trackers.raw, tracking_events.message
# and easypost_events.payload all hold it.
in_pg() {
  [ "$(q "SELECT md5(raw->'tracking_details'->-1->>'message') FROM trackers WHERE id = '$1'")" = "$2" ] &&
    [ "$(q "SELECT count(*) FROM tracking_events WHERE tracker_id = '$1' AND md5(message) = '$2'")" = 1 ] &&
    [ "$(q "SELECT md5(payload->'result'->'tracking_details'->-1->>'message') FROM easypost_events WHERE payload->'result'->>'id' = '$1'")" = "$2" ]
}

# ---------------------------------------------------------------- a 3 MB webhook
make_event "$T/big.json" evt_lim_3mb trk_lim_3mb 3000000 || ss_fail "building the 3 MB event"
got=$(post "$URL_main" "$T/big.json")
[ "$got" = 200 ] || ss_fail "3 MB webhook: status $got, want 200: $(head -c 300 "$T/resp")"
want=$(md5_of_message "$T/big.json")
ss_wait_for 60 in_pg trk_lim_3mb "$want" || ss_fail "3 MB webhook not in PostgreSQL with its content"
len=$(q "SELECT octet_length(message) FROM tracking_events WHERE tracker_id = 'trk_lim_3mb' ORDER BY octet_length(message) DESC LIMIT 1")
ss_pass "signed 3,000,000-byte webhook -> 200 -> PostgreSQL (tracking_events.message $len bytes, trackers.raw, easypost_events.payload)"

# ---------------------------------------------------------------- exactly the limit, and one byte more
LIMIT=4194304
make_event "$T/max.json" evt_lim_max trk_lim_max "$LIMIT" || ss_fail "building the 4 MiB event"
got=$(post "$URL_main" "$T/max.json")
[ "$got" = 200 ] || ss_fail "4 MiB webhook: status $got, want 200: $(head -c 300 "$T/resp")"
ss_wait_for 60 in_pg trk_lim_max "$(md5_of_message "$T/max.json")" || ss_fail "4 MiB webhook not in PostgreSQL"
ss_pass "signed webhook of exactly WEBHOOK_MAX_BODY_BYTES ($LIMIT) -> 200 -> PostgreSQL"

make_event "$T/over.json" evt_lim_over trk_lim_over $((LIMIT + 1)) || ss_fail "building the 4 MiB + 1 event"
got=$(post "$URL_main" "$T/over.json")
[ "$got" = 413 ] && [ "$(error_code)" = payload_too_large ] ||
  ss_fail "4 MiB + 1 webhook: status $got, want 413 payload_too_large: $(head -c 300 "$T/resp")"
# Chunked (no Content-Length): refused while reading, 413 as well.
got=$(curl -sS -o "$T/resp" -w '%{http_code}' --max-time 60 -H 'Content-Type: application/json' \
  -H 'Transfer-Encoding: chunked' -H "X-Hmac-Signature: hmac-sha256-hex=$(sign "$T/over.json")" \
  --data-binary "@$T/over.json" "$URL_main/webhooks/easypost")
[ "$got" = 413 ] || ss_fail "chunked 4 MiB + 1 webhook: status $got, want 413"
ss_pass "signed webhook of $((LIMIT + 1)) bytes -> 413 payload_too_large (Content-Length and chunked)"

# ---------------------------------------------------------------- envelope over the producer's limit
# The body is within WEBHOOK_MAX_BODY_BYTES but its envelope is over this receiver's
# message.max.bytes (2 MiB): 413, final.  Before: the producer refused it -> 503, which
# EasyPost retries for a day and then drops.
got=$(post "$URL_small" "$T/big.json")
[ "$got" = 413 ] && [ "$(error_code)" = payload_too_large ] ||
  ss_fail "3 MB webhook over a 2 MiB producer limit: status $got, want 413: $(head -c 300 "$T/resp")"
grep -q "envelope is over the Kafka message limit" "$T/receiver-small.log" ||
  ss_fail "the receiver did not log why it refused"
small=$(ss_metric "$URL_small" 'webhook_requests_total{outcome="broker_unavailable"}') || ss_fail "metrics"
[ "$small" = 0 ] || ss_fail "a too large envelope counted as broker_unavailable ($small)"
ss_pass "envelope over the producer's message.max.bytes -> 413 (never 503)"

# ---------------------------------------------------------------- memory of bodies in flight
# WEBHOOK_MAX_INFLIGHT_BYTES bounds the body bytes being served at once: while a slow
# 4 MiB upload holds its reservation, a second large webhook waits (503 busy, Retry-After:
# EasyPost retries it); once the upload is gone, it is accepted.
out=$(LISTEN=127.0.0.1:$(ss_free_port) EASYPOST_WEBHOOK_SECRET=x WEBHOOK_MAX_INFLIGHT_BYTES=4000000 \
  timeout 10 "$RECV" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q WEBHOOK_MAX_INFLIGHT_BYTES <<<"$out" ||
  ss_fail "WEBHOOK_MAX_INFLIGHT_BYTES below the body limit: exit $rc: $out"
start_receiver budget WEBHOOK_MAX_INFLIGHT_BYTES=5000000
curl -s -o /dev/null --max-time 60 --limit-rate 100K -H "X-Hmac-Signature: hmac-sha256-hex=00" \
  --data-binary "@$T/max.json" "$URL_budget/webhooks/easypost" &
slow=$!
holding() { [ "$(ss_metric "$URL_budget" webhook_inflight_body_bytes)" = 4194304 ]; }
ss_wait_for 10 holding || ss_fail "the slow 4 MiB upload never held its reservation"
busy() { [ "$(post "$URL_budget" "$T/big.json")" = 503 ] && [ "$(error_code)" = busy ]; }
ss_wait_for 10 busy || ss_fail "a 3 MB webhook next to a 4 MiB upload over a 5 MB budget was not 503 busy"
kill "$slow" 2>/dev/null; wait "$slow" 2>/dev/null
accepted() { [ "$(post "$URL_budget" "$T/big.json")" = 200 ]; }
ss_wait_for 20 accepted || ss_fail "the 3 MB webhook was not accepted once the upload was gone"
n=$(ss_metric "$URL_budget" 'webhook_requests_total{outcome="busy"}') || ss_fail "metrics"
[ "${n%.*}" -ge 1 ] || ss_fail "webhook_requests_total{outcome=\"busy\"} = $n"
ss_pass "WEBHOOK_MAX_INFLIGHT_BYTES: over the budget -> 503 busy (retried), then 200"

# ---------------------------------------------------------------- a 3 MB gateway object
python3 - "$FIX/api/shipment-create.response.json" "$T/shp.json" <<'PY' || ss_fail "building the 3 MB shipment"
import json, sys
s = json.load(open(sys.argv[1]))
s["id"] = "shp_lim_3mb"
s["messages"] = [{"carrier": "USPS", "carrier_account_id": "ca_%06d" % i, "type": "rate_error",
                  "message": "rate unavailable for this parcel, attempt %06d " % i + "x" * 120}
                 for i in range(15500)]
body = json.dumps(s, separators=(",", ":")).encode()
assert len(body) >= 3000000, len(body)
open(sys.argv[2], "wb").write(body)
PY
out=$("$PRODUCE" "$SS_TEST_KAFKA_BOOTSTRAP" "$PREFIX" "$T/shp.json" shipment.retrieved 2>"$T/produce.err") ||
  ss_fail "producing the 3 MB gateway envelope: $(cat "$T/produce.err")"
bytes=$(cut -f3 <<<"$out")
[ "$bytes" -ge 3000000 ] || ss_fail "gateway envelope is $bytes bytes"
shp_in_pg() {
  [ "$(q "SELECT jsonb_array_length(raw->'messages') FROM shipments WHERE id = 'shp_lim_3mb'")" = 15500 ]
}
ss_wait_for 60 shp_in_pg || ss_fail "3 MB gateway shipment not in PostgreSQL"
ss_pass "3 MB gateway envelope ($bytes bytes, writer + shipstream producer) -> shipments.raw"

# Nothing went to the dead-letter topic.
dlq=$(ss_metric_sum "http://127.0.0.1:$wport" sync_dlq_total) || ss_fail "worker metrics"
[ "${dlq%.*}" = 0 ] || ss_fail "sync_dlq_total = $dlq"
ss_pass "no dead letters"

#!/usr/bin/env bash
# deploy/monitoring against the real services: the alert rules check and pass
# their unit tests (promtool), the PrometheusRule is generated from them, the
# Grafana board parses, and every metric name the rules and the board use is
# exported by a running service (gateway, receiver, worker, scheduler, reconcile) after a
# little real traffic.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"
MON="$SS_SOURCE_ROOT/deploy/monitoring"

command -v promtool >/dev/null || ss_fail "promtool is missing (deploy/local/deps.sh --test installs Debian's prometheus)"
promtool check rules "$MON/alerts.yml" >"$SS_TEST_TMP/check.log" 2>&1 || { cat "$SS_TEST_TMP/check.log"; ss_fail "promtool check rules"; }
ss_pass "promtool check rules: $(grep -o '[0-9]* rules found' "$SS_TEST_TMP/check.log")"
(cd "$MON" && promtool test rules alerts.test.yml) >"$SS_TEST_TMP/test.log" 2>&1 || { cat "$SS_TEST_TMP/test.log"; ss_fail "promtool test rules"; }
ss_pass "promtool test rules: every alert fires on its series and stays quiet otherwise"
"$MON/render-k8s.sh" --check || ss_fail "PrometheusRule stale"
ss_pass "deploy/k8s/components/monitoring/prometheusrule.yaml matches alerts.yml"
jq -e '.panels | map(select(.type != "row")) | length > 10 and all(.targets | length > 0)' "$MON/grafana-shipstream.json" >/dev/null ||
  ss_fail "Grafana board: panels without queries"
ss_pass "Grafana board parses; every panel has a query"

# The metric names used: identifiers of our services' families in the rule
# expressions and the board's queries (histogram series map to their family).
used=$( { yq -r '.groups[].rules[].expr' "$MON/alerts.yml"; jq -r '.panels[].targets[]?.expr' "$MON/grafana-shipstream.json"; } |
  grep -oE '\b(gateway|webhook|sync|refresh|http|kafka|housekeeping|reconcile|partitions?)_[a-z0-9_]+' |
  sed -E 's/_(bucket|sum|count)$//' | sort -u)
[ -n "$used" ] || ss_fail "no metric names found in the rules and the board"

# --- the services, with a little traffic so that lazily created series exist
ss_test_migrated_db mon
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
SECRET="mon-$(openssl rand -hex 8)"
gw_start_sim
gw_start
rport=$(ss_free_port); wport=$(ss_free_port); sport=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/receiver.log" env LISTEN=127.0.0.1:$rport KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" EASYPOST_WEBHOOK_SECRET="$SECRET" "$SS_BIN_DIR/shipstream-webhook-receiver" >/dev/null
ss_start_bg "$SS_TEST_TMP/worker.log" env LISTEN=127.0.0.1:$wport KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" KAFKA_GROUP_ID="mon-$$" DATABASE_URL="$DB_URL" "$SS_BIN_DIR/shipstream-sync-worker" >/dev/null
ss_start_bg "$SS_TEST_TMP/scheduler.log" env LISTEN=127.0.0.1:$sport DATABASE_URL="$DB_URL" GATEWAY_API_KEYS="$API_KEY" \
  REFRESH_MIN_INTERVAL_SECONDS=0 "$SS_BIN_DIR/shipstream-refresh-scheduler" >/dev/null
cport=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/reconcile.log" env LISTEN=127.0.0.1:$cport KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" DATABASE_URL="$DB_URL" EASYPOST_API_KEY=$EP_KEY EASYPOST_API_BASE="$SIM_URL" \
  RECONCILE_INTERVAL_SECONDS=3600 RECONCILE_STATE_DIR="$SS_TEST_TMP" "$SS_BIN_DIR/shipstream-reconcile" serve >/dev/null
for p in $rport $wport $sport $cport; do
  ss_wait_for 30 curl -fsS "http://127.0.0.1:$p/ready" >/dev/null || ss_fail "service on $p not ready"
done
call POST /v1/shipments "$FIX/api/shipment-create.request.json"; expect 201 "a shipment through the gateway"
SHP=$(jq -r .id <<<"$BODY"); RATE=$(jq -r '.rates[0].id' <<<"$BODY")
printf '{"rate":{"id":"%s"}}' "$RATE" >"$SS_TEST_TMP/buy.json"
EXTRA_CURL=(-H "Idempotency-Key: mon-$SHP")
call POST "/v1/shipments/$SHP/buy" "$SS_TEST_TMP/buy.json"; expect 200 "a keyed buy"
EXTRA_CURL=()
ss_wait_for 30 curl -fsS "$GW/ready" >/dev/null || ss_fail "gateway not ready"   # probes set gateway_db_up / gateway_kafka_up
body="$FIX/event-tracker-updated.json"
sig=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$body" | cut -d' ' -f1)
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Hmac-Signature: hmac-sha256-hex=$sig" \
  -H 'Content-Type: application/json' --data-binary "@$body" "http://127.0.0.1:$rport/webhooks/easypost")
[ "$code" = 200 ] || ss_fail "signed webhook: $code"
synced() { [ "$(ss_psql "$DB_URL" -Atc "SELECT count(*) FROM shipments") " != "0 " ]; }
ss_wait_for 30 synced || ss_fail "the worker applied nothing"
curl -fsS -X POST -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$sport/refresh" >/dev/null || ss_fail "POST /refresh"
refreshed() { [ "$(ss_psql "$DB_URL" -Atc "SELECT count(*) FROM analytics_refresh_log WHERE outcome = 'success'")" -ge 3 ]; }
ss_wait_for 30 refreshed || ss_fail "no refresh ran"

# The worker publishes its lag per assigned partition on its next lag pass.
has_lag() { curl -fsS "http://127.0.0.1:$wport/metrics" | grep -q '^sync_consumer_lag{'; }
ss_wait_for 30 has_lag || ss_fail "the worker never exported sync_consumer_lag"
exported="$SS_TEST_TMP/exported"
passed() { curl -fsS "http://127.0.0.1:$cport/metrics" | grep -q '^reconcile_last_pass_timestamp_seconds'; }
ss_wait_for 60 passed || ss_fail "the reconciler never finished a pass"
for url in "$GW" "http://127.0.0.1:$rport" "http://127.0.0.1:$wport" "http://127.0.0.1:$sport" "http://127.0.0.1:$cport"; do
  curl -fsS "$url/metrics" >/dev/null || ss_fail "$url/metrics unreachable"   # creates http_requests_total
  curl -fsS "$url/metrics" || ss_fail "$url/metrics unreachable"
done | sed -n 's/^# TYPE \([a-z0-9_]*\) .*/\1/p' | sort -u >"$exported"
[ -s "$exported" ] || ss_fail "no metric families scraped"
missing=$(comm -23 <(printf '%s\n' $used) "$exported")
[ -z "$missing" ] || ss_fail "used by the rules or the board but exported by no service: $(echo $missing)"
ss_pass "all $(wc -w <<<"$used") metric families used by the rules and the board are exported ($(wc -l <"$exported") families scraped)"

#!/usr/bin/env bash
# The web dashboard, driven in headless Chromium against a real gateway and a
# migrated database seeded with psql (deterministic rows, XSS payloads in
# references and addresses, tracking events, offsets and dead letters):
# HTTP headers and the Chart.js 503 are checked with curl, the page itself by
# browser_test.py (tiles, charts and tables equal the /db answers, timeline,
# paging, filter, XSS as text, wrong key, screenshots at 1280x800 and 390x844).
# Usage: test_dashboard_browser.sh <artifact-dir>
# Skips (77) only when chromium, chromedriver or python3-selenium cannot be
# installed by deploy/local/deps.sh --browser.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"
ARTIFACTS=${1:-${SS_ARTIFACT_DIR:-$SS_SOURCE_ROOT/build/test-artifacts/dashboard}}
mkdir -p "$ARTIFACTS" && rm -f "$ARTIFACTS"/dashboard-*.png || ss_fail "cannot create $ARTIFACTS"

# ---- the browser (installed here, never by hand)
PY=/usr/bin/python3
if ! "$SS_SOURCE_ROOT/deploy/local/deps.sh" --browser >"$SS_TEST_TMP/deps.log" 2>&1; then
  cat "$SS_TEST_TMP/deps.log" >&2
  echo "SKIP: deploy/local/deps.sh --browser could not install chromium, chromium-driver and python3-selenium (see above)"
  exit 77
fi
for b in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$b" ] || { echo "SKIP: $b missing after deps.sh --browser"; exit 77; }
done
"$PY" -c 'import selenium' 2>/dev/null || { echo "SKIP: python3-selenium not importable by $PY"; exit 77; }
ss_pass "browser: $(/usr/bin/chromium --version 2>/dev/null | head -1), selenium $("$PY" -c 'import selenium; print(selenium.__version__)')"

# ---- stack: database, topics, gateway
ss_test_migrated_db gw_dash_browser
PREFIX=$(ss_test_prefix)
ss_test_create_topics "$PREFIX" || ss_fail "create topics"
SIM_URL="http://127.0.0.1:1/v2" # /v1 is not used here
gw_start

# ---- data
# 60 purchased shipments over the last 20 days (3 pages of 25), statuses in turn;
# shp_xss carries markup in its reference, its address in name and street;
# tracking events for shp_xss; kafka_offsets of a consumer group at 0 on every
# partition of the shipments topic (5 messages produced below: lag 5); one failed
# refresh run besides the real ones.
ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "seed"
INSERT INTO addresses (id, name, street1, city, state, zip, country, updated_at) VALUES
  ('adr_from', 'Warehouse', '1 Dock St', 'Springfield', 'IL', '62701', 'US', now()),
  ('adr_to', 'Customer', '2 Main St', 'Springfield', 'MO', '65801', 'US', now()),
  ('adr_xss', '<img src=x onerror="window.__xss=1;alert(1)">', '<script>window.__xss=2;alert(2)</script> 3 Elm St',
   'Austin', 'TX', '73301', 'US', now());
WITH d AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today)
INSERT INTO shipments (id, status, carrier, service, total_cost, currency, tracking_code, reference,
                       created_at, est_delivery_date, delivered_at, from_address_id, to_address_id,
                       updated_at, raw, mode)
SELECT format('shp_%s', lpad(i::text, 3, '0')),
       (ARRAY['delivered', 'in_transit', 'pre_transit', 'delivered'])[1 + i % 4],
       (ARRAY['USPS', 'UPS', 'FedEx'])[1 + i % 3],
       (ARRAY['Priority', 'Ground', 'Express'])[1 + i % 3],
       (5 + i * 0.25)::numeric(10, 2), 'USD', format('TRK%s', lpad(i::text, 6, '0')), format('order-%s', i),
       ((SELECT today FROM d) - (i / 3) + time '08:00' + i * interval '1 minute') AT TIME ZONE 'UTC',
       ((SELECT today FROM d) - (i / 3) + 3 + time '18:00') AT TIME ZONE 'UTC',
       CASE WHEN i % 4 IN (0, 3) THEN ((SELECT today FROM d) - (i / 3) + 1 + (i % 5) + time '09:00') AT TIME ZONE 'UTC' END,
       'adr_from', 'adr_to', now(),
       jsonb_build_object('id', format('shp_%s', lpad(i::text, 3, '0')),
         'from_address', jsonb_build_object('city', 'Springfield', 'state', 'IL', 'country', 'US'),
         'to_address', jsonb_build_object('city', 'Springfield', 'state', 'MO', 'country', 'US')),
       'production'
FROM generate_series(1, 60) AS i;
INSERT INTO shipments (id, status, carrier, service, total_cost, currency, tracking_code, tracker_id,
                       reference, created_at, from_address_id, to_address_id, updated_at, raw, mode)
VALUES ('shp_xss', 'in_transit', 'USPS', 'Priority', 12.34, 'USD', 'TRKXSS1', 'trk_xss',
        '<script>window.__xss=3;alert("ref")</script><img src=x onerror="window.__xss=4">',
        now() - interval '1 minute', 'adr_from', 'adr_xss', now(),
        '{"from_address":{"city":"Springfield","state":"IL","country":"US"},"to_address":{"city":"Austin","state":"TX","country":"US"}}',
        'production');
INSERT INTO trackers (id, tracking_code, status, carrier, shipment_id, updated_at)
VALUES ('trk_xss', 'TRKXSS1', 'in_transit', 'USPS', 'shp_xss', now());
INSERT INTO tracking_events (tracker_id, shipment_id, occurred_at, status, message, city, state, country) VALUES
  ('trk_xss', 'shp_xss', now() - interval '50 minutes', 'pre_transit', 'Shipping label created', 'Springfield', 'IL', 'US'),
  ('trk_xss', 'shp_xss', now() - interval '30 minutes', 'in_transit', 'Accepted at <b>USPS</b> facility', 'Springfield', 'IL', 'US'),
  ('trk_xss', 'shp_xss', now() - interval '10 minutes', 'in_transit', 'Departed facility', 'St. Louis', 'MO', 'US');
SELECT * FROM refresh_analytics_views(false);
INSERT INTO analytics_refresh_log (view_name, started_at, finished_at, duration_ms, outcome, error)
VALUES ('mv_top_routes', now() - interval '2 hours', now() - interval '2 hours', 12.5, 'failed',
        '57014 canceling statement due to statement timeout <i>');
SQL
ss_psql "$DB_URL" -v topic="${PREFIX}shipments" >/dev/null <<'SQL' || ss_fail "seed offsets"
INSERT INTO kafka_offsets (consumer_group, topic, partition, next_offset)
SELECT 'shipstream-sync-worker', :'topic', p, 0 FROM generate_series(0, 11) AS p;
SQL
printf 'shp_001\t{"n":1}\nshp_002\t{"n":2}\nshp_003\t{"n":3}\nshp_004\t{"n":4}\nshp_005\t{"n":5}\n' |
  ss_kafkactl produce -t "${PREFIX}shipments" >/dev/null 2>&1 || ss_fail "produce to shipments"
printf 'k1\tpoison 1\nk2\tpoison 2\n' | ss_kafkactl produce -t "${PREFIX}dlq" >/dev/null 2>&1 || ss_fail "produce to dlq"

# ---- /db/pipeline (polled: the new topics' leaders may take a moment to be known)
pipeline_lag_known() { call GET /db/pipeline && [ "$CODE" = 200 ] && jq -e '.consumer_lag.total == 5 and .dead_letters.count == 2' <<<"$BODY" >/dev/null; }
ss_wait_for 30 pipeline_lag_known
call GET /db/pipeline; expect 200 "GET /db/pipeline"
jq -e '.consumer_lag.kafka == "ok" and .consumer_lag.total == 5 and .consumer_lag.groups == [{"group":"shipstream-sync-worker","lag":5,"partitions":12}]' <<<"$BODY" >/dev/null \
  || ss_fail "pipeline: consumer lag 5 expected: $BODY"
jq -e --arg t "${PREFIX}dlq" '.dead_letters == {"topic":$t,"count":2,"partitions":12}' <<<"$BODY" >/dev/null \
  || ss_fail "pipeline: 2 dead letters expected: $BODY"
jq -e '.refresh_failures_24h == 1 and (.refresh_runs | length) == 4 and .refresh_runs[0].outcome == "failed" and .sync.partitions == 12 and .sync.age_seconds < 300' <<<"$BODY" >/dev/null \
  || ss_fail "pipeline: refresh runs and sync: $BODY"
ss_pass "/db/pipeline: lag 5 over 12 partitions, 2 dead letters, refresh runs newest first"
call GET "/db/pipeline?x=1"; expect 400 "/db/pipeline with an unknown parameter"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$GW/db/pipeline"); [ "$CODE" = 401 ] || ss_fail "/db/pipeline without a key: $CODE"
ss_pass "/db/pipeline needs the key (401)"

# ---- static routes and their headers
hdr() { curl -sS -D - -o "$SS_TEST_TMP/static" "$@"; }
H=$(hdr "$GW/") || ss_fail "GET /"
grep -qi '^HTTP/1.1 302' <<<"$H" && grep -qi '^Location: /dashboard' <<<"$H" || ss_fail "GET / does not redirect: $H"
ss_pass "GET / -> 302 /dashboard"
for p in /dashboard /dashboard/dashboard.js /dashboard/dashboard.css /dashboard/chart.js; do
  H=$(hdr "$GW$p") || ss_fail "GET $p"
  grep -qi '^HTTP/1.1 200' <<<"$H" || ss_fail "GET $p: $H"
  grep -qi "^Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self';" <<<"$H" || ss_fail "$p: no strict CSP: $H"
  grep -qi "unsafe-inline\|unsafe-eval" <<<"$H" && ss_fail "$p: CSP allows inline or eval"
  grep -qi '^X-Content-Type-Options: nosniff' <<<"$H" || ss_fail "$p: no nosniff"
done
grep -qi '^Content-Type: text/javascript' <<<"$H" || ss_fail "chart.js content type: $H"
cmp -s "$SS_TEST_TMP/static" /usr/share/javascript/chart.js/chart.min.js || ss_fail "/dashboard/chart.js is not Debian's chart.min.js"
ss_pass "page and assets: 200 with a strict CSP and nosniff; chart.js is the installed libjs-chart.js file"
grep -qi '<script>' "$SS_SOURCE_ROOT"/services/gateway/web/index.html && ss_fail "inline script in index.html"
grep -qiE ' style=|<style' "$SS_SOURCE_ROOT"/services/gateway/web/index.html && ss_fail "inline style in index.html"
grep -qE '\.(innerHTML|outerHTML)|insertAdjacentHTML|document\.write|eval\(|new Function' "$SS_SOURCE_ROOT"/services/gateway/web/dashboard.js && ss_fail "dashboard.js writes HTML"
ETAG=$(curl -sS -D - -o /dev/null "$GW/dashboard/dashboard.js" | sed -n 's/^ETag: *//Ip' | tr -d '\r')
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$GW/dashboard/dashboard.js")
[ -n "$ETAG" ] && [ "$CODE" = 304 ] || ss_fail "If-None-Match $ETAG: $CODE"
for p in /dashboard/nope.js /dashboard/../main.c /dashboardx; do
  CODE=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$GW$p")
  [ "$CODE" = 404 ] || ss_fail "GET $p: $CODE, expected 404"
done
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$GW/dashboard"); [ "$CODE" = 405 ] || ss_fail "POST /dashboard: $CODE"
ss_pass "ETag 304, unknown files 404, POST 405"

# Chart.js missing: a clear 503 naming the variable (second gateway).
MAIN_GW=$GW MAIN_PID=$GW_PID
gw_start GATEWAY_CHARTJS_PATH=/nonexistent/chart.min.js KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1
call GET /dashboard/chart.js; expect 503 "chart.js missing"
jq -e '.error.code == "chartjs_unavailable" and (.error.message | contains("GATEWAY_CHARTJS_PATH") and contains("libjs-chart.js"))' <<<"$BODY" >/dev/null \
  || ss_fail "chart.js 503 message: $BODY"
# The same gateway has no Kafka (bootstrap 127.0.0.1:1): /db/pipeline still answers, at once,
# with nulls and the reason (valid JSON, no stray byte).
T0=$(_ss_now_ms)
call GET /db/pipeline; expect 200 "/db/pipeline without Kafka"
T1=$(_ss_now_ms)
tr -d '\000' <"$SS_TEST_TMP/body" | cmp -s - "$SS_TEST_TMP/body" || ss_fail "/db/pipeline body holds a NUL byte"
jq -e '.consumer_lag.kafka == "unavailable" and .consumer_lag.total == null and (.consumer_lag.error | length) > 0 and .dead_letters.count == null and (.refresh_runs | length) == 4' \
  "$SS_TEST_TMP/body" >/dev/null || ss_fail "/db/pipeline without Kafka: $BODY"
[ $((T1 - T0)) -lt 3000 ] || ss_fail "/db/pipeline without Kafka took $((T1 - T0)) ms"
ss_pass "/db/pipeline without Kafka: lag and dead letters null with the reason, in $((T1 - T0)) ms"
DEGRADED_GW=$GW # kept for the browser: no Chart.js, no Kafka
GW=$MAIN_GW GW_PID=$MAIN_PID

# ---- the browser
"$PY" "$(dirname "$0")/browser_test.py" --gateway "$GW" --key "$API_KEY" --artifacts "$ARTIFACTS" \
  --tmp "$SS_TEST_TMP" --db-url "$DB_URL" --degraded-gateway "$DEGRADED_GW" || ss_fail "browser test (gateway log above)"
ss_pass "dashboard in headless Chromium"

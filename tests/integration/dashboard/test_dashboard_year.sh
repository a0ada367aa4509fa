#!/usr/bin/env bash
# GET /db/analytics/dashboard over a year (migration 0011's daily rollups): 3,000 shipments
# over 420 days (modes, refunds, returns, undelivered, unpurchased), refreshed, then for
# days 1, 7, 30, 90, 91, 365 and 400 in each mode the summary and the daily series equal a
# query straight over shipments; days=401 and days=0 are 400 naming days.  Then a refund and a
# delivery a year back flow into the next refresh, exactly.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"

ss_test_migrated_db dash_year
PREFIX=$(ss_test_prefix)
SIM_URL="http://127.0.0.1:1/v2"   # no EasyPost call here
gw_start

ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "seed"
INSERT INTO shipments (id, mode, status, carrier, service, rate, total_cost, created_at,
                       est_delivery_date, delivered_at, is_return, refund_status, updated_at, raw)
SELECT 'shp_' || g,
       CASE WHEN g % 11 = 0 THEN 'test' WHEN g % 97 = 0 THEN NULL ELSE 'production' END,
       CASE WHEN g % 4 = 0 THEN 'in_transit' ELSE 'delivered' END,
       CASE WHEN g % 31 = 0 THEN NULL ELSE (ARRAY['USPS', 'UPS', 'FedEx'])[1 + g % 3] END,
       CASE WHEN g % 31 = 0 THEN NULL ELSE (ARRAY['Priority', 'Ground'])[1 + g % 2] END,
       (5 + g % 17) + 0.25 * (g % 4),
       CASE WHEN g % 9 = 0 THEN NULL ELSE (6 + g % 13) + 0.01 * (g % 100) END,
       created,
       CASE WHEN g % 5 = 0 THEN NULL ELSE created + (2 + g % 3) * interval '1 day' END,
       CASE WHEN g % 4 = 0 THEN NULL ELSE created + (1 + g % 4) * interval '1 day' + (g % 7) * interval '1 hour' END,
       g % 23 = 0,
       CASE g % 29 WHEN 0 THEN 'refunded' WHEN 1 THEN 'submitted' WHEN 2 THEN 'rejected' END,
       created,
       jsonb_build_object('id', 'shp_' || g, 'object', 'Shipment',
         'from_address', jsonb_build_object('city', 'Springfield', 'state', 'IL', 'country', 'US'),
         'to_address', jsonb_build_object('city', 'City ' || (g % 5), 'state', 'MO', 'country', 'US'))
  FROM (SELECT g, ((now() AT TIME ZONE 'UTC')::date - g % 420 + make_interval(hours => g % 24, mins => 3))
                  AT TIME ZONE 'UTC' AS created
          FROM generate_series(1, 3000) g) x;
SELECT count(*) FROM refresh_analytics_views(false);
SQL

# direct <days> <mode>: the summary (and the daily series' totals) straight from shipments
direct() {
  ss_psql "$DB_URL" -At -v days="$1" -v mode="$2" <<'SQL'
SELECT json_build_object(
  'shipments', count(*) FILTER (WHERE o), 'total_cost', coalesce(sum(cost) FILTER (WHERE o), 0)::text,
  'avg_cost', round(sum(cost) FILTER (WHERE o) / nullif(count(*) FILTER (WHERE o), 0), 5)::text,
  'delivered', count(*) FILTER (WHERE o AND status = 'delivered'),
  'avg_delivery_days', round(sum(transit_days::numeric) FILTER (WHERE o) / nullif(count(transit_days) FILTER (WHERE o), 0), 2),
  'on_time_count', count(*) FILTER (WHERE o AND on_time), 'on_time_eligible_count', count(on_time) FILTER (WHERE o),
  'on_time_rate', round((count(*) FILTER (WHERE o AND on_time))::numeric / nullif(count(on_time) FILTER (WHERE o), 0), 4),
  'returns', count(*) FILTER (WHERE ret AND NOT refunded),
  'returns_cost', coalesce(sum(cost) FILTER (WHERE ret AND NOT refunded), 0)::text,
  'refunded', count(*) FILTER (WHERE refunded), 'refunded_cost', coalesce(sum(cost) FILTER (WHERE refunded), 0)::text,
  'refund_pending', count(*) FILTER (WHERE refund_status = 'submitted'),
  'refund_pending_cost', coalesce(sum(cost) FILTER (WHERE refund_status = 'submitted'), 0)::text,
  'daily_days', count(DISTINCT analytics_day))::text
  FROM (SELECT s.*, coalesce(total_cost, rate) AS cost, coalesce(is_return, false) AS ret,
               refund_status IS NOT DISTINCT FROM 'refunded' AS refunded,
               NOT coalesce(is_return, false) AND refund_status IS DISTINCT FROM 'refunded' AS o
          FROM shipments s
         WHERE carrier IS NOT NULL AND service IS NOT NULL
           AND analytics_day >= (now() AT TIME ZONE 'UTC')::date - (:days - 1)
           AND (:'mode' = 'all' OR coalesce(mode, '') = :'mode')) x
SQL
}

compare_all() { # <what>
  local d m want got
  for d in 1 7 30 90 91 365 400; do
    for m in production test all; do
      call GET "/db/analytics/dashboard?days=$d&mode=$m"
      [ "$CODE" = 200 ] || ss_fail "$1: days=$d mode=$m answered $CODE: ${BODY:0:200}"
      want=$(direct "$d" "$m")
      got=$(jq -c '.summary + {daily_days: (.daily | length)}' <<<"$BODY")
      [ "$(jq -S . <<<"$want")" = "$(jq -S . <<<"$got")" ] ||
        ss_fail "$1: days=$d mode=$m: dashboard $got, shipments $want"
      jq -e --argjson d "$d" '.days == $d and ([.daily[].shipments] | add // 0) == .summary.shipments' <<<"$BODY" >/dev/null ||
        ss_fail "$1: days=$d mode=$m: the daily series does not add up to the summary"
    done
  done
}
compare_all "after the first refresh"
call GET "/db/analytics/dashboard?days=365"
jq -e '.summary.shipments > 2000' <<<"$BODY" >/dev/null || ss_fail "365 days: too few shipments (test broken): ${BODY:0:200}"
ss_pass "days 1..400, every mode: summary and daily series equal the shipments"

for bad in 401 0 1000; do
  call GET "/db/analytics/dashboard?days=$bad"; expect 400 "days=$bad"
  jq -e '.error.message | contains("days") and contains("400")' <<<"$BODY" >/dev/null || ss_fail "400 names days and its bound: $BODY"
done

ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "changes"
UPDATE shipments SET refund_status = 'refunded' WHERE id IN ('shp_2000', 'shp_2001');
UPDATE shipments SET status = 'delivered', delivered_at = created_at + interval '2 days' WHERE id = 'shp_1604';
SELECT count(*) FROM refresh_analytics_views(true);
SQL
compare_all "after changes a year back"
ss_pass "a refund and a delivery a year back: the next refresh is exact again"

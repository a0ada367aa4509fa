#!/usr/bin/env bash
# GET /db/analytics/dashboard on a seeded dataset equals hand-computed numbers,
# and reports freshness from analytics_refresh_log.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$(dirname "$0")/common.sh"

ss_test_migrated_db gw_dash
PREFIX=$(ss_test_prefix)
SIM_URL="http://127.0.0.1:1/v2"   # /v1 is not used here
gw_start

# Before any refresh: freshness says never, numbers are zero, not invented.
call GET "/db/analytics/dashboard?days=7"; expect 200 "dashboard on empty views"
jq -e '.summary.shipments == 0 and .summary.on_time_rate == null and .freshness.last_refreshed_at == null' <<<"$BODY" >/dev/null \
  || ss_fail "empty dashboard: $BODY"

# The dataset (D = today, UTC):
#  D-1 USPS Priority, Springfield IL -> Springfield MO: 10.00 delivered on time,
#      20.00 delivered late, 30.00 in transit (all with an estimate)
#  D-2 UPS Ground, Springfield MO -> Springfield IL: 5.50 delivered without an estimate,
#      4.50 delivered on time
#  D-10 FedEx Ground, IL -> MO: 100.00 in transit (outside days=7, inside the 90-day views)
#  D-1 an unpurchased shipment (no carrier): left out everywhere
ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "seed"
INSERT INTO addresses (id, city, state, country, updated_at) VALUES
  ('adr_il', 'Springfield', 'IL', 'US', now()), ('adr_mo', 'Springfield', 'MO', 'US', now());
WITH d AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today)
INSERT INTO shipments (id, status, carrier, service, total_cost, created_at, est_delivery_date,
                       delivered_at, from_address_id, to_address_id, updated_at, raw)
SELECT v.id, v.status, v.carrier, v.service, v.cost::numeric,
       ((SELECT today FROM d) + v.created_off + time '12:00') AT TIME ZONE 'UTC',
       CASE WHEN v.est_off IS NULL THEN NULL ELSE ((SELECT today FROM d) + v.est_off + time '18:00') AT TIME ZONE 'UTC' END,
       CASE WHEN v.del_off IS NULL THEN NULL ELSE ((SELECT today FROM d) + v.del_off + time '09:00') AT TIME ZONE 'UTC' END,
       v.f, v.t, now(),
       -- routes come from the addresses inside the shipment object, as EasyPost sends it
       jsonb_build_object('id', v.id, 'object', 'Shipment',
         'from_address', (SELECT jsonb_build_object('id', a.id, 'city', a.city, 'state', a.state, 'country', a.country) FROM addresses a WHERE a.id = v.f),
         'to_address', (SELECT jsonb_build_object('id', a.id, 'city', a.city, 'state', a.state, 'country', a.country) FROM addresses a WHERE a.id = v.t))
FROM (VALUES
  ('shp_a', 'delivered',  'USPS',  'Priority', '10.00',  -1, 1,    0,    'adr_il', 'adr_mo'),
  ('shp_b', 'delivered',  'USPS',  'Priority', '20.00',  -1, 1,    3,    'adr_il', 'adr_mo'),
  ('shp_c', 'in_transit', 'USPS',  'Priority', '30.00',  -1, 1,    NULL, 'adr_il', 'adr_mo'),
  ('shp_d', 'delivered',  'UPS',   'Ground',   '5.50',   -2, NULL, 0,    'adr_mo', 'adr_il'),
  ('shp_e', 'delivered',  'UPS',   'Ground',   '4.50',   -2, 0,    -1,   'adr_mo', 'adr_il'),
  ('shp_f', 'in_transit', 'FedEx', 'Ground',   '100.00', -10, 2,   NULL, 'adr_il', 'adr_mo'),
  ('shp_g', 'unknown',    NULL,    NULL,       NULL,     -1, NULL, NULL, 'adr_il', 'adr_mo')
) AS v(id, status, carrier, service, cost, created_off, est_off, del_off, f, t);
SELECT * FROM refresh_analytics_views(false);
SQL

call GET "/db/analytics/dashboard?days=7"; expect 200 "dashboard"
echo "$BODY" | jq . >"$SS_TEST_TMP/dash.json"
check() { jq -e "$1" <<<"$BODY" >/dev/null || ss_fail "dashboard: $2 (got $(jq -c "$3" <<<"$BODY"))"; }
check '.days == 7' "days echoed" '.days'
check '.summary.shipments == 5' "5 purchased shipments in 7 days" '.summary'
check '.summary.total_cost == "70.00"' "total cost 70.00" '.summary'
check '.summary.avg_cost == "14.00000"' "average cost 14.00000" '.summary'
check '.summary.delivered == 4' "4 delivered" '.summary'
check '.summary.on_time_count == 2 and .summary.on_time_eligible_count == 3' "2 on time of 3 with an estimate" '.summary'
check '.summary.on_time_rate == 0.6667' "on-time rate 2/3" '.summary'
check '[.daily[] | {shipments, total_cost, delivered}] == [{"shipments":2,"total_cost":"10.00","delivered":2},{"shipments":3,"total_cost":"60.00","delivered":2}]' "daily series" '.daily'
check '[.carriers[] | {carrier, total_shipments, on_time_rate}] == [{"carrier":"USPS","total_shipments":3,"on_time_rate":0.5},{"carrier":"UPS","total_shipments":2,"on_time_rate":1},{"carrier":"FedEx","total_shipments":1,"on_time_rate":null}]' "carriers, on-time NULL when unknown" '.carriers'
check '.top_routes == [{"from_city":"SPRINGFIELD","from_state":"IL","from_country":"US","to_city":"SPRINGFIELD","to_state":"MO","to_country":"US","shipment_count":4,"total_cost":"160.00","avg_cost":"40.00000"}]' "top routes (IL->MO only: MO->IL has 2)" '.top_routes'
check '.freshness.last_refreshed_at != null and .freshness.age_seconds < 300 and (.freshness.views | length) == 3' "freshness" '.freshness'
ss_pass "dashboard equals the hand-computed numbers; freshness reported"

call GET "/db/analytics/dashboard?days=30"; expect 200 "days=30"
check '.summary.shipments == 6 and .summary.total_cost == "170.00"' "30 days include FedEx" '.summary'
call GET "/db/analytics/dashboard?days=x"; expect 400 "days=x"
jq -e '.error.message | contains("days")' <<<"$BODY" >/dev/null || ss_fail "400 names days"

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
INSERT INTO shipments (id, mode, status, carrier, service, total_cost, created_at, est_delivery_date,
                       delivered_at, from_address_id, to_address_id, updated_at, raw)
SELECT v.id, 'production', v.status, v.carrier, v.service, v.cost::numeric,
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
for m in live TEST "production,test"; do
  call GET "/db/analytics/dashboard?days=7&mode=$m"; expect 400 "mode=$m"
  jq -e '.error.message | contains("mode")' <<<"$BODY" >/dev/null || ss_fail "400 names mode: $BODY"
done
ss_pass "days and mode are checked (mode: production, test or all)"

# Money: net of refunds, test mode apart, returns apart (migration 0006).  Added to the
# production rows above (all 7 days but shp_f):
#  shp_r1  production USPS Priority 40.00 IL->MO refund_status refunded     D-1
#  shp_r2  production USPS Priority  8.00 IL->MO refund_status submitted    D-2
#  shp_r3  production USPS Priority  2.00 IL->MO refund_status rejected     D-2
#  shp_ret production USPS Priority  6.00 MO->IL is_return                  D-1
#  shp_rr  production USPS Priority  3.00 MO->IL is_return, refunded        D-1
#  shp_t1  test       USPS Priority 50.00 IL->MO                            D-1
#  shp_t2  test       UPS  Ground   25.00 IL->MO refunded                   D-2
# Hand-computed, days=7, production: shipments a b c d e r2 r3 = 7, spend
# 10+20+30+5.50+4.50+8+2 = 80.00 (r1 refunded: out; r2 submitted: the postage is not
# back yet, still spent; r3 rejected: spent), average 80/7 = 11.42857; returns: ret = 1,
# 6.00; refunded r1 rr = 2, 43.00; pending r2 = 1, 8.00.  test: t1 = 1, 50.00; refunded t2
# = 1, 25.00.  all: 8, 130.00; refunded 3, 68.00.  days=30, production: + f = 8, 180.00.
ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "seed money"
WITH d AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today)
INSERT INTO shipments (id, mode, status, carrier, service, total_cost, created_at, is_return,
                       refund_status, from_address_id, to_address_id, updated_at, raw)
SELECT v.id, v.mode, 'pre_transit', v.carrier, v.service, v.cost::numeric,
       ((SELECT today FROM d) + v.created_off + time '12:00') AT TIME ZONE 'UTC', v.ret, v.refund,
       v.f, v.t, now(),
       jsonb_build_object('id', v.id, 'object', 'Shipment',
         'from_address', (SELECT jsonb_build_object('id', a.id, 'city', a.city, 'state', a.state, 'country', a.country) FROM addresses a WHERE a.id = v.f),
         'to_address', (SELECT jsonb_build_object('id', a.id, 'city', a.city, 'state', a.state, 'country', a.country) FROM addresses a WHERE a.id = v.t))
FROM (VALUES
  ('shp_r1',  'production', 'USPS', 'Priority', '40.00', -1, false, 'refunded',  'adr_il', 'adr_mo'),
  ('shp_r2',  'production', 'USPS', 'Priority', '8.00',  -2, false, 'submitted', 'adr_il', 'adr_mo'),
  ('shp_r3',  'production', 'USPS', 'Priority', '2.00',  -2, false, 'rejected',  'adr_il', 'adr_mo'),
  ('shp_ret', 'production', 'USPS', 'Priority', '6.00',  -1, true,  NULL,        'adr_mo', 'adr_il'),
  ('shp_rr',  'production', 'USPS', 'Priority', '3.00',  -1, true,  'refunded',  'adr_mo', 'adr_il'),
  ('shp_t1',  'test',       'USPS', 'Priority', '50.00', -1, false, NULL,        'adr_il', 'adr_mo'),
  ('shp_t2',  'test',       'UPS',  'Ground',   '25.00', -2, false, 'refunded',  'adr_il', 'adr_mo')
) AS v(id, mode, carrier, service, cost, created_off, ret, refund, f, t);
SELECT * FROM refresh_analytics_views(false);
SQL
for m in "" "&mode=production"; do
  call GET "/db/analytics/dashboard?days=7$m"; expect 200 "dashboard money ($m)"
  check '.mode == "production"' "production by default" '.mode'
  check '.summary.shipments == 7 and .summary.total_cost == "80.00" and .summary.avg_cost == "11.42857"' "net spend 80.00 over 7 shipments" '.summary'
  check '.summary.returns == 1 and .summary.returns_cost == "6.00"' "returns apart: 1, 6.00" '.summary'
  check '.summary.refunded == 2 and .summary.refunded_cost == "43.00"' "refunded: 2, 43.00" '.summary'
  check '.summary.refund_pending == 1 and .summary.refund_pending_cost == "8.00"' "refund pending: 1, 8.00" '.summary'
  check '.summary.delivered == 4 and .summary.on_time_count == 2 and .summary.on_time_eligible_count == 3' "delivery figures unchanged" '.summary'
  check '[.daily[] | {shipments, total_cost, returns}] == [{"shipments":4,"total_cost":"20.00","returns":0},{"shipments":3,"total_cost":"60.00","returns":1}]' "daily net of refunds" '.daily'
  check '[.carriers[] | {carrier, total_shipments, total_revenue}] == [{"carrier":"USPS","total_shipments":5,"total_revenue":"70.00"},{"carrier":"UPS","total_shipments":2,"total_revenue":"10.00"},{"carrier":"FedEx","total_shipments":1,"total_revenue":"100.00"}]' "carriers net of refunds" '.carriers'
  check '[.top_routes[] | {to_state, shipment_count, total_cost, avg_cost}] == [{"to_state":"MO","shipment_count":6,"total_cost":"170.00","avg_cost":"28.33333"}]' "routes net of refunds and returns" '.top_routes'
done
call GET "/db/analytics/dashboard?days=7&mode=test"; expect 200 "dashboard test mode"
check '.mode == "test" and .summary.shipments == 1 and .summary.total_cost == "50.00" and .summary.refunded == 1 and .summary.refunded_cost == "25.00" and .summary.returns == 0' "test mode: 1, 50.00; refunded 1, 25.00" '.summary'
check '[.carriers[] | {carrier, total_shipments}] == [{"carrier":"USPS","total_shipments":1}] and .top_routes == []' "test carriers (UPS only refunded: left out), no route with 3" '{carriers, top_routes}'
call GET "/db/analytics/dashboard?days=7&mode=all"; expect 200 "dashboard all modes"
check '.summary.shipments == 8 and .summary.total_cost == "130.00" and .summary.refunded == 3 and .summary.refunded_cost == "68.00" and .summary.returns == 1 and .summary.refund_pending_cost == "8.00"' "all modes: 8, 130.00" '.summary'
check '[.top_routes[] | {to_state, shipment_count, total_cost, avg_cost}] == [{"to_state":"MO","shipment_count":7,"total_cost":"220.00","avg_cost":"31.42857"}]' "routes over every mode" '.top_routes'
call GET "/db/analytics/dashboard?days=30"; expect 200 "days=30 money"
check '.summary.shipments == 8 and .summary.total_cost == "180.00"' "30 days production: 8, 180.00" '.summary'
ss_pass "spend net of refunds (submitted still spent), test mode apart, returns apart: hand-computed"

call GET "/db/shipments?limit=200"; expect 200 "/db/shipments production"
[ "$(jq -r '[.shipments[].id] | sort | join(",")' <<<"$BODY")" = "shp_a,shp_b,shp_c,shp_d,shp_e,shp_f,shp_g,shp_r1,shp_r2,shp_r3,shp_ret,shp_rr" ] || ss_fail "/db/shipments default mode: $(jq -c '[.shipments[].id]' <<<"$BODY")"
jq -e 'any(.shipments[]; .id == "shp_r1" and .refund_status == "refunded")' <<<"$BODY" >/dev/null || ss_fail "refund_status not in /db/shipments"
call GET "/db/shipments?mode=test"; expect 200 "/db/shipments test"
[ "$(jq -r '[.shipments[].id] | sort | join(",")' <<<"$BODY")" = "shp_t1,shp_t2" ] || ss_fail "/db/shipments mode=test: $BODY"
call GET "/db/shipments?mode=all&limit=200"; expect 200 "/db/shipments all"
[ "$(jq '.count' <<<"$BODY")" = 14 ] || ss_fail "/db/shipments mode=all: $(jq .count <<<"$BODY")"
call GET "/db/shipments?mode=sandbox"; expect 400 "/db/shipments mode=sandbox"
ss_pass "/db/shipments: production by default, mode=test, mode=all, 400 otherwise"

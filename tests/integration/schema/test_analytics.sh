#!/usr/bin/env bash
# The analytics views on a small dataset whose answers are computed by hand (see the table
# below): several days, carriers and services, two Springfields in different states,
# on-time / late / undelivered shipments, shipments without an estimated date, an
# unpurchased shipment, a tracker placeholder and a shipment older than the window.
source "$(dirname "$0")/common.sh"
ss_test_migrated_db schema_analytics

# Days relative to today (UTC), at noon, so that the window and the day boundaries are clear.
D0=$(date -u -d '1 day ago' +%F)   # yesterday
D1=$(date -u -d '2 days ago' +%F)
D2=$(date -u -d '3 days ago' +%F)
OLD=$(date -u -d '100 days ago' +%F)

q -v d0="$D0" -v d1="$D1" -v d2="$D2" -v old="$OLD" <<'SQL' || ss_fail "loading the dataset"
CREATE TEMP TABLE places (k text PRIMARY KEY, city text, state text, country text);
INSERT INTO places VALUES ('SF', 'San Francisco', 'CA', 'US'),
  ('SPI', 'Springfield', 'IL', 'US'), ('SPI2', 'springfield ', 'il', 'us'),
  ('SGF', 'Springfield', 'MO', 'US'), ('AUS', 'Austin', 'TX', 'US'), ('BOS', 'Boston', 'MA', 'US');
CREATE TEMP TABLE t (id text, created text, carrier text, service text, total numeric,
                     rate numeric, status text, est text, delivered text, f text, tt text);
--            id     created                carrier  service         total   rate   status              est                           delivered                    from  to
INSERT INTO t VALUES
 ('s1',  :'d1' || ' 12:00', 'USPS',  'Priority',     10.00, 9.00, 'delivered',        :'d1' || ' 12:00 +3 days', :'d1' || ' 18:00 +2 days', 'SF',  'SPI'),
 ('s2',  :'d1' || ' 12:00', 'USPS',  'Priority',     20.00, 19.00,'delivered',        :'d1' || ' 12:00 +2 days', :'d1' || ' 12:00 +4 days', 'SF',  'SPI'),
 ('s3',  :'d1' || ' 12:00', 'USPS',  'Priority',     NULL,  6.50, 'in_transit',       :'d1' || ' 12:00 +3 days', NULL,                      'SF',  'SPI2'),
 ('s4',  :'d2' || ' 12:00', 'USPS',  'Priority',     8.00,  8.00, 'delivered',        NULL,                      :'d2' || ' 00:00 +1 days', 'SF',  'SGF'),
 ('s5',  :'d2' || ' 12:00', 'UPS',   'Ground',       15.50, 15.50,'delivered',        :'d2' || ' 12:00 +5 days', :'d2' || ' 23:00 +5 days', 'SF',  'SGF'),
 ('s6',  :'d2' || ' 12:00', 'UPS',   'Ground',       12.25, 12.25,'return_to_sender', :'d2' || ' 12:00 +3 days', NULL,                      'SF',  'SGF'),
 ('s7',  :'d0' || ' 12:00', 'UPS',   'Ground',       30.00, 30.00,'delivered',        NULL,                      NULL,                      'AUS', 'BOS'),
 ('s8',  :'d0' || ' 12:00', 'FedEx', 'FEDEX_GROUND', 9.99,  9.99, 'pre_transit',      NULL,                      NULL,                      'AUS', 'BOS'),
 ('s9',  :'d1' || ' 12:00', NULL,    NULL,           NULL,  NULL, 'unknown',          NULL,                      NULL,                      'SF',  'SPI'),
 ('s11', :'old' || ' 12:00','USPS',  'Priority',     50.00, 50.00,'delivered',        :'old' || ' 12:00 +3 days',:'old' || ' 12:00 +2 days','SF',  'SPI');
INSERT INTO shipments (id, mode, created_at, updated_at, carrier, service, total_cost, rate, currency,
                       status, est_delivery_date, delivered_at, raw)
SELECT t.id, 'production', (t.created || ' UTC')::timestamptz, (t.created || ' UTC')::timestamptz,
       t.carrier, t.service, t.total, t.rate, 'USD', t.status,
       (split_part(t.est, ' +', 1) || ' UTC')::timestamptz + ('+' || split_part(t.est, ' +', 2))::interval,
       (split_part(t.delivered, ' +', 1) || ' UTC')::timestamptz + ('+' || split_part(t.delivered, ' +', 2))::interval,
       jsonb_build_object('id', t.id, 'object', 'Shipment',
         'from_address', jsonb_build_object('city', f.city, 'state', f.state, 'country', f.country),
         'to_address', jsonb_build_object('city', o.city, 'state', o.state, 'country', o.country))
  FROM t JOIN places f ON f.k = t.f JOIN places o ON o.k = t.tt;
-- A tracker placeholder: the tracker arrived before its shipment.
INSERT INTO shipments (id, tracking_code, status, carrier) VALUES ('s10', 'EZ10', 'in_transit', 'USPS');
SQL
[ "$(q -c "SELECT count(*) FROM shipments")" = 11 ] || ss_fail "dataset rows"

# Before any refresh: freshness says never.
[ "$(q -c "SELECT count(*) FROM analytics_freshness WHERE last_refreshed_at IS NULL")" = 3 ] ||
  ss_fail "freshness before refresh"

res=$(q -c "SELECT view_name, outcome, rows, error IS NULL FROM refresh_analytics_views()")
expect_eq "refresh_analytics_views() result" "mv_daily_shipment_analytics|success|5|t
mv_carrier_performance|success|3|t
mv_top_routes|success|4|t" "$res"   # 2 routes, for mode production and for all modes

# Hand-computed (transit days: s1 2.25, s2 4, s4 0.5, s5 5.4583; s7 has no delivered_at).
daily=$(q -c "SELECT date, carrier, service, shipment_count, total_cost, avg_cost, delivered_count,
                     avg_delivery_days, on_time_count, on_time_eligible_count
                FROM mv_daily_shipment_analytics WHERE mode = 'production' ORDER BY date, carrier, service")
expect_eq "mv_daily_shipment_analytics" "$D2|UPS|Ground|2|27.75|13.87500|1|5.46|1|1
$D2|USPS|Priority|1|8.00|8.00000|1|0.50|0|0
$D1|USPS|Priority|3|36.50|12.16667|2|3.13|1|2
$D0|FedEx|FEDEX_GROUND|1|9.99|9.99000|0||0|0
$D0|UPS|Ground|1|30.00|30.00000|1||0|0" "$daily"
ss_pass "mv_daily_shipment_analytics equals the hand-computed rows"

carriers=$(q -c "SELECT carrier, service, total_shipments, total_revenue, delivered_count,
                        on_time_count, coalesce(on_time_rate::text, 'NULL'),
                        coalesce(avg_delivery_days::text, 'NULL'), on_time_eligible_count
                   FROM mv_carrier_performance WHERE mode = 'production' ORDER BY carrier, service")
expect_eq "mv_carrier_performance" "FedEx|FEDEX_GROUND|1|9.99|0|0|NULL|NULL|0
UPS|Ground|3|57.75|2|1|1.0000|5.46|1
USPS|Priority|4|44.50|3|1|0.5000|2.25|2" "$carriers"
ss_pass "mv_carrier_performance equals the hand-computed rows; on_time_rate NULL where unknown"

routes=$(q -c "SELECT from_city, from_state, from_country, to_city, to_state, to_country,
                      shipment_count, total_cost, avg_cost
                 FROM mv_top_routes ORDER BY to_state, mode")
expect_eq "mv_top_routes" "SAN FRANCISCO|CA|US|SPRINGFIELD|IL|US|3|36.50|12.16667
SAN FRANCISCO|CA|US|SPRINGFIELD|IL|US|3|36.50|12.16667
SAN FRANCISCO|CA|US|SPRINGFIELD|MO|US|3|35.75|11.91667
SAN FRANCISCO|CA|US|SPRINGFIELD|MO|US|3|35.75|11.91667" "$routes"
expect_eq "mv_top_routes modes" "all,production" "$(q -c "SELECT string_agg(DISTINCT mode, ',') FROM mv_top_routes")"
ss_pass "mv_top_routes: two Springfields kept apart, route under 3 shipments left out"

# Freshness comes from analytics_refresh_log.
# The views are created populated, so even the first refresh is CONCURRENTLY.
[ "$(q -c "SELECT count(*) FROM analytics_refresh_log WHERE outcome = 'success' AND concurrent
             AND rows IS NOT NULL AND duration_ms >= 0 AND finished_at >= started_at")" = 3 ] ||
  ss_fail "refresh log after the first refresh: $(q -c 'SELECT * FROM analytics_refresh_log')"
[ "$(q -c "SELECT count(*) FROM analytics_freshness WHERE last_refreshed_at IS NOT NULL AND age_seconds < 60")" = 3 ] ||
  ss_fail "freshness after refresh"

# Changes flow in on the next refresh: s3 delivered late (plain refresh this time).
q -c "UPDATE shipments SET status = 'delivered', delivered_at = created_at + interval '4 days' WHERE id = 's3'"
res=$(q -c "SELECT string_agg(outcome, ',') FROM refresh_analytics_views(false)")
[ "$res" = "success,success,success" ] || ss_fail "second refresh: $res"
[ "$(q -c "SELECT count(*) FROM analytics_refresh_log WHERE NOT concurrent")" = 3 ] || ss_fail "refresh_analytics_views(false) not plain"
got=$(q -c "SELECT delivered_count, avg_delivery_days, on_time_count, on_time_eligible_count
              FROM mv_daily_shipment_analytics WHERE date = '$D1' AND carrier = 'USPS'")
expect_eq "daily after update" "3|3.42|1|3" "$got"
got=$(q -c "SELECT on_time_rate, avg_delivery_days FROM mv_carrier_performance WHERE carrier = 'USPS'")
expect_eq "carrier after update" "0.3333|2.69" "$got"
ss_pass "the next refresh picks up changes"

# A failing view is logged with its error, the others still refresh, and nothing is raised.
q -c "ALTER MATERIALIZED VIEW mv_top_routes RENAME TO mv_top_routes_away" \
  -c "CREATE TABLE mv_top_routes (a int)"
res=$(q -c "SELECT view_name, outcome, error IS NOT NULL FROM refresh_analytics_views()")
expect_eq "refresh with a broken view" "mv_daily_shipment_analytics|success|f
mv_carrier_performance|success|f
mv_top_routes|failed|t" "$res"
[ "$(q -c "SELECT count(*) FROM analytics_refresh_log WHERE outcome = 'failed' AND view_name = 'mv_top_routes' AND error IS NOT NULL")" = 1 ] ||
  ss_fail "failed refresh not logged"
ss_pass "a failed view refresh is logged and does not stop the others"

#!/usr/bin/env bash
# Migration 0011 (analytics from daily rollups kept by dirty days) with data in it: a
# database one migration before 0011 with 2,400 shipments over 420 days (modes, carriers,
# refunds, returns, routes, unpurchased ones, a placeholder), then up 1 -> changes -> down 1.
# Up: the migration only marks days (rollups empty); the first refresh rolls every day up in
# batches and the three views equal what 0006's own definitions (saved before the migration)
# compute from the shipments; analytics_days equals a direct query over every day.  Changes
# (refund, delivery, a route, a delete, a row 200 days old, a change the views ignore) mark
# exactly their days and the next refresh is exact again; the route totals drop a day that
# left the window.  Down: the views are 0006's again with the same rows, the rollups and
# triggers are gone, shipments unchanged throughout.
source "$(dirname "$0")/common.sh"

DB=$(ss_test_createdb schema_rollups) || ss_fail "createdb"
export DATABASE_URL="$DB" DB_URL="$DB"
T=$SS_TEST_TMP/rollups
mkdir -p "$T"
before=$(find "$MIGRATIONS_DIR" -name '*.up.sql' | sed 's|.*/||' | awk '$0 < "0011"' | wc -l)
sums() { q -c "SELECT count(*) || ':' || md5(string_agg(to_jsonb(s)::text, '|' ORDER BY s.id)) FROM shipments s"; }
# a view's rows as jsonb, delivery_days_total (a sum of double precision, whose last bits
# depend on the order of the rows summed) to 6 decimals
J="(to_jsonb(v) - 'delivery_days_total') || jsonb_build_object('ddt', round((to_jsonb(v)->>'delivery_days_total')::numeric, 6))"
views() { # the three views' rows, in a fixed order
  q -c "SELECT 'd', $J FROM mv_daily_shipment_analytics v ORDER BY date, mode, carrier, service" \
    -c "SELECT 'c', $J FROM mv_carrier_performance v ORDER BY mode, carrier, service" \
    -c "SELECT 'r', $J FROM mv_top_routes v ORDER BY mode, from_city, from_state, from_country, to_city, to_state, to_country"
}
refresh_ok() { [ "$(q -c "SELECT string_agg(outcome, ',') FROM refresh_analytics_views(false)")" = "success,success,success" ]; }
# direct: every (day, mode) summed straight from shipments, as the dashboard defines it
direct_days() {
  q -c "SELECT analytics_day, coalesce(mode, ''),
               count(*) FILTER (WHERE o), coalesce(sum(cost) FILTER (WHERE o), 0),
               count(*) FILTER (WHERE o AND status = 'delivered'),
               count(*) FILTER (WHERE o AND on_time), count(on_time) FILTER (WHERE o),
               round(sum(transit_days) FILTER (WHERE o)::numeric, 6), count(transit_days) FILTER (WHERE o),
               count(*) FILTER (WHERE ret AND NOT refunded), coalesce(sum(cost) FILTER (WHERE ret AND NOT refunded), 0),
               count(*) FILTER (WHERE refunded), coalesce(sum(cost) FILTER (WHERE refunded), 0),
               count(*) FILTER (WHERE refund_status IS NOT DISTINCT FROM 'submitted'),
               coalesce(sum(cost) FILTER (WHERE refund_status IS NOT DISTINCT FROM 'submitted'), 0)
          FROM (SELECT s.*, coalesce(total_cost, rate) AS cost, coalesce(is_return, false) AS ret,
                       refund_status IS NOT DISTINCT FROM 'refunded' AS refunded,
                       NOT coalesce(is_return, false) AND refund_status IS DISTINCT FROM 'refunded' AS o
                  FROM shipments s WHERE carrier IS NOT NULL AND service IS NOT NULL
                   AND created_at IS NOT NULL) x
         GROUP BY 1, 2 ORDER BY 1, 2"
}
rollup_days() {
  q -c "SELECT day, mode, shipment_count, total_cost, delivered_count, on_time_count,
               on_time_eligible_count, round(delivery_days_total::numeric, 6), delivery_days_count,
               return_count, return_cost, refunded_count, refunded_cost, refund_pending_count,
               refund_pending_cost FROM analytics_days ORDER BY 1, 2"
}

"$MIGRATE" up "$before" >/dev/null 2>&1 || ss_fail "up $before"
q >/dev/null <<'SQL' || ss_fail "seed"
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
         'from_address', jsonb_build_object('city', (ARRAY['Springfield', 'springfield ', 'Austin'])[1 + g % 3],
                                            'state', (ARRAY['IL', 'il', 'TX'])[1 + g % 3], 'country', 'US'),
         'to_address', jsonb_build_object('city', 'City ' || (g % 7), 'state', (ARRAY['MO', 'IL'])[1 + g % 2], 'country', 'US'))
  FROM (SELECT g, ((now() AT TIME ZONE 'UTC')::date - g % 420 + make_interval(hours => g % 24, mins => 7))
                  AT TIME ZONE 'UTC' AS created
          FROM generate_series(1, 2400) g) x;
-- a tracker placeholder: no created_at
INSERT INTO shipments (id, tracking_code, status, carrier, service) VALUES ('shp_ph', 'EZ1', 'in_transit', 'USPS', 'Priority');
SQL
refresh_ok || ss_fail "refresh before 0011"
views >"$T/views_before"
[ "$(wc -l <"$T/views_before")" -gt 100 ] || ss_fail "too few view rows before: $(wc -l <"$T/views_before")"
for v in mv_daily_shipment_analytics mv_carrier_performance mv_top_routes; do
  q -c "SELECT pg_get_viewdef('$v'::regclass)" | sed 's/;$//' >"$T/def_$v"
done
sums >"$T/sums_before"

# ---------------------------------------------------------------- up
"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up 0011"; }
[ "$(q -c "SELECT max(version) FROM schema_migrations")" = 11 ] || ss_fail "0011 not applied"
expect_eq "days marked by the migration (420 days of shipments)" "420|0|0|0" \
  "$(q -c "SELECT (SELECT count(DISTINCT day) FROM analytics_dirty_days), (SELECT count(*) FROM analytics_daily),
                 (SELECT count(*) FROM analytics_days), (SELECT count(*) FROM analytics_route_totals)")"
expect_eq "shipments unchanged by up" "$(cat "$T/sums_before")" "$(sums)"
expect_eq "first apply: 31 days" "31" "$(q -c "SELECT analytics_rollup_apply(31)")"
expect_eq "newest days first" "31|t" \
  "$(q -c "SELECT count(*), max(day) = (SELECT max(analytics_day) FROM shipments) FROM (SELECT DISTINCT day FROM analytics_days) x")"
refresh_ok || ss_fail "refresh after 0011"
expect_eq "no dirty day left" "0" "$(q -c "SELECT count(*) FROM analytics_dirty_days")"
views >"$T/views_after"
diff "$T/views_before" "$T/views_after" >&2 || ss_fail "the views after 0011 differ from 0006's"
direct_days >"$T/direct"
rollup_days >"$T/rollup"
[ "$(wc -l <"$T/direct")" -gt 600 ] || ss_fail "too few days: $(wc -l <"$T/direct")"
diff "$T/direct" "$T/rollup" >&2 || ss_fail "analytics_days differs from the shipments"
ss_pass "up: rolled up in batches; the views equal 0006's; analytics_days equals the shipments over 420 days"

# compares each view with 0006's definition computed now from the shipments
same_as_0006() {
  local v
  for v in mv_daily_shipment_analytics mv_carrier_performance mv_top_routes; do
    n=$(q -c "SELECT count(*) FROM ((SELECT $J FROM $v v EXCEPT ALL SELECT $J FROM ($(cat "$T/def_$v")) v)
                                    UNION ALL (SELECT $J FROM ($(cat "$T/def_$v")) v EXCEPT ALL SELECT $J FROM $v v)) x") ||
      ss_fail "comparing $v"
    [ "$n" = 0 ] || ss_fail "$1: $v differs from 0006's definition in $n rows"
  done
}
same_as_0006 "after up"

# ---------------------------------------------------------------- changes
q -c "UPDATE shipments SET status = 'out_for_delivery' WHERE id = 'shp_4'" >/dev/null || ss_fail "ignored change"
expect_eq "a change the views ignore marks nothing" "0" "$(q -c "SELECT count(*) FROM analytics_dirty_days")"
want=$(q -c "SELECT string_agg(DISTINCT d::text, ',' ORDER BY d::text) FROM (SELECT analytics_day AS d FROM shipments
              WHERE id IN ('shp_3', 'shp_8', 'shp_5', 'shp_426', 'shp_847', 'shp_6')
              UNION SELECT ((now() - interval '200 days') AT TIME ZONE 'UTC')::date) x")
q >/dev/null <<'SQL' || ss_fail "changes"
UPDATE shipments SET refund_status = 'refunded' WHERE id = 'shp_3';
UPDATE shipments SET status = 'delivered', delivered_at = created_at + interval '30 hours' WHERE id = 'shp_8';
UPDATE shipments SET raw = jsonb_set(raw, '{to_address,city}', '"Elsewhere"') WHERE id IN ('shp_5', 'shp_426', 'shp_847');
DELETE FROM shipments WHERE id = 'shp_6';
INSERT INTO shipments (id, mode, status, carrier, service, total_cost, created_at, updated_at, raw)
VALUES ('shp_new', 'production', 'delivered', 'UPS', 'Ground', 12.34, now() - interval '200 days', now(),
        '{"id":"shp_new","from_address":{"city":"Austin","state":"TX","country":"US"},"to_address":{"city":"Elsewhere","state":"MO","country":"US"}}');
SQL
expect_eq "days marked by the changes" "$want" \
  "$(q -c "SELECT string_agg(DISTINCT day::text, ',' ORDER BY day::text) FROM analytics_dirty_days")"
# a day that left the route window since the last apply: its rows still in the totals
q >/dev/null <<'SQL' || ss_fail "old route day"
INSERT INTO analytics_route_daily VALUES (analytics_window_start() - 1, 'production', 'OLD', 'IL', 'US', 'GONE', 'MO', 'US', 5, 50, 5);
INSERT INTO analytics_route_totals VALUES ('production', 'OLD', 'IL', 'US', 'GONE', 'MO', 'US', 5, 50, 5);
SQL
refresh_ok || ss_fail "refresh after changes"
[ "$(q -c "SELECT count(*) FROM mv_top_routes WHERE from_city = 'OLD'")" = 0 ] &&
  [ "$(q -c "SELECT count(*) FROM analytics_route_totals WHERE from_city = 'OLD'")" = 0 ] ||
  ss_fail "a day before the window stayed in the route totals"
same_as_0006 "after changes"
direct_days >"$T/direct2"
rollup_days >"$T/rollup2"
diff "$T/direct2" "$T/rollup2" >&2 || ss_fail "analytics_days differs from the shipments after changes"
cmp -s "$T/direct" "$T/direct2" && ss_fail "the changes changed nothing (test broken)"
expect_eq "route totals = sum of the route days" "0" \
  "$(q -c "SELECT count(*) FROM (SELECT mode, from_city, from_state, from_country, to_city, to_state, to_country,
                                        sum(shipment_count), sum(total_cost), sum(cost_count)
                                   FROM analytics_route_daily GROUP BY 1, 2, 3, 4, 5, 6, 7
                                 EXCEPT SELECT * FROM analytics_route_totals) x")"
expect_eq "TRUNCATE empties the rollups (rolled back)" "0|0|0" \
  "$(q -c "BEGIN" -c "TRUNCATE shipments CASCADE" -c "SELECT (SELECT count(*) FROM analytics_daily) || '|' ||
          (SELECT count(*) FROM analytics_days) || '|' || (SELECT count(*) FROM analytics_route_totals)" -c "ROLLBACK" | grep '|')"
ss_pass "changes mark exactly their days (not the ignored one); the next refresh equals 0006's definitions and the shipments again"

# ---------------------------------------------------------------- down
views >"$T/views_changed"
sums >"$T/sums_changed"
"$MIGRATE" down 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down 0011"; }
[ "$(q -c "SELECT max(version) FROM schema_migrations")" -lt 11 ] || ss_fail "0011 still applied"
expect_eq "rollups and triggers gone" "0|0" \
  "$(q -c "SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'analytics\_%' AND relname NOT IN ('analytics_shipments', 'analytics_freshness', 'analytics_refresh_log', 'analytics_refresh_log_pkey', 'analytics_refresh_log_view_idx', 'analytics_refresh_log_id_seq')),
                 (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'shipments'::regclass AND NOT tgisinternal)")"
expect_eq "shipments unchanged by down" "$(cat "$T/sums_changed")" "$(sums)"
views >"$T/views_down"
diff "$T/views_changed" "$T/views_down" >&2 || ss_fail "0006's views after down differ from 0011's"
refresh_ok || ss_fail "refresh after down"
views >"$T/views_down2"
diff "$T/views_changed" "$T/views_down2" >&2 || ss_fail "0006's views refreshed after down differ"
ss_pass "down: rollups, functions and triggers gone; 0006's views back with the same rows; shipments unchanged"

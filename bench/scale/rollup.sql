-- What rollups would give (informational; bench/scale/bench.sh runs it after the measurements,
-- on the filled database): NOT the schema's views, which this bench does not change.
--   daily  one row per (mode, UTC day, carrier, service) for the whole window, the sums
--          behind every dashboard figure (as mv_daily_shipment_analytics, but 400 days)
--   routes one row per (mode, UTC month, route)
-- Timed: building each from shipments in full (what a 400-day view refresh has to compute),
-- an incremental refresh of the daily rollup (delete + insert of the last 45 days, the days
-- that deliveries, returns and refunds still change), and the dashboard's 365-day answer
-- (summary, daily series, carriers, top 10 routes of 12 months) from the rollups, 20 times.
\set ON_ERROR_STOP on
SET jit = off;
\timing on
\echo rollup: daily full
CREATE TABLE scale_rollup_daily AS
SELECT mode, analytics_day AS day, carrier, service,
       count(*) AS shipment_count, coalesce(sum(coalesce(total_cost, rate)), 0) AS total_cost,
       count(*) FILTER (WHERE status = 'delivered') AS delivered_count,
       sum(transit_days) AS delivery_days_total, count(transit_days) AS delivery_days_count,
       count(*) FILTER (WHERE on_time) AS on_time_count, count(on_time) AS on_time_eligible_count
  FROM shipments
 WHERE carrier IS NOT NULL AND service IS NOT NULL
   AND created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '399 days') AT TIME ZONE 'UTC'
 GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX ON scale_rollup_daily (mode, day, carrier, service);
\echo rollup: daily incremental (45 days)
BEGIN;
DELETE FROM scale_rollup_daily WHERE day >= (now() AT TIME ZONE 'UTC')::date - 44;
INSERT INTO scale_rollup_daily
SELECT mode, analytics_day, carrier, service,
       count(*), coalesce(sum(coalesce(total_cost, rate)), 0),
       count(*) FILTER (WHERE status = 'delivered'), sum(transit_days), count(transit_days),
       count(*) FILTER (WHERE on_time), count(on_time)
  FROM shipments
 WHERE carrier IS NOT NULL AND service IS NOT NULL
   AND created_at >= ((now() AT TIME ZONE 'UTC')::date - 44) AT TIME ZONE 'UTC'
 GROUP BY 1, 2, 3, 4;
COMMIT;
\echo rollup: routes full
CREATE TABLE scale_rollup_routes AS
SELECT mode, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month,
       route_from_city, route_from_state, route_from_country,
       route_to_city, route_to_state, route_to_country,
       count(*) AS shipment_count, coalesce(sum(coalesce(total_cost, rate)), 0) AS total_cost
  FROM shipments
 WHERE carrier IS NOT NULL AND service IS NOT NULL
   AND created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '399 days') AT TIME ZONE 'UTC'
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
CREATE INDEX ON scale_rollup_routes (mode, month);
\echo rollup: analyze
ANALYZE scale_rollup_daily;
ANALYZE scale_rollup_routes;
SELECT (SELECT count(*) FROM scale_rollup_daily) AS daily_rows,
       (SELECT count(*) FROM scale_rollup_routes) AS route_month_rows \gset
\echo rollup: rows :daily_rows daily, :route_month_rows route-months
PREPARE dash365 AS
WITH d AS (SELECT * FROM scale_rollup_daily
            WHERE mode = 'production' AND day >= (now() AT TIME ZONE 'UTC')::date - 364)
SELECT json_build_object(
  'summary', (SELECT json_build_object('shipments', coalesce(sum(shipment_count), 0),
                'total_cost', coalesce(sum(total_cost), 0)::text,
                'delivered', coalesce(sum(delivered_count), 0),
                'avg_delivery_days', round((sum(delivery_days_total) / nullif(sum(delivery_days_count), 0))::numeric, 2),
                'on_time_rate', round(sum(on_time_count)::numeric / nullif(sum(on_time_eligible_count), 0), 4))
                FROM d),
  'daily', (SELECT json_agg(x ORDER BY x.day) FROM (SELECT day, sum(shipment_count) AS shipments,
                sum(total_cost)::text AS total_cost, sum(delivered_count) AS delivered
                FROM d GROUP BY day) x),
  'carriers', (SELECT json_agg(y) FROM (SELECT carrier, service, sum(shipment_count) AS n,
                sum(total_cost)::text AS total_cost FROM d GROUP BY 1, 2 ORDER BY 3 DESC) y))::text;
PREPARE routes365 AS
SELECT route_from_city, route_from_state, route_to_city, route_to_state, sum(shipment_count) AS n
  FROM scale_rollup_routes
 WHERE mode = 'production' AND month >= date_trunc('month', (now() AT TIME ZONE 'UTC') - interval '11 months')::date
 GROUP BY 1, 2, 3, 4 ORDER BY n DESC LIMIT 10;
\o /dev/null
\echo rollup: dashboard 365 from daily rollup
EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365;
EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365;
EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365;
EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365; EXECUTE dash365;
\echo rollup: top routes 12 months from route-months
EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365;
EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365;
EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365;
EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365; EXECUTE routes365;
\o
\echo rollup: done
DROP TABLE scale_rollup_daily, scale_rollup_routes;

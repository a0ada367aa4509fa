-- 0006_objects_refunds down: back to 0005.  The new tables and the shipments gates go; the
-- views come back exactly as 0002 made them (every mode, refunds and returns counted as
-- spend).  refund_status stays as the worker last set it (a Refund object's status
-- included).
SET LOCAL lock_timeout = '10s';

DROP MATERIALIZED VIEW mv_top_routes;
DROP MATERIALIZED VIEW mv_carrier_performance;
DROP MATERIALIZED VIEW mv_daily_shipment_analytics;
DROP VIEW analytics_shipments;

DROP TABLE easypost_objects;
DROP TABLE insurances;
DROP TABLE scan_forms;
DROP TABLE pickups;
DROP TABLE refunds;

ALTER TABLE shipments
    DROP COLUMN refund_updated_at,
    DROP COLUMN batch_status,
    DROP COLUMN batch_message,
    DROP COLUMN batch_updated_at;

-- 0002's definitions, unchanged.
-- Purchased shipments of the window.  A plain view (inlined by the planner).
CREATE VIEW analytics_shipments AS
SELECT s.id,
       s.created_at,
       s.analytics_day,
       s.carrier,
       s.service,
       coalesce(s.total_cost, s.rate) AS cost,
       s.status = 'delivered' AS delivered,
       s.transit_days,
       s.on_time,
       s.route_from_city, s.route_from_state, s.route_from_country,
       s.route_to_city, s.route_to_state, s.route_to_country
  FROM shipments s
 WHERE s.created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '89 days')
                      AT TIME ZONE 'UTC'
   AND s.carrier IS NOT NULL
   AND s.service IS NOT NULL;

-- delivery_days_total / delivery_days_count: the sum and number of delivery days behind
-- avg_delivery_days, so that averages over several rows are exact.
CREATE MATERIALIZED VIEW mv_daily_shipment_analytics AS
SELECT analytics_day                                        AS date,
       carrier,
       service,
       count(*)                                             AS shipment_count,
       coalesce(sum(cost), 0)                               AS total_cost,
       round(sum(cost) / nullif(count(cost), 0), 5)         AS avg_cost,
       count(*) FILTER (WHERE delivered)                    AS delivered_count,
       round((sum(transit_days) / nullif(count(transit_days), 0))::numeric, 2)
                                                            AS avg_delivery_days,
       count(*) FILTER (WHERE on_time)                      AS on_time_count,
       count(on_time)                                       AS on_time_eligible_count,
       sum(transit_days)                                    AS delivery_days_total,
       count(transit_days)                                  AS delivery_days_count
  FROM analytics_shipments
 GROUP BY analytics_day, carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_daily_shipment_analytics_key
    ON mv_daily_shipment_analytics (date, carrier, service);

-- Built from mv_daily_shipment_analytics (the same 90 days, a few hundred rows instead of
-- every shipment): refresh it after the daily view (refresh_analytics_views() does).
CREATE MATERIALIZED VIEW mv_carrier_performance AS
SELECT carrier,
       service,
       sum(shipment_count)::bigint                          AS total_shipments,
       sum(total_cost)                                      AS total_revenue,
       sum(delivered_count)::bigint                         AS delivered_count,
       sum(on_time_count)::bigint                           AS on_time_count,
       round(sum(on_time_count)::numeric
             / nullif(sum(on_time_eligible_count), 0), 4)   AS on_time_rate,
       round((sum(delivery_days_total)
             / nullif(sum(delivery_days_count), 0))::numeric, 2) AS avg_delivery_days,
       sum(on_time_eligible_count)::bigint                  AS on_time_eligible_count
  FROM mv_daily_shipment_analytics
 GROUP BY carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_carrier_performance_key ON mv_carrier_performance (carrier, service);

-- Routes with at least 3 purchased shipments in the window.
CREATE MATERIALIZED VIEW mv_top_routes AS
SELECT route_from_city    AS from_city,
       route_from_state   AS from_state,
       route_from_country AS from_country,
       route_to_city      AS to_city,
       route_to_state     AS to_state,
       route_to_country   AS to_country,
       count(*)           AS shipment_count,
       coalesce(sum(cost), 0) AS total_cost,
       round(sum(cost) / nullif(count(cost), 0), 5) AS avg_cost
  FROM analytics_shipments
 GROUP BY 1, 2, 3, 4, 5, 6
HAVING count(*) >= 3
WITH DATA;
CREATE UNIQUE INDEX mv_top_routes_key
    ON mv_top_routes (from_city, from_state, from_country, to_city, to_state, to_country);
CREATE INDEX mv_top_routes_count_idx ON mv_top_routes (shipment_count DESC);

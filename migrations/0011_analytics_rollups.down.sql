-- 0011_analytics_rollups down: back to the migration before.  The triggers, the rollup tables
-- and functions go; the three views come back exactly as 0006 made them (computed from the
-- shipments of the 90-day window, WITH DATA: one pass over the window, as a refresh of 0006's
-- views did), and refresh_analytics_views() as 0002 made it.  Nothing the rollups held is lost: they are sums
-- of the shipments, which stay.
SET LOCAL lock_timeout = '10s';

DROP TRIGGER shipments_analytics_insert ON shipments;
DROP TRIGGER shipments_analytics_update ON shipments;
DROP TRIGGER shipments_analytics_delete ON shipments;
DROP TRIGGER shipments_analytics_truncate ON shipments;
DROP FUNCTION analytics_mark_dirty();
DROP FUNCTION analytics_truncated();

DROP MATERIALIZED VIEW mv_top_routes;
DROP MATERIALIZED VIEW mv_carrier_performance;
DROP MATERIALIZED VIEW mv_daily_shipment_analytics;

DROP FUNCTION analytics_rollup_apply(integer);
DROP FUNCTION analytics_window_start();
DROP TABLE analytics_route_totals;
DROP TABLE analytics_route_daily;
DROP TABLE analytics_days;
DROP TABLE analytics_daily;
DROP TABLE analytics_dirty_days;

-- 0006's views, unchanged (over 0006's analytics_shipments, which 0011 kept).
-- Counts and money of outbound labels not refunded (shipment_count, total_cost, avg_cost,
-- delivery and on-time columns), then the ones counted apart.
CREATE MATERIALIZED VIEW mv_daily_shipment_analytics AS
SELECT analytics_day                                        AS date,
       mode,
       carrier,
       service,
       count(*) FILTER (WHERE o)                            AS shipment_count,
       coalesce(sum(cost) FILTER (WHERE o), 0)              AS total_cost,
       round(sum(cost) FILTER (WHERE o)
             / nullif(count(cost) FILTER (WHERE o), 0), 5)  AS avg_cost,
       count(*) FILTER (WHERE o AND delivered)              AS delivered_count,
       round((sum(transit_days) FILTER (WHERE o)
              / nullif(count(transit_days) FILTER (WHERE o), 0))::numeric, 2)
                                                            AS avg_delivery_days,
       count(*) FILTER (WHERE o AND on_time)                AS on_time_count,
       count(on_time) FILTER (WHERE o)                      AS on_time_eligible_count,
       sum(transit_days) FILTER (WHERE o)                   AS delivery_days_total,
       count(transit_days) FILTER (WHERE o)                 AS delivery_days_count,
       count(*) FILTER (WHERE is_return AND NOT refunded)   AS return_count,
       coalesce(sum(cost) FILTER (WHERE is_return AND NOT refunded), 0) AS return_cost,
       count(*) FILTER (WHERE refunded)                     AS refunded_count,
       coalesce(sum(cost) FILTER (WHERE refunded), 0)       AS refunded_cost,
       count(*) FILTER (WHERE refund_pending)               AS refund_pending_count,
       coalesce(sum(cost) FILTER (WHERE refund_pending), 0) AS refund_pending_cost
  FROM (SELECT a.*, NOT a.is_return AND NOT a.refunded AS o FROM analytics_shipments a) x
 GROUP BY analytics_day, mode, carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_daily_shipment_analytics_key
    ON mv_daily_shipment_analytics (date, mode, carrier, service);

-- Per mode, carrier and service, from the daily view (refresh it first).  Rows whose only
-- shipments are returns or refunded have total_shipments 0.
CREATE MATERIALIZED VIEW mv_carrier_performance AS
SELECT mode,
       carrier,
       service,
       sum(shipment_count)::bigint                          AS total_shipments,
       sum(total_cost)                                      AS total_revenue,
       sum(delivered_count)::bigint                         AS delivered_count,
       sum(on_time_count)::bigint                           AS on_time_count,
       round(sum(on_time_count)::numeric
             / nullif(sum(on_time_eligible_count), 0), 4)   AS on_time_rate,
       round((sum(delivery_days_total)
             / nullif(sum(delivery_days_count), 0))::numeric, 2) AS avg_delivery_days,
       sum(on_time_eligible_count)::bigint                  AS on_time_eligible_count,
       sum(delivery_days_total)                             AS delivery_days_total,
       sum(delivery_days_count)::bigint                     AS delivery_days_count,
       sum(return_count)::bigint                            AS return_count,
       sum(return_cost)                                     AS return_cost,
       sum(refunded_count)::bigint                          AS refunded_count,
       sum(refunded_cost)                                   AS refunded_cost
  FROM mv_daily_shipment_analytics
 GROUP BY mode, carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_carrier_performance_key ON mv_carrier_performance (mode, carrier, service);

-- Routes with at least 3 outbound labels not refunded in the window, per mode and over
-- every mode (mode 'all').
CREATE MATERIALIZED VIEW mv_top_routes AS
SELECT CASE WHEN grouping(mode) = 1 THEN 'all' ELSE mode END AS mode,
       route_from_city    AS from_city,
       route_from_state   AS from_state,
       route_from_country AS from_country,
       route_to_city      AS to_city,
       route_to_state     AS to_state,
       route_to_country   AS to_country,
       count(*)           AS shipment_count,
       coalesce(sum(cost), 0) AS total_cost,
       round(sum(cost) / nullif(count(cost), 0), 5) AS avg_cost
  FROM analytics_shipments
 WHERE NOT is_return AND NOT refunded
 GROUP BY GROUPING SETS ((mode, route_from_city, route_from_state, route_from_country,
                          route_to_city, route_to_state, route_to_country),
                         (route_from_city, route_from_state, route_from_country,
                          route_to_city, route_to_state, route_to_country))
HAVING count(*) >= 3
WITH DATA;
CREATE UNIQUE INDEX mv_top_routes_key
    ON mv_top_routes (mode, from_city, from_state, from_country, to_city, to_state, to_country);
CREATE INDEX mv_top_routes_count_idx ON mv_top_routes (mode, shipment_count DESC);

-- 0002's refresh_analytics_views(), unchanged.
CREATE OR REPLACE FUNCTION refresh_analytics_views(concurrent boolean DEFAULT true)
RETURNS TABLE (view_name text, outcome text, duration_ms numeric, rows bigint, error text)
LANGUAGE plpgsql SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_name    text;
    v_conc    boolean;
    v_started timestamptz;
    v_rows    bigint;
BEGIN
    FOREACH v_name IN ARRAY ARRAY['mv_daily_shipment_analytics', 'mv_carrier_performance',
                                  'mv_top_routes'] LOOP
        v_started := clock_timestamp();
        SELECT $1 AND c.relispopulated INTO v_conc
          FROM pg_class c WHERE c.oid = v_name::regclass;
        view_name := v_name;
        error := NULL;
        v_rows := NULL;
        BEGIN
            IF v_conc THEN
                EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', v_name);
            ELSE
                EXECUTE format('REFRESH MATERIALIZED VIEW %I', v_name);
            END IF;
            EXECUTE format('SELECT count(*) FROM %I', v_name) INTO v_rows;
            outcome := 'success';
        EXCEPTION WHEN OTHERS THEN
            outcome := 'failed';
            error := SQLSTATE || ' ' || SQLERRM;
            RAISE WARNING 'refresh of % failed: %', v_name, error;
        END;
        duration_ms := round((extract(epoch FROM clock_timestamp() - v_started) * 1000)::numeric, 3);
        rows := v_rows;
        INSERT INTO analytics_refresh_log
               (view_name, started_at, finished_at, duration_ms, rows, concurrent, outcome, error)
        VALUES (v_name, v_started, clock_timestamp(), duration_ms, v_rows, v_conc, outcome, error);
        RETURN NEXT;
    END LOOP;
END $$;

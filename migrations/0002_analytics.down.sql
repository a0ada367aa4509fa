-- 0002_analytics down.
DROP VIEW IF EXISTS analytics_freshness;
DROP FUNCTION IF EXISTS refresh_analytics_views(boolean);
DROP MATERIALIZED VIEW IF EXISTS mv_top_routes;
DROP MATERIALIZED VIEW IF EXISTS mv_carrier_performance;
DROP MATERIALIZED VIEW IF EXISTS mv_daily_shipment_analytics;
DROP VIEW IF EXISTS analytics_shipments;
ALTER TABLE shipments
    DROP COLUMN IF EXISTS analytics_day,
    DROP COLUMN IF EXISTS transit_days,
    DROP COLUMN IF EXISTS on_time,
    DROP COLUMN IF EXISTS route_from_city,
    DROP COLUMN IF EXISTS route_from_state,
    DROP COLUMN IF EXISTS route_from_country,
    DROP COLUMN IF EXISTS route_to_city,
    DROP COLUMN IF EXISTS route_to_state,
    DROP COLUMN IF EXISTS route_to_country;

-- 0002_analytics down.
DROP VIEW IF EXISTS analytics_freshness;
DROP FUNCTION IF EXISTS refresh_analytics_views(boolean);
DROP MATERIALIZED VIEW IF EXISTS mv_top_routes;
DROP MATERIALIZED VIEW IF EXISTS mv_carrier_performance;
DROP MATERIALIZED VIEW IF EXISTS mv_daily_shipment_analytics;
DROP VIEW IF EXISTS analytics_shipments;

-- 0001_core down: drops every table of 0001 (schema_migrations belongs to shipstream-migrate).
DROP TABLE IF EXISTS analytics_refresh_log;
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS kafka_offsets;
DROP FUNCTION IF EXISTS prune_processed_events(interval);
DROP TABLE IF EXISTS processed_events;
DROP TABLE IF EXISTS easypost_events;
DROP TABLE IF EXISTS tracking_events;
DROP TABLE IF EXISTS trackers;
DROP TABLE IF EXISTS rates;
DROP TABLE IF EXISTS shipments;
DROP TABLE IF EXISTS batches;
DROP TABLE IF EXISTS parcels;
DROP TABLE IF EXISTS addresses;

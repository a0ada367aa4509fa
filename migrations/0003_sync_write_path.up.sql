-- 0003_sync_write_path: cheaper writes for the sync worker (issue 4, bench/sync).
--
-- * lz4 instead of pglz for the raw jsonb columns: a purchased shipment's raw is ~2.4 KB
--   of jsonb, over the 2 KB TOAST threshold, so every insert compressed it with pglz
--   (the most expensive step of the shipments statement after parsing the JSON).  lz4
--   compresses several times faster for a slightly larger result.  Existing values keep
--   their compression until rewritten (that is fine: both are read transparently).
-- * shipments_tracker_idx dropped: nothing reads shipments by tracker_id (the read API
--   filters by status, carrier/service, tracking_code, created_at, addresses; the
--   worker's tracker upsert goes by shipment id), and it was one of nine index
--   insertions per shipment row.
ALTER TABLE shipments ALTER COLUMN raw SET COMPRESSION lz4;
ALTER TABLE trackers ALTER COLUMN raw SET COMPRESSION lz4;
ALTER TABLE addresses ALTER COLUMN raw SET COMPRESSION lz4;
ALTER TABLE parcels ALTER COLUMN raw SET COMPRESSION lz4;
ALTER TABLE rates ALTER COLUMN raw SET COMPRESSION lz4;
ALTER TABLE batches ALTER COLUMN raw SET COMPRESSION lz4;
ALTER TABLE tracking_events ALTER COLUMN raw SET COMPRESSION lz4;
ALTER TABLE easypost_events ALTER COLUMN payload SET COMPRESSION lz4;

DROP INDEX shipments_tracker_idx;

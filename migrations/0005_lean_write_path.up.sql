-- 0005_lean_write_path: write each fact once (issue 15).
--
-- * rates.raw, parcels.raw, tracking_events.raw dropped: each was a second raw copy of an
--   object whose whole text is already in its parent's raw (shipments.raw holds the rates,
--   the selected rate and the parcel; trackers.raw holds the tracking details).  Nothing
--   read them (not the read API, not the views).  The columns the read API reads stay.
-- * addresses.raw stays, but the sync worker writes it only for addresses from the
--   addresses topic; an address that came embedded in a shipment is stored with raw NULL
--   (its shipment's raw holds it).  Existing rows are left as they are.
-- * rates lose their foreign key to shipments (the worker writes a shipment and its rates in
--   one transaction; the key cost an index probe of shipments per rate) and
--   rates_shipment_idx, which only the key's ON DELETE CASCADE used.
-- * trackers_shipment_idx and trackers_tracking_code_idx dropped: no query reads trackers by
--   shipment or tracking code (the read API goes through shipments and tracking_events).
-- * tracking_events_pkey dropped (the id column stays, still filled from its sequence and
--   unique in practice): nothing looks a tracking event up by id (the read API orders by it
--   as a tie-break only); a tracking detail's identity is tracking_events_detail_key, which
--   stays.  One index insertion fewer per tracking event; a table partitioned by time
--   could not keep a key on id alone anyway.
-- * shipments_batch_idx dropped: no query reads shipments by batch.
--
-- Every statement is catalog-only (DROP COLUMN does not rewrite the table; the space of
-- existing values is reused as rows are updated, or given back by VACUUM FULL/pg_repack):
-- the migration holds its ACCESS EXCLUSIVE locks for milliseconds.  lock_timeout makes it
-- fail instead of queueing behind a long query (and blocking everyone queued behind it).
SET LOCAL lock_timeout = '10s';

ALTER TABLE rates DROP CONSTRAINT rates_shipment_id_fkey;
DROP INDEX rates_shipment_idx;
ALTER TABLE rates DROP COLUMN raw;
ALTER TABLE parcels DROP COLUMN raw;
ALTER TABLE tracking_events DROP COLUMN raw;
DROP INDEX trackers_shipment_idx;
DROP INDEX trackers_tracking_code_idx;
ALTER TABLE tracking_events DROP CONSTRAINT tracking_events_pkey;
DROP INDEX shipments_batch_idx;

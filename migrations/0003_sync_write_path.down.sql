-- Back to 0002: the default compression and shipments_tracker_idx.
CREATE INDEX shipments_tracker_idx ON shipments (tracker_id);

ALTER TABLE easypost_events ALTER COLUMN payload SET COMPRESSION default;
ALTER TABLE tracking_events ALTER COLUMN raw SET COMPRESSION default;
ALTER TABLE batches ALTER COLUMN raw SET COMPRESSION default;
ALTER TABLE rates ALTER COLUMN raw SET COMPRESSION default;
ALTER TABLE parcels ALTER COLUMN raw SET COMPRESSION default;
ALTER TABLE addresses ALTER COLUMN raw SET COMPRESSION default;
ALTER TABLE trackers ALTER COLUMN raw SET COMPRESSION default;
ALTER TABLE shipments ALTER COLUMN raw SET COMPRESSION default;

-- 0010_tracking_events_no_fk: tracking_events keeps no foreign key to trackers (issue 15, cut
-- PostgreSQL's work per event).
--
-- The key made PostgreSQL run one referential check per tracking event (a lookup of the
-- tracker with a FOR KEY SHARE lock, six per synced shipment): 21-25 % of the time of the
-- tracking_events statement (EXPLAIN ANALYZE, 30,000 events), the largest of the write path;
-- 8 % of the backend CPU per event on average over four interleaved bench/sync pairs (0-23 %
-- each, on a loaded machine).  It guarded nothing the write path
-- does not already guarantee: the sync worker upserts a Tracker's row before its tracking
-- events, in the same statement order of the same transaction (libs/sync/src/apply.c), and
-- the row stays even when the version guard keeps an older update out.  Nothing deletes
-- trackers, so ON DELETE CASCADE never ran; retention drops whole months of
-- tracking_events (partition_maintain), which the key did not take part in.
--
-- Dropping the key on the partitioned table drops each partition's copy: catalog work only,
-- no scan, an ACCESS EXCLUSIVE lock on tracking_events (and SHARE ROW EXCLUSIVE on
-- trackers) for its duration.
SET LOCAL lock_timeout = '10s';

ALTER TABLE tracking_events DROP CONSTRAINT tracking_events_tracker_id_fkey;

-- 0010_tracking_events_no_fk down: the foreign key of tracking_events to trackers again, with
-- the names 0007 left: tracking_events_tracker_id_fkey on the table and its month partitions,
-- tracking_events_legacy_tracker_id_fkey on the legacy partition (0007's down renames it).
--
-- Adding the key checks every existing row (one pass, under SHARE ROW EXCLUSIVE on both
-- tables: writes to them wait for it; a partitioned table cannot take a NOT VALID key on
-- PostgreSQL 15).  A tracking event whose tracker is missing (none are written by the sync
-- worker) stops the migration with a message naming how many; nothing is deleted.
SET LOCAL lock_timeout = '10s';

DO $$
DECLARE
    orphans bigint;
BEGIN
    SELECT count(*) INTO orphans FROM tracking_events e
     WHERE NOT EXISTS (SELECT 1 FROM trackers t WHERE t.id = e.tracker_id);
    IF orphans > 0 THEN
        RAISE EXCEPTION '% tracking events have no tracker row: the foreign key cannot come back', orphans
            USING HINT = 'restore those trackers (or delete the events) and run the down migration again';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_inherits
                WHERE inhrelid = to_regclass('tracking_events_legacy')
                  AND inhparent = 'tracking_events'::regclass) THEN
        ALTER TABLE tracking_events_legacy
            ADD CONSTRAINT tracking_events_legacy_tracker_id_fkey
            FOREIGN KEY (tracker_id) REFERENCES trackers (id) ON DELETE CASCADE;
    END IF;
END $$;

-- The legacy partition's key above is taken over as this one's copy; every other partition
-- gets one of the same name.
ALTER TABLE tracking_events
    ADD CONSTRAINT tracking_events_tracker_id_fkey
    FOREIGN KEY (tracker_id) REFERENCES trackers (id) ON DELETE CASCADE;

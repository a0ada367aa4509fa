-- Back to 0006: tracking_events becomes a plain table again.  The legacy
-- partition (the table from before 0007) is detached and becomes the table again; the rows of
-- every other attached partition are copied into it (the rows written since 0007), then the
-- partitioned table goes.  When retention has already dropped the legacy partition, an empty
-- table of 0006's shape takes its place.  Partitions detached and kept by retention
-- (RETENTION_*_MODE=detach) are plain tables that this leaves alone.  The copy is one
-- statement per table under the migration's lock.
SET LOCAL lock_timeout = '10s';

-- ---------------------------------------------------------------- tracking_events

DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM partition_bounds('tracking_events')
                WHERE partition = to_regclass('tracking_events_legacy')) THEN
        ALTER TABLE tracking_events DETACH PARTITION tracking_events_legacy;
    ELSE
        CREATE TABLE tracking_events_legacy (
            id            bigint NOT NULL DEFAULT nextval('tracking_events_id_seq'),
            tracker_id    text NOT NULL
                          CONSTRAINT tracking_events_legacy_tracker_id_fkey
                          REFERENCES trackers (id) ON DELETE CASCADE,
            shipment_id   text,
            occurred_at   timestamptz,
            status        text,
            status_detail text,
            message       text,
            description   text,
            source        text,
            carrier_code  text,
            city          text,
            state         text,
            country       text,
            zip           text,
            detail_hash   text GENERATED ALWAYS AS (
                md5(coalesce(status, '') || chr(31) || coalesce(status_detail, '') || chr(31) ||
                    coalesce(message, '') || chr(31) || coalesce(description, ''))) STORED,
            inserted_at   timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT tracking_events_legacy_detail_key
                UNIQUE NULLS NOT DISTINCT (tracker_id, occurred_at, detail_hash)
        );
        CREATE INDEX tracking_events_legacy_shipment_idx
            ON tracking_events_legacy (shipment_id, occurred_at) WHERE shipment_id IS NOT NULL;
    END IF;
END $$;
INSERT INTO tracking_events_legacy (id, tracker_id, shipment_id, occurred_at, status,
                                    status_detail, message, description, source, carrier_code,
                                    city, state, country, zip, inserted_at)
SELECT id, tracker_id, shipment_id, occurred_at, status, status_detail, message, description,
       source, carrier_code, city, state, country, zip, inserted_at
  FROM tracking_events;
ALTER SEQUENCE tracking_events_id_seq OWNED BY tracking_events_legacy.id;
DROP TABLE tracking_events;
ALTER TABLE tracking_events_legacy RENAME TO tracking_events;
ALTER TABLE tracking_events
    RENAME CONSTRAINT tracking_events_legacy_detail_key TO tracking_events_detail_key;
ALTER TABLE tracking_events
    RENAME CONSTRAINT tracking_events_legacy_tracker_id_fkey TO tracking_events_tracker_id_fkey;
ALTER INDEX tracking_events_legacy_shipment_idx RENAME TO tracking_events_shipment_idx;

DROP FUNCTION partition_prune(regclass, integer, integer);
DROP FUNCTION partition_maintain(regclass, integer, integer, boolean, interval);
DROP FUNCTION partition_month(integer);
DROP FUNCTION partition_columns(regclass);
DROP FUNCTION partition_bounds(regclass);

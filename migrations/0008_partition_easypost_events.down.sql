-- Back to 0007: easypost_events becomes a plain table again, keyed by id (as
-- 0007_partitions.down.sql does for tracking_events: the legacy partition becomes the table,
-- the rows of every other attached partition are copied into it; partitions detached and
-- kept by retention are left alone).
SET LOCAL lock_timeout = '10s';

-- ---------------------------------------------------------------- easypost_events

DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM partition_bounds('easypost_events')
                WHERE partition = to_regclass('easypost_events_legacy')) THEN
        ALTER TABLE easypost_events DETACH PARTITION easypost_events_legacy;
    ELSE
        CREATE TABLE easypost_events_legacy (
            id          text NOT NULL,
            description text,
            object_type text,
            object_id   text,
            mode        text,
            status      text,
            user_id     text,
            created_at  timestamptz,
            updated_at  timestamptz,
            payload     jsonb COMPRESSION lz4 NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT easypost_events_legacy_id_key UNIQUE NULLS NOT DISTINCT (id, created_at)
        );
        CREATE INDEX easypost_events_legacy_object_idx ON easypost_events_legacy (object_id);
        CREATE INDEX easypost_events_legacy_received_idx ON easypost_events_legacy (received_at);
    END IF;
END $$;
INSERT INTO easypost_events_legacy (id, description, object_type, object_id, mode, status,
                                    user_id, created_at, updated_at, payload, received_at)
SELECT id, description, object_type, object_id, mode, status, user_id, created_at, updated_at,
       payload, received_at
  FROM easypost_events;
DROP TABLE easypost_events;
-- 0006's key: the id alone (an id stored under two created_at values makes this fail, and
-- the down with it, rather than lose a row).
ALTER TABLE easypost_events_legacy DROP CONSTRAINT easypost_events_legacy_id_key;
ALTER TABLE easypost_events_legacy ADD CONSTRAINT easypost_events_pkey PRIMARY KEY (id);
ALTER TABLE easypost_events_legacy RENAME TO easypost_events;
ALTER INDEX easypost_events_legacy_object_idx RENAME TO easypost_events_object_idx;
ALTER INDEX easypost_events_legacy_received_idx RENAME TO easypost_events_received_idx;

-- 0008_partition_easypost_events: easypost_events partitioned by month of created_at, as
-- 0007 did for tracking_events (same functions, same layout: easypost_events_legacy is the
-- table from before, easypost_events_default takes every row no month covers).
--
-- The key must include the partition key: the primary key (id) becomes
-- easypost_events_id_key UNIQUE NULLS NOT DISTINCT (id, created_at).  An Event's created_at
-- never changes, so a redelivered Event still conflicts.
--
-- ROLLING UPGRADE: a sync worker older than this release writes easypost_events with
-- ON CONFLICT (id), which no longer matches a key here: it cannot prepare its statements and
-- pauses (nothing is lost, nothing applied) until replaced.  This release's worker writes
-- ON CONFLICT DO NOTHING (any key) and works before and after 0008.  So apply 0008 once no
-- older worker runs (the release after the one that brings 0007), or accept a paused old
-- worker for the rollout's duration; rolling the image back past this release needs
-- `shipstream-migrate down` of 0008 first.
--
-- Lock: besides 0007's two scans (rows moved out, ATTACH's proof), the (id, created_at)
-- index of the existing rows is built here, under the lock (bench/schema/partitions.sh).
SET LOCAL lock_timeout = '10s';

-- ---------------------------------------------------------------- easypost_events

ALTER TABLE easypost_events RENAME TO easypost_events_legacy;
ALTER TABLE easypost_events_legacy RENAME CONSTRAINT easypost_events_pkey TO easypost_events_legacy_pkey;
ALTER INDEX easypost_events_object_idx RENAME TO easypost_events_legacy_object_idx;
ALTER INDEX easypost_events_received_idx RENAME TO easypost_events_legacy_received_idx;

CREATE TABLE easypost_events (
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
    CONSTRAINT easypost_events_id_key UNIQUE NULLS NOT DISTINCT (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX easypost_events_object_idx ON easypost_events (object_id);
CREATE INDEX easypost_events_received_idx ON easypost_events (received_at);
CREATE TABLE easypost_events_default PARTITION OF easypost_events DEFAULT;

WITH d AS (DELETE FROM easypost_events_legacy
            WHERE created_at IS NULL OR created_at >= partition_month(1) RETURNING *)
INSERT INTO easypost_events
SELECT id, description, object_type, object_id, mode, status, user_id, created_at, updated_at,
       payload, received_at FROM d;
-- The one index built here: (id, created_at) of the existing rows.  Then the primary key on
-- id alone goes (the new key covers it).
ALTER TABLE easypost_events_legacy
    ADD CONSTRAINT easypost_events_legacy_id_key UNIQUE NULLS NOT DISTINCT (id, created_at);
ALTER TABLE easypost_events_legacy DROP CONSTRAINT easypost_events_legacy_pkey;
DO $$ BEGIN
    EXECUTE format('ALTER TABLE easypost_events ATTACH PARTITION easypost_events_legacy'
                   ' FOR VALUES FROM (MINVALUE) TO (%L)', partition_month(1));
END $$;
SELECT partition_maintain('easypost_events', 3);

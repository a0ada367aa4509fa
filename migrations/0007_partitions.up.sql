-- 0007_partitions: monthly partitions for the tables that only grow (issue 15).
--
-- tracking_events is partitioned by RANGE (occurred_at) here, easypost_events by RANGE
-- (created_at) in 0008: EasyPost's own times, which never change for a given row.  The
-- partition key has to be part of every unique constraint; for tracking_events it already is:
--   tracking_events_detail_key UNIQUE NULLS NOT DISTINCT (tracker_id, occurred_at, detail_hash)
-- stays (same name, same columns: the sync worker's ON CONFLICT ON CONSTRAINT, old or new,
-- still finds a redelivered detail, which always lands in the month of its datetime).
-- Partitioning by inserted_at would have put a redelivery in another month, out of its first
-- copy's reach.  processed_events stays a plain table: its key is the event id alone (the
-- exactly-once check), and a time partition key would have to join that key.
--
-- Partitions, per table T:
--   T_legacy         every row that existed before this migration with a key before the start
--                    of next month: FROM (MINVALUE) TO (next month).  The old table itself,
--                    attached, not copied.  Retention deletes its rows past the setting in
--                    batches and drops it once its upper bound is past.
--   T_pYYYYMM        one per UTC month, created ahead by partition_maintain() (the refresh
--                    scheduler runs it; PARTITIONS_MONTHS_AHEAD, default 3).
--   T_default        everything else: a NULL key, a month with no partition (far future, or
--                    past months already dropped), so that no row is ever refused.  When a
--                    month's partition is created, that month's rows move out of it.
--
-- Lock: the old table is renamed and attached, not rewritten.  What takes time under the
-- ACCESS EXCLUSIVE lock is (1) one scan of the old table to move the rows whose key is NULL or
-- after this month (usually none) into the partitioned table, (2) ATTACH's scan proving every
-- other row is before next month.  bench/schema/partitions.sh measures it (figures in
-- deploy/README.md, "Partitions and retention").
-- Existing indexes and the tracker foreign key are reused, not rebuilt.
SET LOCAL lock_timeout = '10s';

-- ---------------------------------------------------------------- helpers

-- The partitions of a range-partitioned table with their bounds (MINVALUE = -infinity,
-- MAXVALUE = infinity; the default partition has NULL bounds).
CREATE FUNCTION partition_bounds(parent regclass)
RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz,
               is_default boolean)
LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass,
           CASE WHEN b.m IS NULL THEN NULL
                WHEN b.m[1] = 'MINVALUE' THEN '-infinity'::timestamptz
                ELSE trim(both '''' from b.m[1])::timestamptz END,
           CASE WHEN b.m IS NULL THEN NULL
                WHEN b.m[2] = 'MAXVALUE' THEN 'infinity'::timestamptz
                ELSE trim(both '''' from b.m[2])::timestamptz END,
           b.m IS NULL
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                             '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS m) b
     WHERE i.inhparent = parent
$$;

-- The insertable columns of a table (neither generated nor dropped), quoted, in order.
CREATE FUNCTION partition_columns(t regclass) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
      FROM pg_attribute
     WHERE attrelid = t AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
$$;

-- First instant of the UTC month `months` months from now's month.
CREATE FUNCTION partition_month(months integer) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => months))
           AT TIME ZONE 'UTC'
$$;

-- Creates the monthly partitions of this month and the months_ahead next ones that no
-- partition covers yet (moving that month's rows out of the default partition first), and,
-- when retention_months > 0, detaches every partition wholly before the first day of the
-- month retention_months months ago, then drops it unless keep_detached (a kept one stays
-- as a plain table under its name).  One transaction; each ALTER waits at most lock_wait
-- for its lock and the whole call fails (changing nothing) otherwise.  Returns one line per
-- thing done: 'created <name>', 'moved <n> <name>', 'detached <name>', 'dropped <name>'.
CREATE FUNCTION partition_maintain(parent regclass, months_ahead integer,
                                   retention_months integer DEFAULT 0,
                                   keep_detached boolean DEFAULT false,
                                   lock_wait interval DEFAULT '5s')
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    key    text;
    nsp    text;
    rel    text;
    def    regclass;
    cols   text;
    lo     timestamptz;
    hi     timestamptz;
    name   text;
    n      bigint;
    p      record;
BEGIN
    SELECT a.attname, ns.nspname, c.relname INTO key, nsp, rel
      FROM pg_partitioned_table pt
      JOIN pg_class c ON c.oid = pt.partrelid
      JOIN pg_namespace ns ON ns.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
     WHERE pt.partrelid = parent AND pt.partstrat = 'r' AND pt.partnatts = 1;
    IF key IS NULL THEN
        RAISE EXCEPTION '% is not range-partitioned on one column', parent;
    END IF;
    IF months_ahead < 0 OR retention_months < 0 THEN
        RAISE EXCEPTION 'months_ahead and retention_months must be >= 0';
    END IF;
    PERFORM set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text,
                       true);
    SELECT b.partition INTO def FROM partition_bounds(parent) b WHERE b.is_default;
    cols := partition_columns(parent);

    FOR i IN 0 .. months_ahead LOOP
        lo := partition_month(i);
        hi := partition_month(i + 1);
        CONTINUE WHEN EXISTS (SELECT 1 FROM partition_bounds(parent) b
                               WHERE NOT b.is_default AND b.lower_bound < hi
                                 AND b.upper_bound > lo);
        name := format('%s_p%s', rel, to_char(lo AT TIME ZONE 'UTC', 'YYYYMM'));
        n := 0;
        IF def IS NOT NULL THEN
            -- the default must hold none of the month's rows when the month is created
            EXECUTE format('CREATE TEMP TABLE partition_move ON COMMIT DROP AS'
                           ' WITH d AS (DELETE FROM %s WHERE %I >= $1 AND %I < $2 RETURNING *)'
                           ' SELECT %s FROM d', def, key, key, cols) USING lo, hi;
            GET DIAGNOSTICS n = ROW_COUNT;
        END IF;
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       nsp, name, parent, lo, hi);
        RETURN NEXT 'created ' || name;
        IF def IS NOT NULL THEN
            IF n > 0 THEN
                EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM partition_move', parent,
                               cols, cols);
                RETURN NEXT format('moved %s %s', n, name);
            END IF;
            DROP TABLE partition_move;
        END IF;
    END LOOP;

    IF retention_months > 0 THEN
        hi := partition_month(-retention_months);
        FOR p IN SELECT b.partition, c.relname FROM partition_bounds(parent) b
                   JOIN pg_class c ON c.oid = b.partition
                  WHERE NOT b.is_default AND b.upper_bound <= hi
                  ORDER BY b.upper_bound LOOP
            EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, p.partition);
            IF keep_detached THEN
                RETURN NEXT 'detached ' || p.relname;
            ELSE
                EXECUTE format('DROP TABLE %s', p.partition);
                RETURN NEXT 'dropped ' || p.relname;
            END IF;
        END LOOP;
    END IF;
END $$;

-- Retention inside the partitions that straddle the cutoff (the legacy one) and the default
-- partition: deletes at most batch rows whose key is before the first day of the month
-- retention_months months ago, returns how many (call again while it returns batch).  Rows
-- with a NULL key are kept.  Each call is one short transaction; whole partitions go with
-- partition_maintain, not here.
CREATE FUNCTION partition_prune(parent regclass, retention_months integer, batch integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    key    text;
    cutoff timestamptz;
    p      regclass;
    n      bigint;
    total  bigint := 0;
BEGIN
    IF retention_months <= 0 THEN
        RETURN 0;
    END IF;
    SELECT a.attname INTO key FROM pg_partitioned_table pt
      JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
     WHERE pt.partrelid = parent;
    cutoff := partition_month(-retention_months);
    FOR p IN SELECT b.partition FROM partition_bounds(parent) b
              WHERE b.is_default OR (b.lower_bound < cutoff AND b.upper_bound > cutoff) LOOP
        EXIT WHEN total >= batch;
        EXECUTE format('DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s'
                       ' WHERE %I < $1 LIMIT $2))', p, p, key) USING cutoff, batch - total;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END $$;

-- ---------------------------------------------------------------- tracking_events

ALTER TABLE tracking_events RENAME TO tracking_events_legacy;
ALTER TABLE tracking_events_legacy
    RENAME CONSTRAINT tracking_events_detail_key TO tracking_events_legacy_detail_key;
ALTER TABLE tracking_events_legacy
    RENAME CONSTRAINT tracking_events_tracker_id_fkey TO tracking_events_legacy_tracker_id_fkey;
ALTER INDEX tracking_events_shipment_idx RENAME TO tracking_events_legacy_shipment_idx;

CREATE TABLE tracking_events (
    id            bigint NOT NULL DEFAULT nextval('tracking_events_id_seq'),
    tracker_id    text NOT NULL REFERENCES trackers (id) ON DELETE CASCADE,
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
    CONSTRAINT tracking_events_detail_key
        UNIQUE NULLS NOT DISTINCT (tracker_id, occurred_at, detail_hash)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE tracking_events_id_seq OWNED BY tracking_events.id;
CREATE INDEX tracking_events_shipment_idx ON tracking_events (shipment_id, occurred_at)
    WHERE shipment_id IS NOT NULL;
CREATE TABLE tracking_events_default PARTITION OF tracking_events DEFAULT;

WITH d AS (DELETE FROM tracking_events_legacy
            WHERE occurred_at IS NULL OR occurred_at >= partition_month(1) RETURNING *)
INSERT INTO tracking_events (id, tracker_id, shipment_id, occurred_at, status, status_detail,
                             message, description, source, carrier_code, city, state, country,
                             zip, inserted_at)
SELECT id, tracker_id, shipment_id, occurred_at, status, status_detail, message, description,
       source, carrier_code, city, state, country, zip, inserted_at FROM d;
-- Reuses tracking_events_legacy_detail_key, the shipment index and the foreign key.
DO $$ BEGIN
    EXECUTE format('ALTER TABLE tracking_events ATTACH PARTITION tracking_events_legacy'
                   ' FOR VALUES FROM (MINVALUE) TO (%L)', partition_month(1));
END $$;
SELECT partition_maintain('tracking_events', 3);

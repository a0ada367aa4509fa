-- 0012_lean_rows: fewer bytes per synced shipment (issue 15, "Lean write path": bytes on disk
-- per synced shipment at most half of the write path before 0005).  Two tables:
-- tracking_events (rebuilt) and addresses (search no longer stored, at the end of the file).
--
-- tracking_events is rebuilt (same name, same partitions, same rows):
-- * detail_hash (with tracker_id and occurred_at, the identity of a tracking detail: a hash of
--   its status, status_detail, message and description) is stored as bigint, the first 64
--   bits of the same md5, instead of the md5's 32 hex digits as text (33 bytes), in the rows
--   and in tracking_events_detail_key.  Same constraint name and columns: the sync worker's
--   ON CONFLICT ON CONSTRAINT tracking_events_detail_key (old or new) finds a redelivered
--   detail as before.  64 bits are enough: two details are only compared when they have the
--   same tracker and the same datetime (to the microsecond), a handful at most; a false match
--   needs two of those to agree on 64 bits (2^-64 a pair).  Nothing reads the column (not the
--   read API, the MCP tools nor the views); the old value is md5(...), the new one
--   ('x' || left(md5(...), 16))::bit(64)::bigint.
-- * the fixed-width columns first (id, occurred_at, inserted_at, detail_hash), then the text
--   ones: no alignment padding inside a row (two timestamps after text columns cost 0-7
--   bytes each), and no dropped columns (0005's raw, in every row of the legacy partition a
--   NULL, so a null bitmap even in rows without NULLs).  Readers and writers name their
--   columns; the order is not part of any statement.
-- * tracking_events_shipment_idx indexes (shipment_id) instead of (shipment_id, occurred_at):
--   its only reader, the read API's shipment detail (e.shipment_id = s.id OR e.tracker_id =
--   s.tracker_id: every event of the shipment, sorted afterwards), reads it as a bitmap and
--   never used occurred_at from it.  Without the second column the index deduplicates: one
--   entry per shipment holding its events' heap pointers instead of one entry per event.
-- Measured on bench/sync's --full stream (6 events per shipment, 20,000 shipments), bytes per
-- synced shipment: tracking_events 2,050 -> 1,405, addresses 274 -> 192; all synced tables
-- 6,449 -> 5,721 (the write path before 0005: 11,623; 0.49 of it).
--
-- How: LOCK ... IN EXCLUSIVE MODE (the sync worker's writes of tracking events wait until the
-- commit; reads of tracking_events go on), a new partitioned table with the same partitions
-- (names and bounds), one INSERT ... SELECT of every row, its two indexes built, then the
-- swap: DROP of the old table and renames, catalog work under ACCESS EXCLUSIVE (readers wait
-- milliseconds).  The copy and index builds are one pass over the table, about VACUUM FULL's
-- work: the whole migration took 5.8 s on 1,000,000 tracking events and 333,334 addresses
-- (2 shared cores, load 2; down 7.0 s), so about 5 s of held-back writes per million events.
-- Batches would not shorten anything: shipstream-migrate runs the file in one transaction,
-- and a column's type is one for all rows.  Partitions that retention detached and kept
-- (RETENTION_*_MODE=detach) are plain tables this leaves alone, with the old columns: to
-- attach one again, copy its rows in instead.
SET LOCAL lock_timeout = '10s';

LOCK TABLE tracking_events IN EXCLUSIVE MODE;

-- pg_temp.ss12_swap(ddl, shipment_cols): a new tracking_events of columns ddl, with the same
-- partitions (names, bounds), every row copied, tracking_events_detail_key and
-- tracking_events_shipment_idx (shipment_cols) built, then put in the old one's place.  Each
-- partition's copies of the two are named <partition>_detail_key and <partition>_shipment_idx
-- (the names 0007 gave the legacy partition's, which its down migration renames back).
CREATE FUNCTION pg_temp.ss12_swap(ddl text, shipment_cols text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cols text := partition_columns('tracking_events');
    p    record;
    name text;
    k    text;
BEGIN
    EXECUTE format('CREATE TABLE tracking_events_n12 (%s) PARTITION BY RANGE (occurred_at)', ddl);
    FOR p IN SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'tracking_events'::regclass LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF tracking_events_n12 %s',
                       p.relname || '_n12', p.bound);
    END LOOP;
    EXECUTE format('INSERT INTO tracking_events_n12 (%s) SELECT %s FROM tracking_events',
                   cols, cols);
    -- built after the copy (one sort each), while readers still read the old table
    EXECUTE 'ALTER TABLE tracking_events_n12 ADD CONSTRAINT tracking_events_n12_detail_key'
            ' UNIQUE NULLS NOT DISTINCT (tracker_id, occurred_at, detail_hash)';
    EXECUTE format('CREATE INDEX tracking_events_n12_shipment_idx ON tracking_events_n12 (%s)'
                   ' WHERE shipment_id IS NOT NULL', shipment_cols);
    EXECUTE 'ALTER SEQUENCE tracking_events_id_seq OWNED BY tracking_events_n12.id';
    -- the swap: ACCESS EXCLUSIVE on the old table (readers wait) for catalog work only
    EXECUTE 'DROP TABLE tracking_events';
    EXECUTE 'ALTER TABLE tracking_events_n12 RENAME TO tracking_events';
    EXECUTE 'ALTER TABLE tracking_events RENAME CONSTRAINT tracking_events_n12_detail_key'
            ' TO tracking_events_detail_key';
    EXECUTE 'ALTER INDEX tracking_events_n12_shipment_idx RENAME TO tracking_events_shipment_idx';
    FOR p IN SELECT c.oid, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'tracking_events'::regclass LOOP
        name := left(p.relname, length(p.relname) - 4);
        EXECUTE format('ALTER TABLE %s RENAME TO %I', p.oid::regclass, name);
        SELECT conname INTO k FROM pg_constraint WHERE conrelid = p.oid AND contype = 'u';
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', name, k,
                       name || '_detail_key');
        SELECT ic.relname INTO k FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
         WHERE x.indrelid = p.oid AND NOT x.indisunique;
        EXECUTE format('ALTER INDEX %I RENAME TO %I', k, name || '_shipment_idx');
    END LOOP;
END $$;

SELECT pg_temp.ss12_swap($ddl$
    id            bigint NOT NULL DEFAULT nextval('tracking_events_id_seq'),
    occurred_at   timestamptz,
    inserted_at   timestamptz NOT NULL DEFAULT now(),
    detail_hash   bigint GENERATED ALWAYS AS (
        ('x' || left(md5(coalesce(status, '') || chr(31) || coalesce(status_detail, '') ||
                         chr(31) || coalesce(message, '') || chr(31) ||
                         coalesce(description, '')), 16))::bit(64)::bigint) STORED,
    tracker_id    text NOT NULL,
    shipment_id   text,
    status        text,
    status_detail text,
    message       text,
    description   text,
    source        text,
    carrier_code  text,
    city          text,
    state         text,
    country       text,
    zip           text
$ddl$, 'shipment_id');

-- the session's temporary function would clash with the down's
DROP FUNCTION pg_temp.ss12_swap(text, text);

-- ---------------------------------------------------------------- addresses.search
-- The full-text document of an address is no longer stored in each row (a tsvector of name,
-- company, street and city: 77 bytes a row on bench/sync's addresses): the function
-- search(addresses) computes it, and addresses_search_idx indexes that expression, the same
-- document 0001's generated column held.  Readers are unchanged: `a.search` on a row of
-- addresses is search(a) when there is no such column (PostgreSQL's functional notation), the
-- SQL function is inlined, and the planner matches the index (bitmap index scan, as before;
-- tests/integration/schema/test_explain.sh).  Only an unqualified `search` no longer resolves.
-- Locks: building the index takes SHARE on addresses (the worker's address writes wait, reads
-- go on), then the old index and the column go (catalog only, ACCESS EXCLUSIVE until the
-- commit, a moment later).  Rows written before keep their tsvector bytes until they are
-- rewritten (an update, VACUUM FULL, pg_repack).  Locked after tracking_events, in the sync
-- worker's statement order (libs/sync/src/apply.c): no deadlock with a worker's transaction.
CREATE FUNCTION search(a addresses) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig,
                       coalesce(a.name, '') || ' ' || coalesce(a.company, '') || ' ' ||
                       coalesce(a.street1, '') || ' ' || coalesce(a.street2, '') || ' ' ||
                       coalesce(a.city, ''))
$$;
CREATE INDEX addresses_search_n12 ON addresses USING gin (search(addresses));
DROP INDEX addresses_search_idx;
ALTER TABLE addresses DROP COLUMN search;
ALTER INDEX addresses_search_n12 RENAME TO addresses_search_idx;

-- Back to 0011.  tracking_events rebuilt the same way as up (same partitions, every row),
-- with 0007's columns in 0007's order, detail_hash as 32 hex digits (text: every row's value
-- is computed again from its columns by the generated column, the same md5 as before) and
-- tracking_events_shipment_idx on (shipment_id, occurred_at).  Locks as in the up
-- migration: the sync worker's writes wait for the copy, readers only for the swap.
SET LOCAL lock_timeout = '10s';

LOCK TABLE tracking_events IN EXCLUSIVE MODE;

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
    tracker_id    text NOT NULL,
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
    inserted_at   timestamptz NOT NULL DEFAULT now()
$ddl$, 'shipment_id, occurred_at');

DROP FUNCTION pg_temp.ss12_swap(text, text);

-- addresses.search stored again (0001's generated column: adding it rewrites addresses under
-- an ACCESS EXCLUSIVE lock, readers of addresses wait), its index on the column.
DROP INDEX addresses_search_idx;
ALTER TABLE addresses ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(company, '') || ' ' ||
                          coalesce(street1, '') || ' ' || coalesce(street2, '') || ' ' ||
                          coalesce(city, ''))) STORED;
CREATE INDEX addresses_search_idx ON addresses USING gin (search);
DROP FUNCTION search(addresses);

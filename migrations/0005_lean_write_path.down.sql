-- Back to 0004: the raw copies come back, rebuilt from the parents' raw (the same objects
-- the old worker stored: a rate from its shipment's rates/selected_rate, a parcel from the
-- newest shipment carrying it, a tracking detail from its tracker's tracking_details
-- matched on its identity (occurred_at, detail_hash), an embedded address from the newest
-- shipment carrying it), then the foreign key and the indexes.  A detail that is no longer
-- in its tracker's raw keeps raw NULL.  Set-based, one statement per table: the rows are
-- locked until the migration commits, tables are not (readers are never blocked).
SET LOCAL lock_timeout = '10s';

-- EasyPost datetimes that PostgreSQL cannot read match nothing instead of failing the down.
CREATE FUNCTION pg_temp.ss_ts(t text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::timestamptz;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;

ALTER TABLE rates ADD COLUMN raw jsonb;
ALTER TABLE rates ALTER COLUMN raw SET COMPRESSION lz4;
UPDATE rates r
   SET raw = x.elem
  FROM (SELECT DISTINCT ON (e.elem->>'id') e.elem->>'id' AS id, e.elem
          FROM shipments s
         CROSS JOIN LATERAL jsonb_array_elements(
                 CASE jsonb_typeof(s.raw->'rates') WHEN 'array' THEN s.raw->'rates'
                      ELSE '[]'::jsonb END ||
                 CASE jsonb_typeof(s.raw->'selected_rate')
                      WHEN 'object' THEN jsonb_build_array(s.raw->'selected_rate')
                      ELSE '[]'::jsonb END) e(elem)
         WHERE s.raw IS NOT NULL
         ORDER BY e.elem->>'id', s.updated_at DESC NULLS LAST) x
 WHERE x.id = r.id;

ALTER TABLE parcels ADD COLUMN raw jsonb;
ALTER TABLE parcels ALTER COLUMN raw SET COMPRESSION lz4;
UPDATE parcels p
   SET raw = x.elem
  FROM (SELECT DISTINCT ON (s.raw->'parcel'->>'id') s.raw->'parcel'->>'id' AS id,
               s.raw->'parcel' AS elem
          FROM shipments s
         WHERE jsonb_typeof(s.raw->'parcel') = 'object'
         ORDER BY s.raw->'parcel'->>'id', s.updated_at DESC NULLS LAST) x
 WHERE x.id = p.id;

UPDATE addresses a
   SET raw = x.elem
  FROM (SELECT DISTINCT ON (e.elem->>'id') e.elem->>'id' AS id, e.elem
          FROM shipments s
         CROSS JOIN LATERAL (VALUES (s.raw->'from_address'), (s.raw->'to_address'),
                                    (s.raw->'return_address'), (s.raw->'buyer_address')) e(elem)
         WHERE jsonb_typeof(e.elem) = 'object'
         ORDER BY e.elem->>'id', s.updated_at DESC NULLS LAST) x
 WHERE a.raw IS NULL AND x.id = a.id;

ALTER TABLE tracking_events ADD COLUMN raw jsonb;
ALTER TABLE tracking_events ALTER COLUMN raw SET COMPRESSION lz4;
UPDATE tracking_events e
   SET raw = d.elem
  FROM trackers t
 CROSS JOIN LATERAL jsonb_array_elements(
         CASE jsonb_typeof(t.raw->'tracking_details') WHEN 'array' THEN t.raw->'tracking_details'
              ELSE '[]'::jsonb END) d(elem)
 WHERE t.id = e.tracker_id
   AND jsonb_typeof(d.elem) = 'object'
   AND e.detail_hash = md5(coalesce(d.elem->>'status', '') || chr(31) ||
                           coalesce(d.elem->>'status_detail', '') || chr(31) ||
                           coalesce(d.elem->>'message', '') || chr(31) ||
                           coalesce(d.elem->>'description', ''))
   AND pg_temp.ss_ts(d.elem->>'datetime') IS NOT DISTINCT FROM e.occurred_at;

ALTER TABLE tracking_events ADD CONSTRAINT tracking_events_pkey PRIMARY KEY (id);
CREATE INDEX shipments_batch_idx ON shipments (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX trackers_shipment_idx ON trackers (shipment_id);
CREATE INDEX trackers_tracking_code_idx ON trackers (tracking_code);
CREATE INDEX rates_shipment_idx ON rates (shipment_id);
-- Rates whose shipment is gone (none are, the worker writes both together) would fail it.
ALTER TABLE rates ADD CONSTRAINT rates_shipment_id_fkey
    FOREIGN KEY (shipment_id) REFERENCES shipments (id) ON DELETE CASCADE NOT VALID;
ALTER TABLE rates VALIDATE CONSTRAINT rates_shipment_id_fkey;

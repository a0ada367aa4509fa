-- Back to 0006/0007: every rate of every shipment is a row again, rebuilt from the
-- shipments' raw ('rates' and 'selected_rate'), the cells as the sync worker maps them
-- (libs/sync/include/sync/columns.h, SS_SYNC_RATES_COLUMNS): a rate offered by several
-- versions of a shipment comes from the newest.  Rows that exist (the selected rates) are
-- left as they are.  A value PostgreSQL cannot read becomes NULL instead of failing the down
-- (the worker would have refused the message; here the shipment is already stored).
-- One INSERT: ROW EXCLUSIVE on rates, readers never blocked.
SET LOCAL lock_timeout = '10s';
SET LOCAL timezone = 'UTC'; -- a bare date ("2024-08-20") is midnight UTC, as the worker reads it

CREATE FUNCTION pg_temp.ss8_ts(t text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::timestamptz;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;
CREATE FUNCTION pg_temp.ss8_num(t text) RETURNS numeric LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::numeric;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;
CREATE FUNCTION pg_temp.ss8_int(t text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::integer;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;

INSERT INTO rates (id, shipment_id, mode, carrier, service, rate, currency, retail_rate,
                   retail_currency, list_rate, list_currency, billing_type, delivery_days,
                   delivery_date, delivery_date_guaranteed, est_delivery_days,
                   carrier_account_id, created_at, updated_at)
SELECT DISTINCT ON (e->>'id')
       e->>'id', s.id, e->>'mode', e->>'carrier', e->>'service', pg_temp.ss8_num(e->>'rate'),
       e->>'currency', pg_temp.ss8_num(e->>'retail_rate'), e->>'retail_currency',
       pg_temp.ss8_num(e->>'list_rate'), e->>'list_currency', e->>'billing_type',
       pg_temp.ss8_int(e->>'delivery_days'), pg_temp.ss8_ts(e->>'delivery_date'),
       CASE jsonb_typeof(e->'delivery_date_guaranteed')
            WHEN 'boolean' THEN (e->'delivery_date_guaranteed')::boolean END,
       pg_temp.ss8_int(e->>'est_delivery_days'), e->>'carrier_account_id',
       pg_temp.ss8_ts(e->>'created_at'), pg_temp.ss8_ts(e->>'updated_at')
  FROM shipments s
 CROSS JOIN LATERAL jsonb_array_elements(
         CASE jsonb_typeof(s.raw->'rates') WHEN 'array' THEN s.raw->'rates' ELSE '[]'::jsonb END) x(e)
 WHERE s.raw IS NOT NULL AND jsonb_typeof(e) = 'object' AND coalesce(e->>'id', '') <> ''
 ORDER BY e->>'id', s.updated_at DESC NULLS LAST
    ON CONFLICT (id) DO NOTHING;

-- the session's temporary functions would clash with a later down's (0005 has its own)
DROP FUNCTION pg_temp.ss8_ts(text);
DROP FUNCTION pg_temp.ss8_num(text);
DROP FUNCTION pg_temp.ss8_int(text);

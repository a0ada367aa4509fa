-- Fills a migrated shipstream database at scale with set-based SQL (bench/scale/bench.sh), in
-- parts that bench.sh runs side by side where they can (one per table, the two biggest split
-- in two ranges of shipments), each `psql -v n=N -v e=E -v days=D -v part=P [-v lo=.. -v hi=..]
-- [-v tbl=..] -f fill.sql`, in this order:
--   stage (alone); then shipments, rates, others, trackers, events (side by side; shipments and
--   events over g in [lo, hi]); then index (one per table tbl, side by side); then finish.
-- Straight into the schema, NOT through Kafka and the sync worker (the write path is
-- measured by bench/sync); the rows look like the worker's: what columns it fills, embedded
-- addresses with raw NULL (0005), no rates.raw/parcels.raw/tracking_events.raw.
--
-- What a shipment has: 1 recipient address (senders: 200 shared warehouse addresses),
-- 1 parcel, 3 rates (every shipment is rated), and, when bought (every shipment but g % 33 = 0,
-- about 97 %), a tracker and tracking events; :e events in all, spread over the bought
-- shipments (6 or 7 each at 2 M / 12 M).  Created over the last :days days, volume growing
-- linearly (today twice the rate of :days days ago), rows inserted in time order as a
-- synced database has them.  12 carrier/services with weights, 8 % test mode, 3 % returns,
-- 2.5 % refund requests (refunded / submitted / rejected), 10 % in batches, statuses by age
-- (delivered, in transit, out for delivery, return to sender, failure, pre-transit), 10 %
-- without an estimated date, 2,000 cities with a skewed spread (routes).
--
-- Speed: the fill tables' indexes and key/unique/foreign-key constraints are dropped first
-- and built again at the end, exactly as the catalog had them (pg_get_indexdef /
-- pg_get_constraintdef, parent of a partitioned table included); a partitioned
-- tracking_events gets one partition per month of the window (its empty legacy partition,
-- which would hold every past month, is dropped first; see bench.sh).
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET work_mem = '256MB';
SET max_parallel_maintenance_workers = 2;
SET client_min_messages = warning;
\timing on
SELECT :'part' = 'stage' AS p_stage, :'part' = 'shipments' AS p_shipments,
       :'part' = 'rates' AS p_rates, :'part' = 'others' AS p_others,
       :'part' = 'trackers' AS p_trackers, :'part' = 'events' AS p_events,
       :'part' = 'index' AS p_index, :'part' = 'finish' AS p_finish \gset
\if :{?lo}
\else
\set lo 1
\set hi :n
\endif
\if :{?tbl}
\else
\set tbl none
\endif

\if :p_stage
-- ---------------------------------------------------------------- indexes off
\echo fill: indexes off
CREATE UNLOGGED TABLE scale_ddl (ord serial, kind int, tbl text, drop_sql text, create_sql text);
CREATE TEMP TABLE scale_tables AS
SELECT c.oid::regclass AS t
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND NOT c.relispartition
   AND c.relname IN ('addresses', 'parcels', 'batches', 'shipments', 'rates', 'trackers',
                     'tracking_events', 'refunds');
-- kind 1: foreign keys (off first, on last); 2: primary key / unique; 3: other indexes.
INSERT INTO scale_ddl (kind, tbl, drop_sql, create_sql)
SELECT CASE c.contype WHEN 'f' THEN 1 ELSE 2 END, c.conrelid::regclass::text,
       format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid))
  FROM pg_constraint c
 WHERE c.contype IN ('p', 'u', 'f') AND c.conparentid = 0
   AND (c.conrelid IN (SELECT t FROM scale_tables) OR c.confrelid IN (SELECT t FROM scale_tables))
 ORDER BY CASE c.contype WHEN 'f' THEN 1 ELSE 2 END, c.conname;
INSERT INTO scale_ddl (kind, tbl, drop_sql, create_sql)
SELECT 3, i.indrelid::regclass::text, format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
  FROM pg_index i
 WHERE i.indrelid IN (SELECT t FROM scale_tables)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid
                      AND c.contype IN ('p', 'u'))
 ORDER BY i.indexrelid;
SELECT drop_sql FROM scale_ddl ORDER BY kind, ord \gexec

-- ---------------------------------------------------------------- reference data
\echo fill: reference data
CREATE UNLOGGED TABLE scale_services (idx int PRIMARY KEY, carrier text, service text, base numeric,
                                  days int, lo float8, hi float8);
INSERT INTO scale_services
SELECT idx, carrier, service, base, days,
       coalesce(sum(w) OVER (ORDER BY idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) / 100.0,
       sum(w) OVER (ORDER BY idx) / 100.0
  FROM (VALUES (0, 'USPS', 'GroundAdvantage', 6.07, 3, 30), (1, 'USPS', 'Priority', 8.20, 2, 18),
               (2, 'USPS', 'Express', 34.15, 1, 3), (3, 'UPS', 'Ground', 11.40, 4, 14),
               (4, 'UPS', '2ndDayAir', 24.80, 2, 5), (5, 'UPS', 'NextDayAir', 41.10, 1, 2),
               (6, 'FedEx', 'FEDEX_GROUND', 10.95, 4, 12), (7, 'FedEx', 'FEDEX_2_DAY', 22.30, 2, 5),
               (8, 'FedEx', 'PRIORITY_OVERNIGHT', 52.40, 1, 2),
               (9, 'DHLExpress', 'ExpressWorldwide', 48.60, 3, 3),
               (10, 'LSO', 'GroundEarly', 9.80, 2, 3), (11, 'OnTrac', 'Ground', 8.90, 2, 3))
       AS v(idx, carrier, service, base, days, w);

-- 2,000 cities: 40 real ones (three Springfields, two Portlands) then towns; a city is
-- picked with a skew (idx = 2000 * r^3): a few big cities, a long tail.
CREATE UNLOGGED TABLE scale_cities (idx int PRIMARY KEY, city text, state text, zip text);
INSERT INTO scale_cities
SELECT g - 1,
       coalesce(n.city, 'Town ' || g),
       coalesce(n.state, (ARRAY['AL','AK','AZ','AR','CA','CO','CT','DE','FL','GA','HI','ID','IL',
                                'IN','IA','KS','KY','LA','ME','MD','MA','MI','MN','MS','MO','MT',
                                'NE','NV','NH','NJ','NM','NY','NC','ND','OH','OK','OR','PA','RI',
                                'SC','SD','TN','TX','UT','VT','VA','WA','WV','WI','WY'])[1 + g % 50]),
       coalesce(n.zip, lpad(((g * 7919) % 99999)::text, 5, '0'))
  FROM generate_series(1, 2000) g
  LEFT JOIN (VALUES
   (1,'Springfield','IL','62701'),(2,'Springfield','MO','65801'),(3,'Springfield','MA','01103'),
   (4,'Portland','OR','97201'),(5,'Portland','ME','04101'),(6,'New York','NY','10001'),
   (7,'Los Angeles','CA','90001'),(8,'Chicago','IL','60601'),(9,'Houston','TX','77001'),
   (10,'Phoenix','AZ','85001'),(11,'Philadelphia','PA','19101'),(12,'San Antonio','TX','78201'),
   (13,'San Diego','CA','92101'),(14,'Dallas','TX','75201'),(15,'San Jose','CA','95101'),
   (16,'Austin','TX','73301'),(17,'Jacksonville','FL','32099'),(18,'Columbus','OH','43004'),
   (19,'Charlotte','NC','28201'),(20,'Indianapolis','IN','46201'),(21,'Seattle','WA','98101'),
   (22,'Denver','CO','80201'),(23,'Boston','MA','02101'),(24,'Nashville','TN','37201'),
   (25,'Detroit','MI','48201'),(26,'Memphis','TN','37501'),(27,'Louisville','KY','40201'),
   (28,'Baltimore','MD','21201'),(29,'Milwaukee','WI','53201'),(30,'Albuquerque','NM','87101'),
   (31,'Tucson','AZ','85701'),(32,'Fresno','CA','93650'),(33,'Sacramento','CA','94203'),
   (34,'Atlanta','GA','30301'),(35,'Miami','FL','33101'),(36,'Omaha','NE','68101'),
   (37,'Raleigh','NC','27601'),(38,'Minneapolis','MN','55401'),(39,'Tulsa','OK','74101'),
   (40,'Charleston','SC','29401')) n(i, city, state, zip) ON n.i = g;

-- ---------------------------------------------------------------- the shipments, staged
\echo fill: the shipments, staged
-- t in [0,1) = position in the window; density 1 + t (linear growth): t = sqrt(1 + 3u) - 1.
CREATE UNLOGGED TABLE scale_s AS
SELECT g, created, purchased, sidx, from_n, to_c, mode, is_return, batch,
       CASE WHEN NOT purchased THEN NULL
            WHEN r_ref < 0.020 THEN 'refunded' WHEN r_ref < 0.023 THEN 'submitted'
            WHEN r_ref < 0.025 THEN 'rejected' END AS refund_status,
       r2, r3, r4, age_days
  FROM (
    SELECT g, purchased, sidx, from_n, to_c, mode, is_return, batch, r_ref, r2, r3, r4,
           created, extract(epoch FROM now() - created) / 86400 AS age_days
      FROM (
        SELECT g,
               now() - :days * interval '1 day'
                     + (sqrt(1 + 3 * ((g - 0.5) / :n)) - 1) * :days * interval '1 day'
                     - random() * interval '20 minutes' AS created,
               g % 33 <> 0 AS purchased,
               (SELECT idx FROM scale_services s WHERE r1 >= s.lo AND r1 < s.hi) AS sidx,
               1 + g % 200 AS from_n,
               least(1999, floor(2000 * r5 ^ 3))::int AS to_c,
               CASE WHEN g % 13 = 0 THEN 'test' ELSE 'production' END AS mode,
               r6 < 0.03 AS is_return,
               CASE WHEN g % 10 = 1 THEN 'batch_scale_' || (g / 500) END AS batch,
               r_ref, r2, r3, r4
          FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                       random() AS r5, random() AS r6, random() AS r_ref
                  FROM generate_series(1, :n) g) r) a) b;
ALTER TABLE scale_s ADD COLUMN status text, ADD COLUMN est timestamptz,
                    ADD COLUMN delivered_at timestamptz, ADD COLUMN rate numeric;
UPDATE scale_s s SET
       status = CASE WHEN NOT purchased THEN 'unknown'
                     WHEN refund_status IN ('refunded', 'submitted') THEN 'pre_transit'
                     WHEN age_days < 0.5 THEN 'pre_transit'
                     WHEN age_days > v.days + 1 AND r2 < 0.95 THEN 'delivered'
                     WHEN age_days > 12 AND r2 >= 0.985 THEN 'return_to_sender'
                     WHEN age_days > 12 AND r2 >= 0.975 THEN 'failure'
                     WHEN age_days > v.days AND r2 < 0.95 THEN 'out_for_delivery'
                     ELSE 'in_transit' END,
       rate = round(v.base * (0.8 + r3 * 0.5)::numeric, 2),
       est = CASE WHEN purchased AND r4 >= 0.10 THEN created + v.days * interval '1 day' END
  FROM scale_services v WHERE v.idx = s.sidx;
UPDATE scale_s s SET delivered_at = created + (v.days + (r3 * 3)::int - 1) * interval '1 day'
                                    + interval '2 hours' + r4 * interval '8 hours'
  FROM scale_services v WHERE v.idx = s.sidx AND s.status = 'delivered';
UPDATE scale_s SET delivered_at = least(delivered_at, now() - interval '1 minute')
 WHERE delivered_at > now();
ALTER TABLE scale_s ADD PRIMARY KEY (g);
ANALYZE scale_s;
ANALYZE scale_services;
ANALYZE scale_cities;
\endif

\if :p_others
-- ---------------------------------------------------------------- addresses
\echo fill: addresses
INSERT INTO addresses (id, mode, name, company, street1, city, state, zip, country, phone,
                       email, residential, verified, created_at, updated_at, raw)
SELECT 'adr_scale_s' || i, 'production', 'Warehouse ' || i, 'Acme Fulfillment',
       (100 + i) || ' Commerce Way', c.city, c.state, c.zip, 'US', '5555550' || lpad(i::text, 3, '0'),
       'ops' || i || '@example.com', false, true,
       now() - (:days + 30) * interval '1 day', now() - (:days + 30) * interval '1 day',
       jsonb_build_object('id', 'adr_scale_s' || i, 'object', 'Address', 'mode', 'production',
                          'name', 'Warehouse ' || i, 'company', 'Acme Fulfillment',
                          'street1', (100 + i) || ' Commerce Way', 'city', c.city,
                          'state', c.state, 'zip', c.zip, 'country', 'US')
  FROM generate_series(1, 200) i JOIN scale_cities c ON c.idx = (i * 37) % 40;
-- One recipient per shipment, embedded (raw NULL, as the worker stores it since 0005).
INSERT INTO addresses (id, mode, name, company, street1, street2, city, state, zip, country,
                       phone, email, residential, verified, created_at, updated_at)
SELECT 'adr_scale_' || g, s.mode, 'Customer ' || g,
       CASE WHEN g % 5 = 0 THEN 'Company ' || (g % 9973) END,
       (1 + g % 9000) || ' ' || (ARRAY['Main St','Oak Ave','Pine Rd','Maple Dr','Cedar Ln',
                                       'Elm St','Lake Rd','Hill St'])[1 + g % 8],
       CASE WHEN g % 7 = 0 THEN 'Apt ' || (g % 300) END,
       c.city, c.state, c.zip, 'US', CASE WHEN g % 3 = 0 THEN '555' || lpad((g % 10000000)::text, 7, '0') END,
       CASE WHEN g % 2 = 0 THEN 'c' || g || '@example.com' END, g % 5 <> 0,
       CASE WHEN g % 4 <> 0 THEN true END, s.created, s.created
  FROM scale_s s JOIN scale_cities c ON c.idx = s.to_c;

-- ---------------------------------------------------------------- parcels, batches
\echo fill: parcels, batches
INSERT INTO parcels (id, mode, length, width, height, weight, predefined_package, created_at,
                     updated_at)
SELECT 'prcl_scale_' || g, mode, 6 + g % 14, 4 + g % 10, 2 + g % 8, round((1 + r3 * 70)::numeric, 1),
       CASE WHEN g % 9 = 0 THEN 'FlatRateEnvelope' END, created, created
  FROM scale_s;
INSERT INTO batches (id, mode, state, num_shipments, reference, created_at, updated_at, raw)
SELECT batch, min(mode), 'purchased', count(*), 'batch ' || batch, min(created), max(created),
       jsonb_build_object('id', batch, 'object', 'Batch', 'state', 'purchased',
                          'num_shipments', count(*))
  FROM scale_s WHERE batch IS NOT NULL GROUP BY batch;

\endif
\if :p_shipments
-- Migration 0011's statement triggers on shipments would keep a transition table of every row
-- of this statement (GBs at 2 M): off for this session (superuser); "finish" marks every
-- day dirty instead, as 0011 itself does for the rows it finds.
SET session_replication_role = replica;
-- ---------------------------------------------------------------- shipments (time order)
\echo fill: shipments (time order)
INSERT INTO shipments (id, mode, status, tracking_code, tracker_id, carrier, service,
                       selected_rate_id, rate, total_cost, currency, delivery_days,
                       est_delivery_days, est_delivery_date, delivered_at, from_address_id,
                       to_address_id, return_address_id, buyer_address_id, parcel_id, batch_id,
                       is_return, reference, refund_status, label_url, usps_zone, created_at,
                       updated_at, tracker_updated_at, raw)
SELECT 'shp_scale_' || s.g, s.mode, s.status,
       CASE WHEN s.purchased THEN 'EZ' || lpad(s.g::text, 14, '0') END,
       CASE WHEN s.purchased THEN 'trk_scale_' || s.g END,
       CASE WHEN s.purchased THEN v.carrier END, CASE WHEN s.purchased THEN v.service END,
       CASE WHEN s.purchased THEN 'rate_scale_' || s.g || '_0' END,
       CASE WHEN s.purchased THEN s.rate END,
       CASE WHEN s.purchased THEN s.rate + CASE WHEN s.g % 20 = 0 THEN 1.25 ELSE 0 END END,
       CASE WHEN s.purchased THEN 'USD' END,
       CASE WHEN s.purchased THEN v.days END, CASE WHEN s.purchased THEN v.days END,
       s.est, s.delivered_at,
       CASE WHEN s.is_return THEN 'adr_scale_' || s.g ELSE 'adr_scale_s' || s.from_n END,
       CASE WHEN s.is_return THEN 'adr_scale_s' || s.from_n ELSE 'adr_scale_' || s.g END,
       'adr_scale_s' || s.from_n, 'adr_scale_s' || s.from_n,
       'prcl_scale_' || s.g, s.batch, s.is_return,
       CASE WHEN s.g % 3 = 0 THEN 'order-' || s.g END, s.refund_status,
       CASE WHEN s.purchased THEN 'https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label/'
                                  || to_char(s.created, 'YYYYMMDD') || '/e8' || md5(s.g::text) || '.png' END,
       CASE WHEN v.carrier = 'USPS' THEN 1 + s.g % 8 END,
       s.created, coalesce(s.delivered_at, s.created) + interval '1 minute',
       CASE WHEN s.purchased THEN coalesce(s.delivered_at, s.created) + interval '1 minute' END,
       jsonb_build_object(
         'id', 'shp_scale_' || s.g, 'object', 'Shipment', 'mode', s.mode, 'status', s.status,
         'created_at', s.created, 'updated_at', s.created + interval '1 minute',
         'is_return', s.is_return, 'reference', CASE WHEN s.g % 3 = 0 THEN 'order-' || s.g END,
         'tracking_code', CASE WHEN s.purchased THEN 'EZ' || lpad(s.g::text, 14, '0') END,
         'refund_status', s.refund_status, 'batch_id', s.batch,
         'usps_zone', CASE WHEN v.carrier = 'USPS' THEN 1 + s.g % 8 END,
         'options', jsonb_build_object('currency', 'USD', 'label_format', 'PNG',
                                       'invoice_number', 'INV-' || s.g),
         'from_address', jsonb_build_object('id', CASE WHEN s.is_return THEN 'adr_scale_' || s.g
                                                  ELSE 'adr_scale_s' || s.from_n END,
             'object', 'Address', 'street1', '1 Commerce Way',
             'city', CASE WHEN s.is_return THEN tc.city ELSE fc.city END,
             'state', CASE WHEN s.is_return THEN tc.state ELSE fc.state END,
             'zip', CASE WHEN s.is_return THEN tc.zip ELSE fc.zip END, 'country', 'US',
             'name', 'Warehouse ' || s.from_n, 'company', 'Acme Fulfillment'),
         'to_address', jsonb_build_object('id', CASE WHEN s.is_return THEN 'adr_scale_s' || s.from_n
                                                ELSE 'adr_scale_' || s.g END,
             'object', 'Address', 'street1', (1 + s.g % 9000) || ' Main St',
             'city', CASE WHEN s.is_return THEN fc.city ELSE tc.city END,
             'state', CASE WHEN s.is_return THEN fc.state ELSE tc.state END,
             'zip', CASE WHEN s.is_return THEN fc.zip ELSE tc.zip END, 'country', 'US',
             'name', 'Customer ' || s.g, 'residential', s.g % 5 <> 0),
         'parcel', jsonb_build_object('id', 'prcl_scale_' || s.g, 'object', 'Parcel',
             'length', 6 + s.g % 14, 'width', 4 + s.g % 10, 'height', 2 + s.g % 8,
             'weight', round((1 + s.r3 * 70)::numeric, 1)),
         'selected_rate', CASE WHEN s.purchased THEN jsonb_build_object(
             'id', 'rate_scale_' || s.g || '_0', 'object', 'Rate', 'carrier', v.carrier,
             'service', v.service, 'rate', s.rate::text, 'currency', 'USD',
             'delivery_days', v.days, 'carrier_account_id', 'ca_' || md5(v.carrier)) END,
         'rates', jsonb_build_array(
             jsonb_build_object('id', 'rate_scale_' || s.g || '_0', 'carrier', v.carrier,
                                'service', v.service, 'rate', s.rate::text, 'delivery_days', v.days),
             jsonb_build_object('id', 'rate_scale_' || s.g || '_1', 'carrier', v1.carrier,
                                'service', v1.service, 'rate', round(v1.base * 1.1, 2)::text,
                                'delivery_days', v1.days),
             jsonb_build_object('id', 'rate_scale_' || s.g || '_2', 'carrier', v2.carrier,
                                'service', v2.service, 'rate', round(v2.base * 1.1, 2)::text,
                                'delivery_days', v2.days)),
         'postage_label', CASE WHEN s.purchased THEN jsonb_build_object(
             'id', 'pl_' || md5(s.g::text), 'object', 'PostageLabel', 'label_file_type', 'image/png',
             'label_size', '4x6', 'label_resolution', 300) END,
         'tracker', CASE WHEN s.purchased THEN jsonb_build_object('id', 'trk_scale_' || s.g,
             'object', 'Tracker', 'status', s.status) END,
         'fees', CASE WHEN s.purchased THEN jsonb_build_array(
             jsonb_build_object('object', 'Fee', 'type', 'LabelFee', 'amount', '0.01000',
                                'charged', true, 'refunded', false),
             jsonb_build_object('object', 'Fee', 'type', 'PostageFee', 'amount', s.rate::text,
                                'charged', true, 'refunded', s.refund_status = 'refunded')) END)
  FROM scale_s s
  JOIN scale_services v ON v.idx = s.sidx
  JOIN scale_services v1 ON v1.idx = (s.sidx + 1) % 12
  JOIN scale_services v2 ON v2.idx = (s.sidx + 5) % 12
  JOIN scale_cities fc ON fc.idx = (s.from_n * 37) % 40
  JOIN scale_cities tc ON tc.idx = s.to_c
 WHERE s.g BETWEEN :lo AND :hi
 ORDER BY s.g;
\endif

\if :p_rates
-- ---------------------------------------------------------------- rates (3 per shipment)
\echo fill: rates (3 per shipment)
INSERT INTO rates (id, shipment_id, mode, carrier, service, rate, currency, retail_rate,
                   retail_currency, list_rate, list_currency, billing_type, delivery_days,
                   delivery_date, delivery_date_guaranteed, est_delivery_days,
                   carrier_account_id, created_at, updated_at)
SELECT 'rate_scale_' || s.g || '_' || j, 'shp_scale_' || s.g, s.mode, v.carrier, v.service,
       CASE WHEN j = 0 THEN s.rate ELSE round(v.base * 1.1, 2) END, 'USD',
       round(v.base * 1.4, 2), 'USD', round(v.base * 1.2, 2), 'USD', 'easypost', v.days,
       s.created + v.days * interval '1 day', false, v.days, 'ca_' || md5(v.carrier),
       s.created, s.created
  FROM scale_s s CROSS JOIN (VALUES (0, 0), (1, 1), (2, 5)) o(j, off)
  JOIN scale_services v ON v.idx = (s.sidx + o.off) % 12
 ORDER BY s.g, j;
\endif

\if :p_trackers
-- ---------------------------------------------------------------- trackers
\echo fill: trackers
INSERT INTO trackers (id, mode, tracking_code, status, status_detail, carrier, shipment_id,
                      est_delivery_date, signed_by, weight, public_url, created_at, updated_at,
                      raw)
SELECT 'trk_scale_' || s.g, s.mode, 'EZ' || lpad(s.g::text, 14, '0'), s.status,
       CASE s.status WHEN 'delivered' THEN 'arrived_at_destination'
                     WHEN 'return_to_sender' THEN 'return' ELSE 'status_update' END,
       v.carrier, 'shp_scale_' || s.g, s.est,
       CASE WHEN s.status = 'delivered' AND s.g % 4 = 0 THEN 'J SMITH' END,
       round((1 + s.r3 * 70)::numeric, 1),
       'https://track.easypost.com/djE6dHJrXz' || md5(s.g::text),
       s.created, coalesce(s.delivered_at, s.created) + interval '1 minute',
       jsonb_build_object('id', 'trk_scale_' || s.g, 'object', 'Tracker', 'mode', s.mode,
                          'tracking_code', 'EZ' || lpad(s.g::text, 14, '0'), 'status', s.status,
                          'carrier', v.carrier, 'shipment_id', 'shp_scale_' || s.g,
                          'est_delivery_date', s.est,
                          'public_url', 'https://track.easypost.com/djE6dHJrXz' || md5(s.g::text))
  FROM scale_s s JOIN scale_services v ON v.idx = s.sidx
 WHERE s.purchased
 ORDER BY s.g;
\endif

\if :p_events
-- ---------------------------------------------------------------- tracking events
\echo fill: tracking events
-- Bought shipment k (1..P, k = g - g/33) gets floor(k E / P) - floor((k-1) E / P) events: :e
-- in all.  Event i of c: pre_transit first; the last says the shipment's status (with
-- out_for_delivery before a delivery); spread from created to delivered_at (or now), at
-- least a minute apart (unique per tracker).
INSERT INTO tracking_events (tracker_id, shipment_id, occurred_at, status, status_detail,
                             message, description, source, carrier_code, city, state, country,
                             zip)
SELECT 'trk_scale_' || s.g, 'shp_scale_' || s.g, x.at, x.st,
       CASE x.st WHEN 'pre_transit' THEN 'label_created' WHEN 'delivered' THEN 'arrived_at_destination'
                 WHEN 'out_for_delivery' THEN 'out_for_delivery' WHEN 'return_to_sender' THEN 'return'
                 WHEN 'failure' THEN 'lost' ELSE 'arrived_at_facility' END,
       CASE x.st WHEN 'pre_transit' THEN 'Shipping Label Created'
                 WHEN 'delivered' THEN 'Delivered, In/At Mailbox'
                 WHEN 'out_for_delivery' THEN 'Out for Delivery'
                 WHEN 'return_to_sender' THEN 'Returned to Sender'
                 WHEN 'failure' THEN 'Delivery exception'
                 ELSE 'Arrived at ' || (ARRAY['Sort Facility', 'Hub', 'Post Office',
                                               'Regional Facility'])[1 + x.i % 4] END,
       '', v.carrier, 'C' || x.i,
       CASE WHEN x.i = 1 THEN fc.city ELSE tc.city END,
       CASE WHEN x.i = 1 THEN fc.state ELSE tc.state END, 'US',
       CASE WHEN x.i = 1 THEN fc.zip ELSE tc.zip END
  FROM (SELECT s.*, (s.g - s.g / 33)::bigint AS k FROM scale_s s WHERE s.purchased AND s.g BETWEEN :lo AND :hi) s
  JOIN scale_services v ON v.idx = s.sidx
  JOIN scale_cities fc ON fc.idx = (s.from_n * 37) % 40
  JOIN scale_cities tc ON tc.idx = s.to_c
 CROSS JOIN LATERAL (
        SELECT (s.k * :e / (:n - :n / 33)) - ((s.k - 1) * :e / (:n - :n / 33)) AS c,
               least(coalesce(s.delivered_at, now()), now())
                 - s.created AS span) m
 CROSS JOIN LATERAL (
        SELECT i,
               s.created + (i - 1) * interval '1 minute'
                 + greatest(m.span - m.c * interval '1 minute', interval '0')
                   * ((i - 1)::float8 / greatest(m.c - 1, 1)) AS at,
               CASE WHEN i = 1 OR s.status IN ('pre_transit', 'unknown') THEN 'pre_transit'
                    WHEN i = m.c THEN s.status
                    WHEN i = m.c - 1 AND s.status = 'delivered' THEN 'out_for_delivery'
                    ELSE 'in_transit' END AS st
          FROM generate_series(1, m.c::int) i) x
 ORDER BY s.g, x.i;
\endif

\if :p_others
-- ---------------------------------------------------------------- refunds (0006 and later)
\echo fill: refunds (0006 and later)
SELECT format($f$
INSERT INTO refunds (id, shipment_id, tracking_code, carrier, status, confirmation_number, mode,
                     created_at, updated_at, raw)
SELECT 'rfnd_scale_' || s.g, 'shp_scale_' || s.g, 'EZ' || lpad(s.g::text, 14, '0'), v.carrier,
       s.refund_status, 'RF' || s.g, s.mode, s.created + interval '1 day', s.created + interval '2 days',
       jsonb_build_object('id', 'rfnd_scale_' || s.g, 'object', 'Refund', 'status', s.refund_status,
                          'shipment_id', 'shp_scale_' || s.g, 'carrier', v.carrier)
  FROM scale_s s JOIN scale_services v ON v.idx = s.sidx WHERE s.refund_status IS NOT NULL
$f$) WHERE to_regclass('refunds') IS NOT NULL \gexec
\endif

-- ---------------------------------------------------------------- indexes on
\echo fill: indexes on
\if :p_index
SELECT create_sql FROM scale_ddl WHERE kind = 2 AND tbl = :'tbl' ORDER BY ord \gexec
SELECT create_sql FROM scale_ddl WHERE kind = 3 AND tbl = :'tbl' ORDER BY ord \gexec
\endif
\if :p_finish
SELECT create_sql FROM scale_ddl WHERE kind = 1 ORDER BY ord \gexec
SELECT setval(pg_get_serial_sequence('tracking_events', 'id'),
              greatest((SELECT max(id) FROM tracking_events), 1));
DROP TABLE scale_ddl, scale_s, scale_services, scale_cities;
SELECT to_regclass('analytics_dirty_days') IS NOT NULL AS has_rollups \gset
\if :has_rollups
INSERT INTO analytics_dirty_days (day)
SELECT g::date
  FROM generate_series(date_trunc('day', (SELECT min(created_at) FROM shipments) AT TIME ZONE 'UTC'),
                       (SELECT max(created_at) FROM shipments) AT TIME ZONE 'UTC', interval '1 day') g;
\endif
\endif

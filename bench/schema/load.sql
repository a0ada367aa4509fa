-- Loads a realistic analytics dataset with set-based SQL: :n shipments over the last 90 days,
-- 8 carrier/service pairs, 20 sender addresses in 5 cities, 50,000 recipients in 40 cities
-- (three Springfields, two Portlands), ~3 % unpurchased, ~10 % without an estimated date,
-- delivered / in transit / returned by age.  Run with psql -v n=1000000 -f load.sql.
\set ON_ERROR_STOP on
SET synchronous_commit = off;

CREATE TEMP TABLE bench_cities (idx int PRIMARY KEY, city text, state text, zip text);
INSERT INTO bench_cities VALUES
 (0,'Springfield','IL','62701'),(1,'Springfield','MO','65801'),(2,'Springfield','MA','01103'),
 (3,'Portland','OR','97201'),(4,'Portland','ME','04101'),(5,'New York','NY','10001'),
 (6,'Los Angeles','CA','90001'),(7,'Chicago','IL','60601'),(8,'Houston','TX','77001'),
 (9,'Phoenix','AZ','85001'),(10,'Philadelphia','PA','19101'),(11,'San Antonio','TX','78201'),
 (12,'San Diego','CA','92101'),(13,'Dallas','TX','75201'),(14,'San Jose','CA','95101'),
 (15,'Austin','TX','73301'),(16,'Jacksonville','FL','32099'),(17,'Columbus','OH','43004'),
 (18,'Charlotte','NC','28201'),(19,'Indianapolis','IN','46201'),(20,'Seattle','WA','98101'),
 (21,'Denver','CO','80201'),(22,'Boston','MA','02101'),(23,'Nashville','TN','37201'),
 (24,'Detroit','MI','48201'),(25,'Memphis','TN','37501'),(26,'Louisville','KY','40201'),
 (27,'Baltimore','MD','21201'),(28,'Milwaukee','WI','53201'),(29,'Albuquerque','NM','87101'),
 (30,'Tucson','AZ','85701'),(31,'Fresno','CA','93650'),(32,'Sacramento','CA','94203'),
 (33,'Atlanta','GA','30301'),(34,'Miami','FL','33101'),(35,'Omaha','NE','68101'),
 (36,'Raleigh','NC','27601'),(37,'Minneapolis','MN','55401'),(38,'Tulsa','OK','74101'),
 (39,'Charleston','SC','29401');

CREATE TEMP TABLE bench_services (idx int PRIMARY KEY, carrier text, service text,
                                  base numeric, days int);
INSERT INTO bench_services VALUES
 (0,'USPS','GroundAdvantage',6.07,3),(1,'USPS','Priority',8.20,2),(2,'USPS','Express',34.15,1),
 (3,'UPS','Ground',11.40,4),(4,'UPS','2ndDayAir',24.80,2),(5,'FedEx','FEDEX_GROUND',10.95,4),
 (6,'FedEx','FEDEX_2_DAY',22.30,2),(7,'DHLExpress','ExpressWorldwide',48.60,3);

-- Senders: adr_bench_1..20 in 5 cities; recipients: adr_bench_21..50020 in 40 cities.
INSERT INTO addresses (id, mode, name, company, street1, street2, city, state, zip, country,
                       residential, created_at, updated_at, raw)
SELECT 'adr_bench_' || g, 'production',
       CASE WHEN g <= 20 THEN 'Warehouse ' || g ELSE 'Customer ' || g END,
       CASE WHEN g <= 20 THEN 'Acme Fulfillment' WHEN g % 5 = 0 THEN 'Company ' || (g % 997) END,
       (100 + g % 9000) || ' ' || (ARRAY['Main St','Oak Ave','Pine Rd','Maple Dr','Cedar Ln'])[1 + g % 5],
       NULL, c.city, c.state, c.zip, 'US', g > 20,
       now() - interval '120 days', now() - interval '120 days',
       jsonb_build_object('id', 'adr_bench_' || g, 'object', 'Address', 'city', c.city,
                          'state', c.state, 'country', 'US')
  FROM generate_series(1, 50020) g
  JOIN bench_cities c ON c.idx = CASE WHEN g <= 20 THEN (g % 5) * 7 ELSE g % 40 END;

INSERT INTO shipments (id, mode, status, tracking_code, tracker_id, carrier, service,
                       selected_rate_id, rate, total_cost, currency, delivery_days,
                       est_delivery_date, delivered_at, from_address_id, to_address_id,
                       parcel_id, is_return, created_at, updated_at, tracker_updated_at, raw)
SELECT x.id, 'production', x.status, x.tracking_code, 'trk_bench_' || x.g,
       sv.carrier, sv.service,
       CASE WHEN x.purchased THEN 'rate_bench_' || x.g END,
       x.rate, x.rate, CASE WHEN x.purchased THEN 'USD' END, sv.days,
       x.est, x.delivered_at,
       'adr_bench_' || x.from_n, 'adr_bench_' || x.to_n,
       'prcl_bench_' || x.g, false, x.created, x.created + interval '1 minute', x.created,
       jsonb_build_object('id', x.id, 'object', 'Shipment', 'mode', 'production',
                          'status', x.status, 'tracking_code', x.tracking_code,
                          'from_address', jsonb_build_object('id', 'adr_bench_' || x.from_n,
                              'object', 'Address', 'city', fc.city, 'state', fc.state,
                              'zip', fc.zip, 'country', 'US'),
                          'to_address', jsonb_build_object('id', 'adr_bench_' || x.to_n,
                              'object', 'Address', 'city', tc.city, 'state', tc.state,
                              'zip', tc.zip, 'country', 'US'))
  FROM (
    SELECT g, 'shp_bench_' || g AS id, created, purchased, sidx, from_n, to_n,
           CASE WHEN NOT purchased THEN 'unknown'
                WHEN delivered THEN 'delivered'
                WHEN age_days > 12 AND r2 > 0.97 THEN 'return_to_sender'
                WHEN age_days < 1 THEN 'pre_transit'
                ELSE 'in_transit' END AS status,
           CASE WHEN purchased THEN 'EZ' || lpad(g::text, 12, '0') END AS tracking_code,
           CASE WHEN purchased THEN round(b.base * (0.8 + r3 * 0.5)::numeric, 2) END AS rate,
           CASE WHEN purchased AND r4 >= 0.10 THEN created + b.days * interval '1 day' END AS est,
           CASE WHEN delivered THEN created + (b.days + (r3 * 3)::int - 1) * interval '1 day'
                                     + r4 * interval '8 hours' END AS delivered_at
      FROM (
        SELECT g, created, sidx, r2, r3, r4, purchased, from_n, to_n,
               extract(epoch FROM now() - created) / 86400 AS age_days,
               purchased AND extract(epoch FROM now() - created) / 86400 > 5 AND r2 < 0.92
                   AS delivered
          FROM (
            SELECT g,
                   now() - random() * interval '89 days 23 hours' AS created,
                   (random() * 8)::int % 8 AS sidx,
                   random() AS r2, random() AS r3, random() AS r4,
                   random() >= 0.03 AS purchased,
                   1 + g % 20 AS from_n,
                   21 + (random() * 49999)::int AS to_n
              FROM generate_series(1, :n) g) a) bb
      JOIN bench_services b ON b.idx = bb.sidx) x
  JOIN bench_cities fc ON fc.idx = (x.from_n % 5) * 7
  JOIN bench_cities tc ON tc.idx = x.to_n % 40
  LEFT JOIN bench_services sv ON sv.idx = x.sidx AND x.purchased;

VACUUM (ANALYZE) addresses;
VACUUM (ANALYZE) shipments;

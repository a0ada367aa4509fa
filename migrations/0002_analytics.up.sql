-- 0002_analytics: the dashboard's materialized views and refresh_analytics_views().
--
-- Definitions shared by the three views (documented once here):
--   * Window: shipments created in the last 90 UTC days, today included
--     (created_at >= start of the UTC day 89 days ago), evaluated at refresh time.
--   * Only purchased shipments count: carrier and service (of the selected rate) both set.
--     Unpurchased shipments (quotes) and tracker placeholders without a created_at are left
--     out, so the views' carrier and service are never NULL and the unique indexes hold.
--   * cost = coalesce(total_cost, rate), numeric.  avg_cost rounded to 5 decimals (EasyPost's
--     precision); totals are exact.
--   * delivered = status 'delivered'.  Delivery days = (delivered_at - created_at) in days,
--     for delivered shipments with a delivered_at; avg_delivery_days rounded to 2 decimals.
--   * on time = delivered on or before the estimated date, compared as UTC dates, over
--     delivered shipments that had both delivered_at and est_delivery_date
--     (on_time_eligible_count).  on_time_rate = on_time_count / on_time_eligible_count as a
--     fraction 0..1 (4 decimals), NULL when nothing is eligible: never an invented number.
--   * Routes come from the from/to address inside the shipment's raw object (generated
--     columns route_*), trimmed and upper-cased ('Springfield' and 'SPRINGFIELD ' are one
--     city), NULL as ''; a route is all six columns, so the Springfields of IL and MO are
--     two routes.
--   Beyond ARCHITECTURE.md's columns, mv_daily_shipment_analytics and mv_carrier_performance
--   also carry on_time_count / on_time_eligible_count (and the daily view
--   delivery_days_total / delivery_days_count) so that a reader can compute exact rates and
--   averages over any set of rows (sum over sum), never an average of averages.
--
-- Refresh: refresh_analytics_views() (see below) refreshes all three, CONCURRENTLY when the
-- view is already populated, and records each refresh in analytics_refresh_log.  Whoever
-- refreshes them otherwise must refresh mv_daily_shipment_analytics before
-- mv_carrier_performance, which is computed from it.
-- REFRESH ... CONCURRENTLY is allowed inside a transaction block and a function (unlike
-- CREATE INDEX CONCURRENTLY); it takes an EXCLUSIVE lock, which does not block readers.

-- Per-shipment analytics inputs, computed once when the row is written (generated columns:
-- the sync worker writes nothing extra) so that a refresh only sums plain columns:
--   analytics_day  the UTC day of created_at;
--   transit_days   (delivered_at - created_at) in days (double precision: days are not
--                  money), for delivered shipments with a delivered_at, else NULL;
--   on_time        delivered on or before the estimated date as UTC dates; NULL when not
--                  delivered or when delivered_at or est_delivery_date is unknown.
-- Route columns for mv_top_routes come from the shipment's own from/to address as EasyPost
-- sent it inside the Shipment (raw must be the whole object): no join with addresses at
-- refresh time, and the route is where that shipment went even if the address rows arrive
-- late or never.  Normalised: trimmed, upper case, NULL -> ''.
ALTER TABLE shipments
    ADD COLUMN analytics_day      date GENERATED ALWAYS AS
        ((created_at AT TIME ZONE 'UTC')::date) STORED,
    ADD COLUMN transit_days       double precision GENERATED ALWAYS AS
        (CASE WHEN status = 'delivered' AND delivered_at IS NOT NULL
              THEN date_part('epoch', delivered_at - created_at) / 86400 END) STORED,
    ADD COLUMN on_time            boolean GENERATED ALWAYS AS
        (CASE WHEN status = 'delivered' AND delivered_at IS NOT NULL
                   AND est_delivery_date IS NOT NULL
              THEN (delivered_at AT TIME ZONE 'UTC')::date
                   <= (est_delivery_date AT TIME ZONE 'UTC')::date END) STORED,
    ADD COLUMN route_from_city    text GENERATED ALWAYS AS
        (upper(btrim(coalesce(raw #>> '{from_address,city}', '')))) STORED,
    ADD COLUMN route_from_state   text GENERATED ALWAYS AS
        (upper(btrim(coalesce(raw #>> '{from_address,state}', '')))) STORED,
    ADD COLUMN route_from_country text GENERATED ALWAYS AS
        (upper(btrim(coalesce(raw #>> '{from_address,country}', '')))) STORED,
    ADD COLUMN route_to_city      text GENERATED ALWAYS AS
        (upper(btrim(coalesce(raw #>> '{to_address,city}', '')))) STORED,
    ADD COLUMN route_to_state     text GENERATED ALWAYS AS
        (upper(btrim(coalesce(raw #>> '{to_address,state}', '')))) STORED,
    ADD COLUMN route_to_country   text GENERATED ALWAYS AS
        (upper(btrim(coalesce(raw #>> '{to_address,country}', '')))) STORED;

-- Purchased shipments of the window.  A plain view (inlined by the planner).
CREATE VIEW analytics_shipments AS
SELECT s.id,
       s.created_at,
       s.analytics_day,
       s.carrier,
       s.service,
       coalesce(s.total_cost, s.rate) AS cost,
       s.status = 'delivered' AS delivered,
       s.transit_days,
       s.on_time,
       s.route_from_city, s.route_from_state, s.route_from_country,
       s.route_to_city, s.route_to_state, s.route_to_country
  FROM shipments s
 WHERE s.created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '89 days')
                      AT TIME ZONE 'UTC'
   AND s.carrier IS NOT NULL
   AND s.service IS NOT NULL;

-- delivery_days_total / delivery_days_count: the sum and number of delivery days behind
-- avg_delivery_days, so that averages over several rows are exact.
CREATE MATERIALIZED VIEW mv_daily_shipment_analytics AS
SELECT analytics_day                                        AS date,
       carrier,
       service,
       count(*)                                             AS shipment_count,
       coalesce(sum(cost), 0)                               AS total_cost,
       round(sum(cost) / nullif(count(cost), 0), 5)         AS avg_cost,
       count(*) FILTER (WHERE delivered)                    AS delivered_count,
       round((sum(transit_days) / nullif(count(transit_days), 0))::numeric, 2)
                                                            AS avg_delivery_days,
       count(*) FILTER (WHERE on_time)                      AS on_time_count,
       count(on_time)                                       AS on_time_eligible_count,
       sum(transit_days)                                    AS delivery_days_total,
       count(transit_days)                                  AS delivery_days_count
  FROM analytics_shipments
 GROUP BY analytics_day, carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_daily_shipment_analytics_key
    ON mv_daily_shipment_analytics (date, carrier, service);

-- Built from mv_daily_shipment_analytics (the same 90 days, a few hundred rows instead of
-- every shipment): refresh it after the daily view (refresh_analytics_views() does).
CREATE MATERIALIZED VIEW mv_carrier_performance AS
SELECT carrier,
       service,
       sum(shipment_count)::bigint                          AS total_shipments,
       sum(total_cost)                                      AS total_revenue,
       sum(delivered_count)::bigint                         AS delivered_count,
       sum(on_time_count)::bigint                           AS on_time_count,
       round(sum(on_time_count)::numeric
             / nullif(sum(on_time_eligible_count), 0), 4)   AS on_time_rate,
       round((sum(delivery_days_total)
             / nullif(sum(delivery_days_count), 0))::numeric, 2) AS avg_delivery_days,
       sum(on_time_eligible_count)::bigint                  AS on_time_eligible_count
  FROM mv_daily_shipment_analytics
 GROUP BY carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_carrier_performance_key ON mv_carrier_performance (carrier, service);

-- Routes with at least 3 purchased shipments in the window.
CREATE MATERIALIZED VIEW mv_top_routes AS
SELECT route_from_city    AS from_city,
       route_from_state   AS from_state,
       route_from_country AS from_country,
       route_to_city      AS to_city,
       route_to_state     AS to_state,
       route_to_country   AS to_country,
       count(*)           AS shipment_count,
       coalesce(sum(cost), 0) AS total_cost,
       round(sum(cost) / nullif(count(cost), 0), 5) AS avg_cost
  FROM analytics_shipments
 GROUP BY 1, 2, 3, 4, 5, 6
HAVING count(*) >= 3
WITH DATA;
CREATE UNIQUE INDEX mv_top_routes_key
    ON mv_top_routes (from_city, from_state, from_country, to_city, to_state, to_country);
CREATE INDEX mv_top_routes_count_idx ON mv_top_routes (shipment_count DESC);

-- Refreshes the three views in order, each CONCURRENTLY when `concurrent` is true and the
-- view is populated (else plain; a plain REFRESH blocks readers until the transaction ends),
-- and records each one in analytics_refresh_log.  A view that fails is logged with its
-- error and the others still run: the function does not raise for it (raising would roll
-- back the log row too); it returns one row per view and the caller checks `outcome`.
-- Called in a transaction block, the views' locks are held until that transaction ends.
-- jit off: compiling the refresh queries costs more (~100-250 ms each) than it saves.
CREATE FUNCTION refresh_analytics_views(concurrent boolean DEFAULT true)
RETURNS TABLE (view_name text, outcome text, duration_ms numeric, rows bigint, error text)
LANGUAGE plpgsql SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_name    text;
    v_conc    boolean;
    v_started timestamptz;
    v_rows    bigint;
BEGIN
    FOREACH v_name IN ARRAY ARRAY['mv_daily_shipment_analytics', 'mv_carrier_performance',
                                  'mv_top_routes'] LOOP
        v_started := clock_timestamp();
        SELECT $1 AND c.relispopulated INTO v_conc
          FROM pg_class c WHERE c.oid = v_name::regclass;
        view_name := v_name;
        error := NULL;
        v_rows := NULL;
        BEGIN
            IF v_conc THEN
                EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', v_name);
            ELSE
                EXECUTE format('REFRESH MATERIALIZED VIEW %I', v_name);
            END IF;
            EXECUTE format('SELECT count(*) FROM %I', v_name) INTO v_rows;
            outcome := 'success';
        EXCEPTION WHEN OTHERS THEN
            outcome := 'failed';
            error := SQLSTATE || ' ' || SQLERRM;
            RAISE WARNING 'refresh of % failed: %', v_name, error;
        END;
        duration_ms := round((extract(epoch FROM clock_timestamp() - v_started) * 1000)::numeric, 3);
        rows := v_rows;
        INSERT INTO analytics_refresh_log
               (view_name, started_at, finished_at, duration_ms, rows, concurrent, outcome, error)
        VALUES (v_name, v_started, clock_timestamp(), duration_ms, v_rows, v_conc, outcome, error);
        RETURN NEXT;
    END LOOP;
END $$;

-- When each view was last refreshed successfully, and how long ago (for the dashboard).
CREATE VIEW analytics_freshness AS
SELECT v.view_name,
       l.finished_at                                   AS last_refreshed_at,
       extract(epoch FROM now() - l.finished_at)       AS age_seconds,
       l.duration_ms                                   AS last_duration_ms
  FROM unnest(ARRAY['mv_daily_shipment_analytics', 'mv_carrier_performance',
                    'mv_top_routes']) AS v(view_name)
  LEFT JOIN LATERAL (
        SELECT finished_at, duration_ms
          FROM analytics_refresh_log r
         WHERE r.view_name = v.view_name AND r.outcome = 'success'
         ORDER BY r.finished_at DESC
         LIMIT 1) l ON true;

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
--   * Cities, states and countries are grouped trimmed and upper-cased ('Springfield' and
--     'SPRINGFIELD ' are one city) with NULL as ''; a route is all six columns, so the
--     Springfields of IL and MO are two routes.
--   Beyond ARCHITECTURE.md's columns, mv_daily_shipment_analytics and mv_carrier_performance
--   also carry on_time_count / on_time_eligible_count so that a reader can compute an exact
--   on-time rate over any set of rows (sum over sum), not an average of averages.
--
-- Refresh: refresh_analytics_views() (see below) refreshes all three, CONCURRENTLY when the
-- view is already populated, and records each refresh in analytics_refresh_log.
-- REFRESH ... CONCURRENTLY is allowed inside a transaction block and a function (unlike
-- CREATE INDEX CONCURRENTLY); it takes an EXCLUSIVE lock, which does not block readers.

-- Purchased shipments of the window, with the derived values every view uses.  A plain view
-- (inlined by the planner), not materialized.
CREATE VIEW analytics_shipments AS
SELECT s.id,
       s.created_at,
       (s.created_at AT TIME ZONE 'UTC')::date AS created_date,
       s.carrier,
       s.service,
       coalesce(s.total_cost, s.rate) AS cost,
       s.status = 'delivered' AS delivered,
       CASE WHEN s.status = 'delivered' AND s.delivered_at IS NOT NULL
            THEN extract(epoch FROM s.delivered_at - s.created_at) / 86400.0 END AS delivery_days,
       (s.status = 'delivered' AND s.delivered_at IS NOT NULL
            AND s.est_delivery_date IS NOT NULL) AS on_time_eligible,
       (s.status = 'delivered' AND s.delivered_at IS NOT NULL
            AND s.est_delivery_date IS NOT NULL
            AND (s.delivered_at AT TIME ZONE 'UTC')::date
                <= (s.est_delivery_date AT TIME ZONE 'UTC')::date) AS on_time,
       s.from_address_id,
       s.to_address_id
  FROM shipments s
 WHERE s.created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '89 days')
                      AT TIME ZONE 'UTC'
   AND s.carrier IS NOT NULL
   AND s.service IS NOT NULL;

CREATE MATERIALIZED VIEW mv_daily_shipment_analytics AS
SELECT created_date                                         AS date,
       carrier,
       service,
       count(*)                                             AS shipment_count,
       coalesce(sum(cost), 0)                               AS total_cost,
       round(avg(cost), 5)                                  AS avg_cost,
       count(*) FILTER (WHERE delivered)                    AS delivered_count,
       round(avg(delivery_days)::numeric, 2)                AS avg_delivery_days,
       count(*) FILTER (WHERE on_time)                      AS on_time_count,
       count(*) FILTER (WHERE on_time_eligible)             AS on_time_eligible_count
  FROM analytics_shipments
 GROUP BY created_date, carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_daily_shipment_analytics_key
    ON mv_daily_shipment_analytics (date, carrier, service);

CREATE MATERIALIZED VIEW mv_carrier_performance AS
SELECT carrier,
       service,
       count(*)                                             AS total_shipments,
       coalesce(sum(cost), 0)                               AS total_revenue,
       count(*) FILTER (WHERE delivered)                    AS delivered_count,
       count(*) FILTER (WHERE on_time)                      AS on_time_count,
       round(count(*) FILTER (WHERE on_time)::numeric
             / nullif(count(*) FILTER (WHERE on_time_eligible), 0), 4) AS on_time_rate,
       round(avg(delivery_days)::numeric, 2)                AS avg_delivery_days,
       count(*) FILTER (WHERE on_time_eligible)             AS on_time_eligible_count
  FROM analytics_shipments
 GROUP BY carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_carrier_performance_key ON mv_carrier_performance (carrier, service);

-- Routes with at least 3 purchased shipments in the window.  A shipment whose from or to
-- address has not arrived yet counts under '' for that side's city/state/country.
CREATE MATERIALIZED VIEW mv_top_routes AS
SELECT upper(btrim(coalesce(fa.city, '')))    AS from_city,
       upper(btrim(coalesce(fa.state, '')))   AS from_state,
       upper(btrim(coalesce(fa.country, ''))) AS from_country,
       upper(btrim(coalesce(ta.city, '')))    AS to_city,
       upper(btrim(coalesce(ta.state, '')))   AS to_state,
       upper(btrim(coalesce(ta.country, ''))) AS to_country,
       count(*)                               AS shipment_count,
       coalesce(sum(a.cost), 0)               AS total_cost,
       round(avg(a.cost), 5)                  AS avg_cost
  FROM analytics_shipments a
  LEFT JOIN addresses fa ON fa.id = a.from_address_id
  LEFT JOIN addresses ta ON ta.id = a.to_address_id
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
CREATE FUNCTION refresh_analytics_views(concurrent boolean DEFAULT true)
RETURNS TABLE (view_name text, outcome text, duration_ms numeric, rows bigint, error text)
LANGUAGE plpgsql AS $$
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

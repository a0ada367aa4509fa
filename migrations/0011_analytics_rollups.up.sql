-- 0011_analytics_rollups: a year of analytics from daily rollups kept up to date day by day
-- (issue 15, "A year of analytics"; refresh of every view under 3 s at 2 M shipments).
--
-- Until now every refresh recomputed the three views from the shipments of the 90-day window
-- (mv_top_routes took 4 s at 2 M shipments) and the dashboard could not go past 90 days.
-- Here the money rules of 0006 (net of refunds, returns apart, by mode) are summed once per
-- UTC day into rollup tables, and a refresh recomputes only the days whose shipments changed:
--
--   analytics_dirty_days (day, marked_at)   days whose purchased shipments changed since the
--        last apply.  Append-only (no key, so a writer never waits on another writer's day):
--        statement triggers on shipments add the UTC days (analytics_day) of the rows a
--        statement inserted, deleted, or updated in a way the analytics see (mode, day,
--        carrier, service, cost, delivered, transit days, on time, is_return, refund_status,
--        route); a status change the views ignore (in_transit -> out_for_delivery) marks
--        nothing.  TRUNCATE of shipments empties the rollups.
--   analytics_daily (day, mode, carrier, service, sums)   every day ever, one row per day,
--        mode, carrier and service that has a purchased shipment (the rows of 0006's
--        mv_daily_shipment_analytics, without the 90-day window; sums only: averages are
--        computed by readers, sum over sum).  net_cost_count = count(cost) of the net rows
--        (avg_cost's divisor).  delivery_days_total is numeric here (the sum of each
--        transit_days as numeric: the same whatever order rows are summed in; a sum of
--        double precision is not, in its last bits); the views show it as double precision,
--        as before.
--   analytics_days (day, mode, sums)   the same summed per day and mode: what the dashboard's
--        summary and daily series read (at most 400 x modes rows for a year).
--   analytics_route_daily (day, mode, route, shipment_count, total_cost, cost_count)   the
--        net shipments (not returns, not refunded) per day and route, for the days of the
--        90-day route window only (older days are taken out as the window moves).
--   analytics_route_totals (mode, route, sums)   analytics_route_daily summed over the window,
--        kept by deltas (what a recomputed day adds minus what it had, minus the days that
--        left the window), so the top routes never rescan the window.
--   analytics_rollup_apply(max_days)   recomputes at most max_days dirty days (newest first)
--        from shipments, in one transaction, and returns how many it recomputed: call it
--        again while that is max_days (a backlog); fewer means every day marked before the
--        call is done (marks committed meanwhile wait for the next refresh, so a steady
--        stream of writes never keeps the caller looping).  One apply at a time
--        (transaction advisory lock).
--
-- The three views keep their names, columns and 90-day windows (readers and the refresh
-- scheduler's REFRESH ... CONCURRENTLY are unchanged) but are computed from the rollups:
-- mv_daily_shipment_analytics from analytics_daily (a few thousand rows), mv_carrier_performance
-- from it as before, mv_top_routes from analytics_route_totals.  Whoever refreshes them applies
-- the rollups first: refresh_analytics_views() runs analytics_rollup_apply() until no backlog
-- is left before refreshing mv_daily_shipment_analytics (its duration in analytics_refresh_log
-- includes the apply), and so does the refresh scheduler.
--
-- Existing data: this migration only creates (empty) tables, functions and triggers and marks
-- every day that has shipments dirty (two index probes, no scan), so its locks are short (the
-- triggers take SHARE ROW EXCLUSIVE on shipments for the migration's transaction: writes wait
-- for milliseconds).  The rows are rolled up afterwards, in batches of days, each batch its own
-- transaction (the refresh scheduler's first cycle, or refresh_analytics_views()): newest days
-- first, so the recent range is right first; until the backlog is done, ranges reaching
-- further back are incomplete (analytics_dirty_days says how many days are left).
SET LOCAL lock_timeout = '10s';

CREATE TABLE analytics_dirty_days (
    day       date NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_dirty_days_day_idx ON analytics_dirty_days (day);

CREATE TABLE analytics_daily (
    day                  date NOT NULL,
    mode                 text NOT NULL,
    carrier              text NOT NULL,
    service              text NOT NULL,
    shipment_count       bigint NOT NULL,
    total_cost           numeric NOT NULL,
    net_cost_count       bigint NOT NULL,
    delivered_count      bigint NOT NULL,
    on_time_count        bigint NOT NULL,
    on_time_eligible_count bigint NOT NULL,
    delivery_days_total  numeric,
    delivery_days_count  bigint NOT NULL,
    return_count         bigint NOT NULL,
    return_cost          numeric NOT NULL,
    refunded_count       bigint NOT NULL,
    refunded_cost        numeric NOT NULL,
    refund_pending_count bigint NOT NULL,
    refund_pending_cost  numeric NOT NULL,
    PRIMARY KEY (day, mode, carrier, service)
);

CREATE TABLE analytics_days (
    day                  date NOT NULL,
    mode                 text NOT NULL,
    shipment_count       bigint NOT NULL,
    total_cost           numeric NOT NULL,
    delivered_count      bigint NOT NULL,
    on_time_count        bigint NOT NULL,
    on_time_eligible_count bigint NOT NULL,
    delivery_days_total  numeric,
    delivery_days_count  bigint NOT NULL,
    return_count         bigint NOT NULL,
    return_cost          numeric NOT NULL,
    refunded_count       bigint NOT NULL,
    refunded_cost        numeric NOT NULL,
    refund_pending_count bigint NOT NULL,
    refund_pending_cost  numeric NOT NULL,
    PRIMARY KEY (day, mode)
);

-- No key: a day's rows are replaced by DELETE + INSERT in one statement (see the apply).
CREATE TABLE analytics_route_daily (
    day            date NOT NULL,
    mode           text NOT NULL,
    from_city      text NOT NULL,
    from_state     text NOT NULL,
    from_country   text NOT NULL,
    to_city        text NOT NULL,
    to_state       text NOT NULL,
    to_country     text NOT NULL,
    shipment_count bigint NOT NULL,
    total_cost     numeric NOT NULL,
    cost_count     bigint NOT NULL
);
CREATE INDEX analytics_route_daily_day_idx ON analytics_route_daily (day);

CREATE TABLE analytics_route_totals (
    mode           text NOT NULL,
    from_city      text NOT NULL,
    from_state     text NOT NULL,
    from_country   text NOT NULL,
    to_city        text NOT NULL,
    to_state       text NOT NULL,
    to_country     text NOT NULL,
    shipment_count bigint NOT NULL,
    total_cost     numeric NOT NULL,
    cost_count     bigint NOT NULL,
    PRIMARY KEY (mode, from_city, from_state, from_country, to_city, to_state, to_country)
);

-- ---------------------------------------------------------------- dirty days

CREATE FUNCTION analytics_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO analytics_dirty_days (day)
        SELECT DISTINCT n.analytics_day FROM analytics_new n
         WHERE n.analytics_day IS NOT NULL AND n.carrier IS NOT NULL AND n.service IS NOT NULL
         ORDER BY 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO analytics_dirty_days (day)
        SELECT DISTINCT o.analytics_day FROM analytics_old o
         WHERE o.analytics_day IS NOT NULL AND o.carrier IS NOT NULL AND o.service IS NOT NULL
         ORDER BY 1;
    ELSE
        INSERT INTO analytics_dirty_days (day)
        SELECT DISTINCT d FROM (
            SELECT o.analytics_day AS d1, n.analytics_day AS d2
              FROM analytics_old o FULL JOIN analytics_new n ON n.id = o.id
             WHERE (coalesce(o.mode, ''), o.analytics_day, o.carrier, o.service,
                    coalesce(o.total_cost, o.rate), o.status = 'delivered', o.transit_days,
                    o.on_time, coalesce(o.is_return, false), o.refund_status,
                    o.route_from_city, o.route_from_state, o.route_from_country,
                    o.route_to_city, o.route_to_state, o.route_to_country)
                   IS DISTINCT FROM
                   (coalesce(n.mode, ''), n.analytics_day, n.carrier, n.service,
                    coalesce(n.total_cost, n.rate), n.status = 'delivered', n.transit_days,
                    n.on_time, coalesce(n.is_return, false), n.refund_status,
                    n.route_from_city, n.route_from_state, n.route_from_country,
                    n.route_to_city, n.route_to_state, n.route_to_country)) x
         CROSS JOIN LATERAL (VALUES (x.d1), (x.d2)) v(d)
         WHERE d IS NOT NULL
         ORDER BY 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER shipments_analytics_insert AFTER INSERT ON shipments
    REFERENCING NEW TABLE AS analytics_new
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_mark_dirty();
CREATE TRIGGER shipments_analytics_update AFTER UPDATE ON shipments
    REFERENCING OLD TABLE AS analytics_old NEW TABLE AS analytics_new
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_mark_dirty();
CREATE TRIGGER shipments_analytics_delete AFTER DELETE ON shipments
    REFERENCING OLD TABLE AS analytics_old
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_mark_dirty();

CREATE FUNCTION analytics_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM analytics_dirty_days;
    DELETE FROM analytics_daily;
    DELETE FROM analytics_days;
    DELETE FROM analytics_route_daily;
    DELETE FROM analytics_route_totals;
    RETURN NULL;
END $$;
CREATE TRIGGER shipments_analytics_truncate AFTER TRUNCATE ON shipments
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_truncated();

-- ---------------------------------------------------------------- apply

-- The first day of the 90-day window (today included), as 0002 defines it.
CREATE FUNCTION analytics_window_start() RETURNS date LANGUAGE sql STABLE AS $$
    SELECT (now() AT TIME ZONE 'UTC')::date - 89
$$;

-- Recomputes at most max_days of the dirty days (newest first) and takes the days that left
-- the route window out of the route rollups; returns the number of days recomputed.
-- Each day's shipments are read by an index range scan of shipments_created_idx (the LATERAL
-- subqueries with OFFSET 0 keep the planner from one seq scan of every shipment instead).
-- READ COMMITTED: each statement sees what committed before it started, so a change whose
-- dirty mark this call deletes is seen by the recompute that follows; a mark committed later
-- stays for the next call.
CREATE FUNCTION analytics_rollup_apply(max_days integer DEFAULT 31)
RETURNS integer LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    ds     date[];
    wstart date := analytics_window_start();
BEGIN
    IF max_days < 1 THEN
        RAISE EXCEPTION 'max_days must be >= 1';
    END IF;
    PERFORM pg_advisory_xact_lock(7378726300000011);
    SELECT coalesce(array_agg(day ORDER BY day), '{}') INTO ds
      FROM (SELECT DISTINCT day FROM analytics_dirty_days ORDER BY day DESC LIMIT max_days) x;
    -- The days' rows go first (the daily rollups have keys; the route days are replaced
    -- below, with their totals).
    DELETE FROM analytics_dirty_days WHERE day = ANY (ds);
    DELETE FROM analytics_daily WHERE day = ANY (ds);
    DELETE FROM analytics_days WHERE day = ANY (ds);

    -- One read of the days' shipments (src) for both rollups.  Routes: the recomputed days
    -- of the window replace their rows, the days before the window go; the totals change by
    -- the difference.
    WITH src AS MATERIALIZED (
        SELECT s.analytics_day AS day, coalesce(s.mode, '') AS mode, s.carrier, s.service,
               coalesce(s.total_cost, s.rate) AS cost,
               s.status = 'delivered' AS delivered, s.transit_days, s.on_time,
               coalesce(s.is_return, false) AS is_return,
               s.refund_status IS NOT DISTINCT FROM 'refunded' AS refunded,
               s.refund_status IS NOT DISTINCT FROM 'submitted' AS refund_pending,
               NOT coalesce(s.is_return, false)
                   AND s.refund_status IS DISTINCT FROM 'refunded' AS o,
               s.route_from_city, s.route_from_state, s.route_from_country,
               s.route_to_city, s.route_to_state, s.route_to_country
          FROM unnest(ds) d(day)
         CROSS JOIN LATERAL (
               SELECT * FROM shipments s
                WHERE s.created_at >= d.day::timestamp AT TIME ZONE 'UTC'
                  AND s.created_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
                  AND s.carrier IS NOT NULL AND s.service IS NOT NULL
               OFFSET 0) s),
    daily AS (
        INSERT INTO analytics_daily
        SELECT day, mode, carrier, service,
               count(*) FILTER (WHERE o),
               coalesce(sum(cost) FILTER (WHERE o), 0),
               count(cost) FILTER (WHERE o),
               count(*) FILTER (WHERE o AND delivered),
               count(*) FILTER (WHERE o AND on_time),
               count(on_time) FILTER (WHERE o),
               sum(transit_days::numeric) FILTER (WHERE o),
               count(transit_days) FILTER (WHERE o),
               count(*) FILTER (WHERE is_return AND NOT refunded),
               coalesce(sum(cost) FILTER (WHERE is_return AND NOT refunded), 0),
               count(*) FILTER (WHERE refunded),
               coalesce(sum(cost) FILTER (WHERE refunded), 0),
               count(*) FILTER (WHERE refund_pending),
               coalesce(sum(cost) FILTER (WHERE refund_pending), 0)
          FROM src
         GROUP BY 1, 2, 3, 4
        RETURNING *),
    days AS (
        INSERT INTO analytics_days
        SELECT day, mode, sum(shipment_count), sum(total_cost), sum(delivered_count),
               sum(on_time_count), sum(on_time_eligible_count), sum(delivery_days_total),
               sum(delivery_days_count), sum(return_count), sum(return_cost),
               sum(refunded_count), sum(refunded_cost), sum(refund_pending_count),
               sum(refund_pending_cost)
          FROM daily
         GROUP BY 1, 2),
    old AS (
        DELETE FROM analytics_route_daily
         WHERE day = ANY (ds) OR day < wstart
        RETURNING *),
    new AS (
        INSERT INTO analytics_route_daily
        SELECT day, mode, route_from_city, route_from_state, route_from_country,
               route_to_city, route_to_state, route_to_country,
               count(*), coalesce(sum(cost), 0), count(cost)
          FROM src
         WHERE day >= wstart AND o
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        RETURNING *),
    delta AS (
        SELECT mode, from_city, from_state, from_country, to_city, to_state, to_country,
               sum(n) AS n, sum(c) AS c, sum(cn) AS cn
          FROM (SELECT mode, from_city, from_state, from_country, to_city, to_state, to_country,
                       shipment_count AS n, total_cost AS c, cost_count AS cn FROM new
                UNION ALL
                SELECT mode, from_city, from_state, from_country, to_city, to_state, to_country,
                       -shipment_count, -total_cost, -cost_count FROM old) u
         GROUP BY 1, 2, 3, 4, 5, 6, 7)
    INSERT INTO analytics_route_totals AS t
    SELECT * FROM delta WHERE n <> 0 OR c <> 0 OR cn <> 0
    ON CONFLICT (mode, from_city, from_state, from_country, to_city, to_state, to_country)
    DO UPDATE SET shipment_count = t.shipment_count + EXCLUDED.shipment_count,
                  total_cost = t.total_cost + EXCLUDED.total_cost,
                  cost_count = t.cost_count + EXCLUDED.cost_count;
    DELETE FROM analytics_route_totals WHERE shipment_count = 0 AND cost_count = 0;

    RETURN cardinality(ds);
END $$;

-- ---------------------------------------------------------------- the views, from the rollups

DROP MATERIALIZED VIEW mv_top_routes;
DROP MATERIALIZED VIEW mv_carrier_performance;
DROP MATERIALIZED VIEW mv_daily_shipment_analytics;

CREATE MATERIALIZED VIEW mv_daily_shipment_analytics AS
SELECT day                                                  AS date,
       mode,
       carrier,
       service,
       shipment_count,
       total_cost,
       round(total_cost / nullif(net_cost_count, 0), 5)     AS avg_cost,
       delivered_count,
       round(delivery_days_total / nullif(delivery_days_count, 0), 2)
                                                            AS avg_delivery_days,
       on_time_count,
       on_time_eligible_count,
       delivery_days_total::double precision                AS delivery_days_total,
       delivery_days_count,
       return_count,
       return_cost,
       refunded_count,
       refunded_cost,
       refund_pending_count,
       refund_pending_cost
  FROM analytics_daily
 WHERE day >= analytics_window_start()
WITH DATA;
CREATE UNIQUE INDEX mv_daily_shipment_analytics_key
    ON mv_daily_shipment_analytics (date, mode, carrier, service);

-- As in 0006 (from the daily view: refresh it first).
CREATE MATERIALIZED VIEW mv_carrier_performance AS
SELECT mode,
       carrier,
       service,
       sum(shipment_count)::bigint                          AS total_shipments,
       sum(total_cost)                                      AS total_revenue,
       sum(delivered_count)::bigint                         AS delivered_count,
       sum(on_time_count)::bigint                           AS on_time_count,
       round(sum(on_time_count)::numeric
             / nullif(sum(on_time_eligible_count), 0), 4)   AS on_time_rate,
       round((sum(delivery_days_total)
             / nullif(sum(delivery_days_count), 0))::numeric, 2) AS avg_delivery_days,
       sum(on_time_eligible_count)::bigint                  AS on_time_eligible_count,
       sum(delivery_days_total)                             AS delivery_days_total,
       sum(delivery_days_count)::bigint                     AS delivery_days_count,
       sum(return_count)::bigint                            AS return_count,
       sum(return_cost)                                     AS return_cost,
       sum(refunded_count)::bigint                          AS refunded_count,
       sum(refunded_cost)                                   AS refunded_cost
  FROM mv_daily_shipment_analytics
 GROUP BY mode, carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_carrier_performance_key ON mv_carrier_performance (mode, carrier, service);

-- Routes with at least 3 net shipments in the window, per mode and over every mode.
CREATE MATERIALIZED VIEW mv_top_routes AS
SELECT CASE WHEN grouping(mode) = 1 THEN 'all' ELSE mode END AS mode,
       from_city, from_state, from_country, to_city, to_state, to_country,
       sum(shipment_count)::bigint                          AS shipment_count,
       sum(total_cost)                                      AS total_cost,
       round(sum(total_cost) / nullif(sum(cost_count), 0), 5) AS avg_cost
  FROM analytics_route_totals
 GROUP BY GROUPING SETS ((mode, from_city, from_state, from_country, to_city, to_state,
                          to_country),
                         (from_city, from_state, from_country, to_city, to_state, to_country))
HAVING sum(shipment_count) >= 3
WITH DATA;
CREATE UNIQUE INDEX mv_top_routes_key
    ON mv_top_routes (mode, from_city, from_state, from_country, to_city, to_state, to_country);
CREATE INDEX mv_top_routes_count_idx ON mv_top_routes (mode, shipment_count DESC);

-- analytics_shipments (0006's view over the window) stays for ad-hoc queries; nothing in the
-- views reads it any more.

-- refresh_analytics_views() as in 0002, but the rollups are applied (every dirty day, in
-- batches of 31) before mv_daily_shipment_analytics is refreshed; a failed apply fails that
-- view's refresh (logged; the others still refresh from the rollups as they are).
CREATE OR REPLACE FUNCTION refresh_analytics_views(concurrent boolean DEFAULT true)
RETURNS TABLE (view_name text, outcome text, duration_ms numeric, rows bigint, error text)
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
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
            IF v_name = 'mv_daily_shipment_analytics' THEN
                LOOP
                    EXIT WHEN analytics_rollup_apply(31) < 31;
                END LOOP;
            END IF;
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

-- Every day that has shipments is dirty: the first apply rolls the existing rows up.
INSERT INTO analytics_dirty_days (day)
SELECT g::date
  FROM generate_series(date_trunc('day', (SELECT min(created_at) FROM shipments) AT TIME ZONE 'UTC'),
                       (SELECT max(created_at) FROM shipments) AT TIME ZONE 'UTC',
                       interval '1 day') g;

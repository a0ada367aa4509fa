-- 0006_objects_refunds: every captured object lands in a table, refunds mark their
-- shipment, analytics count money right (issue 16).
--
-- Tables (written only by the sync worker, same rules as the other synced objects: EasyPost
-- id = primary key, `updated_at` = EasyPost's updated_at of the version stored, the upsert
-- changes nothing when the stored version is newer, `raw` = the object as EasyPost sent it):
--   refunds(id, shipment_id, tracking_code, carrier, status, confirmation_number, mode,
--           created_at, updated_at, raw, synced_at)
--   pickups(id, mode, status, reference, confirmation, address_id, shipment_id, min_datetime,
--           max_datetime, is_account_address, instructions, created_at, updated_at, raw,
--           synced_at)
--   scan_forms(id, mode, status, message, batch_id, address_id, tracking_codes jsonb,
--           form_url, form_file_type, confirmation, created_at, updated_at, raw, synced_at)
--   insurances(id, mode, reference, status, shipment_id, tracking_code, tracker_id, amount,
--           provider, provider_id, fee_amount, from_address_id, to_address_id, created_at,
--           updated_at, raw, synced_at)
--   easypost_objects(id, object_type, mode, updated_at, raw, synced_at): the raw archive of
--           every other object type that carries an id (Payment, Report, CarrierAccount, …).
--
-- shipments gets two more out-of-order gates, like tracker_updated_at:
--   refund_updated_at  updated_at of the version that set refund_status: the shipment's own
--                      (when it carried a refund_status) or a Refund object's (refunds
--                      table, refund.successful webhooks).  The newest wins; a shipment
--                      version without refund_status never clears one.  A Refund seen
--                      before its shipment creates the placeholder row (id, refund_status).
--   batch_status, batch_message, batch_updated_at: the Batch objects carry their shipments
--                      (id, batch_status, batch_message, tracking_code): they set batch_id,
--                      batch_status, batch_message of each shipment, gated by
--                      batch_updated_at (the shipment's own version sets them too).
--
-- Analytics (the views of 0002, rebuilt): purchased shipments of the window, now grouped by
-- mode as well, net of refunds, returns apart:
--   * refunded   = refund_status 'refunded' (EasyPost gave the postage back): not in
--                  shipment_count nor spend; counted in refunded_count / refunded_cost.
--   * submitted  = refund requested, not yet confirmed by the carrier (USPS takes weeks and
--                  may reject it): still spend, also shown as refund_pending_count/_cost.
--   * rejected, not_applicable, NULL: spend.
--   * returns    = is_return true: counted apart (return_count, return_cost), not in
--                  shipment_count / total_cost / delivery or on-time figures.
--   * mode       = the shipment's mode ('production', 'test'; '' when unknown); readers
--                  filter (the read API's default is production).
-- The three views gain the column mode (first in their unique indexes); mv_top_routes also
-- has rows with mode 'all' (routes with ≥ 3 shipments over every mode, which the per-mode
-- rows cannot add up to).
SET LOCAL lock_timeout = '10s';

CREATE TABLE refunds (
    id                  text PRIMARY KEY,
    shipment_id         text,
    tracking_code       text,
    carrier             text,
    status              text,          -- submitted, refunded, rejected, not_applicable
    confirmation_number text,
    mode                text,
    created_at          timestamptz,
    updated_at          timestamptz,
    raw                 jsonb,
    synced_at           timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE refunds ALTER COLUMN raw SET COMPRESSION lz4;
CREATE INDEX refunds_shipment_idx ON refunds (shipment_id);

CREATE TABLE pickups (
    id                 text PRIMARY KEY,
    mode               text,
    status             text,           -- unknown, scheduled, canceled
    reference          text,
    confirmation       text,
    address_id         text,
    shipment_id        text,
    min_datetime       timestamptz,
    max_datetime       timestamptz,
    is_account_address boolean,
    instructions       text,
    created_at         timestamptz,
    updated_at         timestamptz,
    raw                jsonb,
    synced_at          timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE pickups ALTER COLUMN raw SET COMPRESSION lz4;

CREATE TABLE scan_forms (
    id             text PRIMARY KEY,
    mode           text,
    status         text,
    message        text,
    batch_id       text,
    address_id     text,
    tracking_codes jsonb,              -- the array as EasyPost sent it
    form_url       text,
    form_file_type text,
    confirmation   text,
    created_at     timestamptz,
    updated_at     timestamptz,
    raw            jsonb,
    synced_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE scan_forms ALTER COLUMN raw SET COMPRESSION lz4;

CREATE TABLE insurances (
    id              text PRIMARY KEY,
    mode            text,
    reference       text,
    status          text,
    shipment_id     text,
    tracking_code   text,
    tracker_id      text,
    amount          numeric,           -- the insured value
    provider        text,
    provider_id     text,
    fee_amount      numeric,           -- fee.amount: what the insurance cost
    from_address_id text,
    to_address_id   text,
    created_at      timestamptz,
    updated_at      timestamptz,
    raw             jsonb,
    synced_at       timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE insurances ALTER COLUMN raw SET COMPRESSION lz4;

CREATE TABLE easypost_objects (
    id          text PRIMARY KEY,       -- the object's id (EasyPost ids are unique across types)
    object_type text NOT NULL,
    mode        text,
    updated_at  timestamptz,
    raw         jsonb NOT NULL,
    synced_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE easypost_objects ALTER COLUMN raw SET COMPRESSION lz4;
CREATE INDEX easypost_objects_type_idx ON easypost_objects (object_type);

ALTER TABLE shipments
    ADD COLUMN refund_updated_at timestamptz,
    ADD COLUMN batch_status      text,
    ADD COLUMN batch_message     text,
    ADD COLUMN batch_updated_at  timestamptz;
-- The refund_status stored so far came from the shipments themselves; the Shipment objects
-- in raw carry batch_status / batch_message.
UPDATE shipments
   SET refund_updated_at = CASE WHEN refund_status IS NOT NULL THEN updated_at END,
       batch_status = raw->>'batch_status',
       batch_message = raw->>'batch_message',
       batch_updated_at = CASE WHEN batch_id IS NOT NULL THEN updated_at END
 WHERE refund_status IS NOT NULL OR batch_id IS NOT NULL
    OR raw->>'batch_status' IS NOT NULL OR raw->>'batch_message' IS NOT NULL;

-- The views, rebuilt with mode, refunds and returns.
DROP MATERIALIZED VIEW mv_top_routes;
DROP MATERIALIZED VIEW mv_carrier_performance;
DROP MATERIALIZED VIEW mv_daily_shipment_analytics;
DROP VIEW analytics_shipments;

-- Purchased shipments of the window (the same window and purchase rule as 0002), with what
-- the money rules need.  label: neither a return nor refunded (shipment_count, spend).
CREATE VIEW analytics_shipments AS
SELECT s.id,
       coalesce(s.mode, '')                                 AS mode,
       s.created_at,
       s.analytics_day,
       s.carrier,
       s.service,
       coalesce(s.total_cost, s.rate)                       AS cost,
       s.status = 'delivered'                               AS delivered,
       s.transit_days,
       s.on_time,
       coalesce(s.is_return, false)                         AS is_return,
       s.refund_status IS NOT DISTINCT FROM 'refunded'      AS refunded,
       s.refund_status IS NOT DISTINCT FROM 'submitted'     AS refund_pending,
       s.route_from_city, s.route_from_state, s.route_from_country,
       s.route_to_city, s.route_to_state, s.route_to_country
  FROM shipments s
 WHERE s.created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '89 days')
                      AT TIME ZONE 'UTC'
   AND s.carrier IS NOT NULL
   AND s.service IS NOT NULL;

-- Counts and money of outbound labels not refunded (shipment_count, total_cost, avg_cost,
-- delivery and on-time columns), then the ones counted apart.
CREATE MATERIALIZED VIEW mv_daily_shipment_analytics AS
SELECT analytics_day                                        AS date,
       mode,
       carrier,
       service,
       count(*) FILTER (WHERE o)                            AS shipment_count,
       coalesce(sum(cost) FILTER (WHERE o), 0)              AS total_cost,
       round(sum(cost) FILTER (WHERE o)
             / nullif(count(cost) FILTER (WHERE o), 0), 5)  AS avg_cost,
       count(*) FILTER (WHERE o AND delivered)              AS delivered_count,
       round((sum(transit_days) FILTER (WHERE o)
              / nullif(count(transit_days) FILTER (WHERE o), 0))::numeric, 2)
                                                            AS avg_delivery_days,
       count(*) FILTER (WHERE o AND on_time)                AS on_time_count,
       count(on_time) FILTER (WHERE o)                      AS on_time_eligible_count,
       sum(transit_days) FILTER (WHERE o)                   AS delivery_days_total,
       count(transit_days) FILTER (WHERE o)                 AS delivery_days_count,
       count(*) FILTER (WHERE is_return AND NOT refunded)   AS return_count,
       coalesce(sum(cost) FILTER (WHERE is_return AND NOT refunded), 0) AS return_cost,
       count(*) FILTER (WHERE refunded)                     AS refunded_count,
       coalesce(sum(cost) FILTER (WHERE refunded), 0)       AS refunded_cost,
       count(*) FILTER (WHERE refund_pending)               AS refund_pending_count,
       coalesce(sum(cost) FILTER (WHERE refund_pending), 0) AS refund_pending_cost
  FROM (SELECT a.*, NOT a.is_return AND NOT a.refunded AS o FROM analytics_shipments a) x
 GROUP BY analytics_day, mode, carrier, service
WITH DATA;
CREATE UNIQUE INDEX mv_daily_shipment_analytics_key
    ON mv_daily_shipment_analytics (date, mode, carrier, service);

-- Per mode, carrier and service, from the daily view (refresh it first).  Rows whose only
-- shipments are returns or refunded have total_shipments 0.
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

-- Routes with at least 3 outbound labels not refunded in the window, per mode and over
-- every mode (mode 'all').
CREATE MATERIALIZED VIEW mv_top_routes AS
SELECT CASE WHEN grouping(mode) = 1 THEN 'all' ELSE mode END AS mode,
       route_from_city    AS from_city,
       route_from_state   AS from_state,
       route_from_country AS from_country,
       route_to_city      AS to_city,
       route_to_state     AS to_state,
       route_to_country   AS to_country,
       count(*)           AS shipment_count,
       coalesce(sum(cost), 0) AS total_cost,
       round(sum(cost) / nullif(count(cost), 0), 5) AS avg_cost
  FROM analytics_shipments
 WHERE NOT is_return AND NOT refunded
 GROUP BY GROUPING SETS ((mode, route_from_city, route_from_state, route_from_country,
                          route_to_city, route_to_state, route_to_country),
                         (route_from_city, route_from_state, route_from_country,
                          route_to_city, route_to_state, route_to_country))
HAVING count(*) >= 3
WITH DATA;
CREATE UNIQUE INDEX mv_top_routes_key
    ON mv_top_routes (mode, from_city, from_state, from_country, to_city, to_state, to_country);
CREATE INDEX mv_top_routes_count_idx ON mv_top_routes (mode, shipment_count DESC);

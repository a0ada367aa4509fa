-- 0001_core: the tables shipstream writes and reads.
--
-- Schema summary (what crosses a process boundary; see ../shared/ARCHITECTURE.md)
--
--   Synced EasyPost objects (written only by the sync worker; EasyPost id = primary key).
--   Every one keeps `updated_at` = EasyPost's updated_at of the version stored, `raw` = the
--   last stored object as jsonb, and `synced_at` = when we wrote it.  Upsert rule for the
--   worker: ... ON CONFLICT (id) DO UPDATE ... WHERE t.updated_at IS NULL
--   OR t.updated_at <= EXCLUDED.updated_at (older versions change nothing).
--     addresses(id, mode, name, company, street1, street2, city, state, zip, country, phone,
--               email, residential, carrier_facility, federal_tax_id, state_tax_id, verified,
--               created_at, updated_at, raw, synced_at, search tsvector GENERATED)
--     parcels(id, mode, length, width, height, weight, predefined_package, created_at,
--             updated_at, raw, synced_at)
--     batches(id, mode, state, num_shipments, reference, label_url, scan_form_id, status jsonb,
--             created_at, updated_at, raw, synced_at)
--     shipments(id, mode, status, tracking_code, tracker_id, carrier, service, selected_rate_id,
--               rate, total_cost, currency, delivery_days, est_delivery_days, est_delivery_date,
--               delivered_at, from_address_id, to_address_id, return_address_id,
--               buyer_address_id, parcel_id, batch_id, is_return, reference, refund_status,
--               label_url, usps_zone, created_at, updated_at, tracker_updated_at, raw,
--               synced_at)  -- every column but id nullable: a tracker may arrive first and
--               create a placeholder row (id, tracking_code, tracker_id, status, ...), filled
--               in when the shipment itself arrives.
--     rates(id, shipment_id -> shipments, mode, carrier, service, rate, currency, retail_rate,
--           retail_currency, list_rate, list_currency, billing_type, delivery_days,
--           delivery_date, delivery_date_guaranteed, est_delivery_days, carrier_account_id,
--           created_at, updated_at, raw, synced_at)
--     trackers(id, mode, tracking_code, status, status_detail, carrier, shipment_id,
--              est_delivery_date, signed_by, weight, public_url, created_at, updated_at, raw,
--              synced_at)  -- no FK to shipments: EasyPost trackers may have no shipment.
--     tracking_events(id bigserial, tracker_id -> trackers, shipment_id, occurred_at
--              (EasyPost `datetime`), status, status_detail, message, description, source,
--              carrier_code, city, state, country, zip, raw, detail_hash GENERATED,
--              inserted_at)  -- UNIQUE (tracker_id, occurred_at, detail_hash): insert with
--              ON CONFLICT DO NOTHING and the same detail delivered twice is one row.
--   Pipeline bookkeeping:
--     easypost_events(id 'evt_…', description, object_type, object_id, mode, status, user_id,
--                     created_at, updated_at, payload, received_at)  -- the events topic, raw
--     processed_events(event_id, processed_at)  -- event ids applied; prune with
--                     prune_processed_events(interval) (never below 7 days)
--     kafka_offsets(consumer_group, topic, partition, next_offset, updated_at)
--     idempotency_keys(key, request_hash, status, shipment_id, response_status, response_body,
--                     created_at, updated_at, expires_at)  -- gateway buy, 24 h
--     analytics_refresh_log(id, view_name, started_at, finished_at, duration_ms, rows,
--                     concurrent, outcome, error)  -- written by refresh_analytics_views()
--     schema_migrations(version, name, checksum, applied_at)  -- created and owned by
--                     shipstream-migrate itself, not by this file.
--   Money is numeric (EasyPost sends strings with up to five decimals), never float.
--   Timestamps are timestamptz; analytics days are UTC days.
--   No foreign keys between objects that arrive on different topics (shipment -> address,
--   parcel, batch, tracker): they may arrive in any order.  Children carried inside their
--   parent (rates in a shipment, tracking details in a tracker) do have foreign keys.

CREATE TABLE addresses (
    id               text PRIMARY KEY,
    mode             text,
    name             text,
    company          text,
    street1          text,
    street2          text,
    city             text,
    state            text,
    zip              text,
    country          text,
    phone            text,
    email            text,
    residential      boolean,
    carrier_facility text,
    federal_tax_id   text,
    state_tax_id     text,
    verified         boolean,        -- verifications.delivery.success, when present
    created_at       timestamptz,
    updated_at       timestamptz,
    raw              jsonb,
    synced_at        timestamptz NOT NULL DEFAULT now(),
    -- Full-text search over name, company, street and city.  'simple' configuration: names
    -- and places are not stemmed.  Query with
    --   WHERE search @@ websearch_to_tsquery('simple', $1)
    -- (or to_tsquery('simple', 'word:*') for prefixes); both use addresses_search_idx.
    search           tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig,
            coalesce(name, '') || ' ' || coalesce(company, '') || ' ' ||
            coalesce(street1, '') || ' ' || coalesce(street2, '') || ' ' ||
            coalesce(city, ''))) STORED
);
CREATE INDEX addresses_search_idx ON addresses USING gin (search);

CREATE TABLE parcels (
    id                 text PRIMARY KEY,
    mode               text,
    length             numeric,       -- inches; numeric keeps EasyPost's value exactly
    width              numeric,
    height             numeric,
    weight             numeric,       -- ounces
    predefined_package text,
    created_at         timestamptz,
    updated_at         timestamptz,
    raw                jsonb,
    synced_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE batches (
    id            text PRIMARY KEY,
    mode          text,
    state         text,              -- creating, created, purchasing, purchased, ...
    num_shipments integer,
    reference     text,
    label_url     text,
    scan_form_id  text,
    status        jsonb,             -- {"created": n, "postage_purchased": n, ...}
    created_at    timestamptz,
    updated_at    timestamptz,
    raw           jsonb,
    synced_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shipments (
    id                 text PRIMARY KEY,
    mode               text,
    status             text,          -- follows the tracker: unknown, pre_transit, in_transit,
                                      -- out_for_delivery, delivered, return_to_sender, ...
    tracking_code      text,
    tracker_id         text,
    -- carrier, service, rate, currency, delivery_days, est_delivery_days: of the selected
    -- (purchased) rate; NULL while the shipment is not bought.  Analytics count a shipment
    -- as purchased when carrier and service are both set.
    carrier            text,
    service            text,
    selected_rate_id   text,
    rate               numeric,
    total_cost         numeric,       -- what the shipment cost (charged fees, else the rate)
    currency           text,
    delivery_days      integer,       -- the selected rate's delivery_days (carrier's promise)
    est_delivery_days  integer,
    est_delivery_date  timestamptz,   -- the tracker's est_delivery_date
    delivered_at       timestamptz,   -- datetime of the tracking detail that said delivered
    from_address_id    text,
    to_address_id      text,
    return_address_id  text,
    buyer_address_id   text,
    parcel_id          text,
    batch_id           text,
    is_return          boolean,
    reference          text,
    refund_status      text,
    label_url          text,
    usps_zone          integer,
    created_at         timestamptz,
    updated_at         timestamptz,   -- EasyPost's updated_at of the shipment object stored
    tracker_updated_at timestamptz,   -- updated_at of the tracker version that set status,
                                      -- est_delivery_date, delivered_at (own out-of-order gate)
    raw                jsonb,
    synced_at          timestamptz NOT NULL DEFAULT now()
);
-- Read API: keyset pagination newest first: ORDER BY created_at DESC, id DESC with
-- WHERE created_at IS NOT NULL AND (created_at, id) < ($cursor_created_at, $cursor_id).
CREATE INDEX shipments_created_idx ON shipments (created_at, id);
CREATE INDEX shipments_status_created_idx ON shipments (status, created_at, id);
CREATE INDEX shipments_carrier_service_created_idx ON shipments (carrier, service, created_at, id);
CREATE INDEX shipments_tracking_code_idx ON shipments (tracking_code);
CREATE INDEX shipments_tracker_idx ON shipments (tracker_id);
CREATE INDEX shipments_from_address_idx ON shipments (from_address_id);
CREATE INDEX shipments_to_address_idx ON shipments (to_address_id);
CREATE INDEX shipments_batch_idx ON shipments (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE rates (
    id                       text PRIMARY KEY,
    shipment_id              text NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    mode                     text,
    carrier                  text,
    service                  text,
    rate                     numeric,
    currency                 text,
    retail_rate              numeric,
    retail_currency          text,
    list_rate                numeric,
    list_currency            text,
    billing_type             text,
    delivery_days            integer,
    delivery_date            timestamptz,
    delivery_date_guaranteed boolean,
    est_delivery_days        integer,
    carrier_account_id       text,
    created_at               timestamptz,
    updated_at               timestamptz,
    raw                      jsonb,
    synced_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rates_shipment_idx ON rates (shipment_id);

CREATE TABLE trackers (
    id                text PRIMARY KEY,
    mode              text,
    tracking_code     text,
    status            text,
    status_detail     text,
    carrier           text,
    shipment_id       text,           -- NULL for trackers created from a bare tracking code
    est_delivery_date timestamptz,
    signed_by         text,
    weight            numeric,
    public_url        text,
    created_at        timestamptz,
    updated_at        timestamptz,
    raw               jsonb,
    synced_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trackers_shipment_idx ON trackers (shipment_id);
CREATE INDEX trackers_tracking_code_idx ON trackers (tracking_code);

-- One row per tracking detail.  A detail carries no id of its own, so its identity is
-- (tracker, its datetime, a hash of what it says): detail_hash = md5 over status,
-- status_detail, message and description joined with a unit separator (NULL and '' are
-- the same).  The location is not part of the identity: a carrier that later fills in the
-- city of a known detail does not create a second row.  NULLS NOT DISTINCT: a detail
-- without a datetime is also stored once.  Insert with ON CONFLICT DO NOTHING.
CREATE TABLE tracking_events (
    id            bigserial PRIMARY KEY,
    tracker_id    text NOT NULL REFERENCES trackers (id) ON DELETE CASCADE,
    shipment_id   text,
    occurred_at   timestamptz,        -- EasyPost tracking_details[].datetime
    status        text,
    status_detail text,
    message       text,
    description   text,
    source        text,
    carrier_code  text,
    city          text,               -- tracking_location
    state         text,
    country       text,
    zip           text,
    raw           jsonb,
    detail_hash   text GENERATED ALWAYS AS (
        md5(coalesce(status, '') || chr(31) || coalesce(status_detail, '') || chr(31) ||
            coalesce(message, '') || chr(31) || coalesce(description, ''))) STORED,
    inserted_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tracking_events_detail_key
        UNIQUE NULLS NOT DISTINCT (tracker_id, occurred_at, detail_hash)
);
CREATE INDEX tracking_events_shipment_idx ON tracking_events (shipment_id, occurred_at)
    WHERE shipment_id IS NOT NULL;

-- Raw rows of the events topic (refund, scan form, insurance, payment, report, ...).
CREATE TABLE easypost_events (
    id          text PRIMARY KEY,     -- EasyPost Event id (evt_…)
    description text,                 -- e.g. refund.successful
    object_type text,                 -- result.object
    object_id   text,                 -- result.id
    mode        text,
    status      text,
    user_id     text,
    created_at  timestamptz,
    updated_at  timestamptz,
    payload     jsonb NOT NULL,       -- the whole Event
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX easypost_events_object_idx ON easypost_events (object_id);
CREATE INDEX easypost_events_received_idx ON easypost_events (received_at);

-- Event ids already applied (envelope event id).  Kept at least 7 days, longer than
-- EasyPost retries (about 24 h) and Kafka replays; pruned by prune_processed_events().
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_time_idx ON processed_events (processed_at);

-- Deletes processed_events older than keep_for (clamped to at least 7 days), returns the
-- number of rows deleted.
CREATE FUNCTION prune_processed_events(keep_for interval DEFAULT interval '7 days')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM processed_events
     WHERE processed_at < now() - greatest(keep_for, interval '7 days');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Next offset to consume per consumer group and partition, written in the same
-- transaction as the rows of the batch.
CREATE TABLE kafka_offsets (
    consumer_group text NOT NULL,
    topic          text NOT NULL,
    partition      integer NOT NULL CHECK (partition >= 0),
    next_offset    bigint NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Gateway: Idempotency-Key of POST /v1/shipments/{id}/buy.  Claim a key with
-- INSERT ... ON CONFLICT (key) DO NOTHING (status in_progress); the winner buys and stores
-- the answer (status completed, response_status, response_body kept byte for byte); the
-- same key with another request_hash is refused.  Expired keys may be deleted or reused.
CREATE TABLE idempotency_keys (
    key             text PRIMARY KEY,
    request_hash    text NOT NULL,    -- SHA-256 hex of method, path and body
    status          text NOT NULL DEFAULT 'in_progress'
                    CHECK (status IN ('in_progress', 'completed', 'failed')),
    shipment_id     text,
    response_status integer,
    response_body   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL DEFAULT now() + interval '24 hours'
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- One row per view refresh.  Freshness of a view = max(finished_at) WHERE outcome =
-- 'success' (pg_matviews has no refresh time).
CREATE TABLE analytics_refresh_log (
    id           bigserial PRIMARY KEY,
    view_name    text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    duration_ms  numeric(12, 3),
    rows         bigint,
    concurrent   boolean,
    outcome      text NOT NULL CHECK (outcome IN ('running', 'success', 'failed')),
    error        text
);
CREATE INDEX analytics_refresh_log_view_idx ON analytics_refresh_log (view_name, finished_at DESC);

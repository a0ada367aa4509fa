/* The sync worker's statements before migration 0005 (commit 9cf7fd8), frozen: the
 * baseline of bench/sync (ss-sync-pgbench --baseline) against a database at 0004.
 * Generated from pg_stat_statements of that build; do not edit. */
#ifndef SS_BENCH_SYNC_BASELINE_SQL_H
#define SS_BENCH_SYNC_BASELINE_SQL_H

static const char BASELINE_SQL_SHIPMENTS[] =
    "INSERT INTO shipments AS t (id, mode, status, tracking_code, tracker_id, carrier, servic"
    "e, selected_rate_id, rate, total_cost, currency, delivery_days, est_delivery_days, from_"
    "address_id, to_address_id, return_address_id, buyer_address_id, parcel_id, batch_id, is_"
    "return, reference, refund_status, label_url, usps_zone, created_at, updated_at, raw, syn"
    "ced_at) SELECT id, mode, status, tracking_code, tracker_id, carrier, service, selected_r"
    "ate_id, rate::numeric, coalesce(total_cost::numeric, rate::numeric), currency, delivery_"
    "days::integer, est_delivery_days::integer, from_address_id, to_address_id, return_addres"
    "s_id, buyer_address_id, parcel_id, batch_id, is_return::boolean, reference, refund_statu"
    "s, label_url, usps_zone::integer, created_at::timestamptz, updated_at::timestamptz, (raw"
    "::jsonb)->'object', now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5"
    "::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12:"
    ":text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $"
    "19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[]"
    ", $26::text[], $27::text[]) AS u(id, mode, status, tracking_code, tracker_id, carrier, s"
    "ervice, selected_rate_id, rate, total_cost, currency, delivery_days, est_delivery_days, "
    "from_address_id, to_address_id, return_address_id, buyer_address_id, parcel_id, batch_id"
    ", is_return, reference, refund_status, label_url, usps_zone, created_at, updated_at, raw"
    ") ON CONFLICT (id) DO UPDATE SET mode = excluded.mode, status = CASE WHEN t.tracker_upda"
    "ted_at IS NULL THEN excluded.status ELSE t.status END, tracking_code = coalesce(excluded"
    ".tracking_code, t.tracking_code), tracker_id = coalesce(excluded.tracker_id, t.tracker_i"
    "d), carrier = excluded.carrier, service = excluded.service, selected_rate_id = excluded."
    "selected_rate_id, rate = excluded.rate, total_cost = excluded.total_cost, currency = exc"
    "luded.currency, delivery_days = excluded.delivery_days, est_delivery_days = excluded.est"
    "_delivery_days, from_address_id = excluded.from_address_id, to_address_id = excluded.to_"
    "address_id, return_address_id = excluded.return_address_id, buyer_address_id = excluded."
    "buyer_address_id, parcel_id = excluded.parcel_id, batch_id = excluded.batch_id, is_retur"
    "n = excluded.is_return, reference = excluded.reference, refund_status = excluded.refund_"
    "status, label_url = excluded.label_url, usps_zone = excluded.usps_zone, created_at = exc"
    "luded.created_at, updated_at = excluded.updated_at, raw = excluded.raw, synced_at = now("
    ") WHERE t.updated_at IS NULL OR t.updated_at <= excluded.updated_at";

static const char BASELINE_SQL_SHIPMENT_TRACK[] =
    "INSERT INTO shipments AS t (id, tracking_code, tracker_id, status, est_delivery_date, de"
    "livered_at, tracker_updated_at, synced_at) SELECT id, tracking_code, tracker_id, status,"
    " est_delivery_date::timestamptz, delivered_at::timestamptz, tracker_updated_at::timestam"
    "ptz, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::t"
    "ext[], $7::text[]) AS u(id, tracking_code, tracker_id, status, est_delivery_date, delive"
    "red_at, tracker_updated_at) ON CONFLICT (id) DO UPDATE SET tracking_code = coalesce(t.tr"
    "acking_code, excluded.tracking_code), tracker_id = excluded.tracker_id, status = exclude"
    "d.status, est_delivery_date = excluded.est_delivery_date, delivered_at = excluded.delive"
    "red_at, tracker_updated_at = excluded.tracker_updated_at, synced_at = now() WHERE t.trac"
    "ker_updated_at IS NULL OR t.tracker_updated_at <= excluded.tracker_updated_at";

static const char BASELINE_SQL_TRACKERS[] =
    "INSERT INTO trackers AS t (id, mode, tracking_code, status, status_detail, carrier, ship"
    "ment_id, est_delivery_date, signed_by, weight, public_url, created_at, updated_at, raw, "
    "synced_at) SELECT id, mode, tracking_code, status, status_detail, carrier, shipment_id, "
    "est_delivery_date::timestamptz, signed_by, weight::numeric, public_url, created_at::time"
    "stamptz, updated_at::timestamptz, (raw::jsonb)->'object', now() FROM unnest($1::text[], "
    "$2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::"
    "text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[]) AS u(id, mode, "
    "tracking_code, status, status_detail, carrier, shipment_id, est_delivery_date, signed_by"
    ", weight, public_url, created_at, updated_at, raw) ON CONFLICT (id) DO UPDATE SET mode ="
    " excluded.mode, tracking_code = excluded.tracking_code, status = excluded.status, status"
    "_detail = excluded.status_detail, carrier = excluded.carrier, shipment_id = excluded.shi"
    "pment_id, est_delivery_date = excluded.est_delivery_date, signed_by = excluded.signed_by"
    ", weight = excluded.weight, public_url = excluded.public_url, created_at = excluded.crea"
    "ted_at, updated_at = excluded.updated_at, raw = excluded.raw, synced_at = now() WHERE t."
    "updated_at IS NULL OR t.updated_at <= excluded.updated_at";

static const char BASELINE_SQL_TRACKING_EVENTS[] =
    "INSERT INTO tracking_events AS t (tracker_id, shipment_id, occurred_at, status, status_d"
    "etail, message, description, source, carrier_code, city, state, country, zip, raw) SELEC"
    "T tracker_id, shipment_id, occurred_at::timestamptz, status, status_detail, message, des"
    "cription, source, carrier_code, city, state, country, zip, raw::jsonb FROM unnest($1::te"
    "xt[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]"
    ", $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[]) AS u(trac"
    "ker_id, shipment_id, occurred_at, status, status_detail, message, description, source, c"
    "arrier_code, city, state, country, zip, raw) ON CONFLICT ON CONSTRAINT tracking_events_d"
    "etail_key DO NOTHING";

static const char BASELINE_SQL_ADDRESSES[] =
    "INSERT INTO addresses AS t (id, mode, name, company, street1, street2, city, state, zip,"
    " country, phone, email, residential, carrier_facility, federal_tax_id, state_tax_id, ver"
    "ified, created_at, updated_at, raw, synced_at) SELECT id, mode, name, company, street1, "
    "street2, city, state, zip, country, phone, email, residential::boolean, carrier_facility"
    ", federal_tax_id, state_tax_id, verified::boolean, created_at::timestamptz, updated_at::"
    "timestamptz, raw::jsonb, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text["
    "], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
    " $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text"
    "[], $19::text[], $20::text[]) AS u(id, mode, name, company, street1, street2, city, stat"
    "e, zip, country, phone, email, residential, carrier_facility, federal_tax_id, state_tax_"
    "id, verified, created_at, updated_at, raw) ON CONFLICT (id) DO UPDATE SET mode = exclude"
    "d.mode, name = excluded.name, company = excluded.company, street1 = excluded.street1, st"
    "reet2 = excluded.street2, city = excluded.city, state = excluded.state, zip = excluded.z"
    "ip, country = excluded.country, phone = excluded.phone, email = excluded.email, resident"
    "ial = excluded.residential, carrier_facility = excluded.carrier_facility, federal_tax_id"
    " = excluded.federal_tax_id, state_tax_id = excluded.state_tax_id, verified = excluded.ve"
    "rified, created_at = excluded.created_at, updated_at = excluded.updated_at, raw = exclud"
    "ed.raw, synced_at = now() WHERE t.updated_at IS NULL OR t.updated_at <= excluded.updated"
    "_at";

static const char BASELINE_SQL_PARCELS[] =
    "INSERT INTO parcels AS t (id, mode, length, width, height, weight, predefined_package, c"
    "reated_at, updated_at, raw, synced_at) SELECT id, mode, length::numeric, width::numeric,"
    " height::numeric, weight::numeric, predefined_package, created_at::timestamptz, updated_"
    "at::timestamptz, raw::jsonb, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::t"
    "ext[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS u(id,"
    " mode, length, width, height, weight, predefined_package, created_at, updated_at, raw) O"
    "N CONFLICT (id) DO UPDATE SET mode = excluded.mode, length = excluded.length, width = ex"
    "cluded.width, height = excluded.height, weight = excluded.weight, predefined_package = e"
    "xcluded.predefined_package, created_at = excluded.created_at, updated_at = excluded.upda"
    "ted_at, raw = excluded.raw, synced_at = now() WHERE t.updated_at IS NULL OR t.updated_at"
    " <= excluded.updated_at";

static const char BASELINE_SQL_RATES[] =
    "INSERT INTO rates AS t (id, shipment_id, mode, carrier, service, rate, currency, retail_"
    "rate, retail_currency, list_rate, list_currency, billing_type, delivery_days, delivery_d"
    "ate, delivery_date_guaranteed, est_delivery_days, carrier_account_id, created_at, update"
    "d_at, raw, synced_at) SELECT id, shipment_id, mode, carrier, service, rate::numeric, cur"
    "rency, retail_rate::numeric, retail_currency, list_rate::numeric, list_currency, billing"
    "_type, delivery_days::integer, delivery_date::timestamptz, delivery_date_guaranteed::boo"
    "lean, est_delivery_days::integer, carrier_account_id, created_at::timestamptz, updated_a"
    "t::timestamptz, raw::jsonb, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::te"
    "xt[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text"
    "[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::t"
    "ext[], $19::text[], $20::text[]) AS u(id, shipment_id, mode, carrier, service, rate, cur"
    "rency, retail_rate, retail_currency, list_rate, list_currency, billing_type, delivery_da"
    "ys, delivery_date, delivery_date_guaranteed, est_delivery_days, carrier_account_id, crea"
    "ted_at, updated_at, raw) ON CONFLICT (id) DO UPDATE SET shipment_id = excluded.shipment_"
    "id, mode = excluded.mode, carrier = excluded.carrier, service = excluded.service, rate ="
    " excluded.rate, currency = excluded.currency, retail_rate = excluded.retail_rate, retail"
    "_currency = excluded.retail_currency, list_rate = excluded.list_rate, list_currency = ex"
    "cluded.list_currency, billing_type = excluded.billing_type, delivery_days = excluded.del"
    "ivery_days, delivery_date = excluded.delivery_date, delivery_date_guaranteed = excluded."
    "delivery_date_guaranteed, est_delivery_days = excluded.est_delivery_days, carrier_accoun"
    "t_id = excluded.carrier_account_id, created_at = excluded.created_at, updated_at = exclu"
    "ded.updated_at, raw = excluded.raw, synced_at = now() WHERE t.updated_at IS NULL OR t.up"
    "dated_at <= excluded.updated_at";

#endif

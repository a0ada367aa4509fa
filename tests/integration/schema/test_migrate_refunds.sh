#!/usr/bin/env bash
# Migration 0006 (tables for every object, refunds, analytics by mode) with data in it:
# a database at 0005 with shipments (one refund_status, one in a batch), then up 1 → down 1
# → up 1.  Up: the gates are filled from what the rows say (refund_updated_at, batch_*),
# the new tables and the views' mode exist and refresh.  Down: the new tables and columns
# are gone, every other column of shipments is unchanged, the views are 0002's again (the
# same columns) and refresh.  Up again: the same as the first up.
source "$(dirname "$0")/common.sh"

DB=$(ss_test_createdb schema_refunds) || ss_fail "createdb"
export DATABASE_URL="$DB" DB_URL="$DB"
T=$SS_TEST_TMP/refunds
mkdir -p "$T"
cols() { q -c "SELECT c.relname || '.' || a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               WHERE c.relname IN ('shipments', 'mv_daily_shipment_analytics', 'mv_carrier_performance',
                                   'mv_top_routes', 'analytics_shipments')
                 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1"; }
sums() { q -c "SELECT md5(string_agg(to_jsonb(s)::text, '|' ORDER BY s.id)) FROM (SELECT id, mode, status,
               refund_status, batch_id, updated_at, raw, created_at, total_cost FROM shipments) s"; }
refresh_ok() { [ "$(q -c "SELECT string_agg(outcome, ',') FROM refresh_analytics_views(false)")" = "success,success,success" ]; }

"$MIGRATE" up 5 >/dev/null 2>&1 || ss_fail "up 5"
q >/dev/null <<'SQL' || ss_fail "seed"
INSERT INTO shipments (id, mode, status, carrier, service, total_cost, refund_status, batch_id,
                       created_at, updated_at, raw)
VALUES ('shp_1', 'production', 'delivered', 'USPS', 'Priority', 10.00, 'submitted', NULL,
        now() - interval '1 day', '2026-11-20T10:00:00Z',
        '{"id":"shp_1","object":"Shipment","batch_status":null}'),
       ('shp_2', 'test', 'in_transit', 'UPS', 'Ground', 5.00, NULL, 'batch_1',
        now() - interval '1 day', '2026-11-20T11:00:00Z',
        '{"id":"shp_2","object":"Shipment","batch_id":"batch_1","batch_status":"postage_purchased","batch_message":"ok"}'),
       ('shp_3', NULL, 'unknown', NULL, NULL, NULL, NULL, NULL, now(), now(), '{"id":"shp_3"}');
SQL
cols >"$T/cols_before"
sums >"$T/sums_before"
refresh_ok || ss_fail "refresh at 0005"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up 0006"; }
got=$(q -c "SELECT id || ':' || coalesce(to_char(refund_updated_at AT TIME ZONE 'UTC', 'HH24:MI'), '-') || ':' ||
                   coalesce(batch_status, '-') || ':' || coalesce(batch_message, '-') || ':' ||
                   coalesce(to_char(batch_updated_at AT TIME ZONE 'UTC', 'HH24:MI'), '-')
              FROM shipments ORDER BY id")
expect_eq "gates filled by up" "shp_1:10:00:-:-:-
shp_2:-:postage_purchased:ok:11:00
shp_3:-:-:-:-" "$got"
for t in refunds pickups scan_forms insurances easypost_objects; do
  [ "$(q -c "SELECT to_regclass('$t') IS NOT NULL")" = t ] || ss_fail "table $t missing after up"
done
refresh_ok || ss_fail "refresh after up"
expect_eq "daily view by mode" "production|1|10.00|1|10.00
test|1|5.00|0|0" "$(q -c "SELECT mode, shipment_count, total_cost, refund_pending_count, refund_pending_cost
                           FROM mv_daily_shipment_analytics ORDER BY mode")"
sums >"$T/sums_up"
expect_eq "shipments' columns after up" "$(cat "$T/sums_before")" "$(cat "$T/sums_up")"
q >/dev/null <<'SQL' || ss_fail "rows in the new tables"
INSERT INTO refunds (id, shipment_id, status, updated_at, raw) VALUES ('rfnd_1', 'shp_1', 'refunded', now(), '{}');
INSERT INTO pickups (id, status, raw) VALUES ('pickup_1', 'scheduled', '{}');
INSERT INTO scan_forms (id, tracking_codes, raw) VALUES ('sf_1', '["a"]', '{}');
INSERT INTO insurances (id, amount, raw) VALUES ('ins_1', 100, '{}');
INSERT INTO easypost_objects (id, object_type, raw) VALUES ('ca_1', 'CarrierAccount', '{}');
SQL
cols >"$T/cols_up"
ss_pass "up: refund_updated_at and batch columns filled from the rows, new tables, views by mode refresh"

"$MIGRATE" down 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down 0006"; }
for t in refunds pickups scan_forms insurances easypost_objects; do
  [ "$(q -c "SELECT to_regclass('$t') IS NULL")" = t ] || ss_fail "table $t still there after down"
done
expect_eq "shipments and views' columns after down" "$(cat "$T/cols_before")" "$(cols)"
expect_eq "shipments' columns after down" "$(cat "$T/sums_before")" "$(sums)"
refresh_ok || ss_fail "refresh after down"
expect_eq "0002's daily view (every mode, refunds counted)" "2|15.00" \
  "$(q -c "SELECT sum(shipment_count), sum(total_cost) FROM mv_daily_shipment_analytics")"
ss_pass "down: new tables and columns gone, every other column unchanged, the views are 0002's and refresh"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up again"; }
expect_eq "columns after up again" "$(cat "$T/cols_up")" "$(cols)"
refresh_ok || ss_fail "refresh after up again"
ss_pass "up again: the same columns as the first up"

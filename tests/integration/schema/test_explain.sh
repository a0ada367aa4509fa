#!/usr/bin/env bash
# The read API's main queries (the gateway's own forms) use the indexes.  No planner knobs
# are touched: the tables hold 20,000 shipments and 50,020 addresses, ANALYZEd, so the
# planner picks the indexes on its own.
source "$(dirname "$0")/common.sh"
ss_test_migrated_db schema_explain
q -v n=20000 -f "$SS_SOURCE_ROOT/bench/schema/load.sql" >/dev/null || ss_fail "loading 20,000 shipments"

# plan_uses <what> <index or node text> <sql>: EXPLAIN sql, expect the text, and no Seq Scan
# on shipments or addresses.
plan_uses() {
  local what=$1 want=$2 sql=$3 plan
  plan=$(q -c "EXPLAIN $sql") || ss_fail "$what: EXPLAIN failed"
  if ! grep -q -- "$want" <<<"$plan" || grep -qE "Seq Scan on (shipments|addresses)" <<<"$plan"; then
    printf '%s\n' "$plan" >&2
    ss_fail "$what: plan does not use $want"
  fi
  ss_pass "$what uses $want"
}

cols="s.id, s.status, s.carrier, s.service, s.created_at"
page="ORDER BY s.created_at DESC, s.id DESC LIMIT 51"
mid=$(q -c "SELECT created_at, id FROM shipments WHERE created_at IS NOT NULL ORDER BY created_at DESC, id DESC OFFSET 10000 LIMIT 1")
mid_ts=${mid%%|*}; mid_id=${mid##*|}
code=$(q -c "SELECT tracking_code FROM shipments WHERE tracking_code IS NOT NULL ORDER BY id LIMIT 1 OFFSET 777")

plan_uses "newest shipments first" "Index Scan Backward using shipments_created_idx" \
  "SELECT $cols FROM shipments s WHERE s.created_at IS NOT NULL $page"
plan_uses "keyset next page" "Index Scan Backward using shipments_created_idx" \
  "SELECT $cols FROM shipments s WHERE s.created_at IS NOT NULL
     AND (s.created_at, s.id) < ('$mid_ts'::timestamptz, '$mid_id') $page"
plan_uses "filter by a rare status" "shipments_status_created_idx" \
  "SELECT $cols FROM shipments s WHERE s.created_at IS NOT NULL AND s.status = 'return_to_sender' $page"
plan_uses "filter by status, next page" "shipments_status_created_idx" \
  "SELECT $cols FROM shipments s WHERE s.created_at IS NOT NULL AND s.status = 'pre_transit'
     AND (s.created_at, s.id) < ('$mid_ts'::timestamptz, '$mid_id') $page"
plan_uses "filter by carrier and service" "Index" \
  "SELECT $cols FROM shipments s WHERE s.created_at IS NOT NULL AND s.carrier = 'USPS' AND s.service = 'Express' $page"
plan_uses "carrier and service in a date range" "shipments_carrier_service_created_idx" \
  "SELECT $cols FROM shipments s WHERE s.created_at IS NOT NULL AND s.carrier = 'UPS' AND s.service = 'Ground'
     AND s.created_at >= now() - interval '3 days' AND s.created_at < now() - interval '1 day' $page"
plan_uses "filter by tracking code" "shipments_tracking_code_idx" \
  "SELECT $cols FROM shipments s WHERE s.created_at IS NOT NULL AND s.tracking_code = '$code' $page"
plan_uses "address full-text search" "Bitmap Index Scan on addresses_search_idx" \
  "SELECT a.id, a.name FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', 'customer 4242') ORDER BY a.id LIMIT 51"
plan_uses "address usage count" "shipments_to_address_idx" \
  "SELECT count(*) FROM shipments s WHERE s.to_address_id = 'adr_bench_4242'"
plan_uses "shipment by id" "shipments_pkey" "SELECT $cols FROM shipments s WHERE s.id = 'shp_bench_4242'"

# The search really finds by name, company, street and city.
[ "$(q -c "SELECT bool_or(id = 'adr_bench_4242') FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', 'Customer 4242')")" = t ] || ss_fail "search by name"
[ "$(q -c "SELECT count(*) > 0 FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', 'Acme Fulfillment')")" = t ] || ss_fail "search by company"
[ "$(q -c "SELECT count(*) > 0 FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', 'oak springfield')")" = t ] || ss_fail "search by street and city"
ss_pass "full-text search matches name, company, street and city"

#!/usr/bin/env bash
# Migration 0009 (only the selected rate in "rates") with data in it: a database filled by the
# old write path at 0004 (ss-sync-pgbench --baseline --full: 3 rates per shipment, one of them
# selected), migrated to just before 0009.  Up keeps exactly the selected rates, each row
# unchanged; down brings every rate back from shipments.raw, every column equal to before;
# up again is the first up.  Then the new write path stores one rate per shipment and down
# gives those shipments all three.
source "$(dirname "$0")/common.sh"

PGB="$SS_BIN_DIR/ss-sync-pgbench"
GEN="$SS_BIN_DIR/ss-sync-gen"
[ -x "$PGB" ] && [ -x "$GEN" ] || ss_fail "ss-sync-pgbench / ss-sync-gen not built"
DB=$(ss_test_createdb schema_rates) || ss_fail "createdb"
export DATABASE_URL="$DB" DB_URL="$DB"   # q (lib.sh) reads DB_URL
T=$SS_TEST_TMP/rates
mkdir -p "$T/full" "$T/full2"

# rates_sum [where]: "count|md5" of every column of the rates (in id order)
rates_sum() {
  q -c "SELECT count(*), md5(string_agg(to_jsonb(r)::text, '|' ORDER BY r.id))
          FROM (SELECT id, shipment_id, mode, carrier, service, rate, currency, retail_rate,
                       retail_currency, list_rate, list_currency, billing_type, delivery_days,
                       delivery_date, delivery_date_guaranteed, est_delivery_days,
                       carrier_account_id, created_at, updated_at FROM rates) r ${1:-}"
}
selected="WHERE r.id IN (SELECT selected_rate_id FROM shipments)"
# the migrations before 0009, after 0004
before9=$(ls "$MIGRATIONS_DIR"/*.up.sql | xargs -n1 basename | awk '$0 < "0009" && $0 >= "0005"' | wc -l)

"$MIGRATE" up 4 >/dev/null 2>&1 || ss_fail "up 4"
"$GEN" "$T/full" --bench --shipments 200 --tag rf >/dev/null 2>&1 || ss_fail "gen"
"$PGB" --baseline --full "$DB" "$T/full/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "old write path"; }
"$MIGRATE" up "$before9" >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to before 0009"; }
all=$(rates_sum); sel=$(rates_sum "$selected")
expect_eq "3 rates per shipment before 0009" 600 "${all%%|*}"
expect_eq "one selected rate per shipment" 200 "${sel%%|*}"
ss_pass "before 0009: $all (selected $sel)"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up 0009"; }
grep -q 0009_ "$T/out" || ss_fail "0009 not applied: $(cat "$T/out")"
expect_eq "after up: exactly the selected rates, unchanged" "$sel" "$(rates_sum)"
ss_pass "up: the 400 unselected rates gone, the 200 selected ones unchanged"

"$MIGRATE" down 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down 0009"; }
expect_eq "after down: every rate back, every column equal" "$all" "$(rates_sum)"
ss_pass "down: 600 rates, checksum of every column equal to before"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up again"; }
expect_eq "up → down → up" "$sel" "$(rates_sum)"
"$MIGRATE" up >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to the newest"; }

# The new write path: one rate per shipment (the selected one); down gives all three back.
"$GEN" "$T/full2" --bench --shipments 100 --tag rn >/dev/null 2>&1 || ss_fail "gen new"
"$PGB" --full "$DB" "$T/full2/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "new write path"; }
expect_eq "new path: rates per shipment" 100 "$(q -c "SELECT count(*) FROM rates WHERE shipment_id LIKE 'shp\_rn\_%'")"
expect_eq "new path: the stored rate is the selected one" 100 \
  "$(q -c "SELECT count(*) FROM rates r JOIN shipments s ON s.selected_rate_id = r.id WHERE s.id LIKE 'shp\_rn\_%'")"
nmig=$(ls "$MIGRATIONS_DIR"/*.up.sql | xargs -n1 basename | awk '$0 >= "0009"' | wc -l)
"$MIGRATE" down "$nmig" >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down to before 0009"; }
expect_eq "down after the new path: 3 rates per shipment" 300 "$(q -c "SELECT count(*) FROM rates WHERE shipment_id LIKE 'shp\_rn\_%'")"
expect_eq "rebuilt rates equal their shipment's raw" 300 "$(q -c "
  SELECT count(*) FROM rates r JOIN shipments s ON s.id = r.shipment_id
   CROSS JOIN LATERAL jsonb_array_elements(s.raw->'rates') e
   WHERE s.id LIKE 'shp\_rn\_%' AND e->>'id' = r.id AND e->>'carrier' = r.carrier
     AND (e->>'rate')::numeric = r.rate AND (e->>'created_at')::timestamptz = r.created_at")"
ss_pass "new path: the selected rate only; down rebuilds the other two from shipments.raw"

#!/usr/bin/env bash
# Migration 0005 (lean write path) with data in it: a database at 0004 filled by the old
# write path (ss-sync-pgbench --baseline: shipments, trackers with tracking details,
# addresses; and --full: shipments with 3 rates and trackers with 6 details), then
# up 1 → down → up 1 (0005 alone; the later migrations have tests of their own).  Row counts and a checksum of every column of every synced table
# survive: up keeps every column that stays, down brings back the dropped raw copies equal
# to what the old worker wrote (rebuilt from the parents' raw), the foreign key and the
# indexes.  Then rows written by the new path (no raw copies) get their raw back on down.
source "$(dirname "$0")/common.sh"

PGB="$SS_BIN_DIR/ss-sync-pgbench"
GEN="$SS_BIN_DIR/ss-sync-gen"
[ -x "$PGB" ] && [ -x "$GEN" ] || ss_fail "ss-sync-pgbench / ss-sync-gen not built"
DB=$(ss_test_createdb schema_data) || ss_fail "createdb"
export DATABASE_URL="$DB" DB_URL="$DB"   # q (lib.sh) reads DB_URL
T=$SS_TEST_TMP/data
mkdir -p "$T" "$T/mixed" "$T/full" "$T/full2"
tables="addresses parcels shipments rates trackers tracking_events batches easypost_events"

# checksums <file>: "table|column|rows|md5 of the column's values in id order", every column
checksums() {
  for t in $tables; do
    q -c "SELECT '$t', k.key, count(*), md5(string_agg(coalesce(k.value::text, 'NULL'), '|' ORDER BY x.id))
            FROM (SELECT id::text AS id, to_jsonb(t) AS j FROM $t t) x
            CROSS JOIN LATERAL jsonb_each(x.j) k GROUP BY k.key ORDER BY k.key"
    echo "$t|*|$(q -c "SELECT count(*) FROM $t")"
  done >"$1"
}
indexes() { q -c "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"; }

"$MIGRATE" up 4 >/dev/null 2>&1 || ss_fail "up 4"
"$GEN" "$T/mixed" --shipments 300 --dup 0 --ooo 0 --tag md >/dev/null 2>&1 || ss_fail "gen mixed"
cat "$T/mixed/shipments.tsv" "$T/mixed/addresses.tsv" "$T/mixed/trackers.tsv" >"$T/mixed.tsv"
"$GEN" "$T/full" --bench --shipments 200 --tag mf >/dev/null 2>&1 || ss_fail "gen full"
"$PGB" --baseline "$DB" "$T/mixed.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "old write path (mixed)"; }
"$PGB" --baseline --full "$DB" "$T/full/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "old write path (full)"; }
for t in rates parcels tracking_events; do
  n=$(q -c "SELECT count(*) FROM $t WHERE raw IS NOT NULL")
  [ "$n" -gt 0 ] || ss_fail "old write path wrote no $t.raw"
done
[ "$(q -c "SELECT count(*) FROM tracking_events")" -ge 1200 ] || ss_fail "tracking events: $(q -c "SELECT count(*) FROM tracking_events")"
checksums "$T/before"
indexes >"$T/idx_before"
ss_pass "0004 filled by the old write path: $(q -c "SELECT count(*) FROM shipments") shipments, $(q -c "SELECT count(*) FROM rates") rates, $(q -c "SELECT count(*) FROM tracking_events") tracking events"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to 0005"; }
checksums "$T/up"
# Every column that stays is unchanged; the dropped ones are exactly the raw copies.
dropped=$(cut -d'|' -f1,2 "$T/before" | sort >"$T/a"; cut -d'|' -f1,2 "$T/up" | sort >"$T/b"; comm -23 "$T/a" "$T/b" | tr '\n' ' ')
expect_eq "columns dropped by 0005" "parcels|raw rates|raw tracking_events|raw " "$dropped"
[ -z "$(comm -13 "$T/a" "$T/b")" ] || ss_fail "0005 added columns: $(comm -13 "$T/a" "$T/b")"
expect_eq "every remaining column after up" "$(grep -v -e '^parcels|raw|' -e '^rates|raw|' -e '^tracking_events|raw|' "$T/before")" "$(cat "$T/up")"
[ "$(q -c "SELECT count(*) FROM pg_constraint WHERE conname = 'rates_shipment_id_fkey'")" = 0 ] || ss_fail "rates FK still there"
expect_eq "indexes dropped by 0005" "rates_shipment_idx shipments_batch_idx trackers_shipment_idx trackers_tracking_code_idx tracking_events_pkey " \
  "$(indexes | comm -23 "$T/idx_before" - | tr '\n' ' ')"
ss_pass "up: counts and checksums of every remaining column unchanged, raw copies, rates FK, 5 indexes gone"

"$MIGRATE" down >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down to 0004"; }
checksums "$T/down"
expect_eq "every column after down (raw copies rebuilt)" "$(cat "$T/before")" "$(cat "$T/down")"
expect_eq "indexes after down" "$(cat "$T/idx_before")" "$(indexes)"
[ "$(q -c "SELECT convalidated FROM pg_constraint WHERE conname = 'rates_shipment_id_fkey'")" = t ] || ss_fail "rates FK not back"
ss_pass "down: counts and checksums of every column equal to 0004's, FK and indexes back"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up again"; }
checksums "$T/up2"
expect_eq "up → down → up" "$(cat "$T/up")" "$(cat "$T/up2")"
ss_pass "up again: same as the first up"

# On through every later migration (0007/0008: the tables become partitioned) and back to
# 0005: every column of every synced table unchanged both ways.
"$MIGRATE" up >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to the latest"; }
checksums "$T/latest"
# Only the columns 0005 has: later migrations add their own (0006: shipments' refund and
# batch gates, filled from the rows), checked by their own tests.
at_0005() { awk -F'|' 'NR == FNR { k[$1 "|" $2] = 1; next } ($1 "|" $2) in k' "$T/up2" "$1"; }
expect_eq "every column after the later migrations" "$(cat "$T/up2")" "$(at_0005 "$T/latest")"
while [ "$(q -c "SELECT max(version) FROM schema_migrations")" -gt 5 ]; do
  "$MIGRATE" down >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down to 0005"; }
done
checksums "$T/back"
expect_eq "every column back at 0005" "$(cat "$T/up2")" "$(cat "$T/back")"
ss_pass "later migrations up and down: every column unchanged"

# The new write path writes no raw copies (embedded addresses: raw NULL); down rebuilds them.
# It writes the columns of the later migrations too: up to the newest, then down to 0004.
"$MIGRATE" up >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to the newest"; }
"$GEN" "$T/full2" --bench --shipments 100 --tag mn >/dev/null 2>&1 || ss_fail "gen new"
"$PGB" --full "$DB" "$T/full2/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "new write path"; }
n=$(q -c "SELECT count(*) FROM addresses WHERE id LIKE 'adr\_mn\_%' AND raw IS NULL")
[ "$n" -gt 0 ] || ss_fail "the new path stored embedded addresses' raw"
nmig=$(ls "$MIGRATIONS_DIR"/*.up.sql | wc -l)
"$MIGRATE" down $((nmig - 4)) >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down to 0004 after new rows"; }
for t in rates parcels tracking_events addresses; do
  n=$(q -c "SELECT count(*) FROM $t WHERE raw IS NULL")
  expect_eq "$t rows without raw after down" 0 "$n"
done
n=$(q -c "SELECT count(*) FROM rates r JOIN shipments s ON s.id = r.shipment_id
           WHERE r.id LIKE 'rate\_mn\_%' AND r.raw->>'carrier' = r.carrier AND r.raw->>'rate' = r.rate::text")
expect_eq "new rates' raw rebuilt from their shipment" 300 "$n"
ss_pass "rows of the new path get their raw copies back on down"

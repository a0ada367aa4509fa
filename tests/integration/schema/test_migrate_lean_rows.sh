#!/usr/bin/env bash
# Migration 0012 (tracking_events rebuilt: detail_hash as bigint, fixed-width columns first,
# tracking_events_shipment_idx on shipment_id alone; addresses.search computed, not stored)
# with data in it: a database at 0011 filled by the write path (ss-sync-pgbench --full: a
# tracker with 6 tracking events per shipment, 2 addresses) plus events in the other
# partitions (next month, the default one: no datetime).  Up keeps every event in its
# partition with every column equal (detail_hash: 64 bits of the same md5), the same
# partitions, the key and index names 0007's down expects on the legacy partition, every
# address equal and `a.search` the same document, found through addresses_search_idx; the
# write path stores new details and a redelivered stream adds nothing; down gives 0011's
# columns back, every row equal; down through 0007 and up again work.
source "$(dirname "$0")/common.sh"

PGB="$SS_BIN_DIR/ss-sync-pgbench"
GEN="$SS_BIN_DIR/ss-sync-gen"
[ -x "$PGB" ] && [ -x "$GEN" ] || ss_fail "ss-sync-pgbench / ss-sync-gen not built"
DB=$(ss_test_createdb schema_lean_rows) || ss_fail "createdb"
export DATABASE_URL="$DB" DB_URL="$DB"   # q (lib.sh) reads DB_URL
T=$SS_TEST_TMP/lean_rows
mkdir -p "$T/a" "$T/b"

# events_sum: "count|md5" of every column of every tracking event with its partition, in id
# order, but detail_hash (its type changes; hash_bad checks it against the columns)
events_sum() {
  q -c "SELECT count(*), md5(string_agg(concat_ws('|', e.tableoid::regclass, e.id, e.tracker_id,
               e.shipment_id, e.occurred_at, e.status, e.status_detail, e.message, e.description,
               e.source, e.carrier_code, e.city, e.state, e.country, e.zip, e.inserted_at),
               E'\n' ORDER BY e.id))
          FROM tracking_events e"
}
# hash_bad: events whose detail_hash is neither the md5 of their text columns (0011) nor its
# first 64 bits (0012): 0 expected
hash_bad() {
  q -c "SELECT count(*) FROM (SELECT detail_hash::text AS h, md5(coalesce(status, '') || chr(31) ||
               coalesce(status_detail, '') || chr(31) || coalesce(message, '') || chr(31) ||
               coalesce(description, '')) AS m FROM tracking_events) e
         WHERE h IS DISTINCT FROM m AND h IS DISTINCT FROM (('x' || left(m, 16))::bit(64)::bigint)::text"
}
# addr_sum: "count|md5" of every column of addresses but search; addr_search: the search
# document of every address and what a search finds
addr_sum() {
  q -c "SELECT count(*), md5(string_agg(concat_ws('|', id, mode, name, company, street1, street2, city,
               state, zip, country, phone, email, residential, carrier_facility, federal_tax_id,
               state_tax_id, verified, created_at, updated_at, raw, synced_at), E'\n' ORDER BY id))
          FROM addresses"
}
addr_search() {
  q -c "SELECT md5(string_agg(a.search::text, E'\n' ORDER BY a.id)) || ' ' ||
               (SELECT count(*) FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', 'Townsend'))
          FROM addresses a"
}
parts() { q -c "SELECT string_agg(c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid), E'\n' ORDER BY c.relname)
                  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'tracking_events'::regclass"; }
idx() { q -c "SELECT string_agg(indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid), E'\n' ORDER BY indexrelid::regclass::text)
                FROM pg_index WHERE indrelid IN ('tracking_events'::regclass, 'tracking_events_legacy'::regclass)"; }
coltype() { q -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tracking_events'::regclass AND attname = 'detail_hash'"; }
before12=$(ls "$MIGRATIONS_DIR"/*.up.sql | xargs -n1 basename | awk '$0 < "0012"' | wc -l)

"$MIGRATE" up "$before12" >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to 0011"; }
"$GEN" "$T/a" --bench --shipments 200 --tag la >/dev/null 2>&1 || ss_fail "gen"
"$PGB" --full "$DB" "$T/a/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "write path at 0011"; }
# events in next month's partition and in the default one (no datetime), NULLs included
q -c "INSERT INTO tracking_events (tracker_id, shipment_id, occurred_at, status, message, description, city)
      VALUES ('trk_full_0', 'shp_la_000001', now() + interval '1 month', 'in_transit', 'next month', NULL, 'X'),
             ('trk_full_0', NULL, NULL, 'unknown', NULL, NULL, NULL),
             ('trk_full_1', 'shp_la_000002', now() - interval '1 minute', 'delivered', 'd', 'desc', NULL)" >/dev/null \
  || ss_fail "insert events"
sum=$(events_sum); p=$(parts); asum=$(addr_sum); asearch=$(addr_search)
[ "${asearch##* }" -gt 0 ] || ss_fail "at 0011: the search finds no address: $asearch"
expect_eq "events at 0011" 1203 "${sum%%|*}"
[ "$(q -c "SELECT count(DISTINCT tableoid) FROM tracking_events")" -ge 3 ] || ss_fail "rows in 3 partitions expected"
expect_eq "detail_hash at 0011" text "$(coltype)"
ss_pass "at 0011: $sum in $(echo "$p" | wc -l) partitions"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up 0012"; }
grep -q 0012_ "$T/out" || ss_fail "0012 not applied: $(cat "$T/out")"
expect_eq "after up: detail_hash is bigint" bigint "$(coltype)"
expect_eq "after up: every event in its partition, every column equal" "$sum" "$(events_sum)"
expect_eq "after up: every detail_hash is its md5" 0 "$(hash_bad)"
expect_eq "after up: the same partitions" "$p" "$(parts)"
expect_eq "after up: the keys, with 0007's names on the legacy partition" \
"tracking_events_detail_key CREATE UNIQUE INDEX tracking_events_detail_key ON ONLY public.tracking_events USING btree (tracker_id, occurred_at, detail_hash) NULLS NOT DISTINCT
tracking_events_legacy_detail_key CREATE UNIQUE INDEX tracking_events_legacy_detail_key ON public.tracking_events_legacy USING btree (tracker_id, occurred_at, detail_hash) NULLS NOT DISTINCT
tracking_events_legacy_shipment_idx CREATE INDEX tracking_events_legacy_shipment_idx ON public.tracking_events_legacy USING btree (shipment_id) WHERE (shipment_id IS NOT NULL)
tracking_events_shipment_idx CREATE INDEX tracking_events_shipment_idx ON ONLY public.tracking_events USING btree (shipment_id) WHERE (shipment_id IS NOT NULL)" "$(idx)"
expect_eq "after up: the id sequence still the column's" public.tracking_events_id_seq \
  "$(q -c "SELECT pg_get_serial_sequence('tracking_events', 'id')")"
expect_eq "after up: the fixed-width columns first" "id occurred_at inserted_at detail_hash tracker_id" \
  "$(q -c "SELECT string_agg(attname, ' ' ORDER BY attnum) FROM (SELECT attname, attnum FROM pg_attribute WHERE attrelid = 'tracking_events_legacy'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 5) a")"
ss_pass "up: detail_hash bigint, $(echo "$p" | wc -l) partitions, every row equal"
expect_eq "after up: addresses.search is no column" 0 \
  "$(q -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'addresses'::regclass AND attname = 'search' AND NOT attisdropped")"
expect_eq "after up: every address equal" "$asum" "$(addr_sum)"
expect_eq "after up: a.search the same document, the same matches" "$asearch" "$(addr_search)"
plan=$(q -c "SET enable_seqscan = off; EXPLAIN SELECT a.id FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', 'Townsend')")
echo "$plan" | grep -q "Bitmap Index Scan on addresses_search_idx" || ss_fail "after up: the search does not use addresses_search_idx: $plan"
ss_pass "up: addresses.search computed by search(addresses), same documents, indexed"

# The write path on the rebuilt table: a redelivered stream adds nothing, a new one adds.
"$PGB" --full "$DB" "$T/a/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "redelivery after 0012"; }
expect_eq "after up: a redelivered stream adds no event" "$sum" "$(events_sum)"
"$GEN" "$T/b" --shipments 100 --dup 0 --ooo 0 --tag lb >/dev/null 2>&1 || ss_fail "gen b"
cat "$T/b/shipments.tsv" "$T/b/trackers.tsv" >"$T/b/all.tsv"
"$PGB" "$DB" "$T/b/all.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "write path after 0012"; }
sum2=$(events_sum)
[ "${sum2%%|*}" -gt 1203 ] || ss_fail "write path after 0012: no event stored"
expect_eq "after up: new events' detail_hash is their md5" 0 "$(hash_bad)"
expect_eq "after up: ids from the sequence, no duplicate" 0 \
  "$(q -c "SELECT count(*) - count(DISTINCT id) FROM tracking_events")"
# the read API's shipment detail (services/gateway/readapi.c) finds a shipment's events
expect_eq "read API: the shipment's events" 7 \
  "$(q -c "SELECT count(*) FROM shipments s JOIN tracking_events e ON e.shipment_id = s.id OR (s.tracker_id IS NOT NULL AND e.tracker_id = s.tracker_id) WHERE s.id = 'shp_la_000001'")"
asum2=$(addr_sum); asearch2=$(addr_search)
ss_pass "write path after 0012: $((${sum2%%|*} - 1203)) events added, a redelivery none"

"$MIGRATE" down 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down 0012"; }
expect_eq "after down: detail_hash is text" text "$(coltype)"
expect_eq "after down: addresses.search stored again" "tsvector s" \
  "$(q -c "SELECT format_type(atttypid, atttypmod) || ' ' || attgenerated::text FROM pg_attribute WHERE attrelid = 'addresses'::regclass AND attname = 'search' AND NOT attisdropped")"
expect_eq "after down: every address equal" "$asum2" "$(addr_sum)"
expect_eq "after down: a.search the same document, the same matches" "$asearch2" "$(addr_search)"
expect_eq "after down: every event in its partition, every column equal" "$sum2" "$(events_sum)"
expect_eq "after down: every detail_hash is its md5" 0 "$(hash_bad)"
expect_eq "after down: the same partitions" "$p" "$(parts)"
expect_eq "after down: 0011's keys" \
"tracking_events_detail_key CREATE UNIQUE INDEX tracking_events_detail_key ON ONLY public.tracking_events USING btree (tracker_id, occurred_at, detail_hash) NULLS NOT DISTINCT
tracking_events_legacy_detail_key CREATE UNIQUE INDEX tracking_events_legacy_detail_key ON public.tracking_events_legacy USING btree (tracker_id, occurred_at, detail_hash) NULLS NOT DISTINCT
tracking_events_legacy_shipment_idx CREATE INDEX tracking_events_legacy_shipment_idx ON public.tracking_events_legacy USING btree (shipment_id, occurred_at) WHERE (shipment_id IS NOT NULL)
tracking_events_shipment_idx CREATE INDEX tracking_events_shipment_idx ON ONLY public.tracking_events USING btree (shipment_id, occurred_at) WHERE (shipment_id IS NOT NULL)" "$(idx)"
"$PGB" --full "$DB" "$T/a/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "redelivery after down"; }
expect_eq "after down: a redelivered stream adds no event" "$sum2" "$(events_sum)"
ss_pass "down: detail_hash text, every row equal, 0011's indexes"

# further down: 0007's down finds the legacy partition's names; then up to the newest
before7=$(ls "$MIGRATIONS_DIR"/*.up.sql | xargs -n1 basename | awk '$0 >= "0007" && $0 < "0012"' | wc -l)
"$MIGRATE" down "$before7" >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down through 0007"; }
expect_eq "down through 0007: every event kept" "${sum2%%|*}" "$(q -c "SELECT count(*) FROM tracking_events")"
"$MIGRATE" up >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to the newest"; }
expect_eq "up again: detail_hash bigint" bigint "$(coltype)"
expect_eq "up again: a.search the same document, the same matches" "$asearch2" "$(addr_search)"
expect_eq "up again: every event kept" "${sum2%%|*}" "$(q -c "SELECT count(*) FROM tracking_events")"
expect_eq "up again: every detail_hash is its md5" 0 "$(hash_bad)"
ss_pass "down through 0007 and up again"

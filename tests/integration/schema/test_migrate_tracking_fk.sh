#!/usr/bin/env bash
# Migration 0010 (tracking_events without its foreign key to trackers) with data in it: a
# database at 0009 filled by the write path (ss-sync-pgbench --full: a tracker with 6 tracking
# events per shipment).  Up drops the key on the table and every partition and changes no
# row; the write path goes on without it; down brings back exactly the keys 0007 left (names,
# definitions, every partition) and changes no row; a tracking event without its tracker
# stops the down migration with a clear message and changes nothing; up again.
source "$(dirname "$0")/common.sh"

PGB="$SS_BIN_DIR/ss-sync-pgbench"
GEN="$SS_BIN_DIR/ss-sync-gen"
[ -x "$PGB" ] && [ -x "$GEN" ] || ss_fail "ss-sync-pgbench / ss-sync-gen not built"
DB=$(ss_test_createdb schema_tracking_fk) || ss_fail "createdb"
export DATABASE_URL="$DB" DB_URL="$DB"   # q (lib.sh) reads DB_URL
T=$SS_TEST_TMP/tracking_fk
mkdir -p "$T/a" "$T/b"

# events_sum: "count|md5" of every column of tracking_events (in id order)
events_sum() {
  q -c "SELECT count(*), md5(string_agg(to_jsonb(e)::text, '|' ORDER BY e.id)) FROM tracking_events e"
}
# fkeys: every foreign key of tracking_events and its partitions
fkeys() {
  q -c "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
          FROM pg_constraint WHERE contype = 'f' AND confrelid = 'trackers'::regclass
         ORDER BY conrelid::regclass::text, conname"
}
before10=$(ls "$MIGRATIONS_DIR"/*.up.sql | xargs -n1 basename | awk '$0 < "0010"' | wc -l)

"$MIGRATE" up "$before10" >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up to 0009"; }
"$GEN" "$T/a" --bench --shipments 200 --tag fa >/dev/null 2>&1 || ss_fail "gen"
"$PGB" --full "$DB" "$T/a/shipments.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "write path at 0009"; }
sum=$(events_sum); keys=$(fkeys)
expect_eq "6 tracking events per shipment" 1200 "${sum%%|*}"
[ "$(echo "$keys" | grep -c 'tracking_events_tracker_id_fkey FOREIGN KEY (tracker_id) REFERENCES trackers(id) ON DELETE CASCADE')" -ge 4 ] \
  || ss_fail "before 0010: the key on the table and its partitions expected: $keys"
echo "$keys" | grep -q '^tracking_events_legacy tracking_events_legacy_tracker_id_fkey ' || ss_fail "legacy key: $keys"
ss_pass "at 0009: $sum, $(echo "$keys" | wc -l) foreign keys"

"$MIGRATE" up 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up 0010"; }
grep -q 0010_ "$T/out" || ss_fail "0010 not applied: $(cat "$T/out")"
expect_eq "after up: no foreign key to trackers" "" "$(fkeys)"
expect_eq "after up: every tracking event unchanged" "$sum" "$(events_sum)"
# the mixed stream of other ids (the --full trackers of "a" would be duplicates)
"$GEN" "$T/b" --shipments 100 --dup 0 --ooo 0 --tag fb >/dev/null 2>&1 || ss_fail "gen b"
cat "$T/b/shipments.tsv" "$T/b/trackers.tsv" >"$T/b/all.tsv"
"$PGB" "$DB" "$T/b/all.tsv" 100 >/dev/null 2>"$T/pgb.log" || { cat "$T/pgb.log" >&2; ss_fail "write path after 0010"; }
expect_eq "write path after 0010: every event has its tracker" 0 \
  "$(q -c "SELECT count(*) FROM tracking_events e WHERE NOT EXISTS (SELECT 1 FROM trackers t WHERE t.id = e.tracker_id)")"
added=$(q -c "SELECT count(*) FROM tracking_events WHERE tracker_id LIKE 'trk\_fb\_%'")
[ "$added" -gt 0 ] || ss_fail "write path after 0010: no tracking event stored"
sum2=$(events_sum)
expect_eq "write path after 0010: the events added, the others kept" "$((1200 + added))" "${sum2%%|*}"
ss_pass "up: the keys gone, rows unchanged; the write path stores $added more events, none orphaned"

# An orphan stops the down migration, with a message, and changes nothing.
q -c "INSERT INTO tracking_events (tracker_id, occurred_at, status) VALUES ('trk_missing', now(), 'unknown')" >/dev/null
"$MIGRATE" down 1 >"$T/out" 2>&1 && ss_fail "down with an orphan must fail"
grep -q "1 tracking events have no tracker row" "$T/out" || ss_fail "down's message: $(cat "$T/out")"
expect_eq "failed down: still no key" "" "$(fkeys)"
q -c "DELETE FROM tracking_events WHERE tracker_id = 'trk_missing'" >/dev/null
ss_pass "down refused while a tracking event has no tracker"

"$MIGRATE" down 1 >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "down 0010"; }
expect_eq "after down: the keys 0007 left, on every partition" "$keys" "$(fkeys)"
expect_eq "after down: every tracking event unchanged" "$sum2" "$(events_sum)"
q -c "DELETE FROM trackers WHERE id = 'trk_full_0'" >/dev/null || ss_fail "delete a tracker"
expect_eq "after down: ON DELETE CASCADE again" "$((1200 + added - 6))" "$(q -c "SELECT count(*) FROM tracking_events")"
ss_pass "down: $(echo "$keys" | wc -l) foreign keys as before, rows unchanged, cascade works"

"$MIGRATE" up >"$T/out" 2>&1 || { cat "$T/out" >&2; ss_fail "up again"; }
expect_eq "up → down → up: no key" "" "$(fkeys)"
ss_pass "up again"

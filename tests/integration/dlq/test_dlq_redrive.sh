#!/usr/bin/env bash
# A poison message fixed by a migration and redriven (deploy/README.md, "Dead-letter
# topic: redrive"): the deployed schema refuses a shipment (reference longer than
# the column allows: SQLSTATE 22001), the sync worker dead-letters it and moves on;
# a migration (test-local SQL) widens the column; `ss-kafkactl dlq redrive` puts
# it back on its topic; the worker applies it once; `dlq list` shows it redriven;
# a second redrive sends nothing; a copy sent twice anyway (a crash between the
# copy and its DLQ marker) changes nothing.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
for b in shipstream-sync-worker shipstream-migrate; do
  [ -x "$SS_BIN_DIR/$b" ] || { echo "SKIP: $b is not built"; exit 77; }
done

DB_URL=$(ss_test_createdb dlq_redrive) || ss_fail "createdb"
DATABASE_URL="$DB_URL" MIGRATIONS_DIR="$SS_SOURCE_ROOT/migrations" "$SS_BIN_DIR/shipstream-migrate" up \
  >"$SS_TEST_TMP/migrate.log" 2>&1 || { cat "$SS_TEST_TMP/migrate.log"; ss_fail "migrate up"; }
q() { ss_psql "$DB_URL" -At -c "$1"; }
# The schema as deployed: a column narrower than what EasyPost sends.
q "ALTER TABLE shipments ALTER COLUMN reference TYPE varchar(16)" || ss_fail "narrow column"

PREFIX=$(ss_test_prefix)
ss_test_create_topics "$PREFIX" 3 || ss_fail "topics"
dlq() { ss_kafkactl dlq --prefix "$PREFIX" "$@"; }
TAG="t$$"
GROUP="dlq-test-$$"
SW_PORT=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/worker.log" env DATABASE_URL="$DB_URL" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" KAFKA_GROUP_ID="$GROUP" LISTEN="127.0.0.1:$SW_PORT" LOG_FORMAT=text \
  SYNC_RETRY_MAX_MS=2000 KAFKA_SESSION_TIMEOUT_MS=6000 KAFKA_HEARTBEAT_INTERVAL_MS=1000 \
  "$SS_BIN_DIR/shipstream-sync-worker" >/dev/null
ss_wait_for 15 curl -fsS "http://127.0.0.1:$SW_PORT/health" || ss_fail "worker did not start"

envelope() { # <n> <shipment id> <reference>
  printf '{"schema_version":1,"event_id":"evt_%s_%s","type":"shipment.updated","source":"webhook","object_type":"Shipment","object_id":"%s","updated_at":"2025-03-01T10:00:00Z","received_at":"2025-03-01T10:00:01Z","request_id":null,"object":{"id":"%s","object":"Shipment","mode":"test","status":"unknown","reference":"%s","created_at":"2025-03-01T09:00:00Z","updated_at":"2025-03-01T10:00:00Z"}}' \
    "$TAG" "$1" "$2" "$2" "$3"
}
BAD="shp_${TAG}_long"; GOOD="shp_${TAG}_ok"
LONGREF="order-2025-03-01-customer-4711-gift-wrapped"
{
  printf '%s\t%s\n' "$GOOD" "$(envelope 1 "$GOOD" short-ref)"
  printf '%s\t%s\n' "$BAD" "$(envelope 2 "$BAD" "$LONGREF")"
} >"$SS_TEST_TMP/in.tsv"
ss_kafkactl produce -t "${PREFIX}shipments" <"$SS_TEST_TMP/in.tsv" 2>/dev/null || ss_fail "produce"

offsets_applied() { # <n>: kafka_offsets of the shipments topic sum to n
  [ "$(q "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE consumer_group = '$GROUP' AND topic = '${PREFIX}shipments'")" = "$1" ]
}
ss_wait_for 60 offsets_applied 2 || ss_fail "the worker did not move past both messages"
[ "$(q "SELECT count(*) FROM shipments WHERE id = '$GOOD'")" = 1 ] || ss_fail "good shipment missing"
[ "$(q "SELECT count(*) FROM shipments WHERE id = '$BAD'")" = 0 ] || ss_fail "poison shipment applied"
dlq_has() { [ "$(dlq list 2>/dev/null | tail -n +2 | wc -l)" = "$1" ]; }
ss_wait_for 30 dlq_has 1 || ss_fail "DLQ does not hold exactly 1 record: $(dlq list 2>&1)"
dlq list >"$SS_TEST_TMP/list1.tsv" 2>"$SS_TEST_TMP/list1.err" || ss_fail "dlq list"
cat "$SS_TEST_TMP/list1.tsv"
IFS=$'\t' read -r part off key reason otopic _ _ failed_at rd_at rd_to < <(tail -n +2 "$SS_TEST_TMP/list1.tsv")
[ "$key" = "$BAD" ] || ss_fail "DLQ key $key"
[[ "$reason" == sqlstate_22001* ]] || ss_fail "reason $reason, expected sqlstate_22001"
[ "$otopic" = "${PREFIX}shipments" ] || ss_fail "original_topic $otopic"
[ "$rd_at" = "-" ] && [ "$rd_to" = "-" ] || ss_fail "record shown redriven before any redrive"
[ "$(dlq list --reason sqlstate_22001 2>/dev/null | tail -n +2 | wc -l)" = 1 ] || ss_fail "--reason filter"
[ "$(dlq list --reason invalid_json 2>/dev/null | tail -n +2 | wc -l)" = 0 ] || ss_fail "--reason filter keeps others"
[ "$(dlq list --since 1h 2>/dev/null | tail -n +2 | wc -l)" = 1 ] || ss_fail "--since 1h"
[ "$(dlq list --since 2099-01-01T00:00:00Z 2>/dev/null | tail -n +2 | wc -l)" = 0 ] || ss_fail "--since future"
dlq show "$part:$off" >"$SS_TEST_TMP/show.txt" || ss_fail "dlq show"
grep -q "^reason: sqlstate_22001" "$SS_TEST_TMP/show.txt" && grep -q "$LONGREF" "$SS_TEST_TMP/show.txt" ||
  { cat "$SS_TEST_TMP/show.txt"; ss_fail "dlq show lacks the reason or the value"; }
ss_pass "poison dead-lettered (reason ${reason%%:*}, failed_at $failed_at); list filters and show work"

# Redriving before the fix would only dead-letter it again; --dry-run touches nothing.
dlq redrive --dry-run >"$SS_TEST_TMP/dry.out" 2>&1 || { cat "$SS_TEST_TMP/dry.out"; ss_fail "dry run"; }
grep -q "^would redrive	$part	$off	$BAD" "$SS_TEST_TMP/dry.out" || { cat "$SS_TEST_TMP/dry.out"; ss_fail "dry run does not name the record"; }
[ "$(ss_kafkactl offsets -t "${PREFIX}shipments" --sum)" = 2 ] || ss_fail "dry run produced to shipments"
[ "$(ss_kafkactl offsets -t "${PREFIX}dlq" --sum)" = 1 ] || ss_fail "dry run wrote to the DLQ"
ss_pass "redrive --dry-run names the record and produces nothing"

# The migration that fixes it (test-local, as a real one would be a file in migrations/).
q "ALTER TABLE shipments ALTER COLUMN reference TYPE text" || ss_fail "migration"

dlq redrive --reason sqlstate_22001 >"$SS_TEST_TMP/r1.out" 2>"$SS_TEST_TMP/r1.err" || { cat "$SS_TEST_TMP/r1.out" "$SS_TEST_TMP/r1.err"; ss_fail "redrive"; }
cat "$SS_TEST_TMP/r1.out" "$SS_TEST_TMP/r1.err"
[ "$(grep -c '^redriven	' "$SS_TEST_TMP/r1.out")" = 1 ] || ss_fail "redrive did not print exactly one record"
grep -q "redrove 1 message(s)" "$SS_TEST_TMP/r1.err" || ss_fail "redrive count"
ss_wait_for 60 offsets_applied 3 || ss_fail "the worker did not read the redriven copy"
[ "$(q "SELECT reference FROM shipments WHERE id = '$BAD'")" = "$LONGREF" ] || ss_fail "redriven shipment not applied"
[ "$(q "SELECT count(*) FROM processed_events WHERE event_id = 'evt_${TAG}_2'")" = 1 ] || ss_fail "event id not recorded once"
[ "$(ss_kafkactl offsets -t "${PREFIX}dlq" --sum)" = 2 ] || ss_fail "DLQ should hold the record and its marker"
ss_pass "after the migration: redriven once, applied (reference $LONGREF), event recorded once"

# The copy carries where it came from.
ss_kafkactl consume -t "${PREFIX}shipments" --until-end --headers --timeout 20 >"$SS_TEST_TMP/shp.tsv"
grep "redriven_from_dlq_offset=$off" "$SS_TEST_TMP/shp.tsv" | grep -q "redriven_from_dlq_topic=${PREFIX}dlq" ||
  { cut -c1-400 "$SS_TEST_TMP/shp.tsv"; ss_fail "redriven copy lacks its provenance headers"; }

# The DLQ record says so.
dlq list >"$SS_TEST_TMP/list2.tsv" 2>/dev/null || ss_fail "dlq list after redrive"
cat "$SS_TEST_TMP/list2.tsv"
IFS=$'\t' read -r p2 o2 _ _ _ _ _ _ rd_at rd_to < <(tail -n +2 "$SS_TEST_TMP/list2.tsv")
[ "$p2:$o2" = "$part:$off" ] || ss_fail "list shows another record"
[ "$rd_at" != "-" ] && [[ "$rd_to" == "${PREFIX}shipments/"* ]] || ss_fail "record not shown redriven: $rd_at $rd_to"
ss_pass "dlq list shows the record redriven at $rd_at to $rd_to"

# Twice is once.
synced=$(q "SELECT synced_at FROM shipments WHERE id = '$BAD'")
dlq redrive >"$SS_TEST_TMP/r2.out" 2>"$SS_TEST_TMP/r2.err" || { cat "$SS_TEST_TMP/r2.err"; ss_fail "second redrive"; }
cat "$SS_TEST_TMP/r2.err"
[ "$(grep -c '^redriven	' "$SS_TEST_TMP/r2.out")" = 0 ] || ss_fail "second redrive sent something"
grep -q "redrove 0 message(s); skipped 1 already redriven" "$SS_TEST_TMP/r2.err" || ss_fail "second redrive summary"
[ "$(ss_kafkactl offsets -t "${PREFIX}shipments" --sum)" = 3 ] || ss_fail "second redrive produced"
ss_pass "a second redrive sends nothing"

# A crash between the copy and its marker would send the copy again: harmless.
grep "redriven_from_dlq_offset=$off" "$SS_TEST_TMP/shp.tsv" | cut -f3,4 |
  ss_kafkactl produce -t "${PREFIX}shipments" 2>/dev/null || ss_fail "produce the copy again"
ss_wait_for 60 offsets_applied 4 || ss_fail "the worker did not read the repeated copy"
[ "$(q "SELECT synced_at FROM shipments WHERE id = '$BAD'")" = "$synced" ] || ss_fail "the repeated copy was applied again"
[ "$(q "SELECT count(*) FROM processed_events WHERE event_id = 'evt_${TAG}_2'")" = 1 ] || ss_fail "processed_events"
[ "$(ss_kafkactl offsets -t "${PREFIX}dlq" --sum)" = 2 ] || ss_fail "the repeat was dead-lettered"
ss_pass "the same copy delivered twice is applied once (processed_events)"

#!/usr/bin/env bash
# Monthly partitions (migration 0007), in the harness's PostgreSQL:
#   partitions_migrate_lock_ms        0007 + 0008 up over BENCH_PART_EVENTS tracking events
#                                     (default 1,200,000 over 12 months) and a quarter as many
#                                     easypost_events: each migration is one transaction
#                                     holding ACCESS EXCLUSIVE on its table, so this is the
#                                     longest a writer or reader of them waits (0007 and 0008
#                                     separately on stderr);
#                                     baseline: copying the same tracking events (INSERT ...
#                                     SELECT into a copy of the table, what a rewrite would hold)
#   partitions_drop_month_ms          one month of tracking events (BENCH_PART_MONTH_EVENTS,
#                                     default 100,000) detached and dropped (what retention
#                                     does); baseline: DELETE of an identical month
#   partitions_delete_vacuum_ms       the VACUUM that gives the DELETE's space back (DELETE's
#                                     full cost is both); baseline: the DELETE
# Needs SS_TEST_DATABASE_URL (run inside tests/integration/harness.sh).
set -euo pipefail
: "${SS_TEST_DATABASE_URL:?run inside tests/integration/harness.sh}"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${BENCH_PART_EVENTS:-1200000}
K=${BENCH_PART_MONTH_EVENTS:-100000}
MIGRATE="${SS_BIN_DIR:-$ROOT/build/bin}/shipstream-migrate"
[ -x "$MIGRATE" ] || { echo "bench/schema/partitions: $MIGRATE not built" >&2; exit 1; }

psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
admin_url=$SS_TEST_DATABASE_URL
db_url="${admin_url%/*}/bench_partitions"
psql_q -d "$admin_url" -c "DROP DATABASE IF EXISTS bench_partitions WITH (FORCE)" -c "CREATE DATABASE bench_partitions"
q() { psql_q -d "$db_url" "$@"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
mig() { DATABASE_URL="$db_url" MIGRATIONS_DIR="$ROOT/migrations" LOG_LEVEL=warn "$MIGRATE" "$@" >&2; }

mig up
while [ "$(q -c "SELECT max(version) FROM schema_migrations")" -ge 7 ]; do mig down; done # before 0007

echo "bench/schema/partitions: loading $N tracking events, $((N / 4)) events ..." >&2
q -c "INSERT INTO trackers (id, created_at) SELECT 'trk_' || g, now() FROM generate_series(1, $((N / 6))) g" \
  -c "INSERT INTO tracking_events (tracker_id, shipment_id, occurred_at, status, status_detail, message, city, state, country, zip, source, carrier_code)
      SELECT 'trk_' || (g % $((N / 6)) + 1), 'shp_' || (g % $((N / 6)) + 1),
             date_trunc('month', now()) - interval '12 months' + (g::float8 / $N) * interval '12 months',
             (ARRAY['pre_transit','in_transit','out_for_delivery','delivered'])[g % 4 + 1], 'arrived_at_facility',
             'Arrived at USPS Regional Facility ' || (g % 97), 'CHICAGO', 'IL', 'US', '606' || (g % 90 + 10), 'USPS', 'AF'
        FROM generate_series(1, $N) g" \
  -c "INSERT INTO easypost_events (id, description, object_type, object_id, created_at, updated_at, payload)
      SELECT 'evt_' || g, 'tracker.updated', 'Tracker', 'trk_' || g,
             date_trunc('month', now()) - interval '12 months' + (g::float8 / $((N / 4))) * interval '12 months', now(),
             jsonb_build_object('id', 'evt_' || g, 'description', 'tracker.updated', 'result', jsonb_build_object('id', 'trk_' || g, 'status', 'in_transit'))
        FROM generate_series(1, $((N / 4))) g" \
  -c "VACUUM ANALYZE tracking_events" -c "VACUUM ANALYZE easypost_events"
size=$(q -c "SELECT pg_size_pretty(pg_total_relation_size('tracking_events') + pg_total_relation_size('easypost_events'))")

# The read API's tracking-events lookup (one shipment's events, services/gateway/readapi.c),
# LOOKUPS times in one backend: plain table now, partitioned below.
LOOKUPS=${BENCH_PART_LOOKUPS:-20000}
lookups() {
  local t0; t0=$(now_ms)
  q -c "DO \$\$ DECLARE n bigint; BEGIN
          FOR i IN 1..$LOOKUPS LOOP
            SELECT count(*) INTO n FROM (SELECT e.status, e.occurred_at FROM tracking_events e
              WHERE e.shipment_id = 'shp_' || (i * 7919 % $((N / 6)) + 1) ORDER BY e.occurred_at, e.id) x;
          END LOOP; END \$\$"
  echo $(( ($(now_ms) - t0) * 1000 / LOOKUPS ))
}
plain_us=$(lookups)

# Baseline: what rewriting tracking_events into a new table would hold the lock for.
t0=$(now_ms)
q -c "CREATE TABLE bench_copy (LIKE tracking_events INCLUDING ALL)" \
  -c "INSERT INTO bench_copy (id, tracker_id, shipment_id, occurred_at, status, status_detail, message, description, source, carrier_code, city, state, country, zip, inserted_at)
      SELECT id, tracker_id, shipment_id, occurred_at, status, status_detail, message, description, source, carrier_code, city, state, country, zip, inserted_at FROM tracking_events"
copy_ms=$(( $(now_ms) - t0 ))
q -c "DROP TABLE bench_copy" -c "CHECKPOINT"

t0=$(now_ms)
mig up 1
l7=$(( $(now_ms) - t0 ))
t0=$(now_ms)
mig up
l8=$(( $(now_ms) - t0 ))
lock_ms=$((l7 + l8))
echo "bench/schema/partitions: 0007 up over $N tracking events in $l7 ms, 0008 over $((N / 4)) events in $l8 ms ($size); copying the tracking events alone: $copy_ms ms" >&2
echo "RESULT partitions_migrate_lock_ms $lock_ms ms $copy_ms"

# A year of monthly partitions ahead (as after a year of maintenance), then the same lookups.
q -c "SELECT partition_maintain('tracking_events', 12)" >/dev/null
nparts=$(q -c "SELECT count(*) FROM partition_bounds('tracking_events')")
part_us=$(lookups)
echo "bench/schema/partitions: one shipment's tracking events: $part_us us over $nparts partitions, $plain_us us on the plain table" >&2
echo "RESULT partitions_lookup_us $part_us us $plain_us"

# Two identical months (+1, +2; created by the migration), K rows each.
fill() {
  q -c "INSERT INTO tracking_events (tracker_id, shipment_id, occurred_at, status, status_detail, message, city, state, country, zip, source, carrier_code)
        SELECT 'trk_' || (g % $((N / 6)) + 1), 'shp_' || (g % $((N / 6)) + 1),
               partition_month($1) + (g::float8 / $K) * interval '27 days',
               'in_transit', 'arrived_at_facility', 'Arrived at USPS Regional Facility ' || (g % 97),
               'CHICAGO', 'IL', 'US', '60601', 'USPS', 'AF'
          FROM generate_series(1, $K) g" -c "VACUUM ANALYZE tracking_events"
}
fill 1
fill 2
m1=$(q -c "SELECT to_char(partition_month(1) AT TIME ZONE 'UTC', 'YYYYMM')")
m2=$(q -c "SELECT to_char(partition_month(2) AT TIME ZONE 'UTC', 'YYYYMM')")
q -c "CHECKPOINT"
t0=$(now_ms)
q -c "DELETE FROM tracking_events WHERE occurred_at >= partition_month(1) AND occurred_at < partition_month(2)"
delete_ms=$(( $(now_ms) - t0 ))
t0=$(now_ms)
q -c "VACUUM tracking_events_p$m1"
vacuum_ms=$(( $(now_ms) - t0 ))
q -c "CHECKPOINT"
t0=$(now_ms)
q -c "BEGIN" -c "ALTER TABLE tracking_events DETACH PARTITION tracking_events_p$m2" -c "DROP TABLE tracking_events_p$m2" -c "COMMIT"
drop_ms=$(( $(now_ms) - t0 ))
echo "bench/schema/partitions: a month of $K tracking events: detach+drop $drop_ms ms, DELETE $delete_ms ms (+ VACUUM $vacuum_ms ms)" >&2
echo "RESULT partitions_drop_month_ms $drop_ms ms $delete_ms"
echo "RESULT partitions_delete_vacuum_ms $vacuum_ms ms $delete_ms"
# processed_events (not partitioned): the batched DELETE that prunes it, per row.
q -c "INSERT INTO processed_events (event_id, processed_at)
      SELECT 'evt_p_' || g, now() - interval '8 days' FROM generate_series(1, $K) g" -c "VACUUM ANALYZE processed_events" -c "CHECKPOINT"
t0=$(now_ms)
while [ "$(q -c "WITH d AS (DELETE FROM processed_events WHERE ctid = ANY (ARRAY(SELECT ctid FROM processed_events
            WHERE processed_at < now() - interval '7 days' LIMIT 5000)) RETURNING 1) SELECT count(*) FROM d")" -gt 0 ]; do :; done
pe_ms=$(( $(now_ms) - t0 ))
echo "bench/schema/partitions: processed_events: $K rows pruned in batches of 5000 in $pe_ms ms" >&2
echo "RESULT partitions_processed_events_prune_us_per_row $(awk -v a="$pe_ms" -v k="$K" 'BEGIN{printf "%.2f", a * 1000 / k}') us 0"
psql_q -d "$admin_url" -c "DROP DATABASE IF EXISTS bench_partitions WITH (FORCE)"

#!/usr/bin/env bash
# 0007_partitions and 0008_partition_easypost_events with data in the tables: up, down, up
# again lose nothing (row counts and a checksum of every column of tracking_events and
# easypost_events), also between the two (0008 down alone); after up the old rows
# are in the legacy partition, rows with a NULL key in the default one, rows after this
# month in theirs; the partitioned tables keep their keys (a redelivered detail or Event
# changes nothing).
source "$(dirname "$0")/common.sh"

DB_URL=$(ss_test_createdb schema_partitions) || ss_fail "createdb"
export DATABASE_URL="$DB_URL"
out="$SS_TEST_TMP/out"
version() { q -c "SELECT max(version) FROM schema_migrations"; }
# down_below <v>: migrations down until the newest applied one is below v
down_below() {
  while [ "$(version)" -ge "$1" ]; do
    "$MIGRATE" down >"$out" 2>&1 || ss_fail "down from $(version): $(cat "$out")"
  done
}
"$MIGRATE" up >"$out" 2>&1 || ss_fail "up: $(cat "$out")"
[ "$(version)" -ge 8 ] || ss_fail "expected 0008 or later to be the last migration, not $(version)"
down_below 7

ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "seeding"
INSERT INTO trackers (id) SELECT 'trk_' || g FROM generate_series(1, 200) g;
INSERT INTO tracking_events (tracker_id, shipment_id, occurred_at, status, message, city)
  SELECT 'trk_' || (g % 200 + 1), 'shp_' || (g % 200 + 1),
         now() - (g % 500) * interval '1 day' - g * interval '1 second', 'in_transit', 'm' || g,
         CASE WHEN g % 3 = 0 THEN 'Paris' END
    FROM generate_series(1, 5000) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status) VALUES
  ('trk_1', NULL, 'no datetime'), ('trk_2', '2031-05-05T10:00:00Z', 'far future'),
  ('trk_3', date_trunc('month', now()) + interval '45 days', 'next month');
INSERT INTO easypost_events (id, description, object_type, object_id, created_at, updated_at, payload)
  SELECT 'evt_' || g, 'tracker.updated', 'Tracker', 'trk_' || (g % 200 + 1),
         now() - (g % 500) * interval '1 day', now(), jsonb_build_object('n', g)
    FROM generate_series(1, 3000) g;
INSERT INTO easypost_events (id, created_at, payload) VALUES
  ('evt_null', NULL, '{}'), ('evt_future', '2031-01-01', '{}');
SQL
# detail_hash is left out: generated from the columns summed here, and its type changes with
# 0012 (text md5 before, 64 bits of it after; schema_migrate_lean_rows checks its values)
sums() {
  q -c "SELECT count(*), md5(string_agg(md5((t.id, t.tracker_id, t.shipment_id, t.occurred_at, t.status,
               t.status_detail, t.message, t.description, t.source, t.carrier_code, t.city, t.state,
               t.country, t.zip, t.inserted_at)::text), '' ORDER BY t.id)) FROM tracking_events t"
  q -c "SELECT count(*), md5(string_agg(md5((t.id, t.description, t.object_type, t.object_id, t.mode,
               t.status, t.user_id, t.created_at, t.updated_at, t.payload, t.received_at)::text), ''
               ORDER BY t.id)) FROM easypost_events t"
}
before=$(sums)
"$MIGRATE" up >"$out" 2>&1 || ss_fail "up with data: $(cat "$out")"
expect_eq "rows and checksums after up" "$before" "$(sums)"
where() { q -c "SELECT string_agg(p || ':' || n, ' ' ORDER BY p) FROM (SELECT tableoid::regclass::text p, count(*) n FROM $1 GROUP BY 1) x"; }
expect_eq "tracking_events partitions" \
  "tracking_events_default:2 tracking_events_legacy:5000 tracking_events_p$(q -c "SELECT to_char(partition_month(1) AT TIME ZONE 'UTC', 'YYYYMM')"):1" \
  "$(where tracking_events)"
expect_eq "easypost_events partitions" "easypost_events_default:2 easypost_events_legacy:3000" "$(where easypost_events)"
expect_eq "kind" "p p" "$(q -c "SELECT string_agg(relkind::text, ' ') FROM pg_class WHERE relname IN ('tracking_events', 'easypost_events')")"
ss_pass "up: $(q -c "SELECT count(*) FROM tracking_events") tracking events and $(q -c "SELECT count(*) FROM easypost_events") events kept, each in its partition"

# The keys still find a redelivered row, in the legacy partition and in the new ones.
n=$(q -c "INSERT INTO tracking_events (tracker_id, occurred_at, status, message)
          SELECT tracker_id, occurred_at, status, message FROM tracking_events
          ON CONFLICT ON CONSTRAINT tracking_events_detail_key DO NOTHING RETURNING 1" | wc -l)
[ "$(q -c "SELECT count(*) FROM tracking_events")" = 5003 ] || ss_fail "a redelivered detail was inserted again ($n)"
q -c "INSERT INTO easypost_events (id, created_at, payload) SELECT id, created_at, '{}' FROM easypost_events
      ON CONFLICT ON CONSTRAINT easypost_events_id_key DO NOTHING" >/dev/null || ss_fail "events conflict target"
[ "$(q -c "SELECT count(*) FROM easypost_events")" = 3002 ] || ss_fail "a redelivered Event was inserted again"
ss_pass "ON CONFLICT finds every existing row (legacy, monthly, default)"

down_below 8
expect_eq "rows and checksums after 0008 down" "$before" "$(sums)"
expect_eq "kind after 0008 down" "p r" "$(q -c "SELECT string_agg(relkind::text, ' ' ORDER BY relname DESC) FROM pg_class WHERE relname IN ('tracking_events', 'easypost_events')")"
down_below 7
expect_eq "rows and checksums after down" "$before" "$(sums)"
expect_eq "kind after down" "r r" "$(q -c "SELECT string_agg(relkind::text, ' ') FROM pg_class WHERE relname IN ('tracking_events', 'easypost_events')")"
expect_eq "keys after down" "easypost_events_pkey tracking_events_detail_key" \
  "$(q -c "SELECT string_agg(conname, ' ' ORDER BY conname) FROM pg_constraint WHERE conname IN ('easypost_events_pkey', 'tracking_events_detail_key')")"
"$MIGRATE" up >"$out" 2>&1 || ss_fail "up again: $(cat "$out")"
expect_eq "rows and checksums after up, down, up" "$before" "$(sums)"
ss_pass "up → down → up keeps every row and column"

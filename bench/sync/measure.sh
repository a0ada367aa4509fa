#!/usr/bin/env bash
# Where the sync write path spends PostgreSQL time and bytes (issue 15, "measure first").
#
#   bench/sync/measure.sh ADMIN_URL [N_SHIPMENTS]
#   MEASURE_BASELINE=1: the write path before 0005 (database at 0004, ss-sync-pgbench --baseline)
#
# ADMIN_URL: a superuser URL of a PostgreSQL whose shared_preload_libraries has
# pg_stat_statements.  Loads N (default 20000) generated shipments with their trackers and
# addresses (ss-sync-gen, mixed stream) through ss-sync-pgbench into a fresh migrated
# database, then prints:
#   - PostgreSQL time per statement (pg_stat_statements: calls, rows, total ms, µs per event)
#   - bytes per row of each synced table: heap, TOAST, each index
#   - which indexes the read API's queries and a views refresh use (pg_stat_user_indexes)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ADMIN=${1:?ADMIN_URL}
N=${2:-20000}
BIN=${SS_BIN_DIR:-$ROOT/build/bin}
DBN=${MEASURE_DB:-measure_sync}
URL="${ADMIN%/*}/$DBN"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/measure-sync.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 -P pager=off "$@"; }

q "$ADMIN" -c "DROP DATABASE IF EXISTS $DBN WITH (FORCE)" -c "CREATE DATABASE $DBN" >/dev/null
UPTO=; FLAG=
[ -n "${MEASURE_BASELINE:-}" ] && { UPTO=4; FLAG=--baseline; }
DATABASE_URL="$URL" MIGRATIONS_DIR="$ROOT/migrations" LOG_LEVEL=warn "$BIN/shipstream-migrate" up $UPTO >/dev/null
q "$URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
"$BIN/ss-sync-gen" "$TMP" --shipments "$N" --dup 0 --ooo 0 --tag m >/dev/null 2>&1 || { echo "generator failed" >&2; exit 1; }
cat "$TMP"/shipments.tsv "$TMP"/addresses.tsv "$TMP"/trackers.tsv 2>/dev/null >"$TMP/all.tsv"
events=$(wc -l <"$TMP/all.tsv")
echo "## $events events ($(wc -l <"$TMP/shipments.tsv") shipment, $(wc -l <"$TMP/trackers.tsv") tracker, $(wc -l <"$TMP/addresses.tsv") address)"
q "$URL" -c "SELECT pg_stat_statements_reset()" >/dev/null
"$BIN/ss-sync-pgbench" $FLAG "$URL" "$TMP/all.tsv" 1000
q "$URL" -c "VACUUM ANALYZE"
echo "## PostgreSQL time by statement (per event = total / $events events)"
q "$URL" -c "SELECT calls, rows, round(total_exec_time::numeric, 0) AS total_ms,
                    round((total_exec_time * 1000 / $events)::numeric, 1) AS us_per_event,
                    left(regexp_replace(query, '\s+', ' ', 'g'), 70) AS statement
               FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND calls > 1 ORDER BY total_exec_time DESC LIMIT 14"
echo "## bytes on disk per row"
q "$URL" -c "SELECT c.relname AS table, c.reltuples::bigint AS rows,
                    pg_relation_size(c.oid) / greatest(c.reltuples, 1)::bigint AS heap_b,
                    coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) / greatest(c.reltuples, 1)::bigint AS toast_b,
                    pg_indexes_size(c.oid) / greatest(c.reltuples, 1)::bigint AS index_b,
                    pg_total_relation_size(c.oid) / greatest(c.reltuples, 1)::bigint AS total_b
               FROM pg_class c
              WHERE c.relname IN ('shipments','rates','parcels','addresses','trackers','tracking_events','processed_events','easypost_events','batches')
              ORDER BY pg_total_relation_size(c.oid) DESC"
q "$URL" -c "SELECT indexrelname AS index, pg_relation_size(indexrelid) / greatest(c.reltuples, 1)::bigint AS bytes_per_row
               FROM pg_stat_user_indexes i JOIN pg_class c ON c.oid = i.relid
              WHERE i.relname IN ('shipments','rates','parcels','addresses','trackers','tracking_events','processed_events')
              ORDER BY i.relname, 2 DESC"
q "$URL" -c "SELECT round(sum(pg_total_relation_size(c.oid))::numeric / (SELECT count(*) FROM shipments), 0)
                    AS bytes_per_shipment_all_synced_tables
               FROM pg_class c WHERE c.relname IN ('shipments','rates','parcels','addresses','trackers','tracking_events','processed_events')"
echo "## index use by the read API queries and a views refresh"
q "$URL" -c "SELECT pg_stat_reset()" >/dev/null
sid=$(q "$URL" -At -c "SELECT id FROM shipments WHERE tracker_id IS NOT NULL LIMIT 1")
code=$(q "$URL" -At -c "SELECT tracking_code FROM shipments WHERE tracking_code IS NOT NULL LIMIT 1")
# The read API's statements (services/gateway/readapi.c), one of each shape.
q "$URL" -At >/dev/null <<SQL
SET enable_seqscan = on;
SELECT s.id FROM shipments s WHERE s.created_at IS NOT NULL ORDER BY s.created_at DESC, s.id DESC LIMIT 51;
SELECT s.id FROM shipments s WHERE s.created_at IS NOT NULL AND s.status = 'delivered' ORDER BY s.created_at DESC, s.id DESC LIMIT 51;
SELECT s.id FROM shipments s WHERE s.created_at IS NOT NULL AND s.carrier = 'USPS' AND s.service = 'Priority' ORDER BY s.created_at DESC, s.id DESC LIMIT 51;
SELECT s.id FROM shipments s WHERE s.created_at IS NOT NULL AND s.tracking_code = '$code' ORDER BY s.created_at DESC, s.id DESC LIMIT 51;
SELECT (SELECT a.id FROM addresses a WHERE a.id = s.from_address_id), (SELECT a.id FROM addresses a WHERE a.id = s.to_address_id),
       (SELECT p.id FROM parcels p WHERE p.id = s.parcel_id), (SELECT r.id FROM rates r WHERE r.id = s.selected_rate_id),
       (SELECT count(*) FROM tracking_events e WHERE e.shipment_id = s.id OR (s.tracker_id IS NOT NULL AND e.tracker_id = s.tracker_id))
  FROM shipments s WHERE s.id = '$sid';
SELECT a.id, (SELECT count(*) FROM shipments s WHERE s.from_address_id = a.id) + (SELECT count(*) FROM shipments s WHERE s.to_address_id = a.id)
  FROM addresses a WHERE a.search @@ websearch_to_tsquery('simple', 'Customer') ORDER BY a.created_at DESC, a.id DESC LIMIT 51;
SELECT * FROM refresh_analytics_views(true);
SELECT * FROM mv_daily_shipment_analytics WHERE date >= current_date - 30;
SQL
sleep 1
q "$URL" -c "SELECT relname AS table, indexrelname AS index, idx_scan FROM pg_stat_user_indexes
              WHERE relname IN ('shipments','rates','parcels','addresses','trackers','tracking_events','processed_events','easypost_events','batches')
              ORDER BY relname, indexrelname"

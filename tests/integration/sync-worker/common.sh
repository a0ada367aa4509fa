# shellcheck shell=bash
# Shared setup of the sync-worker integration tests.
#   sw_setup <name> [gen args...]  database + migrations (DB_URL), topics (PREFIX),
#                                  generated stream in $GEN (ss-sync-gen)
#   sw_start <id> [VAR=v...]       starts a worker; SW_PORT[id] SW_PID[id] SW_LOG[id]
#   sw_metric <id> <name{labels}>  a metric value (ss_metric: fails when /metrics is down)
#   sw_assigned <id>               partitions the worker holds now, from its log (0 before
#                                  the first assignment and after a revoke)
#   sw_produce <topic>             produces $GEN/<topic>.tsv
#   sw_wait_applied <timeout>      until processed_events holds every unique event id
#   sw_check_state                 every table equals the model, row by row
# shellcheck source=../lib.sh
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

SW_BIN="$SS_BIN_DIR/shipstream-sync-worker"
GEN_BIN="$SS_BIN_DIR/ss-sync-gen"
[ -x "$SW_BIN" ] || ss_fail "$SW_BIN not built"
[ -x "$GEN_BIN" ] || ss_fail "$GEN_BIN not built"
declare -A SW_PORT SW_PID SW_LOG
# Debugging: SW_LOG_LEVEL=debug, SW_KAFKA_DEBUG=cgrp,fetch (librdkafka debug),
# SW_KEEP_LOGS=<dir> keeps the workers' whole logs there (the test folder is removed).
if [ -n "${SW_KEEP_LOGS:-}" ]; then
  ss_on_exit 'mkdir -p "$SW_KEEP_LOGS" && cp "$SS_TEST_TMP"/worker-*.log "$SW_KEEP_LOGS"/ 2>/dev/null'
fi
export LC_ALL=C

sw_setup() {
  local name=$1; shift
  ss_test_migrated_db "$name"
  PREFIX=$(ss_test_prefix)
  ss_test_create_topics "$PREFIX" || ss_fail "create topics"
  GROUP="sw-test-$$"
  TAG="t$$"
  GEN="$SS_TEST_TMP/gen"
  mkdir -p "$GEN"
  "$GEN_BIN" "$GEN" --tag "$TAG" "$@" 2>"$SS_TEST_TMP/gen.log" || ss_fail "generator"
  cat "$SS_TEST_TMP/gen.log"
  read -r UNIQUE DUPS OOO POISON <"$GEN/expect_counts.txt"
  export DB_URL PREFIX GROUP GEN UNIQUE DUPS OOO POISON
}

sw_start() {
  local id=$1; shift
  local port
  port=$(ss_free_port) || ss_fail "no free port"
  SW_PORT[$id]=$port
  SW_LOG[$id]="$SS_TEST_TMP/worker-$id.log"
  ss_start_bg "${SW_LOG[$id]}" env DATABASE_URL="$DB_URL" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
    KAFKA_TOPIC_PREFIX="$PREFIX" KAFKA_GROUP_ID="$GROUP" LISTEN="127.0.0.1:$port" \
    LOG_FORMAT=text LOG_LEVEL="${SW_LOG_LEVEL:-info}" ${SW_KAFKA_DEBUG:+KAFKA_DEBUG="$SW_KAFKA_DEBUG"} \
    SYNC_RETRY_MAX_MS=2000 KAFKA_SESSION_TIMEOUT_MS=6000 KAFKA_HEARTBEAT_INTERVAL_MS=1000 "$@" "$SW_BIN" >/dev/null
  SW_PID[$id]=$SS_BG_PID
  ss_wait_for 15 curl -fsS "http://127.0.0.1:$port/health" || ss_fail "worker $id did not start"
}

sw_metric() { ss_metric "http://127.0.0.1:${SW_PORT[$1]}" "$2"; }

sw_assigned() {
  local n
  n=$(sed -n -e 's/.*: assigned \([0-9]*\) partition(s), starting from kafka_offsets.*/\1/p' \
             -e 's/.*: revoked [0-9]* partition(s); uncommitted batch dropped.*/0/p' "${SW_LOG[$1]}" | tail -n 1)
  echo "${n:-0}"
}

sw_ready_code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${SW_PORT[$1]}/ready"; }

sw_produce() {
  ss_kafkactl produce -t "${PREFIX}$1" <"$GEN/$1.tsv" >/dev/null || ss_fail "produce $1"
}

sw_processed() { q "SELECT count(*) FROM processed_events WHERE event_id LIKE 'evt\_${TAG}\_%'"; }

_sw_all_applied() { [ "$(sw_processed)" = "$UNIQUE" ]; }

sw_wait_applied() {
  ss_wait_for "$1" _sw_all_applied || ss_fail "only $(sw_processed) of $UNIQUE events applied in $1 s"
}

TSFMT="'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"

sw_check_state() {
  q "SELECT id, status, to_char(updated_at AT TIME ZONE 'UTC', $TSFMT), coalesce(trim_scale(total_cost)::text, ''),
            carrier, tracking_code, coalesce(to_char(delivered_at AT TIME ZONE 'UTC', $TSFMT), ''), from_address_id
       FROM shipments WHERE id LIKE 'shp\_${TAG}\_%' ORDER BY id COLLATE \"C\"" | sort >"$SS_TEST_TMP/actual_shipments.tsv"
  sort "$GEN/expect_shipments.tsv" >"$SS_TEST_TMP/expect_shipments.tsv"
  diff "$SS_TEST_TMP/expect_shipments.tsv" "$SS_TEST_TMP/actual_shipments.tsv" | head -20 >&2
  cmp -s "$SS_TEST_TMP/expect_shipments.tsv" "$SS_TEST_TMP/actual_shipments.tsv" || ss_fail "shipments differ from the model"
  q "SELECT tracker_id, count(*) FROM tracking_events WHERE tracker_id LIKE 'trk\_${TAG}\_%' GROUP BY 1 ORDER BY tracker_id COLLATE \"C\"" \
    | sort >"$SS_TEST_TMP/actual_tracking.tsv"
  sort "$GEN/expect_tracking.tsv" >"$SS_TEST_TMP/expect_tracking.tsv"
  diff "$SS_TEST_TMP/expect_tracking.tsv" "$SS_TEST_TMP/actual_tracking.tsv" | head -20 >&2
  cmp -s "$SS_TEST_TMP/expect_tracking.tsv" "$SS_TEST_TMP/actual_tracking.tsv" || ss_fail "tracking events differ from the model"
  q "SELECT id, city, to_char(updated_at AT TIME ZONE 'UTC', $TSFMT) FROM addresses
      WHERE id LIKE 'adr\_${TAG}\_%' ORDER BY id COLLATE \"C\"" | sort >"$SS_TEST_TMP/actual_addresses.tsv"
  sort "$GEN/expect_addresses.tsv" >"$SS_TEST_TMP/expect_addresses.tsv"
  diff "$SS_TEST_TMP/expect_addresses.tsv" "$SS_TEST_TMP/actual_addresses.tsv" | head -20 >&2
  cmp -s "$SS_TEST_TMP/expect_addresses.tsv" "$SS_TEST_TMP/actual_addresses.tsv" || ss_fail "addresses differ from the model"
  local n
  n=$(q "SELECT count(*) FROM trackers WHERE id LIKE 'trk\_${TAG}\_%'")
  [ "$n" = "$(wc -l <"$GEN/expect_tracking.tsv")" ] || ss_fail "trackers: $n rows"
  n=$(q "SELECT count(*) FROM rates WHERE shipment_id LIKE 'shp\_${TAG}\_%'")
  [ "$n" = "$(wc -l <"$GEN/expect_shipments.tsv")" ] || ss_fail "rates: $n rows"
  ss_pass "tables equal the model row by row ($(wc -l <"$GEN/expect_shipments.tsv") shipments, $(wc -l <"$GEN/expect_tracking.tsv") trackers, $(wc -l <"$GEN/expect_addresses.tsv") addresses)"
}

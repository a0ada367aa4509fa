# shellcheck shell=bash
# Shared setup of the shipstream-reconcile integration tests (real PostgreSQL, Kafka,
# easypost-sim, sync worker).
#   rc_setup <name>            database + migrations (DB_URL), topics (PREFIX)
#   rc_start_sim [VAR=v...]    easypost-sim on a free port: SIM_URL, SIM_PID
#   rc_start_worker            the sync worker on the topics: WORKER_PID
#   rc_start_receiver [VAR=v...]  the webhook receiver: RECEIVER_URL (secret $SECRET)
#   rc_run <args...>           shipstream-reconcile in the foreground; RC_OUT, RC_RC
#   rc_sim_metric <name{labels}>
#   rc_sim_dump                the sim's shipments/trackers (id, status, updated_at, events)
#                              into $SS_TEST_TMP/sim_{shipments,trackers}.tsv
#   rc_pg_dump                 the same from PostgreSQL into pg_*.tsv
#   rc_wait_pg_count <table> <n> <timeout>
# shellcheck source=../lib.sh
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
export LC_ALL=C

RC_BIN="${RC_BIN:-$SS_BIN_DIR/shipstream-reconcile}"   # RC_BIN / SIM_BIN: e.g. sanitizer builds
SIM_BIN="${SIM_BIN:-$SS_BIN_DIR/easypost-sim}"
SW_BIN="$SS_BIN_DIR/shipstream-sync-worker"
WR_BIN="$SS_BIN_DIR/shipstream-webhook-receiver"
for b in "$RC_BIN" "$SIM_BIN" "$SW_BIN"; do [ -x "$b" ] || ss_fail "$b not built"; done
SECRET="rc-test-secret"

q() { ss_psql "$DB_URL" -At -c "$1"; }

rc_setup() {
  DB_URL=$(ss_test_createdb "$1") || ss_fail "createdb $1"
  DATABASE_URL="$DB_URL" MIGRATIONS_DIR="$SS_SOURCE_ROOT/migrations" "$SS_BIN_DIR/shipstream-migrate" up \
    >"$SS_TEST_TMP/migrate.log" 2>&1 || { cat "$SS_TEST_TMP/migrate.log" >&2; ss_fail "migrate up"; }
  PREFIX=$(ss_test_prefix)
  ss_test_create_topics "$PREFIX" || ss_fail "create topics"
  export DB_URL PREFIX
}

rc_start_sim() {
  local port
  port=$(ss_free_port) || ss_fail "no free port"
  SIM_URL="http://127.0.0.1:$port"
  ss_start_bg "$SS_TEST_TMP/sim.log" env LISTEN="127.0.0.1:$port" EASYPOST_API_KEY=EZTK_rc \
    LOG_FORMAT=text "$@" "$SIM_BIN" >/dev/null
  SIM_PID=$SS_BG_PID
  ss_wait_for 15 curl -fsS "$SIM_URL/health" || ss_fail "easypost-sim did not start"
  export SIM_URL
}

rc_start_worker() {
  local port
  port=$(ss_free_port) || ss_fail "no free port"
  WORKER_URL="http://127.0.0.1:$port"
  ss_start_bg "$SS_TEST_TMP/worker.log" env DATABASE_URL="$DB_URL" \
    KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
    KAFKA_GROUP_ID="rc-test-$$" LISTEN="127.0.0.1:$port" LOG_FORMAT=text \
    KAFKA_SESSION_TIMEOUT_MS=6000 KAFKA_HEARTBEAT_INTERVAL_MS=1000 "$SW_BIN" >/dev/null
  WORKER_PID=$SS_BG_PID
  ss_wait_for 15 curl -fsS "$WORKER_URL/health" || ss_fail "sync worker did not start"
}

rc_start_receiver() { # [VAR=v...]
  [ -x "$WR_BIN" ] || ss_fail "$WR_BIN not built"
  local port
  port=$(ss_free_port) || ss_fail "no free port"
  RECEIVER_URL="http://127.0.0.1:$port"
  ss_start_bg "$SS_TEST_TMP/receiver.log" env LISTEN="127.0.0.1:$port" \
    KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
    EASYPOST_WEBHOOK_SECRET="$SECRET" LOG_FORMAT=text "$@" "$WR_BIN" >/dev/null
  ss_wait_for 15 curl -fsS "$RECEIVER_URL/ready" || ss_fail "webhook receiver not ready"
}

# rc_run <args...>: runs shipstream-reconcile against the sim/db/topics; RC_RC, RC_OUT (stdout),
# RC_ERR (stderr file).
rc_run() {
  RC_ERR="$SS_TEST_TMP/rc.$RANDOM.err"
  RC_OUT=$(env EASYPOST_API_KEY=EZTK_rc EASYPOST_API_BASE="$SIM_URL/v2" DATABASE_URL="$DB_URL" \
    KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
    RECONCILE_STATE_DIR="$SS_TEST_TMP" RECONCILE_BACKOFF_MAX_MS=2000 LOG_FORMAT=text \
    ${RC_ENV:-} "$RC_BIN" "$@" 2>"$RC_ERR")
  RC_RC=$?
}

rc_sim_metric() {
  local v
  v=$(curl -fsS "$SIM_URL/metrics" 2>/dev/null | awk -v m="$1" '$1 == m { print $2 }')
  echo "${v:-0}"
}

# rc_sim_list <shipments|trackers> [jq filter per object]: every object, all pages.
rc_sim_list() {
  local what=$1 filter=$2 before="" page
  while :; do
    page=$(curl -fsS -u EZTK_rc: "$SIM_URL/v2/$what?page_size=100${before:+&before_id=$before}") ||
      { echo "rc_sim_list: GET failed" >&2; return 1; }
    jq -r ".${what}[] | $filter" <<<"$page"
    [ "$(jq -r .has_more <<<"$page")" = true ] || break
    before=$(jq -r ".${what}[-1].id" <<<"$page")
  done
}

TSFMT="'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

# rc_sim_dump [id-like]: what the sim holds, sorted (id, status, updated_at[, events]).
rc_sim_dump() {
  rc_sim_list shipments '[.id, .status, .updated_at] | @tsv' | sort >"$SS_TEST_TMP/sim_shipments.tsv" ||
    ss_fail "sim dump shipments"
  rc_sim_list trackers '[.id, .status, .updated_at, (.tracking_details | length)] | @tsv' | sort \
    >"$SS_TEST_TMP/sim_trackers.tsv" || ss_fail "sim dump trackers"
}

rc_pg_dump() {
  q "SELECT id, status, to_char(updated_at AT TIME ZONE 'UTC', $TSFMT) FROM shipments" | tr '|' '\t' | sort \
    >"$SS_TEST_TMP/pg_shipments.tsv"
  q "SELECT t.id, t.status, to_char(t.updated_at AT TIME ZONE 'UTC', $TSFMT),
            (SELECT count(*) FROM tracking_events e WHERE e.tracker_id = t.id) FROM trackers t" |
    tr '|' '\t' | sort >"$SS_TEST_TMP/pg_trackers.tsv"
}

# rc_compare: PostgreSQL equals the sim (shipments: id, status, updated_at; trackers: the same
# and the number of tracking events).
rc_compare() {
  local t
  rc_sim_dump
  rc_pg_dump
  for t in shipments trackers; do
    if ! cmp -s "$SS_TEST_TMP/sim_$t.tsv" "$SS_TEST_TMP/pg_$t.tsv"; then
      diff "$SS_TEST_TMP/sim_$t.tsv" "$SS_TEST_TMP/pg_$t.tsv" | head -10 >&2
      echo "$t: $(diff "$SS_TEST_TMP/sim_$t.tsv" "$SS_TEST_TMP/pg_$t.tsv" | grep -c '^[<>]') lines differ" >&2
      return 1
    fi
  done
}

_rc_count_is() { [ "$(q "SELECT count(*) FROM $1")" -ge "$2" ]; }
rc_wait_pg_count() {
  ss_wait_for "$3" _rc_count_is "$1" "$2" && return 0
  local n
  n=$(q "SELECT count(*) FROM $1")
  rc_diagnose_missing "$1"
  ss_fail "$1: $n rows, expected $2 within $3 s"
}

# rc_diagnose_missing <shipments|trackers>: which of the sim's objects PostgreSQL lacks, and
# for each (at most 10) where Kafka holds it (partition@offset, its event id, whether that
# event id is in processed_events), next to the worker group's kafka_offsets row for the
# partition and the partition's high watermark; the worker's counters.  To stderr.
rc_diagnose_missing() {
  local t=$1 id part off ev
  case "$t" in shipments|trackers) ;; *) return 0 ;; esac
  rc_sim_list "$t" .id 2>/dev/null | sort >"$SS_TEST_TMP/diag_sim_$t.txt"
  q "SELECT id FROM $t" | sort >"$SS_TEST_TMP/diag_pg_$t.txt"
  comm -23 "$SS_TEST_TMP/diag_sim_$t.txt" "$SS_TEST_TMP/diag_pg_$t.txt" >"$SS_TEST_TMP/diag_missing_$t.txt"
  echo "diagnosis: $(wc -l <"$SS_TEST_TMP/diag_missing_$t.txt") of the sim's $t not in PostgreSQL" >&2
  [ -s "$SS_TEST_TMP/diag_missing_$t.txt" ] || return 0
  ss_kafkactl consume -t "${PREFIX}$t" --until-end --timeout 120 2>/dev/null |
    awk -F'\t' '{ e = ""; if (match($4, /"event_id":"[^"]*"/)) e = substr($4, RSTART + 12, RLENGTH - 13)
                  print $1 "\t" $2 "\t" $3 "\t" e }' >"$SS_TEST_TMP/diag_kafka_$t.tsv"
  echo "diagnosis: ${PREFIX}$t holds $(wc -l <"$SS_TEST_TMP/diag_kafka_$t.tsv") messages" >&2
  head -n 10 "$SS_TEST_TMP/diag_missing_$t.txt" | while read -r id; do
    if ! grep -qF "$id" "$SS_TEST_TMP/diag_kafka_$t.tsv"; then
      echo "  $id: NOT in Kafka" >&2
      continue
    fi
    awk -F'\t' -v k="$id" '$3 == k' "$SS_TEST_TMP/diag_kafka_$t.tsv" | while IFS=$'\t' read -r part off _ ev; do
      echo "  $id: in Kafka at $t[$part]@$off, event $ev processed: $(q "SELECT count(*) FROM processed_events WHERE event_id = '$ev'")" \
        "; kafka_offsets next: $(q "SELECT string_agg(consumer_group || '=' || next_offset, ',') FROM kafka_offsets WHERE topic = '${PREFIX}$t' AND partition = $part")" \
        "; high watermark: $(ss_kafkactl offsets -t "${PREFIX}$t" 2>/dev/null | awk -v p="$part" '$1 == p { print $2 }')" >&2
    done
  done
  [ -n "${WORKER_URL:-}" ] && curl -fsS "$WORKER_URL/metrics" 2>/dev/null |
    grep -E '^sync_(messages_consumed|events_applied|duplicates_skipped|stale_skipped|dlq)_total' | sed 's/^/  worker: /' >&2
  return 0
}

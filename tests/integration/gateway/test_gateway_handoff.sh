#!/usr/bin/env bash
# The gateway's hand-off to Kafka is never silent.  Kafka is stopped while
# five gateways (each on its own topic prefix) answer EasyPost calls:
#   A  defaults (message.timeout.ms never): every object bought during the
#      outage reaches Kafka once it is back, none dropped;
#   B  GATEWAY_KAFKA_MESSAGE_TIMEOUT_MS=3000, the old 5-minute expiry made
#      short: the outage outlasts it, every object is dropped with reason
#      timeout and logged with its id;
#   C  GATEWAY_KAFKA_QUEUE_MAX_MESSAGES=5: 5 wait and arrive, the overflow
#      is dropped (queue_full) and logged with its ids; both sets add up to
#      every object the gateway answered;
#   D  SIGTERM with GATEWAY_SHUTDOWN_FLUSH_MS=1500 and Kafka down: exits 0,
#      logs each object left (reason shutdown) with its id;
#   E  kill -9 with objects waiting: nothing can log; the waiting gauge
#      showed them, and they never reach Kafka: the reconciler's window is
#      what repairs them (deploy/README.md, "Gateway hand-off").
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$(dirname "$0")/common.sh"
for b in easypost-sim shipstream-gateway shipstream-migrate; do
  [ -x "$SS_BIN_DIR/$b" ] || { echo "SKIP: $b is not built"; exit 77; }
done
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

ss_test_migrated_db gw_handoff
gw_start_sim
declare -A P PORT PID LOG
for g in A B C D E; do
  P[$g]=$(ss_test_prefix)
  P[$g]=${P[$g]%.}$g.
  ss_test_create_topics "${P[$g]}" 1 || ss_fail "topics for $g"
done
start() { # <name> [env...]
  local g=$1; shift
  PREFIX=${P[$g]} gw_start GATEWAY_THREADS=4 LOG_FORMAT=json "$@"
  PORT[$g]=$GW_PORT PID[$g]=$GW_PID LOG[$g]="$SS_TEST_TMP/gw.$GW_PORT.log"
  ss_wait_for 30 curl -fsS "$GW/ready" || ss_fail "gateway $g not ready"
}
start A
start B GATEWAY_KAFKA_MESSAGE_TIMEOUT_MS=3000
start C GATEWAY_KAFKA_QUEUE_MAX_MESSAGES=5
start D GATEWAY_SHUTDOWN_FLUSH_MS=1500
start E

metric() { # <gateway> <name{labels}>
  local v
  v=$(curl -fsS "http://127.0.0.1:${PORT[$1]}/metrics" 2>/dev/null | awk -v m="$2" '$1 == m { print $2 }')
  echo "${v:-0}"
}
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
# create <gateway> <n> [buy]: shipments through gateway; appends "id<TAB>type" to $SS_TEST_TMP/<g>.expect
create() {
  local g=$1 n=$2 buy=${3:-} i id rate
  GW="http://127.0.0.1:${PORT[$g]}"
  for i in $(seq 1 "$n"); do
    call POST /v1/shipments "$FIX/api/shipment-create.request.json"
    [ "$CODE" = 201 ] || ss_fail "$g: create $i: HTTP $CODE ${BODY:0:200}"
    id=$(jq -r .id <<<"$BODY"); rate=$(jq -r '.rates[0].id' <<<"$BODY")
    printf '%s\tshipment.created\n' "$id" >>"$SS_TEST_TMP/$g.expect"
    [ -n "$buy" ] || continue
    printf '{"rate":{"id":"%s"}}' "$rate" >"$SS_TEST_TMP/buy.json"
    EXTRA_CURL=(-H "Idempotency-Key: handoff-$g-$id")
    call POST "/v1/shipments/$id/buy" "$SS_TEST_TMP/buy.json"
    EXTRA_CURL=()
    [ "$CODE" = 200 ] || ss_fail "$g: buy $id: HTTP $CODE ${BODY:0:200}"
    printf '%s\tshipment.purchased\n' "$id" >>"$SS_TEST_TMP/$g.expect"
    # the tracker nested in the bought Shipment is handed off too (trackers topic)
    printf '%s\ttracker.retrieved\n' "$(jq -r .tracker.id <<<"$BODY")" >>"$SS_TEST_TMP/$g.trk"
  done
}
# dropped <gateway> [reason]: "id<TAB>type" of every object the gateway logged as dropped
dropped() {
  jq -r --arg r "${2:-}" 'select(.msg | startswith("kafka hand-off dropped")) | select($r == "" or .reason == $r)
           | "\(.object_id)\t\(.type)"' "${LOG[$1]}" 2>/dev/null | sort
}
# delivered <gateway> [topic]: "id<TAB>type" of every envelope on the gateway's shipments
# (or the named) topic
delivered() {
  ss_kafkactl consume -t "${P[$1]}${2:-shipments}" --until-end --timeout 20 | cut -f4- |
    jq -r '"\(.object_id)\t\(.type)"' | sort
}
expect_of() { sort "$SS_TEST_TMP/$1.expect"; }

ss_kafka_stop
t_stop=$(_ss_now_ms)
create A 15 buy
create B 5
create C 12
create D 4
create E 6
ss_pass "Kafka stopped: 45 (15 created, 15 bought, their 15 trackers) + 5 + 12 + 4 + 6 objects answered by the gateways"

# E: the gauge shows what waits; then kill -9 (no chance to log anything).
ss_wait_for 10 metric_is E gateway_handoff_waiting 6 || ss_fail "E: waiting $(metric E gateway_handoff_waiting), expected 6"
kill -KILL "${PID[E]}"
ss_pass "E: gateway_handoff_waiting was 6 when it was killed -9"

# D: SIGTERM, short flush, Kafka still down: exit 0, each object logged.
ss_stop_bg "${PID[D]}" 20; rc=$?
[ "$rc" = 0 ] || ss_fail "D: exit status $rc after SIGTERM"
[ "$(dropped D shutdown)" = "$(expect_of D)" ] || ss_fail "D: logged at shutdown: $(dropped D shutdown | tr '\n' ' ') expected $(expect_of D | tr '\n' ' ')"
grep -q '4 object(s) not delivered to Kafka before exit' "${LOG[D]}" || ss_fail "D: no summary line"
ss_pass "D: SIGTERM with Kafka down: exit 0, the 4 objects left logged with their ids (reason shutdown)"

# C: 5 queued, 7 refused at once.
[ "$(metric C 'gateway_handoff_dropped_total{reason="queue_full"}')" = 7 ] ||
  ss_fail "C: queue_full drops $(metric C 'gateway_handoff_dropped_total{reason="queue_full"}'), expected 7"
[ "$(dropped C queue_full | wc -l)" = 7 ] || ss_fail "C: $(dropped C queue_full | wc -l) overflow ids logged, expected 7"
ss_wait_for 10 metric_is C gateway_handoff_waiting 5 || ss_fail "C: waiting $(metric C gateway_handoff_waiting)"
ss_pass "C: queue bound 5: 5 waiting, 7 dropped (queue_full) with their ids logged"

# B: the outage outlasts its 3 s expiry.
ss_wait_for 30 metric_is B 'gateway_handoff_dropped_total{reason="timeout"}' 5 ||
  ss_fail "B: timeout drops $(metric B 'gateway_handoff_dropped_total{reason="timeout"}'), expected 5"
[ "$(dropped B timeout)" = "$(expect_of B)" ] || ss_fail "B: logged ids differ from the objects answered"
ss_pass "B: with a 3 s message timeout every object is dropped (reason timeout), each logged with its id"

# A: nothing expires, nothing dropped while Kafka is down.
ss_wait_for 10 metric_is A gateway_handoff_waiting 45 || ss_fail "A: waiting $(metric A gateway_handoff_waiting), expected 45"
down_s=$(( ($(_ss_now_ms) - t_stop) / 1000 ))
[ "$(dropped A | wc -l)" = 0 ] || ss_fail "A dropped objects: $(dropped A | head -3)"

ss_kafka_start || ss_fail "Kafka did not start again"
ss_kafkactl wait --timeout 60 || ss_fail "Kafka does not answer"
ss_wait_for 90 metric_is A gateway_handoff_total 45 || ss_fail "A: handed off $(metric A gateway_handoff_total) of 45"
metric_is A gateway_handoff_waiting 0 || ss_wait_for 5 metric_is A gateway_handoff_waiting 0 || ss_fail "A: still waiting"
[ "$(delivered A)" = "$(expect_of A)" ] || { diff <(expect_of A) <(delivered A) | head >&2; ss_fail "A: Kafka does not hold exactly the 30 shipment objects"; }
[ "$(delivered A trackers)" = "$(sort "$SS_TEST_TMP/A.trk")" ] || { diff <(sort "$SS_TEST_TMP/A.trk") <(delivered A trackers) | head >&2; ss_fail "A: Kafka does not hold exactly the 15 nested trackers"; }
[ "$(dropped A | wc -l)" = 0 ] || ss_fail "A dropped objects"
ss_pass "A: Kafka down ${down_s}s (longer than B's expiry); all 45 objects (15 created + 15 bought + their 15 trackers) arrived once it was back, none dropped"

ss_wait_for 60 metric_is C gateway_handoff_total 5 || ss_fail "C: handed off $(metric C gateway_handoff_total) of 5"
sort -m <(delivered C) <(dropped C) >"$SS_TEST_TMP/C.accounted"
[ "$(cat "$SS_TEST_TMP/C.accounted")" = "$(expect_of C)" ] || { diff <(expect_of C) "$SS_TEST_TMP/C.accounted" >&2; ss_fail "C: delivered + dropped != answered"; }
ss_pass "C: the 5 queued arrived; delivered + logged-dropped = exactly the 12 objects answered"

[ "$(delivered B | wc -l)" = 0 ] || ss_fail "B: expired objects reached Kafka"
[ "$(delivered E | wc -l)" = 0 ] || ss_fail "E: objects reached Kafka after kill -9?"
ss_pass "E: the 6 objects waiting at kill -9 never reached Kafka and no log names them: the reconciler's window repairs them"

#!/usr/bin/env bash
# The soak (issue 18; `make soak`, not in `make test`): everything at once against the real
# parts of the local stack, then PostgreSQL must equal the model of what was answered 2xx.
#
# Runs inside tests/integration/harness.sh (tests/soak/run.sh starts it), which gives it a
# PostgreSQL and a Kafka broker of its own on free ports.  Here: easypost-sim, the webhook
# receiver, the gateway, two sync workers and the refresh scheduler on free ports, and
# ss-soak-gen (tools/soak) sending for SOAK_SECONDS:
#   - signed tracker.updated webhooks at SOAK_RATE/s, SOAK_DUP % duplicates (an Event
#     already answered 2xx, sent again) and SOAK_OOO % reordered (an older version sent
#     after the newer one was answered 2xx);
#   - gateway buys at SOAK_BUY_RATE/s (POST /v1/shipments, then /buy with an
#     Idempotency-Key) against the sim;
#   - every request not answered 2xx is retried (EasyPost retries webhooks; a keyed buy is
#     retried with its key);
# while every SOAK_KILL_EVERY s a random service (receiver, gateway, a sync worker, the
# refresh scheduler) is killed -9 and restarted, PostgreSQL is restarted once (at 30 % of
# the run) and Kafka once (at 60 %).
#
# Then, within SOAK_DRAIN_SECONDS: the generator's retries end, the workers catch up, and
# PostgreSQL must equal the model exactly: every tracker at the newest version answered 2xx
# (status, updated_at, tracking events), every webhook Event answered 2xx in
# easypost_events, every created shipment present and every bought one with the rate and
# tracking code the buy answered.  A gateway killed -9 loses the hand-offs it had not
# delivered (docs/architecture.md, "Delivery semantics"): what is missing then is counted
# (lost_before_reconcile), one `shipstream-reconcile once` pass repairs it from the sim, and
# the comparison runs again.  Prints the counts; exit 1 on any loss or difference.
#
# Variables: SOAK_SECONDS (600), SOAK_RATE (500), SOAK_BUY_RATE (20), SOAK_DUP (5),
# SOAK_OOO (5), SOAK_KILL_EVERY (30), SOAK_DRAIN_SECONDS (300), SOAK_SEED (random),
# SOAK_INFLIGHT (256: the generator's concurrent requests), SOAK_BREAK=1 (damages PostgreSQL
# after the drain: the run must then fail; shows that the comparison can),
# SOAK_LOG_DIR (build/soak/<time>: the services' logs and the model are kept there),
# SOAK_DIAG_MAX (20: lost Events diagnosed one by one).  On a loss, before anything stops,
# diagnose_lost says for each lost webhook Event whether Kafka holds it (topic, partition,
# offset, the group's kafka_offsets row, its neighbours' processed_events) or not, and
# tests/soak/run.sh keeps Kafka's and PostgreSQL's data (SS_TEST_KEEP_ON_FAILURE).
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
export LC_ALL=C

SECONDS_RUN=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-500}
BUY_RATE=${SOAK_BUY_RATE:-20}
KILL_EVERY=${SOAK_KILL_EVERY:-30}
DRAIN=${SOAK_DRAIN_SECONDS:-300}
SEED=${SOAK_SEED:-$((RANDOM * 32768 + RANDOM + 1))}
LOGDIR=${SOAK_LOG_DIR:-$SS_SOURCE_ROOT/build/soak/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$LOGDIR/logs" || ss_fail "cannot create $LOGDIR"
GEN="$SS_BIN_DIR/ss-soak-gen"
for b in easypost-sim shipstream-webhook-receiver shipstream-gateway shipstream-sync-worker \
         shipstream-refresh-scheduler shipstream-reconcile shipstream-migrate ss-soak-gen; do
  [ -x "$SS_BIN_DIR/$b" ] || ss_fail "$SS_BIN_DIR/$b is not built (make build)"
done
# 1,000 in-flight webhooks during an outage plus the services' own connections.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

say() { echo "soak [$(date -u +%H:%M:%S)] $*"; }

ss_test_migrated_db soak
PREFIX=$(ss_test_prefix)
ss_test_create_topics "$PREFIX" 12 || ss_fail "topics"
TAG="s$(printf '%04x%04x' $RANDOM $RANDOM)"
SECRET="soak-$(openssl rand -hex 16)"
API_KEY="soakkey-$(openssl rand -hex 16)"
EP_KEY="EZTK_soak$RANDOM"
GROUP="soak-$$"
declare -A PORT PID ADMIN STARTS
for s in sim receiver gateway worker1 worker2 scheduler; do PORT[$s]=$(ss_free_port) || ss_fail "no free port"; done
ADMIN[receiver]=$(ss_free_port); ADMIN[gateway]=$(ss_free_port)
KAFKA_ENV=(KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX")

# cmd_of <service>: its environment and binary, one word per line.
cmd_of() {
  local common=(LISTEN="127.0.0.1:${PORT[$1]}" LOG_FORMAT=text LOG_LEVEL=info)
  case $1 in
    sim) printf '%s\n' "${common[@]}" EASYPOST_API_KEY="$EP_KEY" "$SS_BIN_DIR/easypost-sim";;
    receiver) printf '%s\n' "${common[@]}" ADMIN_LISTEN="127.0.0.1:${ADMIN[receiver]}" "${KAFKA_ENV[@]}" \
        EASYPOST_WEBHOOK_SECRET="$SECRET" "$SS_BIN_DIR/shipstream-webhook-receiver";;
    gateway) printf '%s\n' "${common[@]}" ADMIN_LISTEN="127.0.0.1:${ADMIN[gateway]}" "${KAFKA_ENV[@]}" \
        DATABASE_URL="$DB_URL" EASYPOST_API_KEY="$EP_KEY" EASYPOST_API_BASE="http://127.0.0.1:${PORT[sim]}/v2" \
        GATEWAY_API_KEYS="$API_KEY" EASYPOST_TIMEOUT_MS=5000 GATEWAY_BUY_LEASE_MARGIN_MS=5000 \
        "$SS_BIN_DIR/shipstream-gateway";;
    worker1|worker2) printf '%s\n' "${common[@]}" "${KAFKA_ENV[@]}" DATABASE_URL="$DB_URL" \
        KAFKA_GROUP_ID="$GROUP" KAFKA_SESSION_TIMEOUT_MS=6000 KAFKA_HEARTBEAT_INTERVAL_MS=1000 \
        SYNC_RETRY_MAX_MS=2000 "$SS_BIN_DIR/shipstream-sync-worker";;
    scheduler) printf '%s\n' "${common[@]}" DATABASE_URL="$DB_URL" GATEWAY_API_KEYS="$API_KEY" \
        REFRESH_INTERVAL_SECONDS=60 REFRESH_MIN_INTERVAL_SECONDS=5 "$SS_BIN_DIR/shipstream-refresh-scheduler";;
  esac
}
health_url() {
  case $1 in
    receiver|gateway) echo "http://127.0.0.1:${ADMIN[$1]}/health";;
    *) echo "http://127.0.0.1:${PORT[$1]}/health";;
  esac
}
start_svc() {
  local n=$(( ${STARTS[$1]:-0} + 1 )) cmd
  STARTS[$1]=$n
  mapfile -t cmd < <(cmd_of "$1")
  ss_start_bg "$LOGDIR/logs/$1.$n.log" env "${cmd[@]}" >/dev/null
  PID[$1]=$SS_BG_PID
}
wait_up() { ss_wait_for "${2:-30}" curl -fsS --max-time 2 "$(health_url "$1")"; }

for s in sim receiver gateway worker1 worker2 scheduler; do start_svc "$s"; done
for s in sim receiver gateway worker1 worker2 scheduler; do wait_up "$s" 30 || ss_fail "$s did not start"; done
ss_wait_for 30 curl -fsS "http://127.0.0.1:${ADMIN[receiver]}/ready" || ss_fail "receiver not ready"
ss_wait_for 30 curl -fsS "http://127.0.0.1:${ADMIN[gateway]}/ready" || ss_fail "gateway not ready"
say "stack up: receiver :${PORT[receiver]}, gateway :${PORT[gateway]}, sim :${PORT[sim]}, workers :${PORT[worker1]} :${PORT[worker2]}, scheduler :${PORT[scheduler]}; PostgreSQL :$SS_TEST_PG_PORT, Kafka $SS_TEST_KAFKA_BOOTSTRAP"
say "running ${SECONDS_RUN} s: webhooks ${RATE}/s (dup ${SOAK_DUP:-5} %, reordered ${SOAK_OOO:-5} %), buys ${BUY_RATE}/s, kill -9 every ${KILL_EVERY} s; seed $SEED; logs in $LOGDIR"

# Retries go on for at most DRAIN s after the schedule ends (the generator's own drain).
export EASYPOST_WEBHOOK_SECRET="$SECRET" GATEWAY_API_KEY="$API_KEY"   # the generator's (never argv)
ss_start_bg "$LOGDIR/gen.log" "$GEN" --webhook-url "http://127.0.0.1:${PORT[receiver]}/webhooks/easypost" \
  --gateway-url "http://127.0.0.1:${PORT[gateway]}" --out "$LOGDIR" --tag "$TAG" --rate "$RATE" \
  --buy-rate "$BUY_RATE" --duration "$SECONDS_RUN" --drain "$DRAIN" --dup "${SOAK_DUP:-5}" \
  --ooo "${SOAK_OOO:-5}" --seed "$SEED" --max-inflight "${SOAK_INFLIGHT:-256}" >/dev/null
GEN_PID=$SS_BG_PID

# ---------------------------------------------------------------- faults
# PostgreSQL and Kafka restarts run beside the kill loop (a broker restart takes 30-60 s).
t0=$SECONDS
pg_at=$((SECONDS_RUN * 3 / 10)); kafka_at=$((SECONDS_RUN * 6 / 10))
infra_faults() {
  while [ $((SECONDS - t0)) -lt "$pg_at" ]; do sleep 0.5; done
  say "PostgreSQL: stop"
  ss_pg_stop || say "PostgreSQL stop failed"
  sleep 5   # the outage itself
  ss_pg_start || { say "PostgreSQL did not start again"; return 1; }
  say "PostgreSQL: started again"; touch "$SS_TEST_TMP/pg_restarted"
  while [ $((SECONDS - t0)) -lt "$kafka_at" ]; do sleep 0.5; done
  say "Kafka: stop"
  ss_kafka_stop || say "Kafka stop failed"
  ss_kafka_start || { say "Kafka did not start again"; return 1; }
  say "Kafka: started again"; touch "$SS_TEST_TMP/kafka_restarted"
}
infra_faults &
INFRA_PID=$!
next_kill=$KILL_EVERY; kills=0
VICTIMS=(receiver gateway worker1 worker2 scheduler)
KILLED=()
while [ $((SECONDS - t0)) -lt "$SECONDS_RUN" ] && kill -0 "$GEN_PID" 2>/dev/null; do
  if [ $((SECONDS - t0)) -ge "$next_kill" ]; then
    next_kill=$((next_kill + KILL_EVERY))
    v=${VICTIMS[$((RANDOM % ${#VICTIMS[@]}))]}
    _ss_pidfile_kill "$SS_TEST_TMP/bg/${PID[$v]}.pid" KILL   # only if still that process
    wait "${PID[$v]}" 2>/dev/null
    rm -f "$SS_TEST_TMP/bg/${PID[$v]}.pid"
    kills=$((kills + 1)); KILLED+=("$v")
    start_svc "$v"
    if wait_up "$v" 60; then say "kill -9 $v, restarted"; else say "kill -9 $v: not healthy 60 s after the restart"; fi
  fi
  sleep 0.5
done
wait "$INFRA_PID" || ss_fail "PostgreSQL or Kafka did not come back"
pg_done=$([ -f "$SS_TEST_TMP/pg_restarted" ] && echo 1 || echo 0)
kafka_done=$([ -f "$SS_TEST_TMP/kafka_restarted" ] && echo 1 || echo 0)
say "schedule over ($kills kills: ${KILLED[*]:-none}); waiting for the generator's retries (at most $DRAIN s)"
wait "$GEN_PID"; gen_rc=$?
GEN_LINE=$(grep '^SOAKGEN ' "$LOGDIR/gen.log" | tail -n 1)
[ -n "$GEN_LINE" ] || { tail -n 20 "$LOGDIR/gen.log" >&2; ss_fail "the generator printed no summary (exit $gen_rc)"; }
echo "$GEN_LINE"
grep -E '(warn|error) +ss-soak-gen' "$LOGDIR/gen.log" | tail -n 5

# ---------------------------------------------------------------- compare
TSFMT="'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
sort "$LOGDIR/trackers.tsv" >"$LOGDIR/model_trackers.tsv"
sort -u "$LOGDIR/events.txt" >"$LOGDIR/model_events.txt"
sort "$LOGDIR/shipments.tsv" >"$LOGDIR/model_shipments.tsv"
sort -u "$LOGDIR/created.txt" >"$LOGDIR/model_created.txt"

# compare: the differences between PostgreSQL and the model, into LOST_* and DIFF_* counts.
compare() {
  q "SELECT t.id, t.status, to_char(t.updated_at AT TIME ZONE 'UTC', $TSFMT), count(e.tracker_id)
       FROM trackers t LEFT JOIN tracking_events e ON e.tracker_id = t.id
      WHERE t.id LIKE 'trk\_${TAG}\_%' GROUP BY t.id, t.status, t.updated_at" |
    tr '|' '\t' | sort >"$LOGDIR/pg_trackers.tsv" || return 1
  q "SELECT id FROM easypost_events WHERE id LIKE 'evt\_${TAG}\_%'" | sort >"$LOGDIR/pg_events.txt" || return 1
  q "SELECT id, coalesce(selected_rate_id, ''), coalesce(tracking_code, '') FROM shipments" | tr '|' '\t' |
    sort >"$LOGDIR/pg_shipments.tsv" || return 1
  cut -f1 "$LOGDIR/pg_shipments.tsv" >"$LOGDIR/pg_shipment_ids.txt"
  # Per tracker: lost = missing or older than the model; unconfirmed = newer, at a version
  # sent but never answered 2xx (uncertain.tsv: Kafka may hold it); differ = anything else.
  read -r LOST_TRACKERS DIFF_TRACKERS UNCONFIRMED < <(awk -F'\t' '
    FILENAME == ARGV[1] { u[$1 " " $2] = 1; next }
    FILENAME == ARGV[2] { m[$1] = $0; mv[$1] = $4 + 0; next }
    { p[$1] = $0; pv[$1] = $4 + 0 }
    END {
      for (id in m) {
        if (!(id in p) || pv[id] < mv[id]) lost++
        else if (p[id] == m[id]) continue
        else if (pv[id] > mv[id] && ((id " " pv[id]) in u)) unconf++
        else differ++
      }
      for (id in p) if (!(id in m)) { if ((id " " pv[id]) in u) unconf++; else differ++ }
      print lost + 0, differ + 0, unconf + 0
    }' "$LOGDIR/uncertain.tsv" "$LOGDIR/model_trackers.tsv" "$LOGDIR/pg_trackers.tsv")
  LOST_EVENTS=$(comm -23 "$LOGDIR/model_events.txt" "$LOGDIR/pg_events.txt" | wc -l)
  EXTRA_EVENTS=$(comm -13 "$LOGDIR/model_events.txt" "$LOGDIR/pg_events.txt" | wc -l)
  LOST_BOUGHT=$(comm -23 "$LOGDIR/model_shipments.tsv" "$LOGDIR/pg_shipments.tsv" | wc -l)
  LOST_CREATED=$(comm -23 "$LOGDIR/model_created.txt" "$LOGDIR/pg_shipment_ids.txt" | wc -l)
  EXTRA_SHIPMENTS=$(comm -13 "$LOGDIR/model_created.txt" "$LOGDIR/pg_shipment_ids.txt" | wc -l)
  LOST=$((LOST_TRACKERS + LOST_EVENTS + LOST_BOUGHT + LOST_CREATED))
}
equal() { compare && [ "$LOST" = 0 ] && [ "$DIFF_TRACKERS" = 0 ]; }
# diagnose_lost: for every webhook Event answered 2xx but missing from PostgreSQL (at most
# SOAK_DIAG_MAX, 20), where Kafka has it, while the broker still runs: topic[partition]@offset
# (or "NOT in Kafka": the receiver answered 2xx without the broker holding it), the
# group's kafka_offsets row for that partition, and the messages around it (which are in
# processed_events, and when).  Kafka's messages (topic, partition, offset, key, event id)
# go to $LOGDIR/kafka_<topic>.tsv; prints "SOAK diagnosis ...".
diagnose_lost() {
  comm -23 "$LOGDIR/model_events.txt" "$LOGDIR/pg_events.txt" >"$LOGDIR/lost_events.txt"
  local n t max=${SOAK_DIAG_MAX:-20} id row topic part off in_kafka=0 not_in_kafka=0 in_dlq=0
  n=$(wc -l <"$LOGDIR/lost_events.txt")
  [ "$n" -gt 0 ] || return 0
  say "diagnosis: $n webhook Event(s) answered 2xx are not in PostgreSQL; reading Kafka from the beginning"
  for t in trackers events dlq; do
    ss_kafkactl consume -t "${PREFIX}$t" --until-end --timeout 300 2>"$LOGDIR/logs/kafkactl_$t.log" |
      awk -F'\t' -v t="$t" '{ e = ""; if (match($4, /"event_id":"[^"]*"/)) e = substr($4, RSTART + 12, RLENGTH - 13)
                              print t "\t" $1 "\t" $2 "\t" $3 "\t" e }' >"$LOGDIR/kafka_$t.tsv" ||
      say "diagnosis: reading ${PREFIX}$t failed (logs/kafkactl_$t.log)"
  done
  say "diagnosis: Kafka holds $(cat "$LOGDIR"/kafka_{trackers,events}.tsv | wc -l) webhook/event messages, $(wc -l <"$LOGDIR/kafka_dlq.tsv") dead-lettered"
  head -n "$max" "$LOGDIR/lost_events.txt" | while read -r id; do
    row=$(awk -F'\t' -v e="$id" '$5 == e' "$LOGDIR/kafka_trackers.tsv" "$LOGDIR/kafka_events.tsv" | head -n 3)
    if grep -qF "$id" "$LOGDIR/kafka_dlq.tsv"; then echo "  $id: dead-lettered ($(grep -F "$id" "$LOGDIR/kafka_dlq.tsv" | head -n 1 | cut -f2,3))"; fi
    if [ -z "$row" ]; then
      echo "  $id: NOT in Kafka: the receiver answered 2xx without the broker holding it"
      grep -h -F "$id" "$LOGDIR"/logs/receiver.*.log | head -n 5 | sed 's/^/    receiver: /'
      continue
    fi
    while IFS=$'\t' read -r topic part off _ _; do
      echo "  $id: in Kafka at ${PREFIX}$topic[$part]@$off"
      q </dev/null "SELECT '    kafka_offsets: group ' || consumer_group || ' next_offset ' || next_offset || ' (updated ' || updated_at || ')'
           FROM kafka_offsets WHERE topic = '${PREFIX}$topic' AND partition = $part"
      # The partition around it: which messages PostgreSQL applied (processed_events), when.
      awk -F'\t' -v p="$part" -v o="$off" '$2 == p && $3 >= o - 5 && $3 <= o + 5 { print $3 "\t" $5 }' \
        "$LOGDIR/kafka_$topic.tsv" | while IFS=$'\t' read -r o e; do
          echo "    @$o $e $(q </dev/null "SELECT coalesce((SELECT 'applied ' || processed_at FROM processed_events WHERE event_id = '$e'), 'NOT applied')")"
        done
      # What the workers did with that partition: where each assignment and rewind
      # started, which offsets a revoke or an abandoned batch dropped.
      for f in "$LOGDIR"/logs/worker*.log; do
        awk -v pat="$topic[$part]@" -v f="${f##*/}" 'index($0, pat) && /assigned|dropped|rewinding|abandoned/ {
            r = substr($0, index($0, pat)); sub(/[, ].*/, "", r)
            m = $0; sub(/.*shipstream-sync-worker: /, "", m); sub(/ (offsets|messages)=.*/, "", m)
            print "    " $1 " " f ": " m ": " r }' "$f"
      done | sort -k1,1
    done <<<"$row"
  done
  in_kafka=$(awk -F'\t' 'FILENAME == ARGV[1] { l[$1] = 1; next } ($5 in l) { print $5 }' \
    "$LOGDIR/lost_events.txt" "$LOGDIR/kafka_trackers.tsv" "$LOGDIR/kafka_events.tsv" | sort -u | wc -l)
  in_dlq=$(awk -F'\t' 'FILENAME == ARGV[1] { l[$1] = 1; next } ($5 in l) { print $5 }' \
    "$LOGDIR/lost_events.txt" "$LOGDIR/kafka_dlq.tsv" | sort -u | wc -l)
  not_in_kafka=$((n - in_kafka))
  echo "SOAK diagnosis: lost_events=$n in_kafka=$in_kafka (the sync worker skipped them) not_in_kafka=$not_in_kafka (the receiver answered 2xx without them) dead_lettered=$in_dlq"
  grep -hE 'assigned|revoked|kept .* partition|abandon|not applied|stopping' "$LOGDIR"/logs/worker*.log |
    sort | cut -c1-200 >"$LOGDIR/worker_rebalances.txt"
  say "diagnosis: the workers' rebalances and failed batches in $LOGDIR/worker_rebalances.txt"
  cp "$SS_TEST_KAFKA_DIR/kafka.log" "$LOGDIR/logs/kafka.log" 2>/dev/null
}

# drain <seconds>: until PostgreSQL equals the model, or nothing changed for 30 s (what is
# missing then will not come by itself), or the deadline.
drain() {
  local deadline=$((SECONDS + $1)) last="" since=$SECONDS sig
  while :; do
    equal && return 0
    sig="$LOST $DIFF_TRACKERS $(q "SELECT count(*) FROM processed_events") $(wc -l <"$LOGDIR/pg_shipments.tsv")"
    if [ "$sig" != "$last" ]; then last=$sig; since=$SECONDS
    elif [ $((SECONDS - since)) -ge 30 ]; then say "PostgreSQL settled (no change for 30 s)"; return 1
    fi
    [ $SECONDS -lt "$deadline" ] || { say "drain deadline ($1 s) reached"; return 1; }
    sleep 2
  done
}

t_drain=$SECONDS
drain "$DRAIN"
if [ -n "${SOAK_BREAK:-}" ]; then
  # Shows that the comparison can fail: one tracker set back, one Event removed and one
  # bought shipment's tracking code cleared, as a lossy pipeline would leave them.
  say "SOAK_BREAK: damaging PostgreSQL on purpose (3 differences)"
  q "UPDATE trackers SET status = 'unknown' WHERE id = (SELECT min(id) FROM trackers WHERE id LIKE 'trk\_${TAG}\_%')" >/dev/null
  q "DELETE FROM easypost_events WHERE id = (SELECT min(id) FROM easypost_events WHERE id LIKE 'evt\_${TAG}\_%')" >/dev/null
  q "UPDATE shipments SET tracking_code = NULL WHERE id = (SELECT min(id) FROM shipments WHERE tracking_code IS NOT NULL)" >/dev/null
fi
compare || ss_fail "cannot read PostgreSQL"
drain_s=$((SECONDS - t_drain))
LOST_BEFORE=$LOST
repaired=0
if [ "$LOST" != 0 ]; then
  say "after ${drain_s} s PostgreSQL still lacks: trackers $LOST_TRACKERS, events $LOST_EVENTS, bought shipments $LOST_BOUGHT, created shipments $LOST_CREATED"
  comm -23 "$LOGDIR/model_shipments.tsv" "$LOGDIR/pg_shipments.tsv" | head -5
  comm -23 "$LOGDIR/model_trackers.tsv" "$LOGDIR/pg_trackers.tsv" | head -5
  say "one reconcile pass (the repair of hand-offs a killed gateway lost)"
  env EASYPOST_API_KEY="$EP_KEY" EASYPOST_API_BASE="http://127.0.0.1:${PORT[sim]}/v2" DATABASE_URL="$DB_URL" \
    "${KAFKA_ENV[@]}" RECONCILE_STATE_DIR="$SS_TEST_TMP" RECONCILE_MAX_OPEN_TRACKERS=0 LOG_FORMAT=text \
    "$SS_BIN_DIR/shipstream-reconcile" once --window 2h >"$LOGDIR/reconcile.out" 2>"$LOGDIR/logs/reconcile.log" ||
    say "reconcile exited $?"
  cat "$LOGDIR/reconcile.out"
  repaired=$(sed -n 's/.*repaired \([0-9]*\).*/\1/p' "$LOGDIR/reconcile.out" | tail -n 1)
  drain 120
  compare || ss_fail "cannot read PostgreSQL"
fi
APPLIED=$(q "SELECT count(*) FROM processed_events WHERE event_id LIKE 'evt\_${TAG}\_%'")
IN_PG_SHIPMENTS=$(wc -l <"$LOGDIR/pg_shipment_ids.txt")

# ---------------------------------------------------------------- counts
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$GEN_LINE"; }
echo
echo "SOAK seconds=$SECONDS_RUN kills=$kills (${KILLED[*]:-none}) pg_restarts=$pg_done kafka_restarts=$kafka_done"
echo "SOAK sent=$(field sent) 2xx=$(field ok) retried=$(field retried) unresolved=$(field unresolved)"
echo "SOAK webhooks: sent=$(field webhooks_sent) 2xx=$(field webhooks_ok) retried=$(field webhooks_retried) duplicates=$(field dup_sent) reordered=$(field ooo_sent) events_2xx=$(wc -l <"$LOGDIR/model_events.txt") trackers=$(wc -l <"$LOGDIR/model_trackers.tsv")"
echo "SOAK gateway: creates=$(field creates_sent) created_2xx=$(field creates_ok) buys=$(field buys_sent) bought_2xx=$(field buys_ok) retried=$(field gw_retried) shipments_in_pg=$IN_PG_SHIPMENTS (not answered 2xx, in PG: $EXTRA_SHIPMENTS)"
echo "SOAK applied=$APPLIED (webhook Events in processed_events) drain=${drain_s}s lost_before_reconcile=$LOST_BEFORE reconcile_repaired=${repaired:-0}"
echo "SOAK lost=$LOST (trackers $LOST_TRACKERS, events $LOST_EVENTS, bought shipments $LOST_BOUGHT, created shipments $LOST_CREATED) differ=$DIFF_TRACKERS extra_events=$EXTRA_EVENTS unconfirmed=$UNCONFIRMED (trackers at a version sent but never answered 2xx)"
[ "$(field unresolved)" = 0 ] || say "warning: $(field unresolved) requests never answered 2xx (in $LOGDIR/pending.txt)"
if [ "$LOST" != 0 ] || [ "$DIFF_TRACKERS" != 0 ]; then
  diagnose_lost
  [ -n "${SS_TEST_KEEP_ON_FAILURE:-}" ] &&
    say "Kafka's and PostgreSQL's data are kept: $SS_TEST_KAFKA_DIR, $SS_TEST_PG_DATA ($DB_URL; remove them when done)"
  comm -3 "$LOGDIR/model_trackers.tsv" "$LOGDIR/pg_trackers.tsv" | head -10 >&2
  comm -23 "$LOGDIR/model_shipments.tsv" "$LOGDIR/pg_shipments.tsv" | head -5 >&2
  ss_fail "PostgreSQL differs from the model (logs and model files in $LOGDIR)"
fi
ss_pass "PostgreSQL equals the model: every request answered 2xx is in it, nothing lost"

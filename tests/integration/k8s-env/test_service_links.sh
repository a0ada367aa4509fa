#!/usr/bin/env bash
# With a Service named `kafka` in the namespace, Kubernetes puts KAFKA_PORT,
# KAFKA_SERVICE_HOST, KAFKA_PORT_9092_TCP... into every pod (unless the pod sets
# enableServiceLinks: false). The KAFKA_* pass-through must skip exactly those:
# the gateway, the webhook receiver and the sync worker start with them set and
# answer /ready 200, and log at debug that they were ignored. A genuinely
# unknown KAFKA_* variable is still refused at start, by name.
set -uo pipefail
# shellcheck source=../lib.sh
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

# What a Service "kafka" (ClusterIP 10.96.0.12, ports client 9092/TCP and
# controller 9093/TCP) injects.
K8S=(KAFKA_SERVICE_HOST=10.96.0.12 KAFKA_SERVICE_PORT=9092 KAFKA_SERVICE_PORT_CLIENT=9092
  KAFKA_SERVICE_PORT_CONTROLLER=9093 KAFKA_PORT=tcp://10.96.0.12:9092
  KAFKA_PORT_9092_TCP=tcp://10.96.0.12:9092 KAFKA_PORT_9092_TCP_PROTO=tcp
  KAFKA_PORT_9092_TCP_PORT=9092 KAFKA_PORT_9092_TCP_ADDR=10.96.0.12
  KAFKA_PORT_9093_TCP=tcp://10.96.0.12:9093 KAFKA_PORT_9093_TCP_PROTO=tcp
  KAFKA_PORT_9093_TCP_PORT=9093 KAFKA_PORT_9093_TCP_ADDR=10.96.0.12)

for b in shipstream-gateway shipstream-webhook-receiver shipstream-sync-worker shipstream-migrate easypost-sim; do
  [ -x "$SS_BIN_DIR/$b" ] || ss_fail "$SS_BIN_DIR/$b not built"
done
DB_URL=$(ss_test_createdb k8s_service_links) || ss_fail "createdb"
DATABASE_URL=$DB_URL MIGRATIONS_DIR="$SS_SOURCE_ROOT/migrations" "$SS_BIN_DIR/shipstream-migrate" up \
  >"$SS_TEST_TMP/migrate.log" 2>&1 || { cat "$SS_TEST_TMP/migrate.log"; ss_fail "migrate up"; }
PREFIX=$(ss_test_prefix)
ss_test_create_topics "$PREFIX" 2 || ss_fail "create topics"

SIM_PORT=$(ss_free_port) || ss_fail "no free port"
ss_start_bg "$SS_TEST_TMP/sim.log" env LISTEN=127.0.0.1:$SIM_PORT EASYPOST_API_KEY=EZTK_test_k8s \
  "$SS_BIN_DIR/easypost-sim" >/dev/null
ss_wait_for 15 curl -fsS "http://127.0.0.1:$SIM_PORT/health" || ss_fail "easypost-sim did not start"

COMMON=(KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX"
  LOG_LEVEL=debug LOG_FORMAT=text "${K8S[@]}")
declare -A ENV=(
  [shipstream-gateway]="DATABASE_URL=$DB_URL EASYPOST_API_KEY=EZTK_test_k8s EASYPOST_API_BASE=http://127.0.0.1:$SIM_PORT/v2 GATEWAY_API_KEYS=k8s_key_$RANDOM"
  [shipstream-webhook-receiver]="EASYPOST_WEBHOOK_SECRET=k8s_secret_$RANDOM"
  [shipstream-sync-worker]="DATABASE_URL=$DB_URL KAFKA_GROUP_ID=k8s-env-$$"
)
declare -A PORT PID

# start <binary> [VAR=v...]: in the background with COMMON + its own variables.
start() {
  local b=$1; shift
  PORT[$b]=$(ss_free_port) || ss_fail "no free port"
  # shellcheck disable=SC2086 # ENV values are space-separated assignments without spaces
  ss_start_bg "$SS_TEST_TMP/$b.log" env LISTEN="127.0.0.1:${PORT[$b]}" "${COMMON[@]}" ${ENV[$b]} "$@" \
    "$SS_BIN_DIR/$b" >/dev/null
  PID[$b]=$SS_BG_PID
}

for b in shipstream-gateway shipstream-webhook-receiver shipstream-sync-worker; do start "$b"; done
for b in shipstream-gateway shipstream-webhook-receiver shipstream-sync-worker; do
  ss_wait_for 30 curl -fsS "http://127.0.0.1:${PORT[$b]}/ready" ||
    ss_fail "$b is not ready with the Kubernetes service link variables set"
  kill -0 "${PID[$b]}" 2>/dev/null || ss_fail "$b exited"
  for v in KAFKA_PORT KAFKA_SERVICE_HOST KAFKA_PORT_9092_TCP_ADDR KAFKA_SERVICE_PORT_CONTROLLER; do
    grep -q "ignored a Kubernetes service link variable.*variable=$v\b" "$SS_TEST_TMP/$b.log" ||
      ss_fail "$b: no debug line saying $v was ignored"
  done
  grep -qi 'unknown\|refus' <(grep -i 'KAFKA_PORT\|KAFKA_SERVICE' "$SS_TEST_TMP/$b.log") &&
    ss_fail "$b complained about a service link variable"
  ss_pass "$b: /ready 200 with ${#K8S[@]} service link variables set, each ignored at debug"
done

# Control: an unknown KAFKA_* variable (a near miss of the shapes above) is
# still refused at start, naming the variable.
for b in shipstream-gateway shipstream-webhook-receiver shipstream-sync-worker; do
  log="$SS_TEST_TMP/$b.refused.log"
  PORT[$b]=$(ss_free_port) || ss_fail "no free port"
  # shellcheck disable=SC2086
  timeout 20 env LISTEN="127.0.0.1:${PORT[$b]}" "${COMMON[@]}" ${ENV[$b]} KAFKA_PORT_9092_TCP_HOST=10.96.0.12 \
    "$SS_BIN_DIR/$b" >"$log" 2>&1 </dev/null
  rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { tail -5 "$log" >&2; ss_fail "$b started (rc $rc) with KAFKA_PORT_9092_TCP_HOST set"; }
  grep -q 'KAFKA_PORT_9092_TCP_HOST=10.96.0.12' "$log" || { tail -5 "$log" >&2; ss_fail "$b: refusal does not name KAFKA_PORT_9092_TCP_HOST"; }
  ss_pass "$b refuses the unknown KAFKA_PORT_9092_TCP_HOST at start (exit $rc) and names it"
done

#!/usr/bin/env bash
# `make test-containers` (and the containers phase of `make test`): the
# compose stack, for real, under podman on this machine.
#
#   1. make images (deploy/containers/images.sh): base, shipstream, postgres, kafka
#   2. docker-compose.yml with the demo profile (deploy/containers/compose.sh:
#      docker-compose against podman's API) under a project name of its own;
#      every service healthy, every job exited 0; each container non-root,
#      read-only root, no capabilities
#   3. as a user: buy a shipment through the gateway, send a signed webhook to
#      the receiver, see both in /db and the analytics dashboard
#   4. scale the sync worker to 3: the partitions are shared by all three
#   5. stop PostgreSQL, send a webhook meanwhile, start it again: nothing lost
#      (the rows before are still there, the webhook sent while it was down
#      arrives, a new purchase after it syncs)
#   6. down -v: no container, network or volume of the project is left
#   7. Kubernetes: tests/integration/containers/kube.sh (podman kube play)
# Prints the phase's time, the image sizes and each service's start-to-ready
# time; ends with "containers: N passed, M failed".
#
# Needs root, podman (deploy/local/deps.sh containers) and Debian's mirror
# (first run: debootstrap, apt in the image builds) and Maven Central (the
# Kafka jars, cached).  SS_CT_KEEP=1 leaves the stack up for a look.
# SS_CT_SKIP="images kube" skips those steps (images must then exist).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
. deploy/containers/podman.sh
T0=$SECONDS

PASSED=0 FAILED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
skipped() { [[ " ${SS_CT_SKIP:-} " == *" $1 "* ]]; }
finish() {
  echo "containers: phase took $((SECONDS - T0)) s"
  echo "containers: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
  exit
}
# Fatal: nothing after this step can be meaningful.
abort() { fail "$*"; show_logs; finish; }

need_podman || { FAILED=1; finish; }
for t in docker-compose jq curl openssl; do
  command -v "$t" >/dev/null || { fail "$t is missing (deploy/local/deps.sh containers)"; finish; }
done

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# wait_until <timeout_s> <command...>
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
  done
  return 1
}

# ------------------------------------------------------------ the project
export COMPOSE_PROJECT_NAME="ssct$$$(printf '%04x' $RANDOM)"
P=$COMPOSE_PROJECT_NAME
RUN_DIR=$(mktemp -d /run/shipstream-ct.XXXXXX 2>/dev/null || mktemp -d)
export SS_PODMAN_SOCK="$RUN_DIR/podman.sock"
KEY="ct-key-$RANDOM$RANDOM"
export GATEWAY_API_KEYS=$KEY
export EASYPOST_WEBHOOK_SECRET="ct-secret-$(openssl rand -hex 12)"
export EASYPOST_API_KEY=ct-sim-key EASYPOST_API_BASE=http://easypost-sim:8080/v2
export LOG_LEVEL=info SIM_TIME_SCALE=${SIM_TIME_SCALE:-}
GW_PORT=$(free_port) WH_PORT=$(free_port) RS_PORT=$(free_port) SIM_PORT=$(free_port)
# Published on loopback only.
export GATEWAY_PORT=127.0.0.1:$GW_PORT WEBHOOK_PORT=127.0.0.1:$WH_PORT
export REFRESH_SCHEDULER_PORT=127.0.0.1:$RS_PORT EASYPOST_SIM_PORT=127.0.0.1:$SIM_PORT
GW=http://127.0.0.1:$GW_PORT WH=http://127.0.0.1:$WH_PORT RS=http://127.0.0.1:$RS_PORT
AUTH=(-H "Authorization: Bearer $KEY")
compose() { timeout "${CT_TIMEOUT:-300}" deploy/containers/compose.sh --profile demo "$@"; }
ctr() { echo "${P}_$1_${2:-1}"; }
ctrs() { podman ps -a --filter "label=com.docker.compose.project=$P" --format '{{.Names}}' 2>/dev/null | sort; }

DOWN_DONE=""
show_logs() {
  local c
  for c in $(ctrs); do
    echo "----- $c: $(podman inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null) -----" >&2
    podman logs --tail 15 "$c" 2>&1 | cut -c1-400 >&2
  done
}
cleanup() {
  if [ -z "$DOWN_DONE" ] && [ -z "${SS_CT_KEEP:-}" ]; then
    CT_TIMEOUT=120 compose down -v --remove-orphans -t 5 >/dev/null 2>&1
    # Whatever compose left (it was killed, the engine died): by label.
    podman rm -f -t 0 $(podman ps -aq --filter "label=com.docker.compose.project=$P") >/dev/null 2>&1
    podman network rm -f "${P}_default" >/dev/null 2>&1
    podman volume rm -f "${P}_pgdata" "${P}_kafkadata" >/dev/null 2>&1
  fi
  if [ -n "${SS_CT_KEEP:-}" ]; then
    echo "containers: SS_CT_KEEP: stack $P left up; DOCKER_HOST=unix://$SS_PODMAN_SOCK COMPOSE_PROJECT_NAME=$P deploy/containers/compose.sh ..."
  else
    deploy/containers/compose.sh engine-stop >/dev/null 2>&1
    rm -rf "$RUN_DIR"
  fi
}
trap cleanup EXIT
trap 'echo "containers: interrupted" >&2; exit 130' INT TERM
echo "containers: project $P, engine socket $SS_PODMAN_SOCK, gateway $GW"

# ------------------------------------------------------------ 1. images
if ! skipped images; then
  t=$SECONDS
  if deploy/containers/images.sh; then pass "make images ($((SECONDS - t)) s)"
  else abort "make images failed"; fi
fi
for img in "$SHIPSTREAM_IMAGE:$SHIPSTREAM_TAG" "$POSTGRES_IMAGE" "$KAFKA_IMAGE"; do
  podman image exists "$img" || abort "image $img is missing"
done

# ------------------------------------------------------------ 2. up
t_up=$(now)
echo "containers: compose up (demo profile)"
if compose up -d --no-build >"$RUN_DIR/up.log" 2>&1; then
  pass "compose --profile demo up -d ($(secs "$t_up" "$(now)") s)"
else
  cat "$RUN_DIR/up.log" >&2
  abort "compose up failed"
fi
SERVICES=(postgres_1 kafka_1 gateway_1 webhook-receiver_1 sync-worker_1 sync-worker_2 refresh-scheduler_1 easypost-sim_1)
JOBS=(migrate kafka-topics)
health_of() { podman inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null; }
all_healthy() {
  local s
  for s in "${SERVICES[@]}"; do
    [ "$(health_of "${P}_$s")" = healthy ] || return 1
  done
}
if wait_until 240 all_healthy; then pass "every service healthy ($(secs "$t_up" "$(now)") s after up began)"
else
  for s in "${SERVICES[@]}"; do echo "  ${P}_$s: $(health_of "${P}_$s")" >&2; done
  abort "not every service became healthy within 240 s"
fi
for j in "${JOBS[@]}"; do
  st=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$(ctr "$j")" 2>/dev/null)
  [ "$st" = "exited 0" ] && pass "job $j exited 0" || fail "job $j: $st"
done

# Start-to-ready: container start → its first passing health check (checks
# run every second while starting); jobs: start → exit.
READY=()
ts() { date -d "$1" +%s.%N; }
for s in "${SERVICES[@]}"; do
  c=${P}_$s
  read -r started first < <(podman inspect "$c" | jq -r '.[0] | [.State.StartedAt, ([.State.Health.Log[]? | select(.ExitCode == 0) | .Start] | sort | .[0] // "")] | @tsv')
  if [ -n "$first" ]; then READY+=("$(printf '%-22s %6s s' "$s" "$(secs "$(ts "$started")" "$(ts "$first")")")"); fi
done
for j in "${JOBS[@]}"; do
  read -r started finished < <(podman inspect "$(ctr "$j")" | jq -r '.[0].State | [.StartedAt, .FinishedAt] | @tsv')
  READY+=("$(printf '%-22s %6s s (job, start to exit)' "$j" "$(secs "$(ts "$started")" "$(ts "$finished")")")")
done

# As in production: non-root, read-only root file system, no capabilities.
for c in $(ctrs); do
  read -r user ro caps < <(podman inspect "$c" | jq -r '.[0] | [.Config.User, .HostConfig.ReadonlyRootfs, ((.EffectiveCaps // []) | length)] | @tsv')
  if [[ -n $user && ${user%%:*} != 0 && ${user%%:*} != root && $ro == true && $caps == 0 ]]; then
    pass "$c runs as $user, read-only root, no capabilities"
  else
    fail "$c: user '$user', read-only root $ro, $caps effective capabilities"
  fi
done

# ------------------------------------------------------------ 3. a user's day
buy() { # prints "id tracking_code tracker_id" of a bought shipment
  local body shp id rate bought
  body='{"shipment":{"from_address":{"name":"Sender","street1":"388 Townsend St","city":"San Francisco","state":"CA","zip":"94107","country":"US","phone":"4155550100"},"to_address":{"name":"Receiver","street1":"1 E Main St","city":"Chicago","state":"IL","zip":"60602","country":"US","phone":"4155550100"},"parcel":{"length":10,"width":8,"height":4,"weight":15.4}}}'
  shp=$(curl -sS -f -m 30 "${AUTH[@]}" -H 'Content-Type: application/json' -d "$body" "$GW/v1/shipments") || return 1
  id=$(jq -r .id <<<"$shp")
  rate=$(jq -r '.rates | sort_by(.rate | tonumber) | .[0].id' <<<"$shp")
  bought=$(curl -sS -f -m 30 "${AUTH[@]}" -H 'Content-Type: application/json' -H "Idempotency-Key: ct-$id" \
    -d "{\"rate\":{\"id\":\"$rate\"}}" "$GW/v1/shipments/$id/buy") || return 1
  jq -r '[.id, .tracking_code, (.tracker.id // "")] | @tsv' <<<"$bought"
}
# webhook <shipment> <tracking code> <tracker id> <message>: a signed
# tracker.updated Event (EasyPost's recorded body, re-aimed); prints the status.
webhook() {
  local f="$RUN_DIR/webhook.json" sig stamp
  stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  jq -c --arg e "evt_ct$RANDOM$RANDOM" --arg s "$1" --arg t "$2" --arg k "${3:-trk_ct$RANDOM}" --arg m "$4" --arg now "$stamp" \
    '.id = $e | .created_at = $now | .updated_at = $now
     | .result.id = $k | .result.shipment_id = $s | .result.tracking_code = $t
     | .result.updated_at = $now | .result.status = "out_for_delivery"
     | .result.tracking_details = [.result.tracking_details[0] | .message = $m | .datetime = $now | .status = "out_for_delivery"]' \
    tests/fixtures/easypost/event-tracker-updated.json >"$f"
  sig=$(openssl dgst -sha256 -hmac "$EASYPOST_WEBHOOK_SECRET" -r <"$f" | cut -d' ' -f1)
  curl -sS -o /dev/null -w '%{http_code}' -m 15 -H 'Content-Type: application/json' \
    -H "X-Hmac-Signature: hmac-sha256-hex=$sig" --data-binary "@$f" "$WH/webhooks/easypost"
}
in_db() { curl -sS -f -m 5 "${AUTH[@]}" "$GW/db/shipments/$1" >/dev/null; }
has_event() { curl -sS -f -m 5 "${AUTH[@]}" "$GW/db/shipments/$1" | jq -e --arg m "$2" '[.tracking_events[].message] | index($m)' >/dev/null; }
count() { podman exec "$(ctr postgres)" psql -U shipstream -d shipstream -tAc "SELECT count(*) FROM $1"; }

read -r SHP TRK TRKR < <(buy) || true
if [ -n "${SHP:-}" ]; then pass "bought $SHP through the gateway (tracking $TRK)"; else abort "buying a shipment through the gateway failed"; fi
wait_until 60 in_db "$SHP" && pass "$SHP is in /db/shipments" || fail "$SHP not in /db/shipments after 60 s"
MSG1="container test webhook $RANDOM"
code=$(webhook "$SHP" "$TRK" "$TRKR" "$MSG1")
[ "$code" = 200 ] && pass "signed webhook accepted (200)" || fail "signed webhook answered $code"
wait_until 60 has_event "$SHP" "$MSG1" && pass "the webhook's tracking event is in /db/shipments/$SHP" ||
  fail "the webhook's tracking event is not in /db after 60 s"
code=$(curl -sS -o /dev/null -w '%{http_code}' -m 10 -H 'Content-Type: application/json' \
  -H "X-Hmac-Signature: hmac-sha256-hex=$(printf '%064d' 0)" -d '{"id":"evt_x"}' "$WH/webhooks/easypost")
[ "$code" = 401 ] && pass "a wrongly signed webhook is refused (401)" || fail "a wrongly signed webhook answered $code"
curl -sS -f -m 60 -X POST "${AUTH[@]}" "$RS/refresh" >/dev/null || fail "POST /refresh on the refresh-scheduler failed"
# POST /refresh answers 202 and refreshes asynchronously: poll the dashboard.
# mode=all: the sim's mode follows the API key the stack gives it (test or production)
dash_counts() {
  dash=$(curl -sS -f -m 10 "${AUTH[@]}" "$GW/db/analytics/dashboard?days=30&mode=all" || true)
  jq -e '.summary.shipments >= 1 and (.freshness.last_refreshed_at != null)' <<<"$dash" >/dev/null 2>&1
}
if wait_until 60 dash_counts; then
  pass "the analytics dashboard counts $(jq .summary.shipments <<<"$dash") shipment(s), refreshed $(jq -r .freshness.last_refreshed_at <<<"$dash")"
else
  fail "dashboard: ${dash:0:300}"
fi

# ------------------------------------------------------------ 4. three workers
assigned() { # partitions the worker holds now, from its last assignment log line
  podman logs "$1" 2>&1 | sed -n -e 's/.*"msg":"assigned \([0-9]*\) partition(s).*/\1/p' \
    -e 's/.*"msg":"revoked [0-9]* partition(s).*/0/p' | tail -n 1
}
TOTAL=$(( $(assigned "$(ctr sync-worker 1)") + $(assigned "$(ctr sync-worker 2)") ))
shared3() {
  local i n sum=0
  for i in 1 2 3; do
    n=$(assigned "$(ctr sync-worker $i)"); [ "${n:-0}" -gt 0 ] || return 1
    sum=$((sum + n))
  done
  [ "$sum" -eq "$TOTAL" ]
}
t=$SECONDS
if compose up -d --no-build --no-deps --scale sync-worker=3 sync-worker >"$RUN_DIR/scale.log" 2>&1 &&
   wait_until 120 eval '[ "$(health_of "$(ctr sync-worker 3)")" = healthy ]'; then
  pass "scaled the sync worker to 3 replicas ($((SECONDS - t)) s)"
  if wait_until 90 shared3; then
    pass "3 workers share the $TOTAL partitions: $(assigned "$(ctr sync-worker 1)") + $(assigned "$(ctr sync-worker 2)") + $(assigned "$(ctr sync-worker 3)")"
  else
    fail "partitions not shared by 3 workers: $(assigned "$(ctr sync-worker 1)"), $(assigned "$(ctr sync-worker 2)"), $(assigned "$(ctr sync-worker 3)") of $TOTAL"
  fi
else
  cat "$RUN_DIR/scale.log" >&2; fail "scaling the sync worker to 3 failed"
fi
read -r SHP2 TRK2 TRKR2 < <(buy) || true
[ -n "${SHP2:-}" ] && wait_until 60 in_db "$SHP2" && pass "with 3 workers, $SHP2 syncs" || fail "with 3 workers, a new purchase did not sync"

# ------------------------------------------------------------ 5. PostgreSQL restart
before_s=$(count shipments) before_e=$(count tracking_events) before_p=$(count processed_events)
t=$SECONDS
compose stop -t 20 postgres >"$RUN_DIR/pg.log" 2>&1 || fail "compose stop postgres failed"
MSG2="sent while PostgreSQL was down $RANDOM"
code=$(webhook "$SHP" "$TRK" "$TRKR" "$MSG2")
[ "$code" = 200 ] && pass "webhook accepted while PostgreSQL is down (Kafka holds it)" || fail "webhook while PostgreSQL is down answered $code"
compose start postgres >>"$RUN_DIR/pg.log" 2>&1 || fail "compose start postgres failed"
if wait_until 120 eval '[ "$(health_of "$(ctr postgres)")" = healthy ]'; then
  pass "PostgreSQL healthy again $((SECONDS - t)) s after the stop"
else
  cat "$RUN_DIR/pg.log" >&2; fail "PostgreSQL not healthy 120 s after its restart"
fi
wait_until 60 curl -fsS -m 3 "$GW/ready" && pass "gateway ready again" || fail "gateway not ready after the PostgreSQL restart"
wait_until 90 has_event "$SHP" "$MSG2" && pass "the webhook sent while PostgreSQL was down reached /db" ||
  fail "the webhook sent while PostgreSQL was down never reached /db"
after_s=$(count shipments) after_e=$(count tracking_events) after_p=$(count processed_events)
if [ "$after_s" -ge "$before_s" ] && [ "$after_e" -gt "$before_e" ] && [ "$after_p" -gt "$before_p" ] && in_db "$SHP" && in_db "$SHP2"; then
  pass "nothing lost across the restart: shipments $before_s → $after_s, tracking events $before_e → $after_e, processed events $before_p → $after_p"
else
  fail "rows after the restart: shipments $before_s → $after_s, tracking events $before_e → $after_e, processed events $before_p → $after_p"
fi
read -r SHP3 _ _ < <(buy) || true
[ -n "${SHP3:-}" ] && wait_until 60 in_db "$SHP3" && pass "after the restart, a new purchase ($SHP3) syncs" || fail "after the restart, a new purchase did not sync"

# ------------------------------------------------------------ 6. down -v
if [ -n "${SS_CT_KEEP:-}" ]; then
  echo "containers: SS_CT_KEEP set: not taking the stack down"
else
  t=$SECONDS
  if compose down -v --remove-orphans -t 10 >"$RUN_DIR/down.log" 2>&1; then
    DOWN_DONE=1; pass "compose down -v ($((SECONDS - t)) s)"
  else
    cat "$RUN_DIR/down.log" >&2; fail "compose down -v failed"
  fi
  left_c=$(ctrs | tr '\n' ' ')
  left_n=$(podman network ls --format '{{.Name}}' | grep "^${P}_" | tr '\n' ' ')
  left_v=$(podman volume ls --format '{{.Name}}' | grep "^${P}_" | tr '\n' ' ')
  [ -z "$left_c$left_n$left_v" ] && pass "down -v left no container, network or volume" ||
    fail "left behind: containers [$left_c] networks [$left_n] volumes [$left_v]"
fi

# ------------------------------------------------------------ 7. Kubernetes
if ! skipped kube; then
  t=$SECONDS
  tests/integration/containers/kube.sh 2>&1 | tee "$RUN_DIR/kube.log"
  krc=${PIPESTATUS[0]}
  kline=$(grep -E '^kube: [0-9]+ passed, [0-9]+ failed$' "$RUN_DIR/kube.log" | tail -1)
  if [ -n "$kline" ]; then
    PASSED=$((PASSED + $(sed -E 's/^kube: ([0-9]+) passed.*/\1/' <<<"$kline")))
    FAILED=$((FAILED + $(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$kline")))
  fi
  if [ "$krc" -eq 0 ] && [ -n "$kline" ]; then echo "containers: kube play part took $((SECONDS - t)) s"
  else fail "podman kube play of the dev overlay (exit $krc, $((SECONDS - t)) s)"; fi
fi

echo
echo "containers: images"
for img in "$SHIPSTREAM_IMAGE:$SHIPSTREAM_TAG" "$POSTGRES_IMAGE" "$KAFKA_IMAGE" "$SS_DEBIAN_IMAGE"; do
  printf '  %-40s %s\n' "$img" "$(podman image inspect --format '{{.Size}}' "$img" 2>/dev/null | awk '{ printf "%.1f MB", $1 / 1e6 }')"
done
echo "containers: start to ready (first passing health check)"
for r in "${READY[@]}"; do echo "  $r"; done
finish

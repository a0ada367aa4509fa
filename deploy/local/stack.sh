#!/usr/bin/env bash
# The whole local stack on one machine, no containers (`make up/down/status/logs`).
#
#   stack.sh up       start PostgreSQL, Kafka, topics, migrations and every service built
#                     in build/bin; safe to run again (restarts only what died)
#   stack.sh down     stop everything it started (data stays in .run/ until make clean)
#   stack.sh status   what runs where
#   stack.sh logs [-f] [name...]   last lines of each log (-f: follow)
#
# State under .run/: pg/ (PostgreSQL data + postgres.log), kafka/ (broker data +
# kafka.log), logs/<service>.log, pids/<service>.pid, ports.env, secrets.env, stack.env.
# Run as root from a folder the postgres user cannot reach (a clone under /root or in a
# `mktemp -d`), .run/pg links to /var/tmp/shipstream-pg/<hash>/data (deploy/local/pg.sh).
# Ports: PostgreSQL 5432 (SS_PG_PORT or PGPORT), Kafka 9092 (SS_KAFKA_PORT) and its
# controller 9093 (SS_KAFKA_CONTROLLER_PORT), gateway 8000, webhook-receiver 8001,
# sync-worker 9101, refresh-scheduler 9102, easypost-sim 8080, reconcile 9103
# (`shipstream-reconcile serve`) (SS_<NAME>_PORT, e.g.
# SS_GATEWAY_PORT); a taken port moves to the next free one, so several checkouts run
# side by side (each `up` holds a per-user lock while it chooses ports and starts).
# Honours EASYPOST_WEBHOOK_SECRET and GATEWAY_API_KEYS (else generated once and kept in
# .run/secrets.env), EASYPOST_API_KEY (+ EASYPOST_API_BASE): the gateway talks to EasyPost
# itself and easypost-sim is not started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUN="$ROOT/.run"
BIN="${SS_BIN_DIR:-$ROOT/build/bin}"
PREFIX="shipstream."
READY_TIMEOUT=${SS_READY_TIMEOUT:-60}

# name binary default-port env-override
SERVICES=(
  "webhook-receiver shipstream-webhook-receiver 8001 SS_WEBHOOK_PORT"
  "sync-worker shipstream-sync-worker 9101 SS_SYNC_WORKER_PORT"
  "refresh-scheduler shipstream-refresh-scheduler 9102 SS_REFRESH_PORT"
  "easypost-sim easypost-sim 8080 SS_SIM_PORT"
  "gateway shipstream-gateway 8000 SS_GATEWAY_PORT"
  "reconcile shipstream-reconcile 9103 SS_RECONCILE_PORT"
)

say() { echo "stack: $*"; }
die() { echo "stack: $*" >&2; exit 1; }

port_taken() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
# Alive and not a zombie waiting for its reaper.
pid_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
svc_pid() { cat "$RUN/pids/$1.pid" 2>/dev/null || true; }

# ---------------------------------------------------------------- ports
# Chosen once, kept in .run/ports.env so that every later `up` reuses them.
load_ports() { [ -f "$RUN/ports.env" ] && . "$RUN/ports.env"; return 0; }

# pick VAR default [override-value]: keep a saved port, else the wanted one, else the next
# free one that is neither listening nor saved/chosen for another of ours (PICKED).
pick_port() {
  local var=$1 want=$2 override=${3:-} saved=${!1:-} p
  if [ -n "$saved" ]; then return 0; fi
  [ -n "$override" ] && want=$override
  p=$want
  while port_taken "$p" || [[ " $PICKED " == *" $p "* ]]; do p=$((p + 1)); done
  [ "$p" != "$want" ] && say "port $want is taken: using $p for ${var%_PORT}"
  printf -v "$var" '%s' "$p"
  PICKED+=" $p"
  echo "$var=$p" >>"$RUN/ports.env"
}

choose_ports() {
  PICKED=""
  load_ports
  # A saved port taken by someone else while our process is down: choose again.
  local kafka_up s name bin port envvar var
  kafka_up=$(pid_alive "$(cat "$RUN/kafka/kafka.pid" 2>/dev/null)" && echo running || true)
  recheck PG_PORT "$( [ -f "$RUN/pg/postmaster.pid" ] && echo running)"
  recheck KAFKA_PORT "$kafka_up"
  recheck KAFKA_CONTROLLER_PORT "$kafka_up"
  for s in "${SERVICES[@]}"; do
    read -r name bin port envvar <<<"$s"
    var="$(echo "${name//-/_}" | tr a-z A-Z)_PORT"
    recheck "$var" "$(pid_alive "$(svc_pid "$name")" && echo running)"
  done
  # Ports kept from the last run are ours: a port chosen anew must not take one.
  for var in PG_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT; do PICKED+=" ${!var:-}"; done
  for s in "${SERVICES[@]}"; do
    read -r name bin port envvar <<<"$s"
    var="$(echo "${name//-/_}" | tr a-z A-Z)_PORT"
    PICKED+=" ${!var:-}"
  done
  PICKED+=" "
  pick_port PG_PORT 5432 "${SS_PG_PORT:-${PGPORT:-}}"
  pick_port KAFKA_PORT 9092 "${SS_KAFKA_PORT:-}"
  pick_port KAFKA_CONTROLLER_PORT 9093 "${SS_KAFKA_CONTROLLER_PORT:-}"
  for s in "${SERVICES[@]}"; do
    read -r name bin port envvar <<<"$s"
    var="$(echo "${name//-/_}" | tr a-z A-Z)_PORT"
    pick_port "$var" "$port" "${!envvar:-}"
  done
}

# Two `make up` at once (two checkouts) would pick the same free ports: one at a
# time per user, from choosing the ports until everything listens. The servers
# started meanwhile must not inherit the lock (7>&- on each).
lock_up() {
  local lock="${TMPDIR:-/tmp}/shipstream-up.$(id -u).lock"
  exec 7>>"$lock" || { say "note: cannot open $lock: not serialising with other checkouts"; return 0; }
  if ! flock -n 7; then
    say "another make up (other checkout) is choosing ports and starting: waiting for it"
    flock -w 600 7 || die "still locked after 600 s: $lock"
  fi
}

recheck() {
  local var=$1 ours=$2
  [ -n "${!var:-}" ] || return 0
  if [ -z "$ours" ] && port_taken "${!var}"; then
    say "saved port ${!var} of ${var%_PORT} is now taken by another process: choosing again"
    sed -i "/^$var=/d" "$RUN/ports.env"
    unset "$var"
  fi
}

# ---------------------------------------------------------------- secrets
load_secrets() {
  [ -f "$RUN/secrets.env" ] && . "$RUN/secrets.env"
  local changed=""
  if [ -n "${EASYPOST_WEBHOOK_SECRET:-}" ]; then
    WEBHOOK_SECRET=$EASYPOST_WEBHOOK_SECRET
  elif [ -z "${GEN_WEBHOOK_SECRET:-}" ]; then
    GEN_WEBHOOK_SECRET="whsec_$(openssl rand -hex 24)"; changed=1
  fi
  WEBHOOK_SECRET=${EASYPOST_WEBHOOK_SECRET:-$GEN_WEBHOOK_SECRET}
  if [ -z "${GATEWAY_API_KEYS:-}" ] && [ -z "${GEN_GATEWAY_API_KEYS:-}" ]; then
    GEN_GATEWAY_API_KEYS="ssk_$(openssl rand -hex 20)"; changed=1
  fi
  API_KEYS=${GATEWAY_API_KEYS:-$GEN_GATEWAY_API_KEYS}
  API_KEY=${API_KEYS%%,*}
  # A production-style key (EZAK…): the sim gives its objects the key's mode, and the
  # dashboard shows production by default, so the demo's shipments are on it at once.
  if [ -z "${GEN_SIM_API_KEY:-}" ]; then GEN_SIM_API_KEY="EZAK$(openssl rand -hex 16)"; changed=1; fi
  if [ -n "$changed" ]; then
    (umask 077
     { printf 'GEN_WEBHOOK_SECRET=%q\n' "${GEN_WEBHOOK_SECRET:-}"
       printf 'GEN_GATEWAY_API_KEYS=%q\n' "${GEN_GATEWAY_API_KEYS:-}"
       printf 'GEN_SIM_API_KEY=%q\n' "$GEN_SIM_API_KEY"; } >"$RUN/secrets.env")
  fi
  if [ -n "${EASYPOST_API_KEY:-}" ]; then
    USE_SIM=""
    EP_KEY=$EASYPOST_API_KEY
    EP_BASE=${EASYPOST_API_BASE:-https://api.easypost.com/v2}
  else
    USE_SIM=1
    EP_KEY=$GEN_SIM_API_KEY
    EP_BASE="http://127.0.0.1:$EASYPOST_SIM_PORT/v2"
  fi
}

# ---------------------------------------------------------------- services
svc_env() {
  local name=$1 port=$2
  local common=(LISTEN="127.0.0.1:$port" LOG_LEVEL="${LOG_LEVEL:-info}" LOG_FORMAT="${LOG_FORMAT:-text}")
  case $name in
    gateway)
      printf '%s\n' "${common[@]}" DATABASE_URL="$DATABASE_URL" KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
        KAFKA_TOPIC_PREFIX="$PREFIX" EASYPOST_API_KEY="$EP_KEY" EASYPOST_API_BASE="$EP_BASE" \
        GATEWAY_API_KEYS="$API_KEYS";;
    webhook-receiver)
      printf '%s\n' "${common[@]}" KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" KAFKA_TOPIC_PREFIX="$PREFIX" \
        EASYPOST_WEBHOOK_SECRET="$WEBHOOK_SECRET"
      [ -n "${EASYPOST_WEBHOOK_SECRET_PREVIOUS:-}" ] && echo "EASYPOST_WEBHOOK_SECRET_PREVIOUS=$EASYPOST_WEBHOOK_SECRET_PREVIOUS"
      return 0;;
    sync-worker)
      printf '%s\n' "${common[@]}" DATABASE_URL="$DATABASE_URL" KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
        KAFKA_TOPIC_PREFIX="$PREFIX" KAFKA_GROUP_ID="${KAFKA_GROUP_ID:-shipstream-sync-worker}";;
    refresh-scheduler)
      printf '%s\n' "${common[@]}" DATABASE_URL="$DATABASE_URL" GATEWAY_API_KEYS="$API_KEYS" \
        REFRESH_INTERVAL_SECONDS="${REFRESH_INTERVAL_SECONDS:-300}" \
        REFRESH_MIN_INTERVAL_SECONDS="${REFRESH_MIN_INTERVAL_SECONDS:-5}";;
    easypost-sim)
      printf '%s\n' "${common[@]}" EASYPOST_API_KEY="$EP_KEY" EASYPOST_WEBHOOK_SECRET="$WEBHOOK_SECRET" \
        SIM_WEBHOOK_URL="$WEBHOOK_URL";;
    reconcile)
      printf '%s\n' "${common[@]}" DATABASE_URL="$DATABASE_URL" KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
        KAFKA_TOPIC_PREFIX="$PREFIX" EASYPOST_API_KEY="$EP_KEY" EASYPOST_API_BASE="$EP_BASE" \
        RECONCILE_STATE_DIR="$RUN" RECONCILE_INTERVAL_SECONDS="${RECONCILE_INTERVAL_SECONDS:-900}";;
  esac
}

start_service() {
  local name=$1 bin=$2 port=$3
  local log="$RUN/logs/$name.log"
  mapfile -t envs < <(svc_env "$name" "$port")
  echo "---- $(date -u +%FT%TZ) starting $name on 127.0.0.1:$port" >>"$log"
  # Own session: survives the terminal, stopped by `make down`. Variables of the
  # caller's shell that a service reads are replaced by ours (env overrides).
  local args=()
  [ "$name" = reconcile ] && args=(serve)
  setsid env "${envs[@]}" "$BIN/$bin" "${args[@]}" >>"$log" 2>&1 </dev/null 7>&- &
  echo $! >"$RUN/pids/$name.pid"
}

ready() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$1/ready" 2>/dev/null; }

stop_pid() {
  local pid=$1 what=$2 deadline
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 20))
  while pid_alive "$pid"; do
    if [ $SECONDS -ge $deadline ]; then
      say "$what ($pid) did not stop in 20 s: killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------- up
up() {
  mkdir -p "$RUN/logs" "$RUN/pids"
  chmod 755 "$RUN"
  lock_up
  choose_ports
  local changed=0 s name bin port envvar var

  # PostgreSQL
  if [ ! -f "$RUN/pg/PG_VERSION" ]; then
    "$HERE/pg.sh" init --dir "$RUN/pg" -q; changed=1
    if [ -L "$RUN/pg" ]; then
      say "PostgreSQL data in $(readlink "$RUN/pg") (user postgres cannot reach $RUN; .run/pg links to it)"
    fi
  fi
  if ! "$HERE/pg.sh" status --dir "$RUN/pg" >/dev/null 2>&1; then
    "$HERE/pg.sh" start --dir "$RUN/pg" --port "$PG_PORT" -q 7>&-; changed=1
    say "PostgreSQL started on 127.0.0.1:$PG_PORT"
  fi
  DATABASE_URL=$("$HERE/pg.sh" createdb --dir "$RUN/pg" --port "$PG_PORT" shipstream --owner shipstream)

  # Kafka
  KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
  if ! pid_alive "$(cat "$RUN/kafka/kafka.pid" 2>/dev/null)"; then
    "$HERE/kafka.sh" fetch >/dev/null
    SS_BIN_DIR="$BIN" "$HERE/kafka.sh" start --dir "$RUN/kafka" --port "$KAFKA_PORT" \
      --controller-port "$KAFKA_CONTROLLER_PORT" --heap "${SS_KAFKA_HEAP:-512m}" -q 7>&-
    changed=1
    say "Kafka started on $KAFKA_BOOTSTRAP_SERVERS"
  fi
  [ -x "$BIN/ss-kafkactl" ] || die "$BIN/ss-kafkactl is missing: run make (make up builds it)"
  "$BIN/ss-kafkactl" -b "$KAFKA_BOOTSTRAP_SERVERS" wait --timeout 60 || die "Kafka does not answer"
  if [ ! -f "$RUN/kafka/.topics-$PREFIX" ]; then
    "$BIN/ss-kafkactl" -b "$KAFKA_BOOTSTRAP_SERVERS" create-topics --prefix "$PREFIX" --partitions 12 \
      --timeout 60 2>/dev/null || die "could not create the topics"
    touch "$RUN/kafka/.topics-$PREFIX"
    say "topics ${PREFIX}{shipments,trackers,addresses,batches,events,dlq} (12 partitions)"
  fi

  # Migrations (applying none is a no-op, so always run: new ones land with pulls).
  if [ -x "$BIN/shipstream-migrate" ]; then
    if ! DATABASE_URL="$DATABASE_URL" MIGRATIONS_DIR="$ROOT/migrations" LOG_FORMAT=text \
         "$BIN/shipstream-migrate" up >"$RUN/logs/migrate.log" 2>&1; then
      cat "$RUN/logs/migrate.log" >&2
      die "migrations failed (see .run/logs/migrate.log)"
    fi
    grep -E "^applied" "$RUN/logs/migrate.log" | sed "s/^/stack: migrate: /" || true
  else
    say "note: build/bin/shipstream-migrate not built yet: migrations skipped"
  fi

  # Services
  load_secrets
  WEBHOOK_URL="http://127.0.0.1:$WEBHOOK_RECEIVER_PORT/webhooks/easypost"
  local started=()
  for s in "${SERVICES[@]}"; do
    read -r name bin port envvar <<<"$s"
    var="$(echo "${name//-/_}" | tr a-z A-Z)_PORT"
    port=${!var}
    if [ "$name" = easypost-sim ] && [ -z "$USE_SIM" ]; then continue; fi
    if [ ! -x "$BIN/$bin" ]; then
      say "note: $bin is not built yet: skipped"
      continue
    fi
    if pid_alive "$(svc_pid "$name")"; then continue; fi
    if [ -f "$RUN/pids/$name.pid" ]; then say "$name had stopped (see .run/logs/$name.log): starting it again"; fi
    start_service "$name" "$bin" "$port"
    started+=("$name:$port")
    changed=1
  done
  # Wait for every started service to be ready, with a deadline.
  local deadline=$((SECONDS + READY_TIMEOUT)) failed=0 item
  for item in "${started[@]}"; do
    name=${item%%:*}; port=${item##*:}
    until ready "$port"; do
      if ! pid_alive "$(svc_pid "$name")"; then
        echo "stack: $name exited during start; last lines of .run/logs/$name.log:" >&2
        tail -15 "$RUN/logs/$name.log" >&2
        failed=1; break
      fi
      if [ $SECONDS -ge $deadline ]; then
        echo "stack: $name not ready on :$port after ${READY_TIMEOUT}s; last lines of .run/logs/$name.log:" >&2
        tail -15 "$RUN/logs/$name.log" >&2
        failed=1; break
      fi
      sleep 0.2
    done
  done

  write_env
  if [ $changed -eq 0 ]; then
    say "already running (nothing changed)"
  fi
  print_summary
  [ $failed -eq 0 ] || die "some services did not become ready (make logs; make status)"
}

write_env() {
  local tmp="$RUN/stack.env.tmp"
  (umask 077
   {
     echo "# written by make up ($(basename "$0")); source it: . .run/stack.env"
     printf 'DATABASE_URL=%q\n' "$DATABASE_URL"
     printf 'KAFKA_BOOTSTRAP_SERVERS=%q\n' "$KAFKA_BOOTSTRAP_SERVERS"
     printf 'KAFKA_TOPIC_PREFIX=%q\n' "$PREFIX"
     printf 'GATEWAY_URL=%q\n' "http://127.0.0.1:$GATEWAY_PORT"
     printf 'WEBHOOK_URL=%q\n' "$WEBHOOK_URL"
     printf 'SYNC_WORKER_URL=%q\n' "http://127.0.0.1:$SYNC_WORKER_PORT"
     printf 'REFRESH_SCHEDULER_URL=%q\n' "http://127.0.0.1:$REFRESH_SCHEDULER_PORT"
     printf 'RECONCILE_URL=%q\n' "http://127.0.0.1:$RECONCILE_PORT"
     printf 'EASYPOST_API_BASE=%q\n' "$EP_BASE"
     printf 'GATEWAY_API_KEY=%q\n' "$API_KEY"
     printf 'EASYPOST_WEBHOOK_SECRET=%q\n' "$WEBHOOK_SECRET"
     if [ -n "$USE_SIM" ]; then printf 'EASYPOST_SIM_URL=%q\n' "http://127.0.0.1:$EASYPOST_SIM_PORT"; fi
     echo "export DATABASE_URL KAFKA_BOOTSTRAP_SERVERS KAFKA_TOPIC_PREFIX GATEWAY_URL WEBHOOK_URL SYNC_WORKER_URL REFRESH_SCHEDULER_URL RECONCILE_URL EASYPOST_API_BASE GATEWAY_API_KEY EASYPOST_WEBHOOK_SECRET"
   } >"$tmp")
  if cmp -s "$tmp" "$RUN/stack.env"; then rm -f "$tmp"; else mv "$tmp" "$RUN/stack.env"; fi
}

svc_line() {
  local name=$1 port=$2 bin=$3 pid
  pid=$(svc_pid "$name")
  if [ ! -x "$BIN/$bin" ]; then
    printf '  %-18s %-24s %s\n' "$name" "-" "not built"
  elif pid_alive "$pid"; then
    if ready "$port"; then
      printf '  %-18s %-24s %s\n' "$name" "http://127.0.0.1:$port" "ready (pid $pid)"
    else
      printf '  %-18s %-24s %s\n' "$name" "http://127.0.0.1:$port" "running, NOT ready (pid $pid)"
    fi
  else
    printf '  %-18s %-24s %s\n' "$name" "http://127.0.0.1:$port" "stopped"
  fi
}

print_summary() {
  echo
  echo "shipstream local stack (state in .run/, logs: make logs)"
  printf '  %-18s %-24s %s\n' postgresql "127.0.0.1:$PG_PORT" "$DATABASE_URL"
  printf '  %-18s %-24s %s\n' kafka "$KAFKA_BOOTSTRAP_SERVERS" "topics ${PREFIX}*"
  local s name bin port envvar var
  for s in "${SERVICES[@]}"; do
    read -r name bin port envvar <<<"$s"
    var="$(echo "${name//-/_}" | tr a-z A-Z)_PORT"
    if [ "$name" = easypost-sim ] && [ -z "$USE_SIM" ]; then
      printf '  %-18s %-24s %s\n' "$name" "-" "not used: the gateway talks to $EP_BASE"; continue
    fi
    svc_line "$name" "${!var}" "$bin"
  done
  echo
  echo "  gateway API key:  $API_KEY"
  echo "  webhook secret:   in .run/stack.env (EASYPOST_WEBHOOK_SECRET)"
  echo "  everything above: . .run/stack.env"
  echo
  echo "Try:"
  echo "  1. create and buy a shipment through the gateway:"
  echo "       deploy/local/demo.sh shipment"
  echo "  2. the dashboard data (after the sync worker and the refresh):"
  echo "       . .run/stack.env; curl -s -H \"Authorization: Bearer \$GATEWAY_API_KEY\" \"\$GATEWAY_URL/db/analytics/dashboard?days=30&mode=all\" | jq ."
  if [ -x "$BIN/shipstream-trafficgen" ]; then
    echo "  3. generate traffic (20 shipments/s for 30 s, bought; tracker webhooks follow):"
    echo "       . .run/stack.env; TRAFFIC_RATE=20 TRAFFIC_DURATION=30 ${BIN#$ROOT/}/shipstream-trafficgen"
  else
    echo "  3. generate traffic (N shipments bought, tracker webhooks follow):"
    echo "       deploy/local/demo.sh traffic 50"
  fi
}

# ---------------------------------------------------------------- down / status / logs
down() {
  [ -d "$RUN" ] || { say "nothing to stop (no .run/)"; return 0; }
  local i s name pid any=0
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    read -r name _ <<<"${SERVICES[$i]}"
    pid=$(svc_pid "$name")
    if pid_alive "$pid"; then stop_pid "$pid" "$name"; say "stopped $name"; any=1; fi
    rm -f "$RUN/pids/$name.pid"
  done
  if pid_alive "$(cat "$RUN/kafka/kafka.pid" 2>/dev/null)"; then
    "$HERE/kafka.sh" stop --dir "$RUN/kafka" -q; say "stopped Kafka"; any=1
  fi
  if [ -f "$RUN/pg/PG_VERSION" ] && "$HERE/pg.sh" status --dir "$RUN/pg" >/dev/null 2>&1; then
    "$HERE/pg.sh" stop --dir "$RUN/pg" -q; say "stopped PostgreSQL"; any=1
  fi
  [ $any -eq 1 ] && say "down (data kept in .run/; make clean removes it)" || say "nothing was running"
}

status() {
  [ -f "$RUN/ports.env" ] || { echo "stack: not set up (make up)"; return 1; }
  load_ports
  local rc=0
  "$HERE/pg.sh" status --dir "$RUN/pg" 2>/dev/null || rc=1
  "$HERE/kafka.sh" status --dir "$RUN/kafka" 2>/dev/null || rc=1
  local s name bin port envvar var
  for s in "${SERVICES[@]}"; do
    read -r name bin port envvar <<<"$s"
    var="$(echo "${name//-/_}" | tr a-z A-Z)_PORT"
    [ -n "${!var:-}" ] || continue
    if [ "$name" = easypost-sim ] && [ ! -f "$RUN/pids/$name.pid" ]; then continue; fi
    svc_line "$name" "${!var}" "$bin"
    [ -x "$BIN/$bin" ] && ! pid_alive "$(svc_pid "$name")" && rc=1
  done
  return $rc
}

logs() {
  local follow="" names=() files=() n
  for a in "$@"; do [ "$a" = -f ] && follow=1 || names+=("$a"); done
  if [ ${#names[@]} -eq 0 ]; then
    files=("$RUN"/logs/*.log "$RUN/pg/postgres.log" "$RUN/kafka/kafka.log")
  else
    for n in "${names[@]}"; do
      case $n in
        postgres|postgresql|pg) files+=("$RUN/pg/postgres.log");;
        kafka) files+=("$RUN/kafka/kafka.log");;
        *) files+=("$RUN/logs/$n.log");;
      esac
    done
  fi
  local existing=()
  for f in "${files[@]}"; do [ -f "$f" ] && existing+=("$f"); done
  [ ${#existing[@]} -gt 0 ] || { echo "stack: no logs yet (make up)"; return 0; }
  if [ -n "$follow" ]; then exec tail -n 20 -F "${existing[@]}"; fi
  for f in "${existing[@]}"; do
    echo "==> ${f#$ROOT/} <=="
    tail -n "${SS_LOG_LINES:-30}" "$f"
    echo
  done
  echo "(follow them all: deploy/local/stack.sh logs -f [name...])"
}

case ${1:-} in
  up) up;;
  down) down;;
  status) status;;
  logs) shift; logs "$@";;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] && [ "$1" != -h ] && [ "$1" != --help ] && exit 2; exit 0;;
esac

#!/usr/bin/env bash
# docker-compose.yml under podman: Debian's docker-compose (1.29) talking to
# podman's Docker-compatible API (`podman system service`), which this script
# starts on a socket of its own.
#
#   compose.sh [docker-compose arguments]    e.g.  compose.sh --profile demo up -d
#                                                  compose.sh ps
#                                                  compose.sh down -v
#   compose.sh engine-stop                   stop this socket's API service and health checker
#
# Environment: COMPOSE_PROJECT_NAME (default shipstream), SS_PODMAN_SOCK
# (default /run/shipstream/podman.sock), the image variables of podman.sh
# (the local images of `make images` by default; with SS_PUBLIC_IMAGES=1 the
# compose file's own defaults), and everything docker-compose.yml reads.
#
# Why docker-compose and not podman-compose: Debian 12's podman-compose 1.0.3
# ignores depends_on conditions (service_healthy, service_completed_successfully),
# ignores --scale and leaves the network behind on `down`; docker-compose 1.29
# does all three through podman's API.  It does not know compose's top-level
# `name:`, so it reads a copy of the file without that line (the project name
# comes from -p instead).
#
# Podman runs health checks from systemd timers; where systemd is not PID 1
# (these machines) nothing runs them, and every container would stay
# "starting".  This script also starts a small checker that runs
# `podman healthcheck run` for the project's containers: every second while a
# container is starting or unhealthy, every 15 s once healthy.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/podman.sh"
need_podman
command -v docker-compose >/dev/null || { echo "docker-compose is missing: deploy/local/deps.sh" >&2; exit 1; }

PROJECT="${COMPOSE_PROJECT_NAME:-shipstream}"
SOCK="${SS_PODMAN_SOCK:-/run/shipstream/podman.sock}"
RUN_DIR="$(dirname "$SOCK")"
mkdir -p "$RUN_DIR"
export DOCKER_HOST="unix://$SOCK"
export COMPOSE_DOCKER_CLI_BUILD=0

if [ -n "${SS_PUBLIC_IMAGES:-}" ]; then
  unset POSTGRES_IMAGE KAFKA_IMAGE
  SHIPSTREAM_IMAGE=shipstream
fi

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { cat "$1" 2>/dev/null || true; }

engine_up() {
  if curl -fsS -m 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then return 0; fi
  rm -f "$SOCK"
  setsid podman system service --time=0 "unix://$SOCK" >>"$SOCK.log" 2>&1 </dev/null &
  echo $! >"$SOCK.pid"
  local i
  for i in $(seq 1 100); do
    curl -fsS -m 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && return 0
    pid_alive "$(pid_of "$SOCK.pid")" || break
    sleep 0.1
  done
  tail -20 "$SOCK.log" >&2
  echo "compose.sh: podman system service did not answer on $SOCK" >&2
  exit 1
}

health_checker() {
  local last_full=0 now id status
  while :; do
    now=$SECONDS
    # In parallel: one slow check must not delay the others.
    while read -r id status; do
      [ -n "$id" ] || continue
      case $status in
        *"(starting)"* | *"(unhealthy)"*) podman healthcheck run "$id" >/dev/null 2>&1 & ;;
        *"(healthy)"*) [ $((now - last_full)) -ge 15 ] && podman healthcheck run "$id" >/dev/null 2>&1 & ;;
      esac
    done < <(podman ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.ID}} {{.Status}}' 2>/dev/null)
    wait
    [ $((now - last_full)) -ge 15 ] && last_full=$now
    sleep 1
  done
}

checker_up() {
  local pidf="$RUN_DIR/health-$PROJECT.pid"
  pid_alive "$(pid_of "$pidf")" && return 0
  health_checker >/dev/null 2>&1 </dev/null &
  echo $! >"$pidf"
  disown
}

engine_stop() {
  local pidf
  for pidf in "$RUN_DIR/health-$PROJECT.pid" "$SOCK.pid"; do
    local pid; pid=$(pid_of "$pidf")
    if pid_alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
      pid_alive "$pid" && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$pidf"
  done
  rm -f "$SOCK"
}

if [ "${1:-}" = engine-stop ]; then engine_stop; exit 0; fi

engine_up
checker_up
FILE="$RUN_DIR/compose-$PROJECT.yml"
grep -v '^name:' "$SS_ROOT/docker-compose.yml" >"$FILE"
FILES=(-f "$FILE")
if [[ ${POSTGRES_IMAGE:-} == localhost/* && ${KAFKA_IMAGE:-} == localhost/* ]]; then
  FILES+=(-f "$SS_CONTAINERS_DIR/compose.hardened.yml")
fi
exec docker-compose "${FILES[@]}" --project-directory "$SS_ROOT" -p "$PROJECT" "$@"

# Sourced by the container scripts: podman with the project's engine settings.
#   . deploy/containers/podman.sh
# Exports CONTAINERS_CONF (deploy/containers/containers.conf) and SS_CACHE,
# and defines need_podman, which says what to install when podman is missing.
SS_CONTAINERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SS_ROOT="$(cd "$SS_CONTAINERS_DIR/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$SS_CONTAINERS_DIR/containers.conf}"
SS_CACHE="${SS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipstream}"

# Image names: the same variables docker-compose.yml reads.
: "${SHIPSTREAM_IMAGE:=localhost/shipstream}"
: "${SHIPSTREAM_TAG:=latest}"
: "${POSTGRES_IMAGE:=localhost/shipstream-postgres:15}"
: "${KAFKA_IMAGE:=localhost/shipstream-kafka:4.1.1}"
: "${SS_DEBIAN_IMAGE:=localhost/debian:12}"
export SHIPSTREAM_IMAGE SHIPSTREAM_TAG POSTGRES_IMAGE KAFKA_IMAGE SS_DEBIAN_IMAGE

need_podman() {
  if ! command -v podman >/dev/null 2>&1; then
    echo "podman is missing: run deploy/local/deps.sh containers (as root)" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "the container scripts run rootful podman (debootstrap and bridge networks need root)" >&2
    return 1
  fi
}

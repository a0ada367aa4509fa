#!/usr/bin/env bash
# `make images`: every image docker-compose.yml needs, built here with podman
# from Debian's packages and Maven Central's jars (no public registry needed).
#
#   images.sh [shipstream|postgres|kafka|base ...]     default: all
#
#   $SS_DEBIAN_IMAGE   localhost/debian:12, from deploy/containers/base-image.sh
#                      (debootstrap); set it to debian:12 where that can be pulled
#   $SHIPSTREAM_IMAGE:$SHIPSTREAM_TAG   localhost/shipstream:latest   (Dockerfile)
#   $POSTGRES_IMAGE    localhost/shipstream-postgres:15   (postgres/Containerfile)
#   $KAFKA_IMAGE       localhost/shipstream-kafka:4.1.1   (kafka/Containerfile)
#
# podman keeps the layers: a second run rebuilds only what changed (for the
# shipstream image, the compile stage when a source file changed).
# Prints each image's size and build time.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/podman.sh"
need_podman
cd "$SS_ROOT"

WHAT=("$@")
[ ${#WHAT[@]} -eq 0 ] && WHAT=(base shipstream postgres kafka)
wants() { printf '%s\n' "${WHAT[@]}" | grep -qx "$1"; }
say() { echo "images: $*" >&2; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

build() { # name tag context containerfile
  local name=$1 tag=$2 ctx=$3 file=$4 t0=$SECONDS log
  log=$(mktemp)
  say "building $tag"
  if ! nice podman build --layers --pull=never \
      --build-arg "DEBIAN_IMAGE=$SS_DEBIAN_IMAGE" --build-arg "DEBIAN_SLIM_IMAGE=$SS_DEBIAN_IMAGE" \
      -t "$tag" -f "$file" "$ctx" >"$log" 2>&1; then
    tail -40 "$log" >&2
    rm -f "$log"
    say "building $tag FAILED"
    return 1
  fi
  rm -f "$log"
  printf '%-40s %8s  %4d s\n' "$tag" "$(size_of "$tag")" $((SECONDS - t0)) >"$OUT/$name.report"
}
size_of() { podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

t_all=$SECONDS
if wants base || wants shipstream || wants postgres || wants kafka; then
  if [[ $SS_DEBIAN_IMAGE == localhost/* ]]; then
    "$SS_CONTAINERS_DIR/base-image.sh"
  elif ! podman image exists "$SS_DEBIAN_IMAGE"; then
    podman pull "$SS_DEBIAN_IMAGE" >/dev/null
  fi
fi
# The three builds at once: on a new machine they spend most of their time
# in apt downloads; the shipstream compile takes the cores.
pids=()
if wants shipstream; then
  build shipstream "$SHIPSTREAM_IMAGE:$SHIPSTREAM_TAG" "$SS_ROOT" "$SS_ROOT/Dockerfile" &
  pids+=($!)
fi
if wants postgres; then
  build postgres "$POSTGRES_IMAGE" "$SS_CONTAINERS_DIR/postgres" "$SS_CONTAINERS_DIR/postgres/Containerfile" &
  pids+=($!)
fi
if wants kafka; then
  jars=$("$SS_ROOT/deploy/local/kafka.sh" fetch)
  ctx="$OUT/kafka-context"
  mkdir -p "$ctx"
  cp "$SS_CONTAINERS_DIR"/kafka/* "$ctx/"
  cp "$SS_ROOT/deploy/local/kafka/broker.properties" "$ctx/"
  cp -al "$jars/libs" "$ctx/libs" 2>/dev/null || cp -a "$jars/libs" "$ctx/libs"
  build kafka "$KAFKA_IMAGE" "$ctx" "$ctx/Containerfile" &
  pids+=($!)
fi
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
# Every build leaves the previous image untagged; keep a week of them (the
# layer cache of the next build) and drop the rest, so the store stays bounded.
podman image prune -f --filter until=168h >/dev/null 2>&1 || true
say "done in $((SECONDS - t_all)) s"
printf '  %-40s %8s  %6s\n' image size build
for f in "$OUT"/*.report; do [ -f "$f" ] && sed 's/^/  /' "$f"; done
exit "$failed"

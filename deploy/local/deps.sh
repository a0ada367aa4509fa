#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages shipstream needs, only those missing.
# Idempotent; one dpkg-query when nothing is missing (well under a second).
#   deps.sh          what building and running the stack needs (make up, make)
#   deps.sh --test   also what the tests drive the product with (make test)
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git curl jq ca-certificates iproute2 openssl procps
  librdkafka-dev libpq-dev libcurl4-openssl-dev libcivetweb-dev libssl-dev
  libjson-c-dev libcmocka-dev libunistring-dev
  postgresql postgresql-client
  default-jre-headless maven
  wrk clang libclang-rt-14-dev clang-format
  yq docker-compose          # deploy checks: YAML parsing, `docker-compose config` (no engine needed)
)
TEST_PKGS=(
  prometheus                 # promtool: check and unit test deploy/monitoring/alerts.yml
)
for a in "$@"; do
  case $a in
    --test) PKGS+=("${TEST_PKGS[@]}");;
    *) echo "deps: unknown option $a (--test)" >&2; exit 2;;
  esac
done

missing=()
# One dpkg-query for all; a package dpkg has never heard of prints no line.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null | awk '$2=="installed"{print $1}' || true)
for p in "${PKGS[@]}"; do
  grep -qx "$p" <<<"$installed" || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

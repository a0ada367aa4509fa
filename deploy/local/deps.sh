#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages shipstream needs, only those missing.
# Idempotent; one dpkg-query when nothing is missing (well under a second).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git curl jq ca-certificates iproute2 openssl procps
  librdkafka-dev libpq-dev libcurl4-openssl-dev libcivetweb-dev libssl-dev
  libjson-c-dev libcmocka-dev libunistring-dev
  postgresql postgresql-client
  default-jre-headless maven
  wrk clang libclang-rt-14-dev clang-format
  yq docker-compose          # deploy checks: YAML parsing, `docker-compose config` (no engine needed)
  libjs-chart.js             # the gateway's dashboard serves its Chart.js (GATEWAY_CHARTJS_PATH)
)
# `deps.sh --browser`: also what the dashboard's browser test needs (tests/integration/dashboard).
BROWSER_PKGS=(chromium chromium-driver python3-selenium)
if [ "${1:-}" = "--browser" ]; then
  PKGS+=("${BROWSER_PKGS[@]}")
fi

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
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

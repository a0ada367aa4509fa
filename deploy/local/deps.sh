#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages shipstream needs, only those missing.
# Idempotent; one dpkg-query when nothing is missing (well under a second).
#
#   deps.sh              what `make up`, `make` and `make bench` need
#   deps.sh --test       also what the tests drive the product with (promtool; make test)
#   deps.sh --browser    also chromium, chromium-driver, python3-selenium (the dashboard's
#                        browser test installs them itself)
#   deps.sh containers   also the container tooling that `make images` and
#                        `make test-containers` use (podman with runc, netavark and
#                        aardvark-dns for bridge networks with DNS, podman-compose,
#                        debootstrap for a local Debian base image); plain `make up`
#                        never installs these.
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
TEST_PKGS=(
  prometheus                 # promtool: check and unit test deploy/monitoring/alerts.yml
  python3-venv python3-pip   # tests/python/venv.sh: the PyPI clients (easypost, mcp, openapi-spec-validator)
  nodejs                     # the MCP conformance suite (npm @modelcontextprotocol/conformance);
                             # npm too, below, unless this nodejs brings its own (NodeSource's does)
)
# The dashboard's browser test (tests/integration/dashboard); `--browser` alone, or with --test.
BROWSER_PKGS=(chromium chromium-driver python3-selenium)
# Optional: only with the argument `containers` (make images / make test-containers).
# runc, not crun: crun refuses hosts with hybrid cgroups (v1 controllers plus
# a cgroup2 mount), see deploy/containers/containers.conf.
CONTAINER_PKGS=(
  podman runc conmon catatonit netavark aardvark-dns iptables uidmap
  podman-compose debootstrap debian-archive-keyring
)
for a in "$@"; do
  case $a in
    --test) PKGS+=("${TEST_PKGS[@]}")
            command -v npm >/dev/null || PKGS+=(npm);;
    --browser) PKGS+=("${BROWSER_PKGS[@]}");;
    containers) PKGS+=("${CONTAINER_PKGS[@]}");;
    *) echo "deps: unknown option $a (--test, --browser, containers)" >&2; exit 2;;
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
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Static checks of the container and Kubernetes deployment files — no
# container engine or cluster is needed (none runs on the build machines).
#
#   check.sh render     every overlay renders with `kubectl kustomize`; every
#                       YAML file under deploy/ and docker-compose.yml parses;
#                       the compose file passes `docker compose config` (or
#                       `docker-compose config`), with placeholder secrets
#   contracts           every variable set for one of our binaries (compose,
#                       every rendered overlay, Dockerfile ENV) is one that binary
#                       reads; LISTEN ports, container ports, Service ports and
#                       probe paths match the binaries' defaults; one image
#                       everywhere; commands name binaries the Dockerfile ships;
#                       non-root/read-only/drop-ALL; resources; HPA/KEDA <= 12
#   libs                the shared libraries the built binaries need (ELF NEEDED)
#                       come from the Dockerfile's runtime packages
#
# Needs: bash, yq (Debian package `yq`, jq-based) and jq; kubectl for the
# Kubernetes parts; docker compose v2 or docker-compose v1 for the compose
# parse. A missing tool is a skip (exit 77) with a message saying what was not
# checked, never a silent pass.
set -uo pipefail

ROOT="${SS_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
BIN="${SS_BIN_DIR:-$ROOT/build/bin}"
PART="${1:-}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

FAILS=0
CHECKS=0
SKIPS=()
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); [ -n "${VERBOSE:-}" ] && echo "ok: $*"; return 0; }
skip() { echo "SKIP: $*" >&2; SKIPS+=("$*"); }
have() { command -v "$1" >/dev/null 2>&1; }
# jall [jq args] FILTER FILE: the filter yields at least one value over the
# stream of objects in FILE, and every value is truthy.
jall() {
  local n=$#
  local file="${!n}" filter="${*: -2:1}"
  local -a args=("${@:1:n-2}")
  jq -se "${args[@]}" "[.[] | $filter] | (length > 0 and all)" "$file" >/dev/null 2>&1
}
finish() {
  echo "deploy/$PART: $CHECKS checks passed, $FAILS failed, ${#SKIPS[@]} parts skipped"
  [ "$FAILS" -gt 0 ] && exit 1
  [ "$CHECKS" -eq 0 ] && [ "${#SKIPS[@]}" -gt 0 ] && exit 77
  exit 0
}

OVERLAYS=(dev prod keda)
THIRD_PARTY_IMAGES=("postgres:15" "apache/kafka:4.1.1")
# Our binaries: default LISTEN port (ARCHITECTURE.md), source folder, Kafka
# user (KAFKA_* pass-through to librdkafka).
declare -A PORT=([shipstream-gateway]=8000 [shipstream-webhook-receiver]=8001
  [shipstream-sync-worker]=9101 [shipstream-refresh-scheduler]=9102 [shipstream-reconcile]=9103
  [easypost-sim]=8080)
declare -A SRC=([shipstream-gateway]=services/gateway [shipstream-webhook-receiver]=services/webhook-receiver
  [shipstream-sync-worker]=services/sync-worker [shipstream-refresh-scheduler]=services/refresh-scheduler
  [shipstream-reconcile]=services/reconcile [shipstream-migrate]=services/migrate
  [easypost-sim]=tools/easypost-sim [ss-kafkactl]=tools/kafkactl
  [shipstream-trafficgen]=tools/trafficgen)
declare -A KAFKA_PASSTHROUGH=([shipstream-gateway]=1 [shipstream-webhook-receiver]=1 [shipstream-sync-worker]=1
  [shipstream-reconcile]=1)
BINARIES=(shipstream-gateway shipstream-webhook-receiver shipstream-sync-worker
  shipstream-refresh-scheduler shipstream-reconcile shipstream-migrate easypost-sim ss-kafkactl shipstream-trafficgen)
# Services with an HTTP listener and their probes.
SERVICES=(shipstream-gateway shipstream-webhook-receiver shipstream-sync-worker shipstream-refresh-scheduler
  shipstream-reconcile)
MAX_PARTITIONS=12

render_overlays() { # -> $TMP/<overlay>.yaml; returns 1 when kubectl is missing
  have kubectl || return 1
  local o
  for o in "${OVERLAYS[@]}"; do
    [ -f "$TMP/$o.yaml" ] && continue
    if kubectl kustomize "$ROOT/deploy/k8s/overlays/$o" >"$TMP/$o.yaml" 2>"$TMP/$o.err"; then
      ok "kustomize $o"
    else
      fail "kubectl kustomize deploy/k8s/overlays/$o: $(head -c 600 "$TMP/$o.err")"
      : >"$TMP/$o.yaml"
    fi
  done
}

# ---------------------------------------------------------------- render
part_render() {
  if have kubectl; then
    render_overlays
    local o
    for o in "${OVERLAYS[@]}"; do
      local n
      n=$(grep -c '^kind:' "$TMP/$o.yaml")
      [ "$n" -ge 15 ] && ok "$o renders $n objects" || fail "overlay $o rendered only $n objects"
    done
    # The base must render on its own too (overlays build on it).
    kubectl kustomize "$ROOT/deploy/k8s/base" >/dev/null 2>"$TMP/base.err" \
      && ok "kustomize base" || fail "kubectl kustomize deploy/k8s/base: $(head -c 600 "$TMP/base.err")"
  else
    skip "kubectl not installed: the kustomize overlays were not rendered"
  fi

  if have yq; then
    local f
    local -a files=()
    while IFS= read -r f; do files+=("$f"); done < <(find "$ROOT/deploy" \( -name '*.yaml' -o -name '*.yml' \) -type f; echo "$ROOT/docker-compose.yml")
    # One yq run for all; file by file only to name the broken one.
    if yq -e 'true' "${files[@]}" >/dev/null 2>&1; then
      CHECKS=$((CHECKS + ${#files[@]}))
    else while IFS= read -r f; do
      if yq -e 'true' "$f" >/dev/null 2>"$TMP/yq.err"; then
        ok "parses: $f"
      else
        fail "YAML does not parse: ${f#"$ROOT"/}: $(head -c 400 "$TMP/yq.err")"
      fi
    done < <(find "$ROOT/deploy" \( -name '*.yaml' -o -name '*.yml' \) -type f; echo "$ROOT/docker-compose.yml")
    fi
  else
    skip "yq not installed: the YAML files were not parsed on their own"
  fi

  # Compose: v2 plugin when present, else v1 (which lacks the top-level
  # `name:`; it is removed from the copy given to v1 only).
  local -a env=(GATEWAY_API_KEYS=placeholder EASYPOST_WEBHOOK_SECRET=placeholder)
  if docker compose version >/dev/null 2>&1; then
    if (cd "$ROOT" && env "${env[@]}" docker compose -f docker-compose.yml --profile demo config -q) 2>"$TMP/dc.err"; then
      ok "docker compose config"
    else
      fail "docker compose config: $(head -c 600 "$TMP/dc.err")"
    fi
  elif have docker-compose; then
    grep -v '^name:' "$ROOT/docker-compose.yml" >"$TMP/compose-v1.yml"
    if env "${env[@]}" docker-compose -f "$TMP/compose-v1.yml" --project-directory "$ROOT" \
        --profile demo config -q 2>"$TMP/dc.err"; then
      ok "docker-compose (v1) config"
    else
      fail "docker-compose config: $(head -c 600 "$TMP/dc.err")"
    fi
  else
    skip "neither 'docker compose' nor 'docker-compose' installed: compose schema not validated"
  fi
  # Without the required secrets compose must refuse (fail closed).
  if have docker-compose && ! docker compose version >/dev/null 2>&1; then
    if env -u GATEWAY_API_KEYS -u EASYPOST_WEBHOOK_SECRET docker-compose -f "$TMP/compose-v1.yml" \
        --project-directory "$TMP" config -q >/dev/null 2>&1; then
      fail "compose accepted a configuration without EASYPOST_WEBHOOK_SECRET / GATEWAY_API_KEYS"
    else
      ok "compose refuses to run without the secrets"
    fi
  fi
}

# ------------------------------------------------------------- contracts

# Variables a binary reads: its --help table when built, else its source's
# configuration table and getenv() calls. Prints one name a line.
declare -A KNOWN_CACHE=()
known_vars() {
  if [ -z "${KNOWN_CACHE[$1]+x}" ]; then KNOWN_CACHE[$1]=$(known_vars_uncached "$1" | sort -u); fi
  [ -n "${KNOWN_CACHE[$1]}" ] && printf '%s\n' "${KNOWN_CACHE[$1]}"
  return 0
}
known_vars_uncached() {
  local b="$1"
  if [ -x "$BIN/$b" ] && "$BIN/$b" --help >"$TMP/help.$b" 2>&1; then
    grep -oE '^  [A-Z][A-Z0-9_]+' "$TMP/help.$b" | tr -d ' '
    # Usage texts that mention variables in prose ($KAFKA_BOOTSTRAP_SERVERS).
    grep -oE '\$[A-Z][A-Z0-9_]{2,}' "$TMP/help.$b" | tr -d '$'
  fi
  if [ -d "$ROOT/${SRC[$b]}" ]; then
    grep -rhoE '\{"[A-Z][A-Z0-9_]+", *SS_CONF_|getenv\("[A-Z][A-Z0-9_]+"\)' "$ROOT/${SRC[$b]}" |
      grep -oE '"[A-Z][A-Z0-9_]+"' | tr -d '"'
  fi
}
bin_known() { # binary exists in some form (built or sources)
  [ -x "$BIN/$1" ] || [ -d "$ROOT/${SRC[$1]}" ]
}

# check_env <where> <binary> <VAR...>
check_env() {
  local where="$1" b="$2"; shift 2
  if ! bin_known "$b"; then
    skip "$where: $b neither built nor in the sources yet: its variables were not checked"
    return
  fi
  local known v
  known=$(known_vars "$b" | sort -u)
  if [ -z "$known" ]; then
    skip "$where: $b has no configuration table yet (not built, none in ${SRC[$b]}): its variables were not checked"
    return
  fi
  for v in "$@"; do
    if grep -qx "$v" <<<"$known"; then
      ok "$where: $b reads $v"
    elif [[ "$v" == KAFKA_* ]] && [ -n "${KAFKA_PASSTHROUGH[$b]:-}" ]; then
      ok "$where: $v is a librdkafka pass-through for $b"
    else
      fail "$where: sets $v, which $b does not read (known: $(tr '\n' ' ' <<<"$known"))"
    fi
  done
}

# check_port <where> <binary> <port> <what>
check_port() {
  local where="$1" b="$2" p="$3" what="$4"
  if [ "$p" = "${PORT[$b]}" ]; then ok "$where: $what $p"; else
    fail "$where: $what is '$p', expected $b's default ${PORT[$b]}"; fi
}

check_default_ports() { # the built binaries agree with ARCHITECTURE.md
  local b line
  for b in "${!PORT[@]}"; do
    [ -x "$BIN/$b" ] || { skip "$b not built: its LISTEN default was not read from --help"; continue; }
    line=$("$BIN/$b" --help 2>&1 | grep -E '^  LISTEN ' || true)
    if [ -z "$line" ]; then
      fail "$b --help lists no LISTEN variable"
    elif grep -qE "default: ([^]]*:)?${PORT[$b]}\]" <<<"$line"; then
      ok "$b LISTEN default ${PORT[$b]}"
    else
      fail "$b --help: LISTEN default is not ${PORT[$b]}: $line"
    fi
  done
}

dockerfile_binaries() {
  sed -n '/for b in shipstream-gateway/,/done/p' "$ROOT/Dockerfile" | grep -oE '(shipstream-[a-z-]+|easypost-sim|ss-kafkactl)' | sort -u
}

# Every pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
# CronJob, bare Pod) in the rendered stream $2 sets enableServiceLinks: false.
POD_SPECS='(select(.kind=="Pod") | {k: .kind, n: .metadata.name, s: .spec}),
  (select(.kind=="CronJob") | {k: .kind, n: .metadata.name, s: .spec.jobTemplate.spec.template.spec}),
  (select(.kind | IN("Deployment","StatefulSet","DaemonSet","ReplicaSet","Job")) | {k: .kind, n: .metadata.name, s: .spec.template.spec})'
check_service_links() {
  local where="$1" j="$2" n bad
  n=$(jq -r "$POD_SPECS | .n" "$j" | wc -l)
  bad=$(jq -r "$POD_SPECS | select(.s.enableServiceLinks != false) | \"\\(.k)/\\(.n)\"" "$j")
  if [ "$n" -lt 6 ]; then fail "$where: only $n pod specs found (expected the 4 Deployments and 2 Jobs)"
  elif [ -z "$bad" ]; then ok "$where: enableServiceLinks: false in all $n pod specs"
  else fail "$where: enableServiceLinks is not false in: $(tr '\n' ' ' <<<"$bad")"; fi
}

part_contracts() {
  have yq || { skip "yq not installed: contracts not checked (install the Debian package yq)"; finish; }
  local b
  for b in "${BINARIES[@]}"; do KNOWN_CACHE[$b]=$(known_vars_uncached "$b" | sort -u); done
  local shipped
  shipped=$(dockerfile_binaries)
  local b
  for b in "${BINARIES[@]}"; do
    grep -qx "$b" <<<"$shipped" && ok "Dockerfile ships $b" || fail "Dockerfile does not install $b"
  done
  grep -q '^USER 10001' "$ROOT/Dockerfile" && ok "Dockerfile USER 10001" || fail "Dockerfile must end as USER 10001"
  grep -q 'COPY --from=build /src/migrations/ /usr/share/shipstream/migrations/' "$ROOT/Dockerfile" \
    && ok "migrations in the image" || fail "Dockerfile does not copy migrations/ to /usr/share/shipstream/migrations"
  # Dockerfile ENV applies to every container: only migrate's MIGRATIONS_DIR.
  local v
  for v in $(grep -E '^ENV ' "$ROOT/Dockerfile" | grep -oE '[A-Z][A-Z0-9_]+=' | tr -d '='); do
    check_env Dockerfile shipstream-migrate "$v"
  done
  check_default_ports

  # ---- docker-compose.yml
  local c="$TMP/compose.json" svc img cmd0 our_image=""
  yq . "$ROOT/docker-compose.yml" >"$c" || { fail "docker-compose.yml does not parse"; finish; }
  jq -r '.services | keys[]' "$c" >"$TMP/services"
  while IFS= read -r svc; do
    # ${POSTGRES_IMAGE:-postgres:15} and the like: the default is what is checked.
    img=$(jq -r ".services[\"$svc\"].image" "$c" | sed -E 's/^\$\{[A-Z_]+:-([^}]*)\}$/\1/')
    if printf '%s\n' "${THIRD_PARTY_IMAGES[@]}" | grep -qx "$img"; then
      ok "compose $svc: third-party image $img"; continue
    fi
    if [ -z "$our_image" ]; then our_image="$img"; fi
    [ "$img" = "$our_image" ] && ok "compose $svc image" || fail "compose $svc: image $img, others use $our_image"
    jq -e ".services[\"$svc\"].build.context == \".\"" "$c" >/dev/null || fail "compose $svc: no build of ."
    cmd0=$(jq -r ".services[\"$svc\"].command[0] // empty" "$c")
    if [ -z "$cmd0" ] || [ -z "${SRC[$cmd0]:-}" ]; then
      fail "compose $svc: command '$cmd0' is not one of our binaries"; continue
    fi
    grep -qx "$cmd0" <<<"$shipped" || fail "compose $svc runs $cmd0, which the image does not carry"
    # shellcheck disable=SC2046
    check_env "compose $svc" "$cmd0" $(jq -r ".services[\"$svc\"].environment // {} | keys[]" "$c")
    # Health check on every service with a listener; ports agree.
    if [ -n "${PORT[$cmd0]:-}" ]; then
      local listen hc url target
      listen=$(jq -r ".services[\"$svc\"].environment.LISTEN // empty" "$c")
      check_port "compose $svc" "$cmd0" "${listen##*:}" "LISTEN"
      hc=$(jq -r ".services[\"$svc\"].healthcheck.test | join(\" \")" "$c")
      url=$(grep -oE 'http://[^ ]+' <<<"$hc" || true)
      if [ -z "$url" ]; then fail "compose $svc: health check has no URL: $hc"; else
        local hp path
        hp=$(sed -E 's#http://[^:/]+:([0-9]+)/.*#\1#' <<<"$url"); path=$(sed -E 's#http://[^/]+##' <<<"$url")
        local admin
        admin=$(jq -r ".services[\"$svc\"].environment.ADMIN_LISTEN // empty" "$c")
        if [ -n "$admin" ] && [ "$hp" = "${admin##*:}" ]; then
          ok "compose $svc health check on ADMIN_LISTEN ($hp)"
        else
          check_port "compose $svc" "$cmd0" "$hp" "health check port"
        fi
        case "$path" in /ready|/health) ok "compose $svc probe $path" ;;
          *) fail "compose $svc: health check path $path (expected /ready or /health)" ;; esac
        [[ "$hc" == CMD\ curl* ]] && ok "compose $svc uses curl" || fail "compose $svc: health check is not curl (the image has curl only): $hc"
      fi
      while IFS= read -r target; do
        [ -z "$target" ] && continue
        check_port "compose $svc" "$cmd0" "${target##*:}" "published target port"
      done < <(jq -r ".services[\"$svc\"].ports // [] | .[] | tostring" "$c")
    else
      jq -e ".services[\"$svc\"].restart == \"no\"" "$c" >/dev/null \
        && ok "compose $svc is a one-shot job" || fail "compose $svc: one-shot job without restart: \"no\""
    fi
  done <"$TMP/services"
  # Every service has a health check, or is a job others wait for.
  while IFS= read -r svc; do
    if jq -e ".services[\"$svc\"].healthcheck.test" "$c" >/dev/null 2>&1; then ok "compose $svc healthcheck"
    elif jq -e "[.services[] | .depends_on // {} | .[\"$svc\"].condition] | index(\"service_completed_successfully\")" "$c" >/dev/null 2>&1; then
      ok "compose $svc: a job waited on by completion"
    else fail "compose $svc: no health check and nobody waits for its completion"; fi
  done <"$TMP/services"
  jq -e '.services["sync-worker"].deploy.replicas | tostring | test("2")' "$c" >/dev/null \
    && ok "compose sync-worker replicas default 2" || fail "compose sync-worker: deploy.replicas default is not 2"
  jq -e '.services["easypost-sim"].profiles | index("demo")' "$c" >/dev/null \
    && ok "easypost-sim under demo" || fail "compose easypost-sim is not under the demo profile"
  # depends_on names only existing services, with a condition.
  local bad
  bad=$(jq -r '.services as $s | .services[] | .depends_on // {} | to_entries[] | select(($s[.key] == null) or (.value.condition | IN("service_healthy","service_completed_successfully") | not)) | .key' "$c")
  [ -z "$bad" ] && ok "compose depends_on conditions" || fail "compose depends_on without a health/completion condition or on unknown service: $bad"
  # Named volumes only (no host paths).
  bad=$(jq -r '.services[] | .volumes // [] | .[] | tostring | select(startswith("/") or startswith("."))' "$c")
  [ -z "$bad" ] && ok "compose named volumes" || fail "compose bind mounts: $bad"

  # ---- Kubernetes: every rendered overlay
  if ! render_overlays; then
    skip "kubectl not installed: the Kubernetes manifests were not checked"
    finish
  fi
  local o m
  # The base's own bound (overlays override it; a new overlay may not).
  m=$(kubectl kustomize "$ROOT/deploy/k8s/base" 2>/dev/null | yq -r 'select(.kind=="HorizontalPodAutoscaler") | .spec.maxReplicas')
  [ -n "$m" ] && [ "$m" -le "$MAX_PARTITIONS" ] && ok "base HPA max $m" || fail "base: sync-worker HPA maxReplicas '$m' (must be 1..$MAX_PARTITIONS)"
  kubectl kustomize "$ROOT/deploy/k8s/base" 2>/dev/null | yq -c . >"$TMP/base.json" 2>/dev/null
  check_service_links base "$TMP/base.json"
  for o in "${OVERLAYS[@]}"; do
    local r="$TMP/$o.yaml" j="$TMP/$o.json"
    yq -c '.' "$r" >"$j" 2>/dev/null || { fail "$o: rendered output does not parse"; continue; }
    # Images: one for all our containers.
    local imgs
    imgs=$(jq -r 'select(.kind=="Deployment" or .kind=="Job") | .spec.template.spec | (.containers + (.initContainers // []))[] | .image' "$j" | sort -u)
    [ "$(wc -l <<<"$imgs")" = 1 ] && ok "$o: one image ($imgs)" || fail "$o: several images: $(tr '\n' ' ' <<<"$imgs")"
    if [ "$o" != dev ] && grep -qE ':latest$|^[^:]+$' <<<"$imgs"; then fail "$o: image not pinned: $imgs"; fi
    # Every container: command names a shipped binary, env vars read, security, resources.
    local row kind name cname cmd0 envs
    while IFS=$'\t' read -r kind name cname cmd0 envs; do
      local where="$o $kind/$name[$cname]"
      if [ -z "${SRC[$cmd0]:-}" ]; then fail "$where: command '$cmd0' is not one of our binaries"; continue; fi
      grep -qx "$cmd0" <<<"$shipped" || fail "$where runs $cmd0, which the image does not carry"
      # Variables expanded by Kubernetes into args ($(VAR)) are consumed there.
      local argvars
      argvars=$(jq -r --arg n "$name" --arg c "$cname" 'select(.metadata.name==$n and (.kind=="Deployment" or .kind=="Job")) | .spec.template.spec.containers[] | select(.name==$c) | (.args // [])[]' "$j" | grep -oE '\$\([A-Z][A-Z0-9_]*\)' | tr -d '$()' | sort -u)
      local used=()
      for v in $envs; do grep -qx "$v" <<<"$argvars" && { ok "$where: $v expanded into args"; continue; }; used+=("$v"); done
      check_env "$where" "$cmd0" "${used[@]}"
    done < <(jq -r 'select(.kind=="Deployment" or .kind=="Job") | .kind as $k | .metadata.name as $n | .spec.template.spec.containers[] | [$k, $n, .name, .command[0], ([.env // [] | .[].name] | join(" "))] | @tsv' "$j")
    bad=$(jq -r 'select(.kind=="Deployment" or .kind=="Job") | .metadata.name as $n | .spec.template.spec as $p | $p.containers[] |
      select(($p.securityContext.runAsNonRoot != true) or ($p.securityContext.runAsUser != 10001)
        or (.securityContext.readOnlyRootFilesystem != true) or (.securityContext.allowPrivilegeEscalation != false)
        or ((.securityContext.capabilities.drop // []) | index("ALL") | not)
        or (.resources.requests.cpu == null) or (.resources.requests.memory == null)
        or (.resources.limits.cpu == null) or (.resources.limits.memory == null) or (.envFrom != null)) | $n' "$j")
    [ -z "$bad" ] && ok "$o: security contexts and resources" || fail "$o: non-root/read-only/drop-ALL/resources/explicit env missing on: $(tr '\n' ' ' <<<"$bad")"
    # Service links off in every pod spec: a Service named kafka would inject
    # KAFKA_PORT, KAFKA_SERVICE_HOST... (issue 18).
    check_service_links "$o" "$j"
    # Deployments: LISTEN, containerPort, probes, Service.
    while IFS=$'\t' read -r name cmd0 listen cport pname rpath rport lpath lport; do
      local where="$o Deployment/$name"
      [ -n "${PORT[$cmd0]:-}" ] || { fail "$where: $cmd0 is not a service with a listener"; continue; }
      check_port "$where" "$cmd0" "${listen##*:}" "LISTEN"
      check_port "$where" "$cmd0" "$cport" "containerPort"
      [ "$rpath" = /ready ] && ok "$where readiness /ready" || fail "$where: readiness probe path '$rpath' (expected /ready)"
      [ "$lpath" = /health ] && ok "$where liveness /health" || fail "$where: liveness probe path '$lpath' (expected /health)"
      # Probes and the scrape annotation reach LISTEN or, when set, ADMIN_LISTEN
      # (the admin listener: probes on threads of their own).
      local admin aport aname
      admin=$(jq -r --arg n "$name" 'select(.kind=="Deployment" and .metadata.name==$n) | .spec.template.spec.containers[0] | ((.env // []) | map(select(.name=="ADMIN_LISTEN"))[0].value // "")' "$j")
      aport=${admin##*:}
      aname=$(jq -r --arg n "$name" --arg p "$aport" 'select(.kind=="Deployment" and .metadata.name==$n) | .spec.template.spec.containers[0].ports[] | select((.containerPort|tostring)==$p) | .name // ""' "$j")
      if [ -n "$admin" ]; then
        [ -n "$aname" ] && ok "$where admin port $aport is a container port ($aname)" || fail "$where: ADMIN_LISTEN $admin is not a named container port"
      fi
      for p in "$rport" "$lport"; do
        if [ "$p" = "$pname" ] || [ "$p" = "$cport" ] || { [ -n "$admin" ] && { [ "$p" = "$aname" ] || [ "$p" = "$aport" ]; }; }; then
          ok "$where probe port $p"
        else
          fail "$where: probe port '$p' is neither LISTEN ($pname/$cport) nor ADMIN_LISTEN (${aname:-none}/${aport:-none})"
        fi
      done
      local sport
      sport=$(jq -r --arg n "$name" 'select(.kind=="Service" and .metadata.name==$n) | .spec.ports[0] | "\(.targetPort)"' "$j")
      [ "$sport" = "$pname" ] || [ "$sport" = "$cport" ] && ok "$where Service targetPort" || fail "$where: Service targetPort '$sport' does not reach the container port"
      local mport
      mport=$(jq -r --arg n "$name" 'select(.kind=="Service" and .metadata.name==$n) | .spec.ports[] | select(.name=="metrics") | "\(.targetPort)"' "$j")
      [ "$mport" = "$pname" ] || [ "$mport" = "$cport" ] || { [ -n "$admin" ] && [ "$mport" = "$aname" ]; } && ok "$where Service metrics port" || fail "$where: Service port 'metrics' ('$mport') reaches neither listener"
      local ann
      ann=$(jq -r --arg n "$name" 'select(.kind=="Deployment" and .metadata.name==$n) | .spec.template.metadata.annotations["prometheus.io/port"] // empty' "$j")
      [ -z "$ann" ] || [ "$ann" = "$cport" ] || [ "$ann" = "$aport" ] && ok "$where scrape port" || fail "$where: prometheus.io/port $ann is neither $cport nor the admin port"
    done < <(jq -r 'select(.kind=="Deployment") | .metadata.name as $n | .spec.template.spec.containers[0] |
      [$n, .command[0], ((.env // []) | map(select(.name=="LISTEN"))[0].value // ""), (.ports[0].containerPort|tostring), (.ports[0].name // ""),
       .readinessProbe.httpGet.path, (.readinessProbe.httpGet.port|tostring), .livenessProbe.httpGet.path, (.livenessProbe.httpGet.port|tostring)] | @tsv' "$j")
    local deps
    deps=$(jq -r 'select(.kind=="Deployment") | .spec.template.spec.containers[0].command[0]' "$j" | sort | tr '\n' ' ')
    [ "$deps" = "$(printf '%s\n' "${SERVICES[@]}" | sort | tr '\n' ' ')" ] && ok "$o: five Deployments" || fail "$o: Deployments run '$deps'"
    # Jobs: migrate up, create-topics with the partition count.
    jall 'select(.kind=="Job") | select(.spec.template.spec.containers[0].command[0]=="shipstream-migrate") | .spec.template.spec.containers[0].args == ["up"]' "$j" >/dev/null \
      && ok "$o: migration Job" || fail "$o: no 'shipstream-migrate up' Job"
    jall --arg p "$MAX_PARTITIONS" 'select(.kind=="Job") | select(.spec.template.spec.containers[0].command[0]=="ss-kafkactl") | .spec.template.spec.containers[0].args as $a | ($a | index("--partitions")) as $i | ($a[0]=="create-topics" and $i != null and $a[$i+1]==$p)' "$j" >/dev/null \
      && ok "$o: topics Job with $MAX_PARTITIONS partitions" || fail "$o: no create-topics Job with --partitions $MAX_PARTITIONS"
    # Replicated topics (replication >= 3) get min.insync.replicas 2, explicitly.
    bad=$(jq -r 'select(.kind=="Job") | select(.spec.template.spec.containers[0].command[0]=="ss-kafkactl") | .spec.template.spec.containers[0].args as $a
      | ($a | index("--replication")) as $r | ($a | index("--min-insync")) as $m
      | select($r != null and ($a[$r+1] | tonumber) >= 3 and ($m == null or $a[$m+1] != "2")) | .metadata.name' "$j")
    [ -z "$bad" ] && ok "$o: replication >= 3 comes with --min-insync 2" || fail "$o: topics Job $bad: replication >= 3 without --min-insync 2"
    # Autoscaling never above the partition count; exactly one autoscaler.
    local hpa keda
    hpa=$(jq -r 'select(.kind=="HorizontalPodAutoscaler") | .spec.maxReplicas' "$j")
    keda=$(jq -r 'select(.kind=="ScaledObject") | .spec.maxReplicaCount' "$j")
    if [ -n "$hpa" ] && [ -n "$keda" ]; then fail "$o: both an HPA and a KEDA ScaledObject"; fi
    if [ -z "$hpa$keda" ]; then fail "$o: no autoscaler for sync-worker"; fi
    for m in $hpa $keda; do
      [ "$m" -le "$MAX_PARTITIONS" ] && ok "$o: max replicas $m <= $MAX_PARTITIONS" || fail "$o: autoscaler max $m above the partition count $MAX_PARTITIONS"
    done
    jall 'select(.kind=="HorizontalPodAutoscaler" or .kind=="ScaledObject") | .spec.scaleTargetRef.name == "sync-worker"' "$j" >/dev/null \
      && ok "$o: autoscaler targets sync-worker" || fail "$o: autoscaler does not target sync-worker"
    # Objects the issue asks for.
    for k in ConfigMap PodDisruptionBudget NetworkPolicy Service; do
      jall --arg k "$k" 'select(.kind==$k)' "$j" >/dev/null && ok "$o: has $k" || fail "$o: no $k"
    done
    # Secret: only the dev overlay carries the example, clearly marked.
    if jall 'select(.kind=="Secret")' "$j" >/dev/null; then
      [ "$o" = dev ] || fail "$o: carries a Secret (production secrets are created out of band)"
      jall 'select(.kind=="Secret") | .metadata.annotations["shipstream.io/example"]' "$j" >/dev/null \
        && ok "$o: example Secret marked" || fail "$o: Secret not marked as an example"
    fi
    # Every secretKeyRef names a key of the example Secret (so the example is complete).
    local keys refs
    keys=$(yq -r '.stringData | keys[]' "$ROOT/deploy/k8s/overlays/dev/secret.example.yaml" | sort -u)
    refs=$(jq -r '.. | objects | select(has("secretKeyRef")) | .secretKeyRef.key' "$j" | sort -u)
    for v in $refs; do grep -qx "$v" <<<"$keys" && ok "$o: secret key $v in the example" || fail "$o: secretKeyRef $v missing from overlays/dev/secret.example.yaml"; done
    # Every configMapKeyRef names a key the ConfigMap has.
    keys=$(jq -r 'select(.kind=="ConfigMap") | .data | keys[]' "$j" | sort -u)
    refs=$(jq -r '.. | objects | select(has("configMapKeyRef")) | .configMapKeyRef.key' "$j" | sort -u)
    for v in $refs; do grep -qx "$v" <<<"$keys" && ok "$o: config key $v" || fail "$o: configMapKeyRef $v missing from the ConfigMap"; done
    # The ConfigMap's own keys are variables of ARCHITECTURE.md read by someone.
    local all_known=1
    for b in "${BINARIES[@]}"; do [ -n "$(known_vars "$b")" ] || all_known=0; done
    for v in $keys; do
      local who=""
      for b in "${BINARIES[@]}"; do grep -qx "$v" <<<"$(known_vars "$b")" && who=$b && break; done
      if [ -n "$who" ]; then ok "$o: ConfigMap $v read by $who"
      elif [ "$all_known" = 1 ]; then fail "$o: ConfigMap key $v is read by no binary"
      else skip "$o: ConfigMap key $v: no binary read so far reads it (some are not written yet)"; fi
    done
  done
  finish
}

# ------------------------------------------------------------------ libs
part_libs() {
  have readelf || { skip "readelf not installed"; finish; }
  have dpkg-query || { skip "not a Debian system: runtime packages not checked"; finish; }
  local runtime_pkgs
  runtime_pkgs=$(sed -n '/^FROM .* AS runtime/,$p' "$ROOT/Dockerfile" | sed -n '/apt-get install/,/rm -rf/p' |
    tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|update|rm|rf)$' | sort -u)
  for p in librdkafka1 libpq5 libcurl4 libcivetweb1 libssl3 libjson-c5 libunistring2 ca-certificates curl; do
    grep -qx "$p" <<<"$runtime_pkgs" && ok "runtime installs $p" || fail "Dockerfile runtime stage does not install $p"
  done
  # In debian:12-slim already (Priority: required) or sanitizer runtimes of
  # the test build, which the Release image does not link.
  local base_ok='^(libc6|libgcc-s1|zlib1g|libzstd1|liblzma5|libbz2-1.0|libstdc\+\+6|libasan[0-9]*|libubsan[0-9]*|libgcc-[0-9]+-dev)$'
  local b n=0
  for b in "${BINARIES[@]}"; do
    [ -x "$BIN/$b" ] || { skip "$b not built in $BIN: its libraries were not checked"; continue; }
    n=$((n + 1))
    local soname path pkg
    for soname in $(readelf -d "$BIN/$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
      path=$(ldd "$BIN/$b" | awk -v s="$soname" '$1==s {print $3}')
      [ -z "$path" ] && { fail "$b: $soname not resolved by ldd"; continue; }
      pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
      [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
      if [ -z "$pkg" ]; then fail "$b: $soname ($path) belongs to no Debian package"
      elif grep -qx "$pkg" <<<"$runtime_pkgs" || grep -qE "$base_ok" <<<"$pkg"; then ok "$b: $soname from $pkg"
      else fail "$b needs $soname from $pkg, which the Dockerfile runtime stage does not install"; fi
    done
  done
  finish
}

case "$PART" in
  render) part_render; finish ;;
  contracts) part_contracts ;;
  libs) part_libs ;;
  *) echo "usage: $0 render|contracts|libs" >&2; exit 2 ;;
esac

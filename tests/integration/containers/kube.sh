#!/usr/bin/env bash
# `podman kube play` of the rendered dev overlay (kubectl kustomize
# deploy/k8s/overlays/dev), as close to a cluster as podman 4.3 gets:
#
#   - PostgreSQL and Kafka as pods from the local images (kube-deps.yaml),
#     on a network of this run's own (names resolve by pod name);
#   - every container of the overlay gets the service-link variables a
#     cluster injects for the Services in its namespace (KAFKA_PORT=tcp://…,
#     KAFKA_SERVICE_HOST, POSTGRES_…, GATEWAY_…): they must not stop a pod;
#   - the two Jobs (migrations, topics) run as Pods with their own spec, and
#     must exit 0; the four Deployments' pods must run and answer their
#     probes: each probe's path on its port (named ports resolved), from
#     inside the pod, liveness and readiness alike;
#   - every container runs as the manifest says: non-root, read-only root,
#     no capabilities.
#
# What podman 4.3 does not do with these manifests (kept out, or changed,
# before playing; deploy/README.md lists it):
#   - kinds Namespace, Service, ServiceAccount, NetworkPolicy,
#     PodDisruptionBudget, HorizontalPodAutoscaler: not supported (no cluster
#     objects); Job: not supported in 4.3 (played as a Pod);
#   - a Secret in the YAML is stored as a podman secret that secretKeyRef then
#     fails to read ("not valid JSON": 4.3 wants a flat JSON map of base64
#     values): created here with `podman secret create` in that form;
#   - $(VAR) references in command/args are not expanded (Kubernetes expands
#     them from the container's env): expanded here from the ConfigMap;
#   - readinessProbe is ignored (only livenessProbe becomes a health check):
#     probed here by hand;
#   - an emptyDir becomes a named volume called by the volume's name, shared
#     by every pod using that name and kept by `kube down`: renamed here per
#     pod, removed at the end;
#   - no namespace: pod, secret, volume and network names are global to the
#     host, so they carry this run's prefix.
#
# Prints "kube: N passed, M failed" and exits non-zero on a failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
. deploy/containers/podman.sh
need_podman || exit 1
command -v kubectl >/dev/null || { echo "kube: kubectl is missing: the overlay cannot be rendered" >&2; exit 1; }
command -v yq >/dev/null || { echo "kube: yq is missing (make deps)" >&2; exit 1; }

PASSED=0 FAILED=0
pass() { echo "PASS: kube: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: kube: $*" >&2; FAILED=$((FAILED + 1)); }
finish() { echo "kube: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit; }
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 1
  done
}

P="ssk$$$(printf '%04x' $RANDOM)"
NET="$P-net"
TMP=$(mktemp -d)
IMAGE="localhost/shipstream:$P"
cleanup() {
  [ -f "$TMP/play.yaml" ] && podman kube down "$TMP/play.yaml" >/dev/null 2>&1
  [ -f "$TMP/deps.yaml" ] && podman kube down "$TMP/deps.yaml" >/dev/null 2>&1
  podman pod rm -f -t 0 $(podman pod ps -q --filter "name=^$P-") >/dev/null 2>&1
  podman secret rm "$P-secrets" >/dev/null 2>&1
  podman network rm -f "$NET" >/dev/null 2>&1
  podman volume rm -f $(podman volume ls -q --filter "name=^$P-") >/dev/null 2>&1
  podman rmi "$IMAGE" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

podman image exists "$SHIPSTREAM_IMAGE:$SHIPSTREAM_TAG" || { fail "no image $SHIPSTREAM_IMAGE:$SHIPSTREAM_TAG (make images)"; finish; }
podman tag "$SHIPSTREAM_IMAGE:$SHIPSTREAM_TAG" "$IMAGE"

# ---------------------------------------------------------------- render
if kubectl kustomize deploy/k8s/overlays/dev >"$TMP/dev.yaml" 2>"$TMP/render.err"; then
  pass "kubectl kustomize deploy/k8s/overlays/dev ($(grep -c '^kind:' "$TMP/dev.yaml") objects)"
else
  fail "render: $(head -c 400 "$TMP/render.err")"; finish
fi

# The variables a cluster would inject for each Service of the namespace
# (the overlay's four, plus postgres and kafka, which a cluster would run as
# Services too).  Cluster IPs are never contacted: the binaries must ignore them.
svc_links() { # name port[/portname]... -> JSON array of {name, value}
  local name=$1; shift
  local up=${name^^}; up=${up//-/_}
  local ip="10.96.0.$((RANDOM % 200 + 10))" first=1 p port pname
  {
    for p in "$@"; do
      port=${p%%/*}; pname=${p#*/}; [ "$pname" = "$p" ] && pname=""
      if [ $first = 1 ]; then
        echo "${up}_SERVICE_HOST=$ip"; echo "${up}_SERVICE_PORT=$port"; echo "${up}_PORT=tcp://$ip:$port"
        first=0
      fi
      [ -n "$pname" ] && echo "${up}_SERVICE_PORT_${pname^^}=$port"
      echo "${up}_PORT_${port}_TCP=tcp://$ip:$port"
      echo "${up}_PORT_${port}_TCP_PROTO=tcp"
      echo "${up}_PORT_${port}_TCP_PORT=$port"
      echo "${up}_PORT_${port}_TCP_ADDR=$ip"
    done
  } | jq -R 'split("=") | {name: .[0], value: (.[1:] | join("="))}'
}
{
  svc_links kafka 9092/client 9093/controller
  svc_links postgres 5432/postgres
  while read -r name ports; do
    # shellcheck disable=SC2086
    svc_links "$name" $ports
  done < <(yq -r 'select(.kind == "Service") | .metadata.name + " " + ([.spec.ports[] | "\(.port)/\(.name // "")"] | join(" "))' "$TMP/dev.yaml")
} | jq -s . >"$TMP/links.json"
echo "kube: $(jq length "$TMP/links.json") service-link variables added to every container"

# Secret: created here as {"KEY": "<base64>"} (see the header), aimed at this run.
yq -c 'select(.kind == "Secret")' "$TMP/dev.yaml" |
  jq -c --arg p "$P" '.metadata.name = ($p + "-secrets")
    | .stringData.DATABASE_URL |= sub("@postgres:"; "@" + $p + "-postgres:")
    # the example has no EasyPost key; reconcile is only ready with one (it answers
    # /ready 503 "EASYPOST_API_KEY is not set" otherwise). Nothing calls EasyPost here.
    | .stringData.EASYPOST_API_KEY |= (if . == "" then "EZTK_kube_play_test" else . end)
    | (.data // {}) + (.stringData | map_values(@base64))' >"$TMP/secret.json"
podman secret create "$P-secrets" "$TMP/secret.json" >/dev/null || { fail "podman secret create"; finish; }

# Everything podman plays: ConfigMaps, Deployments, Jobs as Pods; our image;
# the service links; names with this run's prefix.
yq -c 'select(.kind == "ConfigMap") | .data' "$TMP/dev.yaml" | jq -s 'add' >"$TMP/cm.json"
yq -y --arg p "$P" --arg img "$IMAGE" --slurpfile links "$TMP/links.json" --slurpfile cm "$TMP/cm.json" '
  def expand: if type == "string"
    then gsub("\\$\\((?<v>[A-Za-z_][A-Za-z0-9_]*)\\)"; ($cm[0][.v] // ("$(" + .v + ")"))) else . end;
  def ours($n): .containers |= map(.image = $img | .env = ((.env // []) + $links[0])
        | (if .args then .args |= map(expand) else . end)
        | (if .command then .command |= map(expand) else . end)
        | .volumeMounts = ((.volumeMounts // []) | map(.name = ($n + "-" + .name))))
    | .volumes = ((.volumes // []) | map(.name = ($n + "-" + .name)))
    | (.. | objects | select(has("secretKeyRef")) | .secretKeyRef.name) |= ($p + "-secrets");
  select(.kind == "ConfigMap" or .kind == "Deployment" or .kind == "Job")
  | if .kind == "ConfigMap" then
      .data.KAFKA_BOOTSTRAP_SERVERS = ($p + "-kafka:9092")
    elif .kind == "Deployment" then
      .metadata.name = ($p + "-" + .metadata.name) | .metadata.name as $n | .spec.template.spec |= ours($n)
    else
      ($p + "-" + .metadata.name) as $n
      | {apiVersion: "v1", kind: "Pod",
         metadata: {name: $n, labels: .spec.template.metadata.labels},
         spec: (.spec.template.spec | ours($n))}
    end' "$TMP/dev.yaml" >"$TMP/play.yaml" || { fail "transforming the rendered overlay"; finish; }
sed -e "s|IMAGE_POSTGRES|$POSTGRES_IMAGE|; s|IMAGE_KAFKA|$KAFKA_IMAGE|" \
    -e "s|POD_POSTGRES|$P-postgres|; s|POD_KAFKA|$P-kafka|" \
    tests/integration/containers/kube-deps.yaml >"$TMP/deps.yaml"

# ---------------------------------------------------------------- play
podman network create "$NET" >/dev/null || { fail "podman network create"; finish; }
t0=$SECONDS
podman kube play --network "$NET" "$TMP/deps.yaml" >"$TMP/deps.out" 2>&1 ||
  { cat "$TMP/deps.out" >&2; fail "kube play of PostgreSQL and Kafka"; finish; }
pg_ready() { podman exec "$P-postgres-postgres" pg_isready -q -U shipstream -d shipstream; }
kafka_ready() { podman exec "$P-kafka-kafka" /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092; }
wait_until 180 pg_ready && wait_until 240 kafka_ready ||
  { fail "PostgreSQL or Kafka pods not ready after 240 s"; finish; }
pass "PostgreSQL and Kafka pods ready ($((SECONDS - t0)) s)"

t0=$SECONDS
if podman kube play --network "$NET" "$TMP/play.yaml" >"$TMP/play.out" 2>&1; then
  pass "podman kube play of the dev overlay: $(podman pod ps --filter "name=^$P-" --format '{{.Name}}' | grep -vc -e '-postgres$' -e '-kafka$') pods"
else
  cat "$TMP/play.out" >&2; fail "podman kube play of the dev overlay"; finish
fi

# Jobs (as Pods, restartPolicy OnFailure): exit 0.
job_done() { [ "$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$1" 2>/dev/null)" = "exited 0" ]; }
while read -r job; do
  c="$P-$job-$job"
  if wait_until 180 job_done "$c"; then pass "job $job exited 0 (restarts: $(podman inspect --format '{{.RestartCount}}' "$c"))"
  else fail "job $job: $(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$c" 2>&1)"; podman logs --tail 10 "$c" >&2; fi
done < <(yq -r 'select(.kind == "Job") | .metadata.name' "$TMP/dev.yaml")

# Deployments: running, every probe answers on its port.
probe_ok() { podman exec "$1" curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$2$3"; }
while read -r dep; do
  c="$P-$dep-pod-0-$dep"
  yq -c --arg d "$dep" 'select(.kind == "Deployment" and .metadata.name == $d) | .spec.template.spec.containers[0]' "$TMP/dev.yaml" >"$TMP/c.json"
  n=0 ok=0
  for probe in livenessProbe readinessProbe startupProbe; do
    path=$(jq -r ".$probe.httpGet.path // empty" "$TMP/c.json")
    [ -n "$path" ] || continue
    port=$(jq -r ".$probe.httpGet.port" "$TMP/c.json")
    if ! [[ $port =~ ^[0-9]+$ ]]; then
      port=$(jq -r --arg n "$port" '.ports[] | select(.name == $n) | .containerPort' "$TMP/c.json")
    fi
    n=$((n + 1))
    if wait_until 180 probe_ok "$c" "$port" "$path"; then ok=$((ok + 1))
    else fail "$dep: $probe $path on port $port does not answer 2xx"; fi
  done
  if [ "$n" -gt 0 ] && [ "$n" -eq "$ok" ] && [ "$(podman inspect --format '{{.State.Status}}' "$c")" = running ]; then
    pass "$dep pod running, its $n probe(s) answer ($(jq -r '[.livenessProbe, .readinessProbe | select(.) | "\(.httpGet.path):\(.httpGet.port)"] | join(" ")' "$TMP/c.json"))"
  else
    [ "$n" -gt 0 ] || fail "$dep: no HTTP probe in the manifest"
    podman logs --tail 10 "$c" >&2
  fi
  read -r user ro caps < <(podman inspect "$c" | jq -r '.[0] | [.Config.User, .HostConfig.ReadonlyRootfs, ((.EffectiveCaps // []) | length)] | @tsv')
  if [[ -n $user && ${user%%:*} != 0 && $ro == true && $caps == 0 ]]; then pass "$dep runs as $user, read-only root, no capabilities"
  else fail "$dep: user '$user', read-only root $ro, $caps capabilities"; fi
  podman exec "$c" sh -c 'env | grep -q "^KAFKA_PORT=tcp://"' && pass "$dep runs with KAFKA_PORT=tcp://… set" ||
    fail "$dep: the service-link variables did not reach the container"
done < <(yq -r 'select(.kind == "Deployment") | .metadata.name' "$TMP/dev.yaml")
echo "kube: pods ready $((SECONDS - t0)) s after kube play"

# ---------------------------------------------------------------- down
podman kube down "$TMP/play.yaml" >/dev/null 2>&1 && podman kube down "$TMP/deps.yaml" >/dev/null 2>&1 &&
  pass "podman kube down" || fail "podman kube down"
left=$(podman pod ps --filter "name=^$P-" --format '{{.Name}}' | tr '\n' ' ')
[ -z "$left" ] && pass "no pod left" || fail "pods left: $left"
# kube down keeps the volumes that emptyDirs became (see the header).
echo "kube: volumes kube down left: $(podman volume ls -q --filter "name=^$P-" | wc -l) (removed)"
finish

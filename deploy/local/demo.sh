#!/usr/bin/env bash
# Try the local stack started by `make up` (reads .run/stack.env).
#
#   demo.sh shipment        create a shipment through the gateway, buy its cheapest rate,
#                           then show it as the sync worker wrote it to PostgreSQL (/db)
#   demo.sh traffic [N] [P] buy N shipments (default 50), P at a time (default 4);
#                           easypost-sim then sends tracker webhooks for each
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ -f "$ROOT/.run/stack.env" ] || { echo "demo: no .run/stack.env: run make up first" >&2; exit 1; }
. "$ROOT/.run/stack.env"
AUTH=(-H "Authorization: Bearer $GATEWAY_API_KEY")

CITIES=(
  "388 Townsend St|San Francisco|CA|94107"
  "179 N Harbor Dr|Redondo Beach|CA|90277"
  "1 E Main St|Chicago|IL|60602"
  "350 5th Ave|New York|NY|10118"
  "600 Congress Ave|Austin|TX|78701"
  "1600 Pennsylvania Ave NW|Washington|DC|20500"
  "400 Broad St|Seattle|WA|98109"
  "100 Peachtree St NW|Atlanta|GA|30303"
)

address() {
  local street city state zip
  IFS='|' read -r street city state zip <<<"$1"
  jq -n --arg n "$2" --arg s "$street" --arg c "$city" --arg st "$state" --arg z "$zip" \
    '{name: $n, street1: $s, city: $c, state: $st, zip: $z, country: "US", phone: "4155550100"}'
}

# create_and_buy <from-index> <to-index> <weight>: prints the bought shipment JSON
create_and_buy() {
  local body shp id rate
  body=$(jq -n --argjson f "$(address "${CITIES[$1]}" "Sender")" --argjson t "$(address "${CITIES[$2]}" "Receiver")" \
    --argjson w "$3" '{shipment: {from_address: $f, to_address: $t, parcel: {length: 10, width: 8, height: 4, weight: $w}}}')
  shp=$(curl -sS -f -m 30 "${AUTH[@]}" -H 'Content-Type: application/json' -d "$body" "$GATEWAY_URL/v1/shipments") ||
    { echo "demo: POST /v1/shipments failed" >&2; return 1; }
  id=$(jq -r .id <<<"$shp")
  rate=$(jq -r '.rates | sort_by(.rate | tonumber) | .[0].id' <<<"$shp")
  curl -sS -f -m 30 "${AUTH[@]}" -H 'Content-Type: application/json' -H "Idempotency-Key: demo-$id" \
    -d "{\"rate\":{\"id\":\"$rate\"}}" "$GATEWAY_URL/v1/shipments/$id/buy" ||
    { echo "demo: POST /v1/shipments/$id/buy failed" >&2; return 1; }
}

case ${1:-} in
  shipment)
    echo "POST $GATEWAY_URL/v1/shipments, then /buy with the cheapest rate"
    bought=$(create_and_buy 0 1 15.4)
    jq '{id, status, tracking_code, selected_rate: (.selected_rate | {carrier, service, rate}), label: .postage_label.label_url}' <<<"$bought"
    id=$(jq -r .id <<<"$bought")
    echo "GET $GATEWAY_URL/db/shipments/$id (as synced to PostgreSQL)"
    for _ in $(seq 1 50); do
      if out=$(curl -sS -f -m 5 "${AUTH[@]}" "$GATEWAY_URL/db/shipments/$id" 2>/dev/null); then
        jq . <<<"$out"; exit 0
      fi
      sleep 0.2
    done
    echo "(not in PostgreSQL after 10 s: is the sync worker running? make status)"
    ;;
  traffic)
    n=${2:-50} p=${3:-4}
    export -f create_and_buy address
    export GATEWAY_URL GATEWAY_API_KEY
    start=$EPOCHREALTIME
    ok=$(seq 1 "$n" | xargs -P "$p" -I{} bash -c '
      AUTH=(-H "Authorization: Bearer $GATEWAY_API_KEY")
      CITIES=("$@")
      i={}; f=$(( (i * 7) % ${#CITIES[@]} )); t=$(( (i * 3 + 1) % ${#CITIES[@]} ))
      [ $f -eq $t ] && t=$(( (t + 1) % ${#CITIES[@]} ))
      create_and_buy $f $t $(( (i % 40) + 1 )) >/dev/null && echo ok' _ "${CITIES[@]}" | grep -c ok || true)
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    echo "bought $ok of $n shipments in ${secs}s; tracker webhooks follow from easypost-sim"
    echo "watch them land: curl -s -H \"Authorization: Bearer \$GATEWAY_API_KEY\" \"\$GATEWAY_URL/db/shipments?limit=5&mode=all\" | jq ."
    [ "$ok" -eq "$n" ]
    ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2;;
esac

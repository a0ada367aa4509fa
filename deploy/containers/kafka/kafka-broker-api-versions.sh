#!/bin/bash
# Health check at apache/kafka's path: does the broker answer a Kafka
# ApiVersions request?  A real protocol round trip, without starting a JVM:
# request ApiVersions v0, expect our correlation id back and error code 0.
#   kafka-broker-api-versions.sh --bootstrap-server HOST:PORT
set -uo pipefail
server=localhost:9092
while [ $# -gt 0 ]; do
  case $1 in
    --bootstrap-server) server=$2; shift 2 ;;
    *) shift ;;
  esac
done
host=${server%:*} port=${server##*:}
exec 3<>"/dev/tcp/$host/$port" || exit 1
# size 12 | api_key 18 | api_version 0 | correlation_id "SS11" | client_id "ss"
printf '\x00\x00\x00\x0c\x00\x12\x00\x00SS11\x00\x02ss' >&3
reply=$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')
exec 3>&-
# 4 bytes size, then correlation id 53533131, then error code 0000
if [ "${reply:8:12}" = 535331310000 ]; then
  echo "$server (id: 1 rack: null) -> ApiVersions answered"
  exit 0
fi
echo "$server: no valid ApiVersions answer (${reply:-nothing})" >&2
exit 1

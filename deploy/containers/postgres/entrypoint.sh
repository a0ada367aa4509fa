#!/bin/bash
# First start on an empty $PGDATA: initdb with $POSTGRES_USER as the
# superuser and $POSTGRES_PASSWORD (scram-sha-256 over TCP, trust on the
# local socket only), then $POSTGRES_DB.  Every start: exec postgres,
# listening on every address of the container.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
# The socket lives in $PGHOST (/tmp): writable under a read-only root with
# only a tmpfs on /tmp, and pg_isready/psql in the container find it there.
: "${PGHOST:=/tmp}"
export PGHOST

if [ "${1:-}" != postgres ]; then exec "$@"; fi
shift

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: POSTGRES_PASSWORD is not set" >&2
    exit 2
  fi
  echo "postgres-entrypoint: initdb in $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)" >&2
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    # A socket elsewhere: pg_isready (the health check) must not see this
    # temporary server, or the migrations would start before the real one.
    initsock=$(mktemp -d)
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$initsock" -w start >/dev/null
    createdb -U "$POSTGRES_USER" -h "$initsock" "$POSTGRES_DB"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    rmdir "$initsock"
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGHOST" "$@"

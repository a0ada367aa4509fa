# syntax=docker/dockerfile:1
# shipstream — one image carrying every binary, the migrations and easypost-sim.
#
#   docker build -t shipstream:latest .
#
# Where debian:12 cannot be pulled (no public registry), `make images` builds
# a Debian 12 base from Debian's packages and passes it in:
#   --build-arg DEBIAN_IMAGE=localhost/debian:12 --build-arg DEBIAN_SLIM_IMAGE=localhost/debian:12
#
# Build stage: Debian 12 with the -dev packages, a Release build of the
# shipped binaries.  Runtime stage: debian:12-slim
# with only the shared libraries the binaries link against, plus curl for the
# container health checks (the runtime image has no other HTTP client; curl
# reuses libcurl4, which the gateway needs anyway).  Runs as uid 10001.

ARG DEBIAN_IMAGE=debian:12
ARG DEBIAN_SLIM_IMAGE=debian:12-slim

FROM ${DEBIAN_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      librdkafka-dev libpq-dev libcurl4-openssl-dev libcivetweb-dev libssl-dev \
      libjson-c-dev libunistring-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the shipped binaries (and the libraries they link), not the tests and
# benchmarks: `make test` builds and runs those outside the image.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && mkdir -p /out/bin \
 && for b in shipstream-gateway shipstream-webhook-receiver shipstream-sync-worker \
             shipstream-refresh-scheduler shipstream-reconcile shipstream-migrate easypost-sim ss-kafkactl \
             shipstream-trafficgen; do \
      cmake --build /build -j"$(nproc)" --target "$b" \
        && install -m 0755 "/build/bin/$b" "/out/bin/$b" || exit 1; \
    done \
 && strip --strip-unneeded /out/bin/*

FROM ${DEBIAN_SLIM_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Keep this list in step with the binaries' NEEDED entries: the deploy checks
# in `make test` (tests/integration/deploy/check_runtime_libs.sh) compare them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libpq5 libcurl4 libcivetweb1 libssl3 libjson-c5 libunistring2 \
      ca-certificates curl libjs-chart.js \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 shipstream \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin shipstream
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /src/migrations/ /usr/share/shipstream/migrations/
ENV MIGRATIONS_DIR=/usr/share/shipstream/migrations
# Fails the image build when a runtime library is missing.
RUN for b in /usr/local/bin/shipstream-* /usr/local/bin/easypost-sim /usr/local/bin/ss-kafkactl; do \
      if ldd "$b" | grep -q 'not found'; then ldd "$b"; exit 1; fi; \
    done \
 && shipstream-gateway --version
USER 10001:10001
# Every service names its binary (compose `command:`, Kubernetes `command:`);
# the default only prints what is inside.
CMD ["shipstream-gateway", "--help"]

LABEL org.opencontainers.image.title="shipstream" \
      org.opencontainers.image.description="EasyPost → Kafka → PostgreSQL sync: gateway, webhook-receiver, sync-worker, refresh-scheduler, migrate, easypost-sim, ss-kafkactl"

# shipstream — the front door.  `make up` and `make test` are all a newcomer needs.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

SHELL := /bin/bash

.PHONY: all build build-keep-going deps test bench up down status logs clean format \
        deps-containers images test-containers soak

all: build

deps:
	@deploy/local/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# For up and bench: build what builds; a broken target is reported, and what
# needs it is skipped (make up) or fails on its own (make bench).
build-keep-going: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@set -o pipefail; cmake --build $(BUILD) -j $(JOBS) -- -k --no-print-directory 2>&1 | \
	  { grep -v -E '^\[ *[0-9]+%\] (Building|Linking|Built)' || true; } || \
	  echo "make: some targets did not build (errors above); continuing with what did" >&2

# Unit tests (normal + ASan/UBSan), integration tests against a real
# PostgreSQL and Kafka started for the run, fuzz drivers for a bounded time.
# SS_TEST_SKIP="asan fuzz integration" skips phases.
test: deps
	@tests/run.sh

bench: build-keep-going
	@bench/run.sh

# Ten minutes of everything at once with faults (tests/soak/soak.sh; SOAK_SECONDS=90 for a
# short run); PostgreSQL must equal the model of what was answered 2xx.  Not in `make test`.
soak: build
	@tests/soak/run.sh

up: build-keep-going
	@deploy/local/stack.sh up

down:
	@deploy/local/stack.sh down

status:
	@deploy/local/stack.sh status

logs:
	@deploy/local/stack.sh logs

# Containers (podman, rootful; deploy/README.md "Containers on this machine"):
# the images of docker-compose.yml built from Debian's packages and Maven
# Central's jars, and the compose stack + `podman kube play` tested for real.
deps-containers:
	@deploy/local/deps.sh containers

images: deps-containers
	@deploy/containers/images.sh

test-containers: deps-containers
	@tests/integration/containers/test_containers.sh

format: deps
	@tools/format/format.sh

clean:
	@-deploy/local/stack.sh down >/dev/null 2>&1
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz .run bench/results

# dubbo-istiod: pilot-discovery with Apache Dubbo as a first-class citizen.
# Upstream Istio is a pinned Go module (go.mod); `make prepare` copies it to out/istio,
# applies patches/istio/*.patch and writes go.work. Every target depends on it.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
export GOFLAGS ?= -buildvcs=false
export CGO_ENABLED ?= 0

VERSION := $(shell cat VERSION)
GIT_REVISION := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
GIT_STATUS := $(shell if [ -z "$$(git status --porcelain 2>/dev/null)" ]; then echo Clean; else echo Modified; fi)
HUB ?= ghcr.io/dubbo-istiod
GOOS_LOCAL := $(shell $(GO) env GOOS)
GOARCH_LOCAL := $(shell $(GO) env GOARCH)

# As upstream's release build (Makefile.core.mk STANDARD_TAGS, common/scripts/gobuild.sh).
BUILD_TAGS := vtprotobuf,disable_pgv
V := istio.io/istio/pkg/version
# As upstream: stripped unless DEBUG=1.
ifeq ($(DEBUG),1)
STRIP :=
else
STRIP := -s -w
endif
LDFLAGS := -extldflags -static $(STRIP) \
	-X $(V).buildVersion=$(VERSION) -X $(V).buildGitRevision=$(GIT_REVISION) \
	-X $(V).buildStatus=$(GIT_STATUS) -X $(V).buildTag=$(VERSION) -X $(V).buildHub=$(HUB) \
	-X $(V).buildOS=$(GOOS_LOCAL) -X $(V).buildArch=$(GOARCH_LOCAL)

BIN := out/bin/pilot-discovery
# Stock upstream pilot-discovery of the same pin, built from the unpatched module, for the
# drop-in parity tests (tests/kube).
UPSTREAM_BIN := out/bin/pilot-discovery-upstream
KUBE_BIN := out/kube/bin
UPSTREAM_VERSION := $(firstword $(subst -dubbo, ,$(VERSION)))
UPSTREAM_LDFLAGS := -extldflags -static $(STRIP) -X $(V).buildVersion=$(UPSTREAM_VERSION) \
	-X $(V).buildTag=$(UPSTREAM_VERSION) -X $(V).buildStatus=Clean -X $(V).buildHub=docker.io/istio \
	-X $(V).buildOS=$(GOOS_LOCAL) -X $(V).buildArch=$(GOARCH_LOCAL)

# Upstream packages we patch: their own tests must pass with the patches applied.
UPSTREAM_TEST_PKGS ?= ./pkg/config/protocol/... ./pkg/config/kube/ ./pilot/pkg/networking/ ./pilot/pkg/networking/core/ \
	./pilot/pkg/serviceregistry/serviceentry/... ./pilot/cmd/pilot-discovery/app/... ./pilot/pkg/bootstrap/ ./pilot/pkg/xds/
TEST_FLAGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: image all prepare build upstream-bin kube-bins dubbo3-bin polaris-bin tools test test-unit test-upstream test-e2e test-kube patches-check demo demo-deps deps bench clean

all: build

prepare:
	@tools/patches.sh apply
	@tools/nacos-sdk.sh

build: prepare
	$(GO) build -trimpath -tags=$(BUILD_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./pilot/cmd/pilot-discovery
	@echo "built $(BIN) ($(VERSION))"

# The unpatched module as downloaded (read-only module cache), built as upstream releases
# it; with -trimpath, unpatched packages come from the build cache of `make build`.
upstream-bin: prepare
	dir=$$(GOWORK=off $(GO) list -m -f '{{.Dir}}' istio.io/istio) && cd "$$dir" && \
	  GOWORK=off GOFLAGS=-mod=readonly $(GO) build -trimpath -tags=$(BUILD_TAGS) \
	  -ldflags '$(UPSTREAM_LDFLAGS)' -o $(CURDIR)/$(UPSTREAM_BIN) ./pilot/cmd/pilot-discovery
	@echo "built $(UPSTREAM_BIN) (stock upstream $(UPSTREAM_VERSION))"

# kube-apiserver and etcd for tests/kube, built from the Go module proxy and cached under
# ~/.cache/dubbo-istiod/kube (tools/kube/build.sh).
kube-bins:
	tools/kube/build.sh >/dev/null

# The real Dubbo 3 provider and consumer (dubbo-go v3, its own module tools/dubbo3),
# built from the Go module proxy and cached under ~/.cache/dubbo-istiod/dubbo3
# (tools/dubbo3/build.sh); linked as out/dubbo3/bin/dubbo3.
DUBBO3_BIN := out/dubbo3/bin/dubbo3
dubbo3-bin:
	tools/dubbo3/build.sh >/dev/null

# Polaris v1.18.1, whose Nacos-protocol API is the Nacos server of the tests
# (tests/framework/nacos), built from the Go module proxy with tools/polaris/patches and
# cached under ~/.cache/dubbo-istiod/polaris (tools/polaris/build.sh); linked with its
# config template as out/polaris/bin/polaris-server{,.yaml}.
POLARIS_BIN := out/polaris/bin/polaris-server
polaris-bin:
	tools/polaris/build.sh >/dev/null

patches-check:
	tools/patches.sh check

# Our packages' tests run under the race detector (it needs cgo; the binaries we ship and
# test end to end stay static release builds).
GO_TEST_RACE := CGO_ENABLED=1 $(GO) test -race

test-unit: prepare polaris-bin dubbo3-bin
	$(GO) vet ./...
	DUBBO_POLARIS_BIN=$(CURDIR)/$(POLARIS_BIN) DUBBO3_BIN=$(CURDIR)/$(DUBBO3_BIN) $(GO_TEST_RACE) $(TEST_FLAGS) $$($(GO) list ./... | grep -v -e /tests/e2e -e /tests/install -e /tests/kube)

# Upstream tests run inside the patched copy, as the upstream module they are; an
# upstream test that fails once under load is run again alone and reported as a flake
# (tools/upstream-test.sh).
test-upstream: prepare
	tools/upstream-test.sh $(TEST_FLAGS) -- $(UPSTREAM_TEST_PKGS)

# One package at a time (-p 1): the harnesses pick free ports by listening and closing,
# and packages running side by side took each other's ports (pilot-discovery: bind:
# address already in use). The test process (ADS clients, the ZooKeeper and process
# harnesses) runs under the race
# detector; pilot-discovery is the release build.
test-e2e: build tools image dubbo3-bin polaris-bin
	PILOT_DISCOVERY_BIN=$(CURDIR)/$(BIN) DUBBO3_BIN=$(CURDIR)/$(DUBBO3_BIN) DUBBO_POLARIS_BIN=$(CURDIR)/$(POLARIS_BIN) $(GO_TEST_RACE) $(TEST_FLAGS) -count=1 -p 1 ./tests/e2e/... ./tests/install/...

# dubbo-istiod as istiod runs in a cluster: a real kube-apiserver and etcd on loopback
# (tests/framework/kube), stock upstream pilot-discovery of the same pin for parity.
test-kube: build tools kube-bins upstream-bin
	PILOT_DISCOVERY_BIN=$(CURDIR)/$(BIN) UPSTREAM_PILOT_DISCOVERY_BIN=$(CURDIR)/$(UPSTREAM_BIN) \
	DUBBO_KUBE_BIN=$(CURDIR)/$(KUBE_BIN) $(GO) test $(TEST_FLAGS) -count=1 ./tests/kube/...

test: deps patches-check test-unit test-e2e test-kube test-upstream

tools: prepare
	$(GO) build -o out/bin/dubbo-provider ./tools/dubbo-provider
	$(GO) build -o out/bin/dubbo-xds ./tools/dubbo-xds
	$(GO) build -o out/bin/dubbo-rule ./tools/dubbo-rule
	$(GO) build -trimpath -tags=$(BUILD_TAGS) -o out/bin/istioctl istio.io/istio/istioctl/cmd/istioctl

# The live demo: installs ZooKeeper (Debian) if missing, then runs tools/demo.sh.
demo: build tools dubbo3-bin polaris-bin deps
	tools/demo.sh

# System packages the demo and the tests use, installed from Debian's packages when
# missing: a real ZooKeeper (the tests and the demo start their own servers from it), curl
# and python3 (the demo script).
demo-deps: deps
deps:
	@if [ ! -f "$${ZOOKEEPER_JAR:-/usr/share/java/zookeeper.jar}" ]; then \
	  echo "installing ZooKeeper from Debian's packages"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends zookeeper; \
	fi
	@command -v curl >/dev/null && command -v python3 >/dev/null || \
	  { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends curl python3; }

# Benchmarks against real components (ZooKeeper, the built binary, ADS clients) and
# upstream's generators on the same machine in the same run; writes BENCHMARKS.md.
# `make bench BENCH=<regexp>` runs a subset and prints it without rewriting the report.
BENCH ?=
bench: build polaris-bin
ifeq ($(BENCH),)
	mkdir -p out
	PILOT_DISCOVERY_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench 'Generation' -benchtime=10x -count=3 -benchmem -timeout 30m ./tests/bench/ | tee out/bench.txt
	PILOT_DISCOVERY_BIN=$(CURDIR)/$(BIN) DUBBO_POLARIS_BIN=$(CURDIR)/$(POLARIS_BIN) DUBBO_BENCH_INTERFACES=10000 DUBBO_BENCH_NACOS_INTERFACES=2000 $(GO) test -run '^$$' -bench 'RegistryIngest|AppLevelIngest|NacosIngest|Churn|Fanout' -benchtime=1x -timeout 45m ./tests/bench/ | tee -a out/bench.txt
	$(GO) run ./tools/benchreport out/bench.txt "make bench" > BENCHMARKS.md
	@echo "wrote BENCHMARKS.md"
else
	PILOT_DISCOVERY_BIN=$(CURDIR)/$(BIN) DUBBO_POLARIS_BIN=$(CURDIR)/$(POLARIS_BIN) $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime=$${BENCH_TIME:-1x} -timeout 30m ./tests/bench/
endif

# The pilot image: the build context is out/docker/pilot (Dockerfile + <arch>/pilot-discovery).
# With a Docker engine it is built as $(HUB)/pilot:$(VERSION); without one, the context is
# left ready for `docker build` elsewhere.
IMAGE := $(HUB)/pilot:$(VERSION)
BASE_VERSION = $(shell sed -n 's/^BASE_VERSION ?= //p' out/istio/Makefile.core.mk)
image: build
	rm -rf out/docker/pilot && mkdir -p out/docker/pilot/$(GOARCH_LOCAL)
	cp docker/Dockerfile.pilot out/docker/pilot/Dockerfile
	cp $(BIN) out/docker/pilot/$(GOARCH_LOCAL)/pilot-discovery
	@if docker info >/dev/null 2>&1; then \
	  docker build --build-arg BASE_VERSION=$(BASE_VERSION) --build-arg TARGETARCH=$(GOARCH_LOCAL) -t $(IMAGE) out/docker/pilot; \
	else \
	  echo "no Docker engine here: build context ready in out/docker/pilot; elsewhere run:"; \
	  echo "  docker build --build-arg BASE_VERSION=$(BASE_VERSION) -t $(IMAGE) out/docker/pilot"; \
	fi

clean:
	rm -rf out go.work go.work.sum

# omniroute Makefile. `make help` lists the targets; `make test` runs every check CI runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
BIN         := $(CURDIR)/bin
GOLANGCI    := $(BIN)/golangci-lint
# A count, not a duration: a duration -fuzztime races Go 1.26's fuzz coordinator at the deadline
# and fails with a bare "context deadline exceeded" on a loaded machine (go.dev/issue/75804).
FUZZTIME    ?= 50000x

# The image and the chart.
OS          ?= linux
ARCH        ?= amd64
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Once: `git describe --dirty` changes when a file is touched mid-build, and the binary, the
# image's labels and image-check must agree on one version.
VERSION     := $(VERSION)
REVISION    := $(REVISION)
IMAGE       ?= omniroute:$(VERSION)
BASE_IMAGE  ?= gcr.io/distroless/static-debian12:nonroot
# helm, pinned: built once from the Go module proxy into bin/ (the first build downloads and
# compiles it: 947 s measured on a clean module and build cache, on 2 cores at load average
# 9 to 10 from other builds; later runs reuse bin/, and a fresh clone links it from the shared
# module and build caches: 22 s at load average 6 to 9). The chart tests use the same binary
# and build it the same way when they run without make.
HELM_VERSION := v4.3.2
HELM        := $(BIN)/helm-$(HELM_VERSION)
CHART       := charts/omniroute

#? help: list the targets
.PHONY: help
help:
	@grep -E '^#\? ' $(MAKEFILE_LIST) | sed -e 's/^#? /  /'

#? test: everything CI runs: deps, tidy-check, vet, lint, go test -race, fuzz and benchmark smoke runs, Node conformance
.PHONY: test
test: deps tidy-check vet lint helm-lint gotest fuzz bench-smoke conformance image-check

#? deps: install what the checks need (npm ci; Debian packages when root)
.PHONY: deps
deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	@command -v node >/dev/null || { echo "node is required (Node 20+)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error

#? build: build the binaries into bin/
.PHONY: build
build:
	$(GO) build -o $(BIN)/ ./cmd/...

#? vet: go vet
.PHONY: vet
vet:
	$(GO) vet ./...

$(GOLANGCI): tools/go.mod tools/go.sum
	$(GO) build -C tools -o $(GOLANGCI) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

#? lint: golangci-lint (pinned in tools/go.mod) with .golangci.yml, and gofmt
.PHONY: lint
lint: $(GOLANGCI)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GOLANGCI) run ./...

#? gotest: go test -race on every package
.PHONY: gotest
gotest: deps $(HELM)
	HELM=$(HELM) $(GO) test -race -count=1 ./...

#? test-short: quick go tests without -race
.PHONY: test-short
test-short:
	$(GO) test -short -count=1 ./...

#? fuzz: run each fuzz target for FUZZTIME executions (default 50000x)
.PHONY: fuzz
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v node_modules | sort); do \
	  dir=$$(dirname $$spec); \
	  for f in $$(grep -oE '^func Fuzz[A-Za-z0-9_]+' $$spec | sed 's/^func //'); do \
	    echo "fuzz $$dir $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$dir || exit 1; \
	  done; \
	done

#? conformance: Node checks: jsforce against a freshly started sfemulator
.PHONY: conformance
conformance: deps
	@if [ -d test/conformance ]; then \
	  $(GO) build -o $(BIN)/sfemulator ./cmd/sfemulator && \
	  node --test test/conformance/; \
	else echo "no conformance checks yet"; fi

#? bench: the benchmarks recorded in docs/performance.md
.PHONY: bench
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

#? bench-smoke: run every benchmark once, so the ones docs/performance.md quotes keep working
.PHONY: bench-smoke
bench-smoke: deps
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

#? tidy-check: go.mod and go.sum are tidy
.PHONY: tidy-check
tidy-check:
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

#? binary: the static release binary .build/OS-ARCH/omniroute (CGO_ENABLED=0) that the image copies
.PHONY: binary
binary:
	CGO_ENABLED=0 GOOS=$(OS) GOARCH=$(ARCH) $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" \
	  -o .build/$(OS)-$(ARCH)/omniroute ./cmd/omniroute
	rm -rf .build/rootfs && mkdir -p .build/rootfs

#? image: build the image IMAGE (default omniroute:VERSION) with docker, or buildah where no docker engine runs
.PHONY: image
image: binary
	@set -- --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg OS=$(OS) --build-arg ARCH=$(ARCH) \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
	  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) -t $(IMAGE) -f Dockerfile .; \
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then set -x; docker build "$$@"; \
	elif command -v buildah >/dev/null; then set -x; buildah build "$$@"; \
	else echo "make image: needs docker (with a running engine) or buildah"; exit 1; fi

#? image-check: build the image FROM scratch with buildah and run `omniroute version` in it (installs buildah when root; says so when it cannot)
.PHONY: image-check
image-check: binary
	tools/image-check.sh $(VERSION)

$(HELM):
	GOBIN=$(BIN) $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(BIN)/helm $(HELM)

#? helm: build the pinned helm into bin/
.PHONY: helm
helm: $(HELM)

#? helm-lint: helm lint --strict and helm template with the default and the HA values (charts/omniroute/ci)
.PHONY: helm-lint
helm-lint: $(HELM)
	@for v in $(CHART)/ci/*-values.yaml; do \
	  echo "helm lint --strict -f $$v"; $(HELM) lint --strict $(CHART) -f $$v >/dev/null || { $(HELM) lint --strict $(CHART) -f $$v; exit 1; }; \
	  echo "helm template -f $$v"; $(HELM) template omniroute $(CHART) -n omniroute -f $$v >/dev/null; \
	done

#? chart-test: the chart's Go tests: manifests strictly decoded, alert and dashboard metrics, README up to date
.PHONY: chart-test
chart-test: $(HELM)
	HELM=$(HELM) $(GO) test -race -count=1 ./test/chart/

#? chart-readme: regenerate charts/omniroute/README.md from values.yaml
.PHONY: chart-readme
chart-readme:
	$(GO) test -count=1 ./test/chart/ -run '^TestChartREADME$$' -update

#? generate: regenerate the generated files (the chart README)
.PHONY: generate
generate: chart-readme

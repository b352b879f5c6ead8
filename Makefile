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

#? help: list the targets
.PHONY: help
help:
	@grep -E '^#\? ' $(MAKEFILE_LIST) | sed -e 's/^#? /  /'

#? test: everything CI runs: deps, tidy-check, vet, lint, go test -race, fuzz and benchmark smoke runs, Node conformance
.PHONY: test
test: deps tidy-check vet lint gotest fuzz bench-smoke conformance

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
gotest: deps
	$(GO) test -race -count=1 ./...

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

# streamhooks — build, lint and test. CI (.ci/run) runs `make lint test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Unit and package tests run with the race detector. Packages that drive a
# real in-process Temporal server end to end (worker, cmd/streamhooks) run
# without it: -race slows that server about 20x (see docs/testing.md).
RACE_PKGS := ./models/... ./api/... ./activities/... ./egress/... ./signature/... ./workflows/... ./service/... ./internal/...
E2E_PKGS  := ./worker/... ./cmd/...
GOTESTSUM := $(GO) tool gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg

FUZZTIME  ?= 5s

.PHONY: all build dev test fuzz bench lint fmt clean

all: lint test

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/streamhooks ./cmd/streamhooks

## dev: run the whole system in one process (API, worker, Temporal, UI).
dev:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/streamhooks dev

## test: every test, against real PostgreSQL and SQLite, with brief fuzzing.
test:
	$(GOTESTSUM) -- -count=1 -race $(RACE_PKGS)
	$(MAKE) --no-print-directory fuzz
	$(GOTESTSUM) -- -count=1 -timeout 20m $(E2E_PKGS)

## fuzz: each fuzz target for FUZZTIME (make fuzz FUZZTIME=5m for a soak).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzWebhookURL$$' -fuzztime $(FUZZTIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzAssetFields$$' -fuzztime $(FUZZTIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzCheckHost$$' -fuzztime $(FUZZTIME) ./egress

## bench: the throughput benchmark (docs/benchmarks.md) and the Go benchmarks.
bench: build
	bin/streamhooks bench
	$(GO) test -run '^$$' -bench . ./activities/ ./egress/ ./signature/

## lint: formatting, vet, staticcheck and Temporal's workflowcheck.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) tool workflowcheck ./workflows/...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# aegir: build, test, demo, docs, benchmarks.
GO       ?= go
BIN      ?= bin/aegir
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/aegir-project/aegir/pkg/cli.Version=$(VERSION)
# Tests of several packages start private nginx, apache, php-fpm and sshd
# instances; two at a time suits a 2-core machine.
TESTFLAGS ?= -p 2 -timeout 15m

.PHONY: all build deps test vet fmt-check docs demo bench clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/aegir

# Installs and starts the real components the tests and the demo use.
deps:
	@if [ "$$(id -u)" -eq 0 ]; then bash scripts/deps.sh; else sudo bash scripts/deps.sh; fi

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The store and queue tests run twice: on SQLite (with the rest) and on a
# PostgreSQL state (AEGIR_TEST_STATE=postgres: a database of their own on
# the machine's server, AEGIR_TEST_PG, dropped after).
STATE_PKGS ?= ./pkg/store/ ./pkg/queue/

test: deps fmt-check vet
	$(GO) test $(TESTFLAGS) ./...
	AEGIR_TEST_STATE=postgres $(GO) test $(TESTFLAGS) $(STATE_PKGS)

docs: build
	$(BIN) docs --out docs/commands.md

demo: deps build
	bash scripts/demo.sh

bench: deps build
	bash scripts/bench.sh

clean:
	rm -rf bin

# Podium build targets. `make test` is the command README.md gives and .ci/run runs.
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: all setup build wasm test test-short check bench demo clean

all: build

setup:
	./scripts/setup.sh

build:
	$(GO) build ./...

# wasm builds every plugin and test fixture from source (see plugins/*/README.md).
wasm:
	@if [ -x scripts/build-wasm.sh ]; then ./scripts/build-wasm.sh; fi

# test runs the tests that only make sense without the race detector (allocation counts,
# the Fashion-MNIST recall run; they carry //go:build !race), then every test under it.
test: setup wasm
	$(GO) vet ./...
	$(GO) test -timeout 20m -run 'Alloc|FashionMNIST' ./...
	$(GO) test -race -timeout 20m ./...

test-short: wasm
	$(GO) test -short ./...

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod go.sum $${TMPDIR:-/tmp}/; $(GO) mod tidy; \
	  if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changes go.mod/go.sum:"; git diff -- go.mod go.sum; \
	    cp $${TMPDIR:-/tmp}/go.mod $${TMPDIR:-/tmp}/go.sum .; exit 1; fi

bench: wasm
	$(GO) test -run '^$$' -bench . -benchmem ./engine/... ./bench/...

demo:
	$(GO) run ./cmd/engine --demo

clean:
	rm -rf bin .cache

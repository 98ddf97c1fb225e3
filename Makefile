# hodlflow — set-up, demo, tests and benchmarks. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
JARS := .cache/jars/.fetched
# A real Bitcoin node for the RPC tests and benchmark: btcd, built from source by the Go
# toolchain through the Go module proxy into the checkout (nothing installed system-wide).
BTCD_VERSION := v0.24.2
BTCD := .cache/bin/btcd
BTCD_STAMP := .cache/bin/.btcd-$(BTCD_VERSION)
DEMO_DIR ?= demo-out

.PHONY: setup demo test lint bench clean

setup: $(STAMP) $(JARS) $(BTCD_STAMP)

$(BTCD_STAMP):
	@command -v go >/dev/null || { echo "make setup: Go is needed to build btcd for the RPC tests (https://go.dev/dl/)"; exit 1; }
	mkdir -p .cache/bin
	GOBIN="$(CURDIR)/.cache/bin" go install github.com/btcsuite/btcd@$(BTCD_VERSION)
	rm -f .cache/bin/.btcd-* && touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

# The Delta Lake jars come from Maven Central once; every later Spark start reads the cache.
$(JARS): $(STAMP)
	$(BIN)/hodlflow fetch-jars
	touch $@

lint: setup
	$(BIN)/ruff check lib tests jobs bench

test: setup lint
	$(BIN)/python -m pytest -q tests

demo: setup
	$(BIN)/hodlflow demo --out "$(DEMO_DIR)"

# The peer parsers are measured side by side; one that fails to install is reported as missing.
bench: setup
	$(BIN)/pip install --quiet blockchain-parser==0.1.6 bitcoin-explorer==1.2.21 \
		|| echo "peer parsers not installed: the bench reports them as missing"
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .cache warehouse $(DEMO_DIR) .pytest_cache

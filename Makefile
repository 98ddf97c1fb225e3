# hodlflow — set-up, demo, tests and benchmarks. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
JARS := .cache/jars/.fetched
DEMO_DIR ?= demo-out

.PHONY: setup demo test lint bench clean

setup: $(STAMP) $(JARS)

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

# hodlflow — set-up, demo, tests and benchmarks. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
JARS := .cache/jars/spark-submit.properties
# The PostgreSQL JDBC driver of the shared metastore (fetched with the Delta jars).
PG_JAR := .cache/jars/org.postgresql_postgresql-42.7.14.jar
# The login check of `hodlflow serve-sql` with users (serve.password_file): our own Java class,
# compiled against the Thrift server jar of the pyspark wheel into the jar cache. The jar's name
# carries the source's hash (lib/hodlflow/sqlauth.py finds it by the same hash), so a changed
# source builds a new jar and the old one goes.
AUTH_SRC := lib/hodlflow/java/PasswordFileAuthenticator.java
AUTH_JAR := .cache/jars/hodlflow-sqlauth-$(shell sha1sum < $(AUTH_SRC) | cut -c1-12).jar
AUTH_CLASSES := .cache/sqlauth-classes
# Airflow lives in its own virtual environment (its dependency tree is large and moves on its own
# schedule); hodlflow is installed into it too, so its spark-submit runs the jobs with hodlflow.
AIRFLOW_PINS := apache-airflow==3.3.2 apache-airflow-providers-apache-spark==6.3.4
AF_VENV := .venv-airflow
AF_STAMP := $(AF_VENV)/.installed-$(shell (cat pyproject.toml; echo "$(AIRFLOW_PINS)") | sha1sum | cut -c1-12)
# A real Bitcoin node for the RPC tests and benchmark: btcd, built from source by the Go
# toolchain through the Go module proxy into the checkout (nothing installed system-wide).
BTCD_VERSION := v0.24.2
BTCD := .cache/bin/btcd
BTCD_STAMP := .cache/bin/.btcd-$(BTCD_VERSION)
DEMO_DIR ?= demo-out
SUITE_DIR ?= suite-out
SUITE_SEED ?= 1
SUITE_RANDOM ?= 3

.PHONY: setup airflow-setup system-packages demo evaluate-suite faults concurrent fuzz test test-fast lint bench bench-scale clean

# The set-up steps (the two virtual environments, the Delta jars, btcd, Debian's packages) wait on
# the network and on builds of their own: `make test` and `make demo` run them side by side
# (SETUP_MAKE), each step's output printed whole when it ends; the tests and the demo then print
# as they go.
SETUP_MAKE = $(MAKE) --no-print-directory --jobs=4 --output-sync=target

# Debian packages the tests start for real: Chromium (renders the report headless) and
# PostgreSQL (the shared metastore). Installed only when missing; root or sudo needed then.
SYS_PACKAGES := chromium postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-packages:
	@missing=$$(for p in $(SYS_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

setup: $(STAMP) $(JARS) $(PG_JAR) $(AUTH_JAR) $(BTCD_STAMP)

$(BTCD_STAMP):
	@command -v go >/dev/null || { echo "make setup: Go is needed to build btcd for the RPC tests (https://go.dev/dl/)"; exit 1; }
	mkdir -p .cache/bin
	GOBIN="$(CURDIR)/.cache/bin" go install github.com/btcsuite/btcd@$(BTCD_VERSION)
	rm -f .cache/bin/.btcd-* && touch $@

airflow-setup: $(AF_STAMP)

$(AF_STAMP): pyproject.toml
	test -x $(AF_VENV)/bin/python || $(PYTHON) -m venv $(AF_VENV)
	$(AF_VENV)/bin/pip install --quiet $(AIRFLOW_PINS) -e .
	rm -f $(AF_VENV)/.installed-* && touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

# The Delta Lake jars come from Maven Central once; every later Spark start reads the cache.
$(JARS) $(PG_JAR) &: $(STAMP)
	$(BIN)/hodlflow fetch-jars

# The Thrift server's interface PasswdAuthenticationProvider is in pyspark's jars.
$(AUTH_JAR): $(AUTH_SRC) $(STAMP)
	@command -v javac >/dev/null || { echo "make setup: javac (a JDK, 17 or later) is needed to build $@"; exit 1; }
	rm -rf $(AUTH_CLASSES) && mkdir -p $(AUTH_CLASSES) .cache/jars
	javac --release 17 -Xlint:all,-path -Werror -d $(AUTH_CLASSES) \
		-cp "$$($(BIN)/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars/*" $(AUTH_SRC)
	rm -f .cache/jars/hodlflow-sqlauth-*.jar
	jar --create --file $@ -C $(AUTH_CLASSES) .
	rm -rf $(AUTH_CLASSES)

# Lint and formatting (ruff's formatter, line length 100 from pyproject.toml; a statement
# laid out by hand, such as an argument table, carries `# fmt: skip`). `ruff format` fixes it.
lint: setup
	$(BIN)/ruff check lib tests jobs bench airflow_dags
	$(BIN)/ruff format --check lib tests jobs bench airflow_dags

# Two pytest workers: the integration tests wait on JVM starts and subprocesses (one core is
# idle most of a serial run); three were slower (2026-12-06: 28.5 min against 23.4, every file
# longer beside two others). A test file stays on one worker (its module fixtures are built
# once). The files start in tests/conftest.py's order, longest first (--no-loadscope-reorder: by default
# pytest-xdist starts the files with the most tests first, which left the long out-of-process
# files to the end).
TEST_WORKERS ?= 2
test:
	$(SETUP_MAKE) setup airflow-setup system-packages lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 tests

# The inner loop: the tests that need no Spark, no node and no Airflow (seconds). Every test that
# takes the `spark` fixture is marked `spark` (tests/conftest.py) and left out here. The unit tests
# of serve-sql's logins run our Java provider (a few seconds of javac when its source changed).
test-fast: $(STAMP) $(AUTH_JAR)
	$(BIN)/python -m pytest -q -m "not spark" tests/unit

demo:
	$(SETUP_MAKE) setup
	$(BIN)/hodlflow demo --out "$(DEMO_DIR)"

# capitulation, distribution and SUITE_RANDOM scenarios drawn from SUITE_SEED, each simulated,
# processed and evaluated; one table of the measures (30-60 min on 2 cores).
evaluate-suite:
	$(SETUP_MAKE) setup
	$(BIN)/hodlflow evaluate-suite --out "$(SUITE_DIR)" --seed $(SUITE_SEED) --random $(SUITE_RANDOM)

# Kill anywhere, lose nothing: FAULT_KILLS SIGKILLs of a step's Python or driver JVM at moments
# drawn from FAULT_SEED over a tiny chain brought up to date in increments (ingest, entities,
# metrics, maintain), the last after a reorg; every table must equal a run without faults
# (lib/hodlflow/faults.py). About 75 min for 50 kills with three steps an increment on a shared
# 2-core machine (2026-12-06); maintain and the reorg increment (2026-12-07) doubled the step
# runs: the reference's 16 take ~8 min alone, the whole campaign was not timed alone since.
# Not in `make test`: its smallest form (one increment, two kills) took 6 min of a test worker.
FAULT_SEED ?= 1
FAULT_KILLS ?= 50
faults: setup
	$(BIN)/python -m hodlflow.faults --out faults-out --seed $(FAULT_SEED) --kills $(FAULT_KILLS)

# Two steps at once: CONCURRENT_PAIRS times two steps started together on one warehouse (the
# same step run twice, a step and the next, a step and the previous; the second after a delay
# drawn from FAULT_SEED), the tiny chain brought up to date a day at a time; a refused run must
# name the step holding the warehouse, and every table must equal a serial run's.
CONCURRENT_PAIRS ?= 20
concurrent: setup
	$(BIN)/python -m hodlflow.faults --out concurrent-out --seed $(FAULT_SEED) --together $(CONCURRENT_PAIRS)

# Bad input, tried wide: FUZZ_CASES seeded damages (truncations, flipped bytes, huge counts,
# wrong lengths and magics, inserted, removed and zeroed bytes) of the simulated tiny chain's blk
# files, and of FUZZ_BLOCKS (real blocks: blk files, raw or hex blocks, e.g. a node's
# blocks/blk04000.dat), read through ingest's per-file code (lib/hodlflow/fuzz.py).
FUZZ_CASES ?= 100000
FUZZ_SEED ?= 1
FUZZ_BLOCKS ?=
fuzz: setup
	$(BIN)/python -m hodlflow.fuzz --out fuzz-out --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) \
		$(if $(FUZZ_BLOCKS),--blocks $(FUZZ_BLOCKS))

# The peer parsers are measured side by side; one that fails to install is reported as missing.
bench: setup
	$(BIN)/pip install --quiet blockchain-parser==0.1.6 bitcoin-explorer==1.2.21 \
		|| echo "peer parsers not installed: the bench reports them as missing"
	$(BIN)/python bench/run.py

# Growth curves of the whole pipeline on simulated chains (hours at 1e7 on 2 cores);
# `make bench-scale SCALE_SIZES=1e5,1e6` for the quick curve.
SCALE_SIZES ?= 1e5,1e6,1e7
bench-scale: setup
	$(BIN)/python bench/scale.py --sizes $(SCALE_SIZES)

clean:
	rm -rf $(VENV) $(AF_VENV) .cache warehouse $(DEMO_DIR) .pytest_cache fuzz-out

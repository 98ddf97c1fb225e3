"""Session-wide fixtures: one Spark session for the whole run (local[1], no UI, one shuffle
partition, UTC), and per-test settings that isolate each test's tables (own warehouse folder,
own database prefix) inside that one session's catalog."""

from __future__ import annotations

import itertools
import os
import tempfile

os.environ.setdefault("BCL_DATA_DIR", tempfile.mkdtemp(prefix="hodlflow-bcl-"))

import pytest  # noqa: E402

from hodlflow.config import Settings, load_settings  # noqa: E402

_counter = itertools.count()


# The longest test files first (per-file sums of --durations=0, fresh clone, 2026-12-06), so the
# two pytest-xdist workers start on them and the short files fill in at the end (longest-first
# balances the two workers' loads). pytest-xdist keeps this order only with
# --no-loadscope-reorder (`make test` passes it with --dist loadfile: a file is one unit of work,
# its module fixtures built once); by default it starts the files with the most
# tests first. Files not named here keep their order, after these.
LONGEST_FIRST = (
    "test_airflow_dags.py",
    "test_kill_points.py",
    "test_ingest.py",
    "test_entities.py",
    "test_metrics_supply.py",
    "test_shared_metastore.py",
    "test_simulated_chain.py",
    "test_rpc_ingest.py",
    "test_maintain.py",
    "test_report.py",
    "test_cospend.py",
    "test_sql_serving.py",
    "test_components.py",
    "test_hadoop_paths.py",
    "test_labels.py",
)


# Fixtures that start a real part from outside Python's packages: a btcd node, a PostgreSQL
# server, headless Chromium, Airflow's own environment. A test using one (directly or through
# another fixture) is marked ``external``.
EXTERNAL_FIXTURES = frozenset({"node", "postgres", "dom", "airflow_bin"})


def pytest_collection_modifyitems(config, items):
    """Mark every test that takes the Spark session (directly or through a fixture) ``spark``,
    so ``make test-fast`` (``-m "not spark"``) leaves exactly those out, and every test that
    takes a fixture of EXTERNAL_FIXTURES ``external`` (``-m "not external"``: all but btcd,
    PostgreSQL, Chromium and Airflow); and put the files of LONGEST_FIRST first (a stable sort:
    tests keep their order within a file)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "spark" in fixtures:
            item.add_marker(pytest.mark.spark)
        if fixtures & EXTERNAL_FIXTURES:
            item.add_marker(pytest.mark.external)

    def rank(item) -> int:
        name = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("spark-session"))


@pytest.fixture(scope="session")
def spark(session_dir):
    from hodlflow.spark import build_session

    settings = load_settings("test", {"warehouse.path": os.path.join(session_dir, "warehouse")})
    session = build_session(settings)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def make_settings(tmp_path):
    """Settings for one test: tables under ``tmp_path`` in databases ``t<N>_chain`` etc."""

    def make(**overrides) -> Settings:
        base = {
            "warehouse.path": str(tmp_path / "warehouse"),
            "warehouse.db_prefix": f"t{next(_counter)}_",
        }
        base.update({k.replace("__", "."): v for k, v in overrides.items()})
        return load_settings("test", base)

    return make

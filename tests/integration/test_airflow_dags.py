"""The Airflow DAGs under real Airflow 3.3.2 (its own virtual environment): every file imports,
the task graphs are the designed ones, and `airflow dags test` runs the daily DAG on a simulated
chain through real spark-submit and Delta: on a warehouse whose first day the plain CLI wrote,
one run after two missed days catches both up, after which the tables equal those of the plain
CLI run over the same blocks; a missed day's run, late, changes nothing."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml
from pyspark.testing import assertDataFrameEqual

from hodlflow.cli import main as hodlflow
from tests.integration.airflow_env import AF_BIN, DAGS, airflow_env, migrate, run
from tests.integration.tiny_sim import (
    DAYS,
    REFERENCE_PREFIX,
    TABLES,
    days_of,
    read,
    site_overlay,
    submit_properties,
)

pytestmark = pytest.mark.spark

DAGBAG_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])  # as Airflow's dags-folder bundle does when it parses
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(sys.argv[1])
    print(json.dumps({
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": {
            dag_id: {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
            for dag_id, dag in bag.dags.items()
        },
        "catchup": {dag_id: dag.catchup for dag_id, dag in bag.dags.items()},
        "max_active_runs": {dag_id: dag.max_active_runs for dag_id, dag in bag.dags.items()},
        "retries": {dag_id: sorted({t.retries for t in dag.tasks}) for dag_id, dag in bag.dags.items()},
        "operators": {
            dag_id: {t.task_id: type(t).__name__ for t in dag.tasks} for dag_id, dag in bag.dags.items()
        },
    }))
    """
)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-parse")
    env = airflow_env(home, {})
    done = run([str(AF_BIN / "python"), "-c", DAGBAG_SCRIPT, str(DAGS)], env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_dag_file_imports_without_errors(dagbag, tmp_path):
    assert dagbag["import_errors"] == {}
    assert sorted(dagbag["dags"]) == ["hodlflow_backfill", "hodlflow_daily"]
    # And as the scheduler sees them: parsed into the metadata database, no import error there.
    env = airflow_env(tmp_path / "airflow-home", {})
    migrate(env)
    done = run([str(AF_BIN / "airflow"), "dags", "reserialize"], env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    done = run([str(AF_BIN / "airflow"), "dags", "list-import-errors", "-o", "json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    done = run([str(AF_BIN / "airflow"), "dags", "list", "-o", "json"], env)
    assert sorted(d["dag_id"] for d in json.loads(done.stdout.strip().splitlines()[-1])) == [
        "hodlflow_backfill",
        "hodlflow_daily",
    ]


def test_daily_dag_waits_for_the_chain_then_runs_each_step_in_order(dagbag):
    assert dagbag["dags"]["hodlflow_daily"] == {
        "wait_for_chain": ["ingest"],
        "ingest": ["entities"],
        "entities": ["metrics"],
        "metrics": ["check"],
        "check": ["maintain"],
        "maintain": [],
    }
    ops = dagbag["operators"]["hodlflow_daily"]
    assert {t: ops[t] for t in ("ingest", "entities", "metrics", "check", "maintain")} == dict.fromkeys(
        ("ingest", "entities", "metrics", "check", "maintain"), "SparkSubmitOperator"
    )
    assert dagbag["catchup"]["hodlflow_daily"] is True
    assert dagbag["max_active_runs"]["hodlflow_daily"] == 1
    assert dagbag["retries"]["hodlflow_daily"] == [2]


def test_backfill_dag_ingests_in_chunks_then_runs_the_rest(dagbag):
    assert dagbag["dags"]["hodlflow_backfill"] == {
        "ingest_chunks": ["entities"],
        "entities": ["metrics"],
        "metrics": ["check"],
        "check": ["maintain"],
        "maintain": [],
    }
    assert set(dagbag["operators"]["hodlflow_backfill"].values()) == {"SparkSubmitOperator"}


def test_dag_files_import_neither_pyspark_nor_hodlflow():
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        for banned in ("import pyspark", "from pyspark", "import hodlflow\n", "from hodlflow.", "from hodlflow "):
            assert banned not in text, f"{path.name} contains {banned!r}"


# --- the daily DAG end to end ------------------------------------------------------------

# The warehouse starts with the first day, [03-01, 03-02), written by the plain CLI (a daily
# run's own state, as after a backfill or an earlier DAG run). The DAG then runs for the interval
# [03-03, 03-04) after the run of [03-02, 03-03) was missed: it catches up both days. Then the
# missed interval runs late and must change nothing. (One DAG run of five spark-submits fewer
# than running the first day through the DAG too: that spark-submit path from an empty
# warehouse is the standalone-cluster test's, tests/integration/test_cluster.py.)
FIRST_DAY_UNTIL = "2025-03-02"
RUN = "2025-03-04"
LATE_RUN = "2025-03-03"
# Tables of the DAG's warehouse carry this prefix, so the in-process first day registers no
# unprefixed table in the test session's catalog.
DAG_PREFIX = "af_"


@pytest.fixture(scope="module")
def dag_runs(spark, tiny_sim, tmp_path_factory):
    """The first day by the plain CLI (in process), then the daily DAG run with `airflow dags
    test` for RUN; returns the Airflow environment, the warehouse and a function running the
    DAG for one more day."""
    out, manifest = tiny_sim
    base = tmp_path_factory.mktemp("af-daily")
    warehouse = base / "warehouse"
    conf_file = base / "site.yaml"
    site = site_overlay(out, manifest, str(warehouse))
    site["warehouse"]["db_prefix"] = DAG_PREFIX
    conf_file.write_text(yaml.safe_dump(site))
    common = ["--env", "test", "--conf-file", str(conf_file)]
    assert hodlflow(["ingest", *common, "--blocks-dir", str(out / "blocks"),
                     "--until", FIRST_DAY_UNTIL]) == 0  # fmt: skip
    assert hodlflow(["entities", *common]) == 0
    assert hodlflow(["metrics", *common, "--prices", str(out / "prices.csv")]) == 0
    assert days_of(spark, str(warehouse), DAG_PREFIX) == [DAYS[0]]
    props = submit_properties(base)
    env = airflow_env(
        base / "airflow-home",
        {
            "hodlflow_env": "test",
            "hodlflow_conf_file": str(conf_file),
            "hodlflow_blocks_dir": str(out / "blocks"),
            "hodlflow_prices_csv": str(out / "prices.csv"),
            "hodlflow_spark_properties": str(props),
        },
    )
    migrate(env)

    def dags_test(day: str) -> None:
        done = run([str(AF_BIN / "airflow"), "dags", "test", "hodlflow_daily", day], env)
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"airflow dags test {day} failed:\n{log[-6000:]}"
        assert "Spark-Submit cmd" in log  # real spark-submit ran

    dags_test(RUN)
    return env, str(warehouse), dags_test


def snapshot(spark, warehouse, keys):
    return {k: sorted(map(tuple, read(spark, warehouse, k, DAG_PREFIX).collect())) for k in keys}


def test_daily_dag_runs_equal_a_plain_cli_run(spark, dag_runs, tiny_reference):
    _, warehouse, _ = dag_runs
    # The CLI's first day, the missed day and the run's own, and nothing past the run's end.
    assert days_of(spark, warehouse, DAG_PREFIX) == list(DAYS)
    for key in TABLES:
        actual = read(spark, warehouse, key, DAG_PREFIX)
        # No cluster of one run merges with another's in these days: merges stays empty.
        assert (actual.count() > 0) == (key != "entities.merges"), key
        assertDataFrameEqual(
            actual, read(spark, tiny_reference, key, REFERENCE_PREFIX), checkRowOrder=False
        )


def test_running_a_missed_day_late_changes_nothing(spark, dag_runs):
    _, warehouse, dags_test = dag_runs
    before = snapshot(spark, warehouse, TABLES)
    dags_test(LATE_RUN)
    assert snapshot(spark, warehouse, TABLES) == before


def test_sensor_waits_while_the_chain_has_not_passed_the_interval(tiny_sim, dag_runs):
    env, _, _ = dag_runs
    out, manifest = tiny_sim
    done = run(
        [str(AF_BIN / "hodlflow"), "tip", "--env", "test", "--blocks-dir", str(out / "blocks"),
         "--set", "check_pow=false", "--set", f"ingest.start_hash={manifest['start_hash']}",
         "--set", f"ingest.start_height={manifest['start_height']}", "--after", "2025-03-07"],
        env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["ready"] is False

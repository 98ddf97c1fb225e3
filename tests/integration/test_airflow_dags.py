"""The Airflow DAGs under real Airflow 3.3.2 (its own virtual environment): every file imports,
the task graphs are the designed ones, and `airflow dags test` runs the daily DAG for two
consecutive days of a simulated chain through real spark-submit and Delta, after which the
tables equal those of a plain CLI run over the same blocks; re-running a day changes nothing."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml
from pyspark.testing import assertDataFrameEqual

from hodlflow.cli import main as hodlflow
from hodlflow.config import CONF_DIR
from hodlflow.sim.simulator import run_simulation
from tests.integration.airflow_env import AF_BIN, DAGS, ROOT, airflow_env, migrate, run

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

DAYS = ("2025-03-02", "2025-03-03")  # runs for the intervals [03-01, 03-02) and [03-02, 03-03)
GOLD = ("metrics.miner_pressure", "metrics.entity_flows", "metrics.exchange_flows",
        "metrics.holder_migration", "metrics.supply_cohorts", "metrics.entity_balance_cohorts",
        "market.prices")  # fmt: skip
OTHER = ("chain.blocks", "chain.transactions", "chain.outputs", "chain.inputs", "chain.unspent",
         "entities.address_entity", "entities.entities", "entities.entity_daily",
         "entities.class_flows")  # fmt: skip


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("af-sim")
    manifest = run_simulation(str(CONF_DIR / "scenarios" / "tiny.yaml"), str(out))
    return out, manifest


def overlay(sim, warehouse) -> dict:
    out, manifest = sim
    return {
        "check_pow": False,  # simulated headers carry mainnet difficulty without the work
        "warehouse": {"path": str(warehouse)},
        "ingest": {
            "start_hash": manifest["start_hash"],
            "start_height": manifest["start_height"],
        },
        "entities": {
            "pools": [str(CONF_DIR / "pools.json"), str(out / manifest["files"]["pools"])],
            "label_seeds": [
                str(CONF_DIR / "labels" / "exchanges.csv"),
                str(out / manifest["files"]["exchange_labels"]),
            ],
        },
    }


@pytest.fixture(scope="module")
def dag_runs(sim, tmp_path_factory):
    """The daily DAG run with `airflow dags test` for two consecutive days, then the first day
    again. Returns the warehouse, the table contents after the two days and after the re-run."""
    base = tmp_path_factory.mktemp("af-daily")
    warehouse = base / "warehouse"
    conf_file = base / "site.yaml"
    conf_file.write_text(yaml.safe_dump(overlay(sim, warehouse)))
    # Delta's jars (as `hodlflow fetch-jars` writes them) plus a lighter JVM for short jobs.
    props = base / "spark-submit.properties"
    props.write_text(
        (ROOT / ".cache" / "jars" / "spark-submit.properties").read_text()
        + "spark.driver.extraJavaOptions -XX:TieredStopAtLevel=1 -XX:+UseSerialGC\n"
    )
    out, _ = sim
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

    for day in DAYS:
        dags_test(day)
    return env, warehouse, dags_test


def read_path(spark, warehouse, key, prefix=""):
    db, table = key.split(".")
    return spark.read.format("delta").load(f"{warehouse}/{prefix}{db}/{table}")


def snapshot(spark, warehouse, keys):
    return {k: sorted(map(tuple, read_path(spark, warehouse, k).collect())) for k in keys}


def test_daily_dag_over_two_days_equals_a_plain_cli_run(spark, sim, dag_runs, tmp_path):
    _, af_warehouse, _ = dag_runs
    out, _ = sim
    cli_warehouse = tmp_path / "cli-warehouse"
    conf_file = tmp_path / "site.yaml"
    conf_file.write_text(yaml.safe_dump(overlay(sim, cli_warehouse)))
    common = ["--env", "test", "--conf-file", str(conf_file), "--set", "warehouse.db_prefix=clirun_"]
    # The same steps by hand, in one go over both days (ingest in chunks of 120 heights, as the
    # backfill DAG does: three atomic steps that must add up to the two daily ones).
    ingest = ["ingest", *common, "--blocks-dir", str(out / "blocks"), "--until", DAYS[-1]]
    assert hodlflow([*ingest, "--chunk-blocks", "120"]) == 0
    assert hodlflow(["entities", *common]) == 0
    assert hodlflow(["prices", *common, str(out / "prices.csv")]) == 0
    assert hodlflow(["metrics", *common]) == 0

    blocks = read_path(spark, af_warehouse, "chain.blocks")
    # Two days of ~144 blocks (the tiny scenario's density; header times jitter around the
    # midnight cut): the DAG really ingested both days and nothing after.
    assert 280 <= blocks.count() <= 296
    last_day = blocks.agg({"day": "max"}).first()[0]
    assert str(last_day) <= "2025-03-02"  # nothing past the second interval's end
    for key in GOLD + OTHER:
        expected = read_path(spark, cli_warehouse, key, prefix="clirun_")
        actual = read_path(spark, af_warehouse, key)
        assert actual.count() > 0, key
        assertDataFrameEqual(actual, expected, checkRowOrder=False)


def test_rerunning_a_day_changes_nothing(spark, dag_runs):
    _, warehouse, dags_test = dag_runs
    before = snapshot(spark, warehouse, GOLD + OTHER)
    dags_test(DAYS[0])
    assert snapshot(spark, warehouse, GOLD + OTHER) == before


def test_sensor_waits_while_the_chain_has_not_passed_the_interval(sim, dag_runs):
    env, _, _ = dag_runs
    out, _ = sim
    done = run(
        [str(AF_BIN / "hodlflow"), "tip", "--env", "test", "--blocks-dir", str(out / "blocks"),
         "--set", "check_pow=false", "--set", f"ingest.start_hash={sim[1]['start_hash']}",
         "--set", f"ingest.start_height={sim[1]['start_height']}", "--after", "2025-03-07"],
        env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["ready"] is False

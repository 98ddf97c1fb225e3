"""The Airflow DAGs under real Airflow 3.3.2 (its own virtual environment): every file imports,
the task graphs are the designed ones, and `airflow dags test` runs the daily DAG on a simulated
chain through real spark-submit to a real Spark standalone cluster (one master, two one-core
workers on loopback, started from the pip-installed pyspark) and Delta: on a warehouse whose
first day the plain CLI wrote, one run after two missed days catches both up, after which the
tables equal those of the session's in-process local-mode run over the same blocks
(tiny_reference in tests/integration/conftest.py: ingested in chunks there, one shuffle
partition against four here); the event logs and the workers' work dirs show that executors on
both workers ran every task's Spark work (a silent local-mode run would leave both empty). A
missed day's run, late (in local mode), changes nothing."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from pyspark.testing import assertDataFrameEqual

from hodlflow.cli import main as hodlflow
from tests.support.airflow_env import AF_BIN, DAGS, airflow_env, migrate, require_airflow, run
from tests.support.spark_cluster import start_cluster
from tests.support.tiny_sim import (
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
def airflow_bin():
    """The bin folder of Airflow's own virtual environment (`make airflow-setup`)."""
    return require_airflow()


@pytest.fixture(scope="module")
def dagbag(airflow_bin, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-parse")
    env = airflow_env(home, {})
    done = run([str(airflow_bin / "python"), "-c", DAGBAG_SCRIPT, str(DAGS)], env, timeout=300)
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
    assert {
        t: ops[t] for t in ("ingest", "entities", "metrics", "check", "maintain")
    } == dict.fromkeys(
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
        for banned in (
            "import pyspark",
            "from pyspark",
            "import hodlflow\n",
            "from hodlflow.",
            "from hodlflow ",
        ):
            assert banned not in text, f"{path.name} contains {banned!r}"


# --- the daily DAG end to end, on a standalone cluster --------------------------------------

# The warehouse starts with the first day, [03-01, 03-02), written by the plain CLI in process (a
# daily run's own state, as after a backfill or an earlier DAG run). The DAG then runs for the
# interval [03-03, 03-04) after the run of [03-02, 03-03) was missed: it catches up both days, its
# five spark-submits going to the cluster. Then the missed interval runs late, in local mode, and
# must change nothing. Warehouse, blocks directory and checkpoint directory are file:// URIs, as
# on a cluster's shared filesystem.
FIRST_DAY_UNTIL = "2025-03-02"
RUN = "2025-03-04"
LATE_RUN = "2025-03-03"
# Tables of the DAG's warehouse carry this prefix, so the in-process first day registers no
# unprefixed table in the test session's catalog.
DAG_PREFIX = "af_"
DAG_TASKS = ("ingest", "entities", "metrics", "check", "maintain")
# Run records: everything but their commit times and the table locations they name.
RUNS = {
    "entities.runs": ("start_height", "end_height", "end_hash", "first_day", "last_day",
                      "new_addresses", "edges", "merges"),
    "metrics.runs": ("first_day", "last_day", "end_height", "end_hash"),
}  # fmt: skip


def events_of(log_dir: Path) -> dict[str, list[dict]]:
    """Application id → its event log records (one JSON object a line)."""
    apps = {}
    for f in sorted(log_dir.iterdir()):
        lines = f.read_text().splitlines()
        apps[f.name.removesuffix(".inprogress")] = [json.loads(x) for x in lines if x.strip()]
    return apps


def cluster_properties(base: Path, events: Path) -> Path:
    """spark-submit properties for the cluster: the test's (Delta jars, a light JVM for short
    jobs, driver and executors), two one-core executors of 640 MB, event logs in ``events``,
    the Airflow venv's Python on the executors too, and scheduling only once both executors are
    up (so both get tasks)."""
    path = submit_properties(base, ("driver", "executor"))
    assert "spark.jars.packages" not in path.read_text()  # nothing resolved at submit time
    path.write_text(
        path.read_text()
        + f"spark.pyspark.python {AF_BIN / 'python'}\n"
        + "spark.cores.max 2\nspark.executor.cores 1\nspark.executor.memory 640m\n"
        + f"spark.eventLog.enabled true\nspark.eventLog.dir {events.as_uri()}\n"
        + "spark.eventLog.compress false\nspark.eventLog.rolling.enabled false\n"
        + "spark.scheduler.minRegisteredResourcesRatio 1.0\n"
        + "spark.scheduler.maxRegisteredResourcesWaitingTime 300s\n"
    )
    return path


class DagRuns(NamedTuple):
    warehouse: str  # the DAG's warehouse URI
    events: dict[str, list[dict]]  # application id -> its event log records
    workers: list  # the cluster's workers (their work dirs)
    completed: list  # the applications the master completed
    run_local: Callable[[str], None]  # `airflow dags test` for one more day, in local mode


@pytest.fixture(scope="module")
def dag_runs(spark, airflow_bin, tiny_sim, tmp_path_factory) -> DagRuns:
    """The first day by the plain CLI (in process), then the daily DAG run with `airflow dags
    test` for RUN on a two-worker standalone cluster, torn down after it. Returns the warehouse
    URI, the event logs, the workers, the master's completed apps and a function running the
    DAG for one more day in local mode."""
    out, manifest = tiny_sim
    base = tmp_path_factory.mktemp("af-daily")
    warehouse = (base / "warehouse").as_uri()
    conf_file = base / "site.yaml"
    site = site_overlay(out, manifest, warehouse, (base / "checkpoints").as_uri())
    site["warehouse"]["db_prefix"] = DAG_PREFIX
    # Tiny inputs, as in the test environment (conf/environments/test.yaml): no adaptive
    # execution (each query one Spark job, not one per stage: a job costs a round trip to the
    # executors) and no code generation (compiling costs more than running interpreted). The
    # DAG's five tasks 345 s -> 275 s on an idle machine (2026-12-07); the same tables.
    site["spark"] = {"conf": {
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    }}  # fmt: skip
    conf_file.write_text(yaml.safe_dump(site))
    common = ["--env", "test", "--conf-file", str(conf_file)]
    blocks, prices = (out / "blocks").as_uri(), (out / "prices.csv").as_uri()
    assert hodlflow(["ingest", *common, "--blocks-dir", blocks, "--until", FIRST_DAY_UNTIL]) == 0
    assert hodlflow(["entities", *common]) == 0
    assert hodlflow(["metrics", *common, "--prices", prices]) == 0
    assert days_of(spark, warehouse, DAG_PREFIX) == [DAYS[0]]
    variables = {
        "hodlflow_conf_file": str(conf_file),
        "hodlflow_blocks_dir": blocks,
        "hodlflow_prices_csv": prices,
    }
    events = base / "events"
    events.mkdir()
    cluster = start_cluster(base / "cluster", workers=2, cores=1, memory="1g")
    try:
        env = airflow_env(
            base / "airflow-home",
            {**variables, "hodlflow_env": "cluster",
             "hodlflow_spark_properties": str(cluster_properties(base, events))},
            spark_master=cluster.url,
        )  # fmt: skip
        migrate(env)
        dags_test(env, RUN)
        completed = cluster.state()["completedapps"]
    finally:
        cluster.stop()
    local_dir = base / "local"  # its own spark-submit properties: no cluster settings
    local_dir.mkdir()
    local = airflow_env(
        base / "airflow-home",
        {**variables, "hodlflow_env": "test",
         "hodlflow_spark_properties": str(submit_properties(local_dir))},
    )  # fmt: skip
    return DagRuns(
        warehouse=warehouse,
        events=events_of(events),
        workers=cluster.workers,
        completed=completed,
        run_local=lambda day: dags_test(local, day),
    )


def dags_test(env: dict, day: str) -> None:
    done = run([str(AF_BIN / "airflow"), "dags", "test", "hodlflow_daily", day], env)
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"airflow dags test {day} failed:\n{log[-6000:]}"
    assert "Spark-Submit cmd" in log  # real spark-submit ran


def snapshot(spark, warehouse, keys):
    return {k: sorted(map(tuple, read(spark, warehouse, k, DAG_PREFIX).collect())) for k in keys}


def test_daily_dag_runs_equal_a_plain_cli_run(spark, dag_runs, tiny_reference):
    warehouse = dag_runs.warehouse
    # The CLI's first day, the missed day and the run's own, and nothing past the run's end.
    assert days_of(spark, warehouse, DAG_PREFIX) == list(DAYS)
    assert read(spark, warehouse, "metrics.miner_pressure", DAG_PREFIX).count() == len(DAYS)
    for key in TABLES:
        actual = read(spark, warehouse, key, DAG_PREFIX)
        # No cluster of one run merges with another's in these days: merges stays empty.
        assert (actual.count() > 0) == (key != "entities.merges"), key
        assertDataFrameEqual(
            actual, read(spark, tiny_reference, key, REFERENCE_PREFIX), checkRowOrder=False
        )


def test_the_runs_records_add_up_to_the_local_mode_runs(spark, dag_runs, tiny_reference):
    # The CLI's first day and the DAG's catch-up are two runs where the reference made one: they
    # start where the reference started, end where it ended, and their counts add up.
    warehouse = dag_runs.warehouse
    for key, cols in RUNS.items():
        ours = [r.asDict() for r in read(spark, warehouse, key, DAG_PREFIX).select(*cols).collect()]
        ours.sort(key=lambda r: r["end_height"])
        (ref,) = [
            r.asDict()
            for r in read(spark, tiny_reference, key, REFERENCE_PREFIX).select(*cols).collect()
        ]
        assert len(ours) == 2, ours
        assert str(ours[0]["first_day"]) == DAYS[0] and str(ours[0]["last_day"]) == DAYS[0]
        if key == "entities.runs":
            assert ours[0]["start_height"] == ref["start_height"]
            assert ours[1]["start_height"] == ours[0]["end_height"] + 1
            for count in ("new_addresses", "edges", "merges"):
                assert sum(r[count] for r in ours) == ref[count], count
            assert ours[1]["edges"] > 0  # co-spends clustered on the cluster
        for col in ("first_day",):
            assert ours[0][col] == ref[col]
        for col in ("last_day", "end_height", "end_hash"):
            assert ours[1][col] == ref[col], col


def test_every_spark_task_ran_on_executors_of_both_workers(dag_runs):
    events, workers, completed = dag_runs.events, dag_runs.workers, dag_runs.completed
    names = {}
    for app_id, records in events.items():
        env = next(r for r in records if r["Event"] == "SparkListenerEnvironmentUpdate")
        props = env["Spark Properties"]
        command = env["System Properties"]["sun.java.command"]  # spark-submit's own arguments
        names[app_id] = [t for t in DAG_TASKS if f"/jobs/{t}.py" in command]
        assert props["spark.master"].startswith("spark://127.0.0.1:")
        # Python on the executors is the Airflow venv's (where its spark-submit installed hodlflow).
        assert props["spark.pyspark.python"] == str(AF_BIN / "python")
        ran = {
            r["Task Info"]["Executor ID"] for r in records if r["Event"] == "SparkListenerTaskEnd"
        }
        assert "driver" not in ran
        # A standalone worker runs each executor in <work dir>/<app id>/<executor id>.
        per_worker = [
            {p.name for p in (w.work_dir / app_id).iterdir()}
            if (w.work_dir / app_id).is_dir()
            else set()
            for w in workers
        ]
        assert all(per_worker), f"{app_id}: executors per worker {per_worker}"
        assert all(ids & ran for ids in per_worker), f"{app_id}: tasks ran on {ran}, {per_worker}"
        # The Delta jars reached every executor from the driver (the set-up's jar cache).
        for w, ids in zip(workers, per_worker, strict=True):
            for ex in ids:
                fetched = [p.name for p in (w.work_dir / app_id / ex).glob("*.jar")]
                assert any(n.startswith("io.delta_delta-spark") for n in fetched), fetched
    # One application a Spark task of the DAG, each seen by the master.
    assert sorted(n for found in names.values() for n in found) == sorted(DAG_TASKS), names
    assert len(completed) == len(DAG_TASKS)


def test_system_python_could_not_have_run_the_tasks():
    # The tasks unpickle hodlflow functions: only the venvs' interpreters have the package.
    done = subprocess.run(["/usr/bin/python3", "-c", "import hodlflow"], capture_output=True)
    assert done.returncode != 0


def test_running_a_missed_day_late_changes_nothing(spark, dag_runs):
    before = snapshot(spark, dag_runs.warehouse, TABLES)
    dag_runs.run_local(LATE_RUN)
    assert snapshot(spark, dag_runs.warehouse, TABLES) == before


def test_sensor_waits_while_the_chain_has_not_passed_the_interval(airflow_bin, tiny_sim, tmp_path):
    out, manifest = tiny_sim
    env = airflow_env(tmp_path / "airflow-home", {})
    done = run(
        [str(airflow_bin / "hodlflow"), "tip", "--env", "test", "--blocks-dir", str(out / "blocks"),
         "--set", "check_pow=false", "--set", f"ingest.start_hash={manifest['start_hash']}",
         "--set", f"ingest.start_height={manifest['start_height']}", "--after", "2025-03-07"],
        env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["ready"] is False

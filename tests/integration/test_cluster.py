"""The pipeline on a real Spark standalone cluster (one master, two one-core workers on
loopback, started from the pip-installed pyspark): ingest → entities → metrics through
spark-submit to spark://, warehouse, blocks directory and checkpoint directory given as file://
URIs. Every table equals the one of the session's in-process local-mode run over the same blocks
(tiny_reference in tests/integration/conftest.py: ingested in chunks there, one shuffle partition
against four here), and the event logs and the workers' work dirs show that executors on both
workers ran tasks (a silent local-mode run would leave both empty)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from pyspark.testing import assertDataFrameEqual

from tests.integration.spark_cluster import ROOT, VENV_PYTHON, start_cluster
from tests.integration.tiny_sim import (
    DAYS,
    REFERENCE_PREFIX,
    TABLES,
    UNTIL,
    days_of,
    read,
    site_overlay,
    submit_properties,
)

pytestmark = pytest.mark.spark

# Run records: everything but their commit times and the table locations they name.
RUNS = {
    "entities.runs": ("start_height", "end_height", "end_hash", "first_day", "last_day",
                      "new_addresses", "edges", "merges"),
    "metrics.runs": ("first_day", "last_day", "end_height", "end_hash"),
}  # fmt: skip
STEPS = ("ingest", "entities", "metrics")


def step_args(step: str, out: Path) -> list[str]:
    if step == "ingest":
        return ["--blocks-dir", (out / "blocks").as_uri(), "--until", UNTIL]
    if step == "metrics":
        return ["--prices", (out / "prices.csv").as_uri()]
    return []


def events_of(log_dir: Path) -> dict[str, list[dict]]:
    """Application id → its event log records (one JSON object a line)."""
    apps = {}
    for f in sorted(log_dir.iterdir()):
        lines = f.read_text().splitlines()
        apps[f.name.removesuffix(".inprogress")] = [json.loads(x) for x in lines if x.strip()]
    return apps


@pytest.fixture(scope="module")
def cluster_run(tiny_sim, tmp_path_factory):
    """The three steps spark-submitted to a two-worker standalone cluster; the cluster is torn
    down before the assertions. Returns the warehouse URI, the event logs and worker dirs."""
    out, manifest = tiny_sim
    base = tmp_path_factory.mktemp("cluster")
    warehouse = (base / "warehouse").as_uri()
    conf_file = base / "site.yaml"
    conf_file.write_text(
        yaml.safe_dump(site_overlay(out, manifest, warehouse, (base / "checkpoints").as_uri()))
    )
    events = base / "events"
    events.mkdir()
    # The Delta jars from the set-up's cache (the file `hodlflow fetch-jars` writes), nothing
    # resolved from Maven at submit time, plus a lighter JVM for short jobs.
    props = submit_properties(base, ("driver", "executor"))
    assert "spark.jars.packages" not in props.read_text()
    cluster = start_cluster(base, workers=2, cores=1, memory="1g")
    try:
        for step in STEPS:
            cmd = [
                str(Path(VENV_PYTHON).parent / "spark-submit"),
                "--master", cluster.url,
                "--total-executor-cores", "2", "--executor-cores", "1",
                "--executor-memory", "640m",
                "--properties-file", str(props),
                "--conf", "spark.eventLog.enabled=true",
                "--conf", f"spark.eventLog.dir={events.as_uri()}",
                "--conf", "spark.eventLog.compress=false",
                "--conf", "spark.eventLog.rolling.enabled=false",
                # Schedule only once both executors are up, so both get tasks.
                "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
                "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=300s",
                str(ROOT / "jobs" / f"{step}.py"),
                "--env", "cluster", "--conf-file", str(conf_file),
                "--set", "spark.conf.spark.sql.shuffle.partitions=4",
                *step_args(step, out),
            ]  # fmt: skip
            done = subprocess.run(
                cmd, env=cluster.env, cwd=base, capture_output=True, text=True, timeout=1800
            )
            assert done.returncode == 0, (
                f"spark-submit {step} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
                f"\n{cluster.logs()}"
            )
        apps = cluster.state()["completedapps"]
    finally:
        cluster.stop()
    return warehouse, events_of(events), cluster.workers, apps


def test_every_step_ran_on_executors_of_both_workers(cluster_run):
    _, events, workers, completed = cluster_run
    assert len(events) == len(STEPS)
    assert len(completed) == len(STEPS)  # the master saw each step as an application
    for app_id, records in events.items():
        env = next(r for r in records if r["Event"] == "SparkListenerEnvironmentUpdate")
        assert env["Spark Properties"]["spark.master"].startswith("spark://127.0.0.1:")
        # Python on the executors is the project's virtual environment (where hodlflow is).
        assert env["Spark Properties"]["spark.pyspark.python"] == VENV_PYTHON
        ran = {r["Task Info"]["Executor ID"] for r in records if r["Event"] == "SparkListenerTaskEnd"}
        assert "driver" not in ran
        # A standalone worker runs each executor in <work dir>/<app id>/<executor id>.
        per_worker = [
            {p.name for p in (w.work_dir / app_id).iterdir()} if (w.work_dir / app_id).is_dir() else set()
            for w in workers
        ]
        assert all(per_worker), f"{app_id}: executors per worker {per_worker}"
        assert all(ids & ran for ids in per_worker), f"{app_id}: tasks ran on {ran}, {per_worker}"
        # The Delta jars reached every executor from the driver (the set-up's jar cache).
        for w, ids in zip(workers, per_worker, strict=True):
            for ex in ids:
                fetched = [p.name for p in (w.work_dir / app_id / ex).glob("*.jar")]
                assert any(n.startswith("io.delta_delta-spark") for n in fetched), fetched


def test_system_python_could_not_have_run_the_tasks():
    # The tasks unpickle hodlflow functions: only the venv's interpreter has the package.
    done = subprocess.run(["/usr/bin/python3", "-c", "import hodlflow"], capture_output=True)
    assert done.returncode != 0


def test_cluster_tables_equal_a_local_mode_run(spark, cluster_run, tiny_reference):
    warehouse, _, _, _ = cluster_run
    assert days_of(spark, warehouse) == list(DAYS)  # nothing from --until on
    assert read(spark, warehouse, "chain.inputs").count() > 0
    assert read(spark, warehouse, "entities.runs").first().edges > 0  # co-spends clustered
    assert read(spark, warehouse, "metrics.miner_pressure").count() == len(DAYS)  # one row a day
    for key in TABLES:
        assertDataFrameEqual(
            read(spark, warehouse, key),
            read(spark, tiny_reference, key, REFERENCE_PREFIX),
            checkRowOrder=False,
        )
    for key, cols in RUNS.items():
        assertDataFrameEqual(
            read(spark, warehouse, key).select(*cols),
            read(spark, tiny_reference, key, REFERENCE_PREFIX).select(*cols),
            checkRowOrder=False,
        )

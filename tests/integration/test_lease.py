"""The warehouse lease through a Hadoop filesystem, and a CLI step refused while another holds
the warehouse.

The Hadoop filesystem is ViewFileSystem (``viewfs://``) mounted on a local directory, as in
test_hadoop_paths.py: the lease goes through Hadoop's create-without-overwrite, read and delete,
as on ``hdfs://``; the test looks at the files from the local side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hodlflow.lease import LeaseError, warehouse_lease
from tests.integration.test_hadoop_paths import viewfs


def test_the_lease_through_a_hadoop_filesystem(spark, tmp_path):
    mount = tmp_path / "mount"
    mount.mkdir()
    s = SimpleNamespace(warehouse=viewfs(spark, mount) + "/warehouse", db_prefix="p_")
    local = mount / "warehouse" / "_hodlflow" / "lease" / "p_.json"
    with warehouse_lease(spark, s, "maintain"):
        held = json.loads(local.read_text())
        assert (held["step"], held["pid"]) == ("maintain", os.getpid())
    assert not local.exists()
    # Held by a live step of another host: refused through Hadoop's create without overwrite.
    lease = {"step": "ingest", "host": "node-7", "pid": 1, "token": "x"}
    local.write_text(json.dumps({**lease, "since": time.time(), "renewed": time.time()}))
    with pytest.raises(LeaseError, match=r"in use by `ingest` \(host node-7, pid 1"):
        with warehouse_lease(spark, s, "entities"):
            pass
    assert json.loads(local.read_text())["token"] == "x"  # left as it was
    # Not renewed for longer than the TTL: taken over.
    local.write_text(json.dumps({**lease, "since": 0, "renewed": time.time() - 500}))
    with warehouse_lease(spark, s, "entities", ttl_s=120):
        assert json.loads(local.read_text())["step"] == "entities"
    assert not local.exists()


def test_a_cli_step_started_while_another_holds_the_warehouse_refuses_and_writes_nothing(
    tmp_path,
):
    warehouse = tmp_path / "warehouse"
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    s = SimpleNamespace(warehouse=str(warehouse), db_prefix="")
    with warehouse_lease(None, s, "entities"):
        done = subprocess.run(
            [sys.executable, "-m", "hodlflow.cli", "ingest", "--env", "test",
             "--warehouse", str(warehouse), "--blocks-dir", str(blocks)],
            capture_output=True, text=True,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    message = [line for line in done.stderr.splitlines() if line.startswith("hodlflow ingest:")]
    assert message == [
        f"hodlflow ingest: error: the warehouse {warehouse} (database prefix none) is in use by "
        f"`entities` (host {os.uname().nodename}, pid {os.getpid()}, "
        + message[0].split(f"pid {os.getpid()}, ", 1)[1]
    ]
    assert "`ingest` did not start" in message[0]
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr
    # Nothing read, recovered or written: no table, no metastore, only the lease's folder.
    assert sorted(p.relative_to(warehouse).as_posix() for p in warehouse.rglob("*")) == [
        "_hodlflow",
        "_hodlflow/lease",
    ]


def test_every_writing_step_takes_the_lease_before_it_touches_the_warehouse(
    spark, make_settings, tmp_path
):
    from hodlflow.entities.job import run_entities
    from hodlflow.ingest.follow import run_rpc_ingest
    from hodlflow.ingest.job import run_ingest, run_ingest_chunks
    from hodlflow.lease import lease_path
    from hodlflow.maintain import run_maintenance
    from hodlflow.metrics.job import run_metrics
    from hodlflow.metrics.prices import load_prices

    settings = make_settings(ingest__blocks_dir=str(tmp_path / "no-blocks"))
    path = Path(lease_path(settings))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"step": "ingest", "host": "node-7", "pid": 1, "token": "x",
                                "since": time.time(), "renewed": time.time()}))  # fmt: skip
    steps = {
        "ingest": lambda: run_ingest(spark, settings),
        "ingest (chunks)": lambda: run_ingest_chunks(spark, settings, 10),
        "ingest --rpc": lambda: run_rpc_ingest(spark, settings),
        "entities": lambda: run_entities(spark, settings),
        "metrics": lambda: run_metrics(spark, settings),
        "metrics (prices)": lambda: load_prices(spark, settings, str(tmp_path / "no-prices.csv")),
        "maintain": lambda: run_maintenance(spark, settings),
    }
    for name, run_step in steps.items():
        with pytest.raises(LeaseError, match=r"in use by `ingest` \(host node-7"):
            run_step()
        # Refused before reading anything: no table, no journal, only the lease.
        assert sorted(p.name for p in Path(settings.warehouse).rglob("*")) == [
            "_hodlflow", "lease", path.name,
        ], name  # fmt: skip

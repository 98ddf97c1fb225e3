"""The kill campaign's small form (`make faults` is the whole one: lib/hodlflow/faults.py): the
tiny chain's first days through ingest, entities and metrics, each step's process killed with
SIGKILL at a seeded point of its work, then run again; the tables then equal those of the
uninterrupted run (the session's tiny reference), row for row.

The kill points are marks in each step's output plus a seeded delay (0-1.5 s): ingest after its
first chunk of heights is written (in chunks of 60, as a backfill does: the kill lands in a later
chunk), entities once it has computed its per-day totals (it writes its tables next: the kill
lands just before or among its writes), metrics once its supply cohorts are computed (its one
atomic write follows). Whether a journal was left to roll back depends on where the kill fell:
not asserted; the tables' equality is. The victims cover both kinds: the step's Python
(nothing of it runs on: the re-run must take over the lease it left) and its driver JVM (the
Python dies of it). The re-runs run in this process (the CLI's main, the session's Spark), as a
scheduler's retry would run on another worker.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import yaml

from hodlflow.cli import main as hodlflow
from hodlflow.faults import TABLES, Kill, _run_and_kill, checksums
from tests.support.tiny_sim import REFERENCE_PREFIX, UNTIL, site_overlay

SEED = 26
PREFIX = "killpoints_"  # unique in the session catalog (test_rpc_ingest uses "kill_")
# (step, its Python or its JVM killed, the output line the delay counts from)
POINTS = (
    ("ingest", "python", r"^wrote heights"),
    ("entities", "jvm", r"per-day totals:"),
    ("metrics", "python", r"^supply cohorts"),
)


def test_steps_killed_at_seeded_points_leave_the_tables_of_an_uninterrupted_run(
    spark, tiny_sim, tiny_reference, tmp_path, capsys
):
    out, manifest = tiny_sim
    warehouse = tmp_path / "warehouse"
    conf_file = tmp_path / "site.yaml"
    conf_file.write_text(yaml.safe_dump(site_overlay(out, manifest, str(warehouse))))
    common = ["--env", "test", "--conf-file", str(conf_file),
              "--set", f"warehouse.db_prefix={PREFIX}"]  # fmt: skip
    args = {
        "ingest": ["--blocks-dir", str(out / "blocks"), "--until", UNTIL, "--chunk-blocks", "60"],
        "entities": [],
        "metrics": ["--prices", str(out / "prices.csv")],
    }
    rng = random.Random(SEED)
    for step, victim, mark in POINTS:
        kill = Kill(UNTIL, step, victim, rng.uniform(0, 1.5), after=mark)
        log = tmp_path / f"killed-{step}.log"
        _run_and_kill([sys.executable, "-m", "hodlflow.cli", step, *common, *args[step]], log,
                      kill)  # fmt: skip
        said = log.read_text()
        assert kill.outcome == "killed", (step, kill.outcome, said[-3000:])
        capsys.readouterr()
        assert hodlflow([step, *common, *args[step]]) == 0
        rerun = capsys.readouterr().out
        if victim == "python":  # a JVM's Python lets go of its lease as it dies; a Python, never
            assert f"took over the lease left by `{step}`" in rerun, rerun
    reference = checksums(Path(tiny_reference), spark, tuple(REFERENCE_PREFIX + k for k in TABLES))
    ours = checksums(warehouse, spark, tuple(PREFIX + k for k in TABLES))
    differ = [k for k in TABLES if reference[REFERENCE_PREFIX + k] != ours[PREFIX + k]]
    assert not differ, {k: (reference[REFERENCE_PREFIX + k], ours[PREFIX + k]) for k in differ}

"""Fixtures shared by the integration tests that run the pipeline out of process."""

from __future__ import annotations

import pytest
import yaml

from hodlflow.cli import main as hodlflow
from hodlflow.config import CONF_DIR
from hodlflow.sim.simulator import run_simulation
from tests.support.tiny_sim import REFERENCE_PREFIX, UNTIL, site_overlay


@pytest.fixture(scope="session")
def tiny_sim(tmp_path_factory):
    """conf/scenarios/tiny.yaml simulated once: (output folder, manifest)."""
    out = tmp_path_factory.mktemp("tiny-sim")
    manifest = run_simulation(str(CONF_DIR / "scenarios" / "tiny.yaml"), str(out))
    return out, manifest


@pytest.fixture(scope="session")
def tiny_reference(spark, tiny_sim, tmp_path_factory) -> str:
    """The plain CLI, in process and in local mode, over the tiny chain's first days (blocks
    before UNTIL): ingest in chunks of 120 heights (as the backfill DAG does: several atomic
    steps that must add up to one), entities, metrics with the price CSV. Returns the warehouse
    path; its databases carry REFERENCE_PREFIX."""
    out, manifest = tiny_sim
    base = tmp_path_factory.mktemp("tiny-reference")
    warehouse = str(base / "warehouse")
    conf_file = base / "site.yaml"
    conf_file.write_text(yaml.safe_dump(site_overlay(out, manifest, warehouse)))
    common = ["--env", "test", "--conf-file", str(conf_file),
              "--set", f"warehouse.db_prefix={REFERENCE_PREFIX}"]  # fmt: skip
    ingest = ["--blocks-dir", str(out / "blocks"), "--until", UNTIL, "--chunk-blocks", "120"]
    assert hodlflow(["ingest", *common, *ingest]) == 0
    assert hodlflow(["entities", *common]) == 0
    assert hodlflow(["metrics", *common, "--prices", str(out / "prices.csv")]) == 0
    return warehouse

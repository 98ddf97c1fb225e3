"""The fault campaign's small form (lib/hodlflow/faults.py; `make faults` runs 50 kills): one
increment of the tiny chain, ingest → entities → metrics as processes, the first runs of ingest
and entities killed with SIGKILL at seeded moments (the Python process or the driver JVM), then
run again; every table equals the same increment run without faults."""

from __future__ import annotations

from hodlflow.faults import TABLES, run_campaign


def test_killed_steps_rerun_to_the_same_tables_as_a_run_without_faults(tmp_path):
    said = []
    result = run_campaign(str(tmp_path / "faults"), seed=13, kills=2,
                          increments=("2025-03-04",), log=said.append)  # fmt: skip
    assert [(k.step, k.victim) for k in result.kills] == [("ingest", "jvm"), ("entities", "python")]
    landed = [k for k in result.kills if k.outcome == "killed"]
    assert landed, said
    assert result.differences == {}, result.report()
    # Every table was compared, and holds rows (but merges: no two clusters join in these days).
    assert sorted(result.reference) == sorted(TABLES)
    assert [k for k, (rows, _) in result.reference.items() if rows == 0] == ["entities.merges"]

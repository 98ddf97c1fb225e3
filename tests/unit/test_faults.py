"""The fault campaign's table comparison (the campaign itself: `make faults`)."""

from __future__ import annotations

import time

import pytest

from hodlflow import faults


def test_checksums_ignore_row_order_and_commit_times_and_see_a_changed_value(spark, tmp_path):
    keys = ("chain.blocks", "metrics.runs")  # two tables: each is read the same way
    rows = [(1, "a", "2026-01-01 00:00:00"), (2, "b", "2026-01-01 00:00:00")]
    schema = "height int, hash string, finished_at string"

    def write(where, data):
        df = spark.createDataFrame(data, schema)
        for key in keys:
            db, table = key.split(".")
            df.write.format("delta").mode("overwrite").save(str(tmp_path / where / db / table))

    write("a", rows)
    write("b", [(2, "b", "2026-12-31 23:59:59"), (1, "a", "2026-12-06 12:00:00")])
    write("c", [(1, "a", "2026-01-01 00:00:00"), (2, "c", "2026-01-01 00:00:00")])
    a, b, c = (faults.checksums(tmp_path / w, spark, keys) for w in "abc")
    assert a == b  # order and finished_at (not compared) differ
    assert sorted(a) == sorted(keys)
    assert all(a[k] != c[k] for k in keys)
    assert all(a[k][0] == 2 for k in keys)


def test_a_kill_of_a_run_that_has_ended_is_not_counted(tmp_path):
    kill = faults.Kill("2025-03-04", "ingest", "python", delay_s=5.0)
    faults._run_and_kill(["true"], tmp_path / "log", kill)
    assert kill.outcome == "finished first" and not kill.phase


def test_a_run_that_fails_before_its_kill_is_a_failure_with_its_last_line(tmp_path):
    # A run that cannot recover from an earlier kill ends with an error before its own kill:
    # reported as such (make faults exits 1), not as a run that finished.
    kill = faults.Kill("2025-03-04", "entities", "python", delay_s=5.0)
    faults._run_and_kill(["bash", "-c", "echo working; echo 'Error: not a table' >&2; exit 3"],
                         tmp_path / "log", kill)  # fmt: skip
    assert kill.outcome == "failed (exit 3)" and kill.phase == "Error: not a table"
    report = faults.Campaign([kill], 0, 0, {}, 1.0).report()
    assert "runs that failed on their own before it: 1" in report
    assert "failed: entities up to 2025-03-04: failed (exit 3): Error: not a table" in report


def test_a_kill_after_a_mark_waits_for_that_line_then_its_delay(tmp_path):
    # The test suite's small form kills a step at a point of its work: delay_s after the first
    # output line that matches `after`, however long the step took to print it.
    cmd = ["bash", "-c", "echo starting; sleep 1.5; echo 'wrote heights 1..60'; echo more; "
           "sleep 0.6; echo late; sleep 600"]  # fmt: skip
    kill = faults.Kill("2025-03-04", "ingest", "python", delay_s=0.3, after=r"^wrote heights")
    t0 = time.monotonic()
    faults._run_and_kill(cmd, tmp_path / "log", kill)
    assert kill.outcome == "killed" and kill.phase == "more"  # after the mark, before "late"
    assert 1.8 <= time.monotonic() - t0 < 60


def test_a_run_that_ends_before_its_mark_is_not_killed(tmp_path):
    kill = faults.Kill("2025-03-04", "ingest", "python", delay_s=0.0, after=r"^never printed")
    faults._run_and_kill(["bash", "-c", "echo starting"], tmp_path / "log", kill)
    assert kill.outcome == "finished first"


@pytest.mark.parametrize("victim", ["python", "jvm"])
def test_the_victim_is_killed_and_its_whole_process_group_is_gone_after(tmp_path, victim):
    # A stand-in for a step: a shell whose child plays the JVM (a process named java), started
    # after a moment as PySpark starts it.
    cmd = ["bash", "-c", "echo starting; sleep 0.5; (exec -a java sleep 600) & wait"]
    kill = faults.Kill("2025-03-04", "ingest", victim, delay_s=0.1)  # before the "JVM" starts
    t0 = time.monotonic()
    faults._run_and_kill(cmd, tmp_path / "log", kill)
    assert kill.outcome == "killed" and kill.phase == "starting"
    assert time.monotonic() - t0 < 60  # not waited out: the victim and the rest were killed


def test_kills_are_dealt_in_turn_and_a_finished_runs_rest_go_to_the_next_run():
    import random

    plan = [("d1", "ingest"), ("d1", "entities"), ("d2", "ingest")]
    durations = {("d1", "ingest"): 10.0, ("d1", "entities"): 20.0, ("d2", "ingest"): 30.0}
    planned = faults.schedule_kills(plan, 7, durations, random.Random(1))
    # Round-robin: 3, 2, 2; each delay within its run's reference duration.
    assert [len(planned[r]) for r in plan] == [3, 2, 2]
    assert all(0 <= k.delay_s <= durations[r] for r in plan for k in planned[r])
    assert {k.victim for r in plan for k in planned[r]} <= {"python", "jvm"}

    events = []
    # The first run's second attempt finishes before its kill (the step is done); so does the
    # last run's first.
    finishes_first = {id(planned[plan[0]][1]), id(planned[plan[2]][0])}

    def attempt(kill, j):
        kill.outcome = "finished first" if id(kill) in finishes_first else "killed"
        events.append(("kill", kill.increment, kill.step, j, kill.outcome))

    def finish(n, until, step):
        events.append(("run", until, step, n))

    tried = faults.run_kills(plan, planned, durations, random.Random(2), attempt, finish)
    assert events == [
        ("kill", "d1", "ingest", 0, "killed"),
        ("kill", "d1", "ingest", 1, "finished first"),
        ("run", "d1", "ingest", 0),
        # its third kill is carried: the entities run gets its own two, then one drawn anew
        ("kill", "d1", "entities", 0, "killed"),
        ("kill", "d1", "entities", 1, "killed"),
        ("kill", "d1", "entities", 2, "killed"),
        ("run", "d1", "entities", 1),
        # the last run finishes before its first kill: its second is dropped
        ("kill", "d2", "ingest", 0, "finished first"),
        ("run", "d2", "ingest", 2),
    ]
    assert len(tried) == 6 and tried[4].step == "entities"
    assert 0 <= tried[4].delay_s <= durations["d1", "entities"]


def _headers(blocks_dir):
    """Every stored header with where it lies, read by the ingest's own header scan."""
    from hodlflow.chain.blkfile import list_blk_files, read_xor_key
    from hodlflow.chain.network import MAIN
    from hodlflow.ingest.best_chain import HeaderLoc
    from hodlflow.ingest.blocks_dir import _scan_files

    files = enumerate(list_blk_files(str(blocks_dir)))
    return [HeaderLoc(*h) for h in _scan_files(files, MAIN, read_xor_key(str(blocks_dir)), False)]


def test_the_reorg_branch_replaces_the_last_two_blocks_and_is_one_longer(tmp_path):
    from hodlflow.config import CONF_DIR
    from hodlflow.ingest.best_chain import best_chain
    from hodlflow.sim.simulator import run_simulation

    m = run_simulation(str(CONF_DIR / "scenarios" / "tiny.yaml"), str(tmp_path / "sim"))
    before = sorted(p.name for p in (tmp_path / "sim" / "blocks").iterdir())
    out = faults.write_reorg(tmp_path / "sim", m)
    assert sorted(p.name for p in (tmp_path / "sim" / "blocks").iterdir()) == before
    old, _ = best_chain(_headers(tmp_path / "sim" / "blocks"), m["start_hash"], m["start_height"])
    new, stale = best_chain(_headers(out), m["start_hash"], m["start_height"])
    assert old[-1].loc.hash == m["tip_hash"] and old[-1].height == m["tip_height"]
    assert new[-1].height == m["tip_height"] + 1
    # The same chain up to two blocks under the old tip, then three new ones.
    assert [b.loc.hash for b in new[:-3]] == [b.loc.hash for b in old[:-2]]
    assert not {b.loc.hash for b in new[-3:]} & {b.loc.hash for b in old}
    assert stale == m["stale_blocks"] + 2
    # A node stores the new branch after what it had: one more blk file.
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, "blk00009.dat"])


def test_the_campaign_runs_maintenance_and_vacuums_only_after_the_reorg(tmp_path):
    site = ["--set", "check_pow=false"]
    early = faults._command("maintain", "2025-03-05", tmp_path / "w", tmp_path, site)
    last = faults._command("maintain", faults.REORG, tmp_path / "w", tmp_path, site)
    ingest = faults._command("ingest", faults.REORG, tmp_path / "w", tmp_path, site)
    assert (
        "maintenance.optimize_min_files=2" in early and "maintenance.optimize_min_files=2" in last
    )
    assert "maintenance.vacuum_retention_hours=0" in last
    assert not any("vacuum" in x for x in early)
    assert ingest[ingest.index("--blocks-dir") + 1] == str(tmp_path / "blocks-reorg")
    assert ingest[ingest.index("--until") + 1] == "2025-03-07"


REFUSAL = (
    "hodlflow ingest: error: the warehouse /data/warehouse (database prefix none) is in use by "
    "`entities` (host vm, pid 18625, since 2026-12-06 19:17:43 UTC, renewed 6 s ago); `ingest` "
    "did not start. Run it again when that step has ended"
)


def test_a_run_of_a_pair_is_refused_only_with_the_other_step_named():
    assert faults.outcome(0, "done", "entities") == "ran"
    assert faults.outcome(1, "noise\n" + REFUSAL + "\n", "entities") == "refused by entities"
    # The holder named is not the other run's step, or the exit code is not the refusal's:
    assert faults.outcome(1, REFUSAL, "metrics").startswith("failed (exit 1)")
    assert faults.outcome(2, REFUSAL, "entities").startswith("failed (exit 2)")
    # A refusal that does not say who holds the warehouse is not enough.
    bare = "hodlflow ingest: error: the warehouse is in use; `ingest` did not start"
    assert faults.outcome(1, bare, "entities") == f"failed (exit 1): {bare}"


def test_pairs_are_drawn_from_the_seed_around_the_first_run_not_done():
    import random

    durations = [10.0] * 8
    draw = [faults.draw_pair(3, 8, durations, random.Random(5)) for _ in range(2)]
    assert draw[0] == draw[1]  # the same seed, the same pair
    pairs = [faults.draw_pair(3, 8, durations, random.Random(s)) for s in range(200)]
    assert all(3 in p.runs and set(p.runs) <= {2, 3, 4} for p in pairs)
    assert {p.runs for p in pairs} == {(3, 3), (2, 3), (3, 2), (3, 4), (4, 3)}
    assert all(0 <= p.delay_s <= 10.0 for p in pairs)
    # At the plan's ends, the neighbour that does not exist is the run itself.
    assert all(set(faults.draw_pair(0, 8, durations, random.Random(s)).runs) <= {0, 1}
               for s in range(50))  # fmt: skip

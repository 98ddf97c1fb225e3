"""Kill anywhere, lose nothing: a fault campaign over the pipeline's steps.

A small simulated chain is brought up to date in increments (ingest up to a day, entities,
metrics, maintain), each step its own ``hodlflow`` process, as a scheduler runs them; a last
increment follows a reorg (a longer branch replacing the tip's last two blocks: ingest rolls the
chain back, entities restores its tables to an earlier run, metrics recomputes the days it
touched) and ends with a maintenance that deletes files (VACUUM at 0 hours). The reference does
it without faults. The campaign does the same on a second warehouse, but first kills some step
runs with SIGKILL at a moment drawn from the seed (uniform over the reference's duration of that
step run), either the step's Python process or its Spark driver JVM, then runs the step again
until it finishes, and goes on (a run that finishes before its kill passes the kills still planned
for it on to the next step run: a finished step has nothing left to kill). After the last increment every table must hold the same rows
as the reference's (an order-free checksum of every row: count and Σ xxhash64 over its
columns; the runs tables without their commit times and table versions).

    python -m hodlflow.faults --out faults-out --seed 1 --kills 50    # = make faults

What it shows: no kill leaves a table half-written or a step unable to start (the next run
rolls back the journal of the killed one and takes over its warehouse lease), and nothing is
lost or counted twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from hodlflow.config import CONF_DIR

# Days before which the increments end (the tiny chain runs 2025-03-01 .. 03-06), then REORG:
# the whole chain again, from a blocks directory where a longer branch replaced the tip.
REORG = "reorg"
INCREMENTS = ("2025-03-03", "2025-03-05", "2025-03-07", REORG)
REORG_UNTIL = "2025-03-07"
STEPS = ("ingest", "entities", "metrics", "maintain")
# Maintenance with work to do on a tiny warehouse: compact any table of 2 files or more. VACUUM
# skips tables younger than its retention (168 h by default, all of them here); the last
# maintenance, after the reorg, vacuums at 0 hours (Delta's check switched off) so that kills
# land while files are deleted. Not earlier: a later roll-back (a killed step's journal, the
# entities run the reorg restores) needs the files of earlier table versions.
MAINTAIN_SETS = ("maintenance.optimize_min_files=2",)
VACUUM_NOW_SETS = (
    "maintenance.vacuum_retention_hours=0",
    "spark.conf.spark.databricks.delta.retentionDurationCheck.enabled=false",
)
# Every table the three steps write; the runs tables without what differs between two correct
# histories (commit times, table versions: a killed step's restore is a commit of its own).
TABLES = (
    "chain.blocks", "chain.transactions", "chain.outputs", "chain.inputs", "chain.unspent",
    "entities.address_entity", "entities.entities", "entities.entity_daily",
    "entities.transfers", "entities.class_flows", "entities.merges", "entities.runs",
    "market.prices", "metrics.miner_pressure", "metrics.entity_flows", "metrics.exchange_flows",
    "metrics.holder_migration", "metrics.holder_migration_revised", "metrics.supply_cohorts", "metrics.supply_changes",
    "metrics.supply_state", "metrics.entity_balance_cohorts", "metrics.runs",
)  # fmt: skip
UNCOMPARED = {"versions_before", "finished_at", "entities_finished_at"}
# Lines of Spark's and the JVM's own in a step's output (not a phase of the step).
_SPARK_NOISE = re.compile(
    r"\d\d/\d\d/\d\d |WARNING|Using Spark|Setting default|To adjust|:: |\s+at "
)


@dataclasses.dataclass
class Kill:
    increment: str
    step: str
    victim: str  # "python" or "jvm"
    delay_s: float
    # "killed"; "finished first" when the run ended well before the kill; "failed (exit N)"
    # when it ended with an error before the kill: a run that cannot recover from an
    # earlier kill, a finding (phase then holds its last line)
    outcome: str = ""
    phase: str = ""  # the step's last output line before the kill
    # A regular expression: the delay counts from the step's first output line it matches (a
    # point of the step's work, as the test suite's small form places its kills), not from the
    # start; a run that ends before printing it is not killed.
    after: str = ""


@dataclasses.dataclass
class Campaign:
    kills: list[Kill]
    recoveries: int  # runs that rolled back a killed run's journal (killed again or not)
    takeovers: int  # runs that took over a lease a killed run left
    differences: dict[str, tuple]  # table -> (reference, campaign) checksums, where they differ
    seconds: float
    reference: dict[str, tuple] = dataclasses.field(default_factory=dict)  # table -> checksum

    def report(self) -> str:
        done = [k for k in self.kills if k.outcome == "killed"]
        failed = [k for k in self.kills if k.outcome.startswith("failed")]
        by = Counter((k.step, k.victim) for k in done)
        lines = [
            f"kills tried: {len(self.kills)}; landed: {len(done)}; runs that finished before "
            f"their kill: {len(self.kills) - len(done) - len(failed)}; runs that failed on their "
            f"own before it: {len(failed)}",
            *(f"  failed: {k.step} up to {k.increment}: {k.outcome}: {k.phase}" for k in failed),
            "by step and victim: "
            + ", ".join(f"{s}/{v} {n}" for (s, v), n in sorted(by.items())),
            "by phase (the step's last line before the kill):",
            *(f"  {n:3d}  {p}" for p, n in Counter(f"{k.step}: {k.phase}" for k in done).most_common()),
            f"recoveries (journal rolled back by the re-run): {self.recoveries}; "
            f"leases of killed runs taken over: {self.takeovers}",
            f"tables compared: {len(TABLES)}; differences: {len(self.differences)}",
            *(f"  {t}: reference {a}, campaign {b}" for t, (a, b) in self.differences.items()),
            f"wall time {self.seconds:.0f} s",
        ]  # fmt: skip
        return "\n".join(lines)


def _site_args(sim: Path, manifest: dict) -> list[str]:
    files = manifest["files"]
    sets = {
        "check_pow": "false",
        "ingest.start_hash": manifest["start_hash"],
        "ingest.start_height": str(manifest["start_height"]),
        "entities.pools": f"{CONF_DIR / 'pools.json'},{sim / files['pools']}",
        "entities.label_seeds": f"{CONF_DIR / 'labels' / 'exchanges.csv'},"
        f"{sim / files['exchange_labels']}",
    }
    return [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]


def _command(step: str, until: str, warehouse: Path, sim: Path, site: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "hodlflow.cli", step, "--env", "test", "--warehouse",
           str(warehouse), *site]  # fmt: skip
    if step == "ingest" and until == REORG:
        cmd += ["--blocks-dir", str(sim / "blocks-reorg"), "--until", REORG_UNTIL]
    elif step == "ingest":
        cmd += ["--blocks-dir", str(sim / "blocks"), "--until", until]
    if step == "metrics":
        cmd += ["--prices", str(sim / "prices.csv")]
    if step == "maintain":
        sets = MAINTAIN_SETS + (VACUUM_NOW_SETS if until == REORG else ())
        cmd += [x for kv in sets for x in ("--set", kv)]
    return cmd


def write_reorg(sim: Path, manifest: dict, replaced: int = 2) -> Path:
    """``sim/blocks-reorg``: the simulated blocks directory plus one blk file holding a branch
    that forks ``replaced`` blocks below the tip and is one block longer (coinbases only, a
    minute apart), as a node stores the blocks of a reorg after those it had. The transactions
    of the replaced blocks leave the chain. Returns the directory."""
    from hodlflow.chain.blkfile import list_blk_files, read_xor_key
    from hodlflow.chain.network import MAIN
    from hodlflow.ingest.best_chain import HeaderLoc
    from hodlflow.ingest.blocks_dir import _scan_files  # the ingest's own header scan
    from hodlflow.sim.blocksdir import write_blocks_dir
    from hodlflow.sim.builder import ChainBuilder

    if manifest["network"] != "main":
        raise ValueError(f"write_reorg: a simulation on {manifest['network']}, not main")
    src, out = sim / "blocks", sim / "blocks-reorg"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(src, out)
    key, files = read_xor_key(str(src)), list_blk_files(str(src))
    headers = {h[0]: HeaderLoc(*h) for h in _scan_files(enumerate(files), MAIN, key, False)}
    fork = manifest["tip_hash"]
    for _ in range(replaced):
        fork = headers[fork].prev_hash
    builder = ChainBuilder(MAIN, start_height=manifest["tip_height"] - replaced + 1,
                           start_time=headers[fork].time + 60, bits=headers[fork].bits,
                           interval=60, mine=False, prev_hash=fork)  # fmt: skip
    branch = [builder.add_block(coinbase_tag=b"/fork/").raw for _ in range(replaced + 1)]
    last = int(Path(files[-1]).name[3:8])
    write_blocks_dir(sim / "fork-tmp", branch, MAIN, xor_key=key)
    shutil.move(sim / "fork-tmp" / "blk00000.dat", out / f"blk{last + 1:05d}.dat")
    shutil.rmtree(sim / "fork-tmp")
    return out


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    return [int(e) for e in os.listdir("/proc")
            if e.isdigit() and (st := _stat(e)) and int(st[1]) == pid]  # fmt: skip


def _group(pgid: int) -> list[int]:
    """Live processes of the process group ``pgid`` (zombies aside)."""
    return [int(e) for e in os.listdir("/proc")
            if e.isdigit() and (st := _stat(e)) and int(st[2]) == pgid and st[0] != "Z"]  # fmt: skip


def _jvm_of(pid: int) -> int | None:
    """The Spark driver JVM PySpark started under ``pid`` (spark-submit execs java)."""
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"java" in cmdline.split(b"\0")[0]:
            return child
        deeper = _jvm_of(child)
        if deeper:
            return deeper
    return None


def _run(cmd: list[str], log_file: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_file, "w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    return code, log_file.read_text()


def _run_and_kill(cmd: list[str], log_file: Path, kill: Kill) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_file, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
        if kill.after:
            mark = re.compile(kill.after, re.MULTILINE)
            while proc.poll() is None and not mark.search(log_file.read_text()):
                time.sleep(0.05)
        deadline = time.monotonic() + kill.delay_s
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        victim = proc.pid if kill.victim == "python" else _jvm_of(proc.pid)
        while victim is None and proc.poll() is None:  # the JVM is not started yet: wait for it
            time.sleep(0.05)
            victim = _jvm_of(proc.pid)
        if proc.poll() is not None:
            if proc.returncode:
                lines = [x for x in log_file.read_text().splitlines() if x.strip()]
                kill.phase = (lines or [""])[-1].strip()[:160]
                kill.outcome = f"failed (exit {proc.returncode})"
            else:
                kill.outcome = "finished first"
        else:
            lines = [x for x in log_file.read_text().splitlines() if x.strip()]
            ours = [x for x in lines if not _SPARK_NOISE.match(x)]
            kill.phase = (ours or ["(starting)"])[-1].strip()[:80]
            os.kill(victim, signal.SIGKILL)
            kill.outcome = "killed"
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            kill.outcome += " (hung, killed)"
        # What the killed run left running (the JVM of a killed Python, its Python workers)
        # dies with it before the step runs again, as when a machine's job is killed whole.
        while _group(proc.pid):
            for pid in _group(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        proc.wait()


def checksums(warehouse: Path, spark, keys: tuple[str, ...] = TABLES) -> dict[str, tuple]:
    """Table key → (rows, Σ xxhash64 of each row's compared columns) of ``warehouse``."""
    from pyspark.sql import functions as F

    out = {}
    for key in keys:
        db, table = key.split(".")
        df = spark.read.format("delta").load(str(warehouse / db / table))
        cols = sorted(c for c in df.columns if c not in UNCOMPARED)
        row = (
            df.select(F.xxhash64(*cols).cast("decimal(38,0)").alias("h"))
            .agg(F.count("*").alias("n"), F.sum("h").alias("s"))
            .first()
        )
        out[key] = (row.n, str(row.s))
    return out


def _reference(root: Path, sim: Path, site: list[str], plan, reuse: bool, log) -> dict:
    """Build the reference warehouse (each step run timed), or reuse the one an earlier campaign
    left in ``root`` with its ``durations.json`` when ``reuse`` (same chain, same code: the
    simulation is a function of the scenario and seed, so only the code can make it stale)."""
    saved = root / "reference" / "durations.json"
    if reuse and saved.exists():
        durations = {tuple(k.split("/")): v for k, v in json.loads(saved.read_text()).items()}
        if set(durations) == set(plan):
            log(f"reference: reused {root / 'reference'}")
            return durations
    shutil.rmtree(root / "reference", ignore_errors=True)
    log(f"reference: {len(plan)} step runs without faults")
    durations = {}
    for until, step in plan:
        t = time.time()
        code, text = _run(_command(step, until, root / "reference", sim, site),
                          root / "logs" / f"ref-{until}-{step}.log")  # fmt: skip
        if code:
            raise RuntimeError(f"reference {step} up to {until} failed:\n{text[-3000:]}")
        durations[until, step] = time.time() - t
    saved.write_text(json.dumps({f"{u}/{s}": d for (u, s), d in durations.items()}, indent=1))
    return durations


def _prepare(out: str, increments: tuple[str, ...], reuse_reference: bool, log):
    """A campaign's folder ``out``: the tiny chain simulated (and its reorg's blocks directory
    when ``increments`` hold REORG), the plan of step runs, the reference warehouse with each
    run's duration (:func:`_reference`). Returns (root, sim, site arguments, plan, durations)."""
    from hodlflow.sim.simulator import run_simulation

    root = Path(out).resolve()
    for part in ("campaign", "logs", "sim", "session"):
        shutil.rmtree(root / part, ignore_errors=True)
    if not reuse_reference:
        shutil.rmtree(root, ignore_errors=True)
    (root / "logs").mkdir(parents=True)
    sim = root / "sim"
    manifest = run_simulation(str(CONF_DIR / "scenarios" / "tiny.yaml"), str(sim))
    site = _site_args(sim, manifest)
    if REORG in increments:
        write_reorg(sim, manifest)
    plan = [(until, step) for until in increments for step in STEPS]
    return root, sim, site, plan, _reference(root, sim, site, plan, reuse_reference, log)


def _compare(root: Path):
    """A Spark session and the checksums of the reference's and the campaign's tables."""
    from hodlflow.config import load_settings
    from hodlflow.spark import build_session

    session = build_session(load_settings("test", {"warehouse.path": str(root / "session")}))
    session.sparkContext.setLogLevel("ERROR")
    return session, checksums(root / "reference", session), checksums(root / "campaign", session)


def schedule_kills(
    plan: list[tuple[str, str]], kills: int, durations: dict, rng: random.Random
) -> dict[tuple[str, str], list[Kill]]:
    """``kills`` kills dealt to the step runs of ``plan`` in turn ((increment, step) pairs:
    the first run, the second, ..., and round again), each with its victim (the step's Python
    or its JVM) and a delay drawn over the run's reference duration (``durations``)."""
    planned: dict[tuple[str, str], list[Kill]] = {}
    for i in range(kills):
        until, step = plan[i % len(plan)]
        planned.setdefault((until, step), []).append(_draw(until, step, durations, rng))
    return planned


def _draw(until: str, step: str, durations: dict, rng: random.Random) -> Kill:
    return Kill(until, step, rng.choice(("python", "jvm")), rng.uniform(0, durations[until, step]))


def run_kills(
    plan: list[tuple[str, str]],
    planned: dict[tuple[str, str], list[Kill]],
    durations: dict,
    rng: random.Random,
    attempt: Callable[[Kill, int], None],
    finish: Callable[[int, str, str], None],
) -> list[Kill]:
    """Run the step runs of ``plan`` in order, each first under its ``planned`` kills
    (``attempt(kill, j)`` starts the run and kills it, setting ``kill.outcome``), then to its
    end (``finish(n, increment, step)``). A run that finishes before its kill has done the
    step: the kills still planned for it go on to the next run, drawn anew over that run's
    duration, so they are not spent on runs with nothing left to do; after the last run they
    are dropped. Returns the kills tried, in order."""
    tried: list[Kill] = []
    carried = 0
    for n, (until, step) in enumerate(plan):
        todo = planned.get((until, step), []) + [
            _draw(until, step, durations, rng) for _ in range(carried)
        ]
        carried = 0
        for j, kill in enumerate(todo):
            attempt(kill, j)
            tried.append(kill)
            if kill.outcome == "finished first":
                carried = len(todo) - j - 1
                break
        finish(n, until, step)
    return tried


def run_campaign(
    out: str,
    seed: int = 1,
    kills: int = 50,
    increments: tuple[str, ...] = INCREMENTS,
    log: Callable[[str], None] = print,
    reuse_reference: bool = False,
) -> Campaign:
    """The campaign of the module doc in ``out`` (simulation, logs, both warehouses): the
    increments end before the days of ``increments``; the kills go to the step runs in turn
    (ingest, entities, metrics of the first increment, then of the next, and round again). A
    run that finishes before its kill has done the step: the kills still planned for that step
    run go on to the next one (with delays drawn over its duration), so they are not spent on
    runs with nothing left to do. ``reuse_reference``: keep the reference warehouse of an
    earlier campaign in ``out``."""
    t0 = time.time()
    root, sim, site, plan, durations = _prepare(out, increments, reuse_reference, log)

    rng = random.Random(seed)

    def attempt(kill: Kill, j: int) -> None:
        cmd = _command(kill.step, kill.increment, root / "campaign", sim, site)
        _run_and_kill(cmd, root / "logs" / f"kill-{kill.increment}-{kill.step}-{j}.log", kill)
        log(f"  {kill.step} up to {kill.increment}: {kill.victim} at {kill.delay_s:.1f}s: "
            f"{kill.outcome}" + (f" ({kill.phase})" if kill.phase else ""))  # fmt: skip

    def finish(n: int, until: str, step: str) -> None:
        cmd = _command(step, until, root / "campaign", sim, site)
        code, text = _run(cmd, root / "logs" / f"run-{until}-{step}.log")
        if code:
            raise RuntimeError(f"{step} up to {until} failed after its kills:\n{text[-3000:]}")
        log(f"step run {n + 1}/{len(plan)} done: {step} up to {until}")

    tried = run_kills(plan, schedule_kills(plan, kills, durations, rng), durations, rng,
                      attempt, finish)  # fmt: skip
    # Every run after a kill says what it found: the killed run's journal, its lease.
    said = [f.read_text() for f in (root / "logs").glob("*.log") if not f.name.startswith("ref-")]
    recoveries = sum("rolled back unfinished step" in text for text in said)
    takeovers = sum("took over the lease" in text for text in said)
    _, ref, got = _compare(root)
    differences = {k: (ref[k], got[k]) for k in TABLES if ref[k] != got[k]}
    return Campaign(tried, recoveries, takeovers, differences, time.time() - t0, ref)


# ------------------------------------------------------------------ two steps started at once

# The tiny chain brought up to date a day at a time, then the reorg: more step runs to pair.
TOGETHER_INCREMENTS = ("2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06",
                       "2025-03-07", REORG)  # fmt: skip
# A refused step's message names the step holding the warehouse, its host, pid and since when.
_REFUSED = re.compile(r"is in use by `(\w+)` \(host [^,]+, pid \d+, since [^,]+ UTC")


@dataclasses.dataclass
class Pair:
    runs: tuple[int, int]  # indices into the plan of the step runs started, in start order
    steps: tuple[str, str]  # "<step> up to <increment>" of each
    delay_s: float  # the second started this long after the first
    outcomes: tuple[str, str] = ("", "")  # "ran", "refused by <step>", "failed (exit N): ..."
    redone: int = 0  # step runs run again after the pair to bring the warehouse up to date
    early: tuple[str, ...] = ()  # steps of runs that ran whole before the runs they follow


@dataclasses.dataclass
class Together:
    pairs: list[Pair]
    differences: dict[str, tuple]
    seconds: float
    early: dict[str, int] = dataclasses.field(default_factory=dict)  # step -> runs ahead of turn

    def report(self) -> str:
        out = Counter(o.split(" (")[0].split(":")[0] for p in self.pairs for o in p.outcomes)
        both = sum(all(o == "ran" for o in p.outcomes) for p in self.pairs)
        refused = sum(any(o.startswith("refused") for o in p.outcomes) for p in self.pairs)
        failed = [p for p in self.pairs if any(o.startswith("failed") for o in p.outcomes)]
        kinds = Counter(
            "same step run" if p.runs[0] == p.runs[1] else " beside ".join(
                s.split(" up to")[0] for s in p.steps)
            for p in self.pairs
        )  # fmt: skip
        lines = [
            f"pairs started together: {len(self.pairs)} ("
            + ", ".join(f"{k} {n}" for k, n in kinds.most_common())
            + ")",
            f"pairs where one was refused with the holder named: {refused}; both ran, one after "
            f"the other: {both}; pairs with a run that failed otherwise: {len(failed)}",
            "outcomes of the runs: " + ", ".join(f"{k} {n}" for k, n in sorted(out.items())),
            *(f"  {p.steps}: {p.outcomes}" for p in failed),
            f"step runs run again to bring the warehouse up to date: "
            f"{sum(p.redone for p in self.pairs)}; runs that ran whole ahead of their turn "
            "(a step on inputs a refused step had not brought up to date yet): "
            + (", ".join(f"{k} {n}" for k, n in sorted(self.early.items())) or "none"),
            f"tables compared with the serial run: {len(TABLES)}; differences: "
            f"{len(self.differences)}",
            *(f"  {t}: serial {a}, together {b}" for t, (a, b) in self.differences.items()),
            f"wall time {self.seconds:.0f} s",
        ]
        return "\n".join(lines)


def draw_pair(k: int, n_runs: int, durations: list[float], rng: random.Random) -> Pair:
    """The pair started at plan position ``k`` (the first step run not yet done): that run
    beside itself (a manual run beside the scheduled one), beside the next one (an entities run
    started as the ingest starts) or beside the previous, finished one (a re-run of yesterday's
    step); in random order, the second started after a delay drawn over the first's duration
    (``durations``: each plan run's, without faults)."""
    kind = rng.choice(("same", "next", "previous"))
    other = {"same": k, "next": min(k + 1, n_runs - 1), "previous": max(k - 1, 0)}[kind]
    runs = (k, other) if rng.random() < 0.5 else (other, k)
    return Pair(runs, ("", ""), round(rng.uniform(0, durations[runs[0]]), 1))


def outcome(code: int, output: str, other: str) -> str:
    """How a run of a pair ended: ``ran`` (exit 0), ``refused by <other>`` (exit 1 with the
    lease's refusal naming the other run's step, its host, pid and since when), or ``failed
    (exit N): <its last line>`` — anything else, a finding."""
    held = _REFUSED.search(output)
    if code == 0:
        return "ran"
    if code == 1 and held and held.group(1) == other:
        return f"refused by {other}"
    last = [x for x in output.splitlines() if x.strip() and not _SPARK_NOISE.match(x)]
    return f"failed (exit {code}): {(last or [''])[-1][:160]}"


# The tables that record each run of a step: a run ahead of its turn is a run and records
# itself, so these are compared as sets of runs (without commit times and table versions).
RUNS = {"entities.runs": "entities", "metrics.runs": "metrics"}


def run_records(warehouse: Path, spark, key: str) -> list[tuple]:
    """The rows of a runs table (small: a row per run) without the columns not compared."""
    db, table = key.split(".")
    df = spark.read.format("delta").load(str(warehouse / db / table))
    cols = sorted(c for c in df.columns if c not in UNCOMPARED)
    return sorted(tuple(str(v) for v in r) for r in df.select(*cols).collect())


def runs_add_up(serial: list[tuple], together: list[tuple], early: int) -> bool:
    """Whether a runs table of the campaign holds every run of the serial history and, beside
    them, at most ``early`` others: the runs of that step that ran ahead of their turn (a
    metrics run after an ingest whose entities run was refused computes the new days without
    their entities, records itself, and the run in turn computes them again).

    >>> runs_add_up([("a",), ("b",)], [("a",), ("x",), ("b",)], early=1)
    True
    >>> runs_add_up([("a",), ("b",)], [("a",), ("x",), ("b",)], early=0)
    False
    >>> runs_add_up([("a",), ("b",)], [("a",), ("x",)], early=1)   # a run lost
    False
    """
    rest = list(together)
    for row in serial:
        if row not in rest:
            return False
        rest.remove(row)
    return len(rest) <= early


def _ran_in_order(k: int, finished: list[int]) -> int:
    """The first plan run not done after runs that each ran whole, in the order they finished
    (``finished``, plan indices), when plan runs up to ``k`` were done before: a run at the
    next index is done; a repeat of a done one changes nothing; one further on ran on stale
    inputs and counts for nothing (it is run again in its turn).

    >>> _ran_in_order(3, [4, 3])   # the later step finished first: only 3 counts
    4
    >>> _ran_in_order(3, [3, 4])
    5
    >>> _ran_in_order(3, [2])      # yesterday's step again
    3
    """
    for i in finished:
        if i == k:
            k += 1
    return k


def run_together(
    out: str,
    seed: int = 1,
    pairs: int = 20,
    increments: tuple[str, ...] = TOGETHER_INCREMENTS,
    log: Callable[[str], None] = print,
    reuse_reference: bool = False,
) -> Together:
    """Two steps started together on one warehouse, ``pairs`` times (:func:`draw_pair`), as
    a scheduler and a user do; whatever was refused or ran out of order is run again, one step
    at a time, before the next pair, as a retry does. A refused run must exit 1 naming the
    step that holds the warehouse (host, pid, since when); any other failure is a finding.
    After the pairs, the rest of the plan runs serially and every table must equal the serial
    reference's."""
    t0 = time.time()
    root, sim, site, plan, durations = _prepare(out, increments, reuse_reference, log)
    plan_s = [durations[run] for run in plan]
    rng = random.Random(seed)
    name = [f"{step} up to {until}" for until, step in plan]

    def serial(i: int, tag: str) -> None:
        until, step = plan[i]
        cmd = _command(step, until, root / "campaign", sim, site)
        code, text = _run(cmd, root / "logs" / f"{tag}-{i}.log")
        if code:
            raise RuntimeError(f"{name[i]} failed run alone:\n{text[-3000:]}")

    done_upto, tried = 0, []
    while len(tried) < pairs and done_upto < len(plan):
        pair = draw_pair(done_upto, len(plan), plan_s, rng)
        pair.steps = (name[pair.runs[0]], name[pair.runs[1]])
        j = len(tried)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        procs, logs = [], []
        for n, i in enumerate(pair.runs):
            if n:
                time.sleep(pair.delay_s)
            until, step = plan[i]
            logs.append(root / "logs" / f"pair-{j}-{n}.log")
            with open(logs[-1], "w") as fh:
                procs.append(subprocess.Popen(
                    _command(step, until, root / "campaign", sim, site),
                    stdout=fh, stderr=subprocess.STDOUT, env=env))  # fmt: skip
        ends: dict[int, float] = {}
        while len(ends) < 2:
            for n, p in enumerate(procs):
                if n not in ends and p.poll() is not None:
                    ends[n] = time.monotonic()
            time.sleep(0.05)
        pair.outcomes = tuple(
            outcome(p.returncode, logs[n].read_text(), plan[pair.runs[1 - n]][1])
            for n, p in enumerate(procs)
        )
        ran = [n for n in sorted(ends, key=ends.get) if pair.outcomes[n] == "ran"]
        finished = [pair.runs[n] for n in ran]
        reached = _ran_in_order(done_upto, finished)
        pair.early = tuple(plan[i][1] for i in finished if i >= reached)
        target = max(reached, max(pair.runs) + 1)
        for i in range(reached, target):
            serial(i, f"retry-{j}")
            pair.redone += 1
        done_upto = target
        tried.append(pair)
        log(f"pair {j + 1}: {pair.steps[0]} | {pair.steps[1]} +{pair.delay_s:.1f}s: "
            f"{pair.outcomes[0]} | {pair.outcomes[1]}; {pair.redone} run again")  # fmt: skip
    for i in range(done_upto, len(plan)):
        serial(i, "rest")
    session, ref, got = _compare(root)
    early = Counter(step for p in tried for step in p.early)
    differences = {k: (ref[k], got[k]) for k in TABLES if ref[k] != got[k] and k not in RUNS}
    for key, step in RUNS.items():
        want, have = (
            run_records(root / "reference", session, key),
            run_records(root / "campaign", session, key),
        )
        if not runs_add_up(want, have, early[step]):
            differences[key] = (ref[key], got[key])
    return Together(tried, differences, time.time() - t0, dict(early))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m hodlflow.faults", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", default="faults-out")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--reuse-reference", action="store_true",
                   help="keep the reference warehouse an earlier campaign left in --out")  # fmt: skip
    p.add_argument("--together", type=int, default=0, metavar="PAIRS",
                   help="instead of kills: start two steps together PAIRS times (seeded delays) "
                   "and compare with a serial run")  # fmt: skip
    args = p.parse_args(argv)
    if args.together:
        together = run_together(args.out, args.seed, args.together,
                                reuse_reference=args.reuse_reference)  # fmt: skip
        report = together.report()
        print(report)
        Path(args.out, "report.txt").write_text(report + "\n")
        Path(args.out, "pairs.json").write_text(
            json.dumps([dataclasses.asdict(x) for x in together.pairs], indent=1)
        )
        odd = any(o.startswith("failed") for x in together.pairs for o in x.outcomes)
        return 1 if together.differences or odd else 0
    result = run_campaign(args.out, args.seed, args.kills, reuse_reference=args.reuse_reference)
    report = result.report()
    print(report)
    Path(args.out, "report.txt").write_text(report + "\n")
    Path(args.out, "kills.json").write_text(
        json.dumps([dataclasses.asdict(k) for k in result.kills], indent=1)
    )
    failed = any(k.outcome.startswith("failed") for k in result.kills)
    return 1 if result.differences or failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The entities step: chain tables → entities.* for the heights not yet processed, atomically.

One run covers the heights after the last run's, up to the chain tables' tip:

1. new addresses get dense ids (:func:`~hodlflow.entities.cospend.with_address_ids`);
2. the run's co-spend edges (coinjoins and coinbases excluded) and the optional change-heuristic
   edges update the clusters (:func:`~hodlflow.entities.components.touched_components`): a graph
   the size of the run, not of history. Merged entity ids are recorded in ``entities.merges``;
3. every transaction is split per entity (what each entity spent, received, paid in fees, how
   the coin age moves) and summed per day; running totals per entity give the daily balance,
   coin age, type and holder class, each from data up to that day;
4. ``entities.entities`` keeps each entity's running totals; only touched entities are rewritten;
5. ``entities.transfers`` keeps what entities paid each other per day (ids rewritten when they
   merge); ``entities.class_flows`` classes it by the entities' current types, so the run
   re-classes the earlier days (``entities.retype_days`` at most) of the entities it retyped or
   merged and records the first day it rewrote (``entities.runs.flows_from_day``).

A run is one :func:`hodlflow.tables.atomic_step`. The ``entities.runs`` table records each run's
range, the block hash it ended on, and the table versions before it: a reorg under a stored
run, blocks added to a day already processed, or ``from_height`` restores the tables to before
the first affected run and processes from there, so re-running a range gives the same tables.
Entity ids inside a run are those at the run's end (a backfill over many days clusters with
all of them); balances, ages, types and holder classes in entities.entity_daily are per day.

What a run computes is :func:`hodlflow.entities.transforms.compute_run` (nothing written there);
:func:`write_run` writes it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.config import Settings
from hodlflow.entities.labels import load_label_seeds, load_pools
from hodlflow.entities.transforms import (
    EntitiesRun,
    class_flows,
    compute_run,
    first_retyped_day,
)
from hodlflow.step import runs_off_the_chain, step

ENTITY_TABLES = [
    "entities.address_entity",
    "entities.entities",
    "entities.entity_daily",
    "entities.merges",
    "entities.transfers",
    "entities.class_flows",
    "entities.runs",
]


class EntitiesError(RuntimeError):
    """The entities step cannot run; the message says why. The tables are unchanged."""


@dataclass(frozen=True, kw_only=True)
class EntitiesResult:
    start_height: int | None
    end_height: int | None
    new_addresses: int
    edges: int
    merges: int
    entities: int
    rewound_from: int | None
    seconds: float

    @classmethod
    def nothing(cls, seconds: float) -> EntitiesResult:
        """A run that found nothing to process."""
        return cls(start_height=None, end_height=None, new_addresses=0, edges=0, merges=0,
                   entities=0, rewound_from=None, seconds=seconds)  # fmt: skip

    def summary(self) -> str:
        if self.start_height is None:
            return "entities already up to date with the chain tables"
        redo = (
            f" (re-processed from height {self.rewound_from})"
            if self.rewound_from is not None
            else ""
        )
        return (
            f"entities for heights {self.start_height}..{self.end_height}{redo}: "
            f"{self.new_addresses} new addresses, {self.edges} clustering edges, "
            f"{self.merges} entity merges; {self.entities} entities in all; "
            f"{self.seconds:.1f}s"
        )


@dataclass(frozen=True)
class _Run:
    start_height: int
    end_height: int
    end_hash: str
    last_day: dt.date
    versions_before: dict[str, int]


@step(
    "entities",
    needs=("chain.blocks", "chain.outputs", "chain.inputs"),
    makes=tuple(ENTITY_TABLES),
    missing=EntitiesError,
)
def run_entities(
    spark: SparkSession,
    settings: Settings,
    from_height: int | None = None,
    end_height: int | None = None,
    log: Callable[[str], None] = print,
) -> EntitiesResult:
    """Bring the entities tables up to the chain tables' tip (or ``end_height``).

    ``from_height``: re-process from the run holding that height (restoring the tables to
    before it). Example::

        run_entities(spark, load_settings("local"))
    """
    t0 = time.time()
    pools, seeds = _labels(settings)
    blocks = tables.read_table(spark, settings, "chain.blocks").select("height", "hash", "day")
    bounds = blocks.agg(F.min("height").alias("lo"), F.max("height").alias("hi")).first()
    if bounds.hi is None:
        return EntitiesResult.nothing(time.time() - t0)
    runs = _runs(spark, settings)
    first_bad = _first_stale_run(spark, blocks, runs, from_height)
    start = runs[first_bad].start_height if first_bad is not None else (
        runs[-1].end_height + 1 if runs else bounds.lo
    )  # fmt: skip
    if from_height is not None and not runs:
        start = max(bounds.lo, from_height)
    end = bounds.hi if end_height is None else min(end_height, bounds.hi)
    if start > end:
        return EntitiesResult.nothing(time.time() - t0)
    with tables.atomic_step(spark, settings, f"entities {start}..{end}", ENTITY_TABLES):
        if first_bad is not None:
            log(f"restoring the entities tables to before height {start}")
            tables.restore_versions(spark, runs[first_bad].versions_before)
        versions = {
            tables.table_location(settings, k): tables.table_version(
                spark, tables.table_location(settings, k)
            )
            for k in ENTITY_TABLES
        }
        first_day = blocks.filter(F.col("height") == start).first().day
        run = compute_run(spark, settings, start=start, end=end, first_day=first_day,
                          pools=pools, seeds=seeds, log=log)  # fmt: skip
        counts = write_run(spark, settings, run, start=start, end=end, first_day=first_day,
                           log=log)  # fmt: skip
        end_row = blocks.filter(F.col("height") == end).first()
        run_row = spark.createDataFrame(
            [(start, end, end_row.hash, first_day, counts["flows_from"], end_row.day,
              json.dumps(versions), counts["new_addresses"], counts["edges"], counts["merges"],
              dt.datetime.now(dt.UTC).replace(tzinfo=None))],
            "start_height int, end_height int, end_hash string, first_day date, "
            "flows_from_day date, last_day date, versions_before string, new_addresses bigint, "
            "edges bigint, merges bigint, finished_at timestamp",
        )  # fmt: skip
        tables.append(run_row, settings, "entities.runs")
    n_entities = tables.read_table(spark, settings, "entities.entities").count()
    return EntitiesResult(
        start_height=start, end_height=end, new_addresses=counts["new_addresses"],
        edges=counts["edges"], merges=counts["merges"], entities=n_entities,
        rewound_from=start if first_bad is not None else None, seconds=time.time() - t0,
    )  # fmt: skip


def _labels(settings: Settings):
    pools = []
    for path in settings.entities.pools:
        pools.extend(load_pools(path))
    seeds: dict[str, str] = {}
    for path in settings.entities.label_seeds:
        for address, label in load_label_seeds(path):
            if seeds.get(address, label) != label:
                raise EntitiesError(
                    f"label seed {address} is {seeds[address]!r} in one file and {label!r} in "
                    f"{path}"
                )
            seeds[address] = label
    return pools, seeds


def _runs(spark: SparkSession, settings: Settings) -> list[_Run]:
    rows = tables.read_table(spark, settings, "entities.runs").orderBy("start_height").collect()
    return [
        _Run(r.start_height, r.end_height, r.end_hash, r.last_day, json.loads(r.versions_before))
        for r in rows
    ]


def _first_stale_run(spark, blocks: DataFrame, runs: list[_Run], from_height) -> int | None:
    """Index of the first run to redo: the chain changed under it (reorg, more blocks of its
    last day), or it holds ``from_height``; None when every run stands."""
    if not runs:
        return None
    ends = spark.createDataFrame(
        [(i, r.end_height, r.end_hash, r.last_day) for i, r in enumerate(runs)],
        "i int, end_height int, end_hash string, last_day date",
    )
    # A run is stale when the block at its end height changed, or the chain now has a block
    # after its end height on a day it already closed (a day is processed whole).
    bad = [r.i for r in runs_off_the_chain(ends, blocks).select("i").collect()]
    last = runs[-1]
    later_same_day = blocks.filter(
        (F.col("height") > last.end_height) & (F.col("day") <= F.lit(last.last_day))
    ).limit(1)
    if later_same_day.count():
        bad.append(len(runs) - 1)
    if from_height is not None:
        bad.extend(i for i, r in enumerate(runs) if r.end_height >= from_height)
    return min(bad) if bad else None


def write_run(
    spark: SparkSession,
    settings: Settings,
    run: EntitiesRun,
    *,
    start: int,
    end: int,
    first_day: dt.date,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Write ``run`` (:func:`hodlflow.entities.transforms.compute_run` of heights
    ``start..end``) into the entities tables (inside the step's atomic commit), and re-class the
    flows of the entities it retyped or merged from the first day that needs it. Returns the
    counts of entities.runs: new addresses, edges, merges, and flows_from (that day)."""
    ent = settings.entities
    t0 = time.perf_counter()
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    n_merges, merged, new_rows = run.merges, run.merged, run.new_rows
    location = tables.table_location
    from delta.tables import DeltaTable

    if n_merges:
        (
            DeltaTable.forPath(spark, location(settings, "entities.address_entity"))
            .alias("t")
            .merge(merged.alias("s"), "t.entity_id = s.old_entity_id")
            .whenMatchedUpdate(set={"entity_id": "s.new_entity_id"})
            .execute()
        )
    tables.append(new_rows, settings, "entities.address_entity")
    tables.append(
        run.running.select(
            "day",
            "entity_id",
            "entity_type",
            *(F.col(f"day_{c}").alias(c) for c in ("received_sats", "sent_sats", "fees_sats")),
            "balance_sats",
            "coin_age_days",
            "lth_weight",
            "holder_class",
            "receive_count",
            "send_count",
        ),
        settings,
        "entities.entity_daily",
    )
    cols = tables.load_schema("entities.entities").names
    upserts = tables.conform(run.final, "entities.entities").withColumn("_op", F.lit("U"))
    deletes = merged.select(F.col("old_entity_id").alias("entity_id")).withColumn("_op", F.lit("D"))
    changes = upserts.unionByName(deletes, allowMissingColumns=True)
    (
        DeltaTable.forPath(spark, location(settings, "entities.entities"))
        .alias("t")
        .merge(changes.alias("s"), "t.entity_id = s.entity_id")
        .whenMatchedDelete(condition="s._op = 'D'")
        .whenMatchedUpdate(condition="s._op = 'U'", set={c: f"s.{c}" for c in cols})
        .whenNotMatchedInsert(condition="s._op = 'U'", values={c: f"s.{c}" for c in cols})
        .execute()
    )
    if n_merges:
        for side in ("sender", "receiver"):
            (
                DeltaTable.forPath(spark, location(settings, "entities.transfers"))
                .alias("t")
                .merge(merged.alias("s"), f"t.{side} = s.old_entity_id")
                .whenMatchedUpdate(set={side: "s.new_entity_id"})
                .execute()
            )
    flows_from = first_retyped_day(read("entities.transfers"), run.retyped, first_day, ent)
    if flows_from < first_day:
        log(f"  re-classing the flows from {flows_from} (entities retyped or merged)")
    tables.append(run.transfers, settings, "entities.transfers")
    tables.replace_where(
        class_flows(
            read("entities.transfers").filter(F.col("day") >= F.lit(flows_from)),
            read("entities.entities").select("entity_id", "entity_type"),
        ),
        settings,
        "entities.class_flows",
        f"day >= '{flows_from}'",
    )
    log(f"  tables written: {time.perf_counter() - t0:.1f}s")
    tables.append(run.merges_rows, settings, "entities.merges")
    n_new = new_rows.count()
    log(f"entities {start}..{end}: {n_new} new addresses, {run.edges} edges, {n_merges} merges")
    return {
        "new_addresses": n_new, "edges": run.edges, "merges": n_merges, "flows_from": flows_from,
    }  # fmt: skip

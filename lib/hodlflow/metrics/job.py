"""The metrics step: chain tables (+ ``market.prices``, ``entities.*``) → ``metrics.*``, for
the days not yet computed, atomically.

A run recomputes from the last stored day (which may have been partial) to the chain tables'
last day, and from earlier when an upstream table changed (``metrics.runs``): a stored run's end
block left the best chain (reorg), or an entities run finished since the last metrics run
(rewound entities, merges). ``from_day`` recomputes from an earlier day (new prices). The
rolling windows (365 days at most) read the daily aggregate of ``chain.blocks`` back to 364 days
before the first recomputed day; the supply cohorts step ``metrics.supply_state`` through the
new days' outputs and inputs: a day's cost follows the day, not history.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.chain.network import get_network
from hodlflow.config import Settings
from hodlflow.metrics import concentration as cc
from hodlflow.metrics import flows as fl
from hodlflow.metrics import revised as rv
from hodlflow.metrics import supply as sp
from hodlflow.metrics.miner import daily_blocks, miner_flows, miner_pressure
from hodlflow.step import runs_off_the_chain, step

METRIC_TABLES = [
    "metrics.miner_pressure",
    "metrics.entity_flows",
    "metrics.exchange_flows",
    "metrics.holder_migration",
    "metrics.holder_migration_revised",
    "metrics.supply_cohorts",
    "metrics.supply_state",
    "metrics.supply_changes",
    "metrics.entity_balance_cohorts",
    "metrics.runs",
]
LOOKBACK_DAYS = 364


class MetricsError(RuntimeError):
    """The metrics step cannot run; the message says why. The tables are unchanged."""


@dataclass(frozen=True, kw_only=True)
class MetricsResult:
    first_day: dt.date | None
    last_day: dt.date | None
    days: int
    priced_days: int
    seconds: float
    # True when nothing changed since the last run (no new block, entities run or price).
    up_to_date: bool = False

    def summary(self) -> str:
        if self.up_to_date:
            return f"metrics are up to date (through {self.last_day}): nothing to compute"
        if self.first_day is None:
            return "no blocks in the chain tables: nothing to compute"
        missing = self.days - self.priced_days
        note = f"; {missing} day(s) without a price (USD columns null)" if missing else ""
        return (
            f"metrics for {self.first_day}..{self.last_day}: {self.days} day(s){note}; "
            f"{self.seconds:.1f}s"
        )


def _entities_state(spark, settings):
    """(entities.class_flows, last day the entities step covered, newest finished_at) or
    (None, None, None) before the first entities run."""
    if not tables.exists(spark, settings, "entities.runs"):
        return None, None, None
    row = (
        tables.read_table(spark, settings, "entities.runs")
        .agg(F.max("last_day").alias("last"), F.max("finished_at").alias("at"))
        .first()
    )
    if row.last is None:
        return None, None, None
    return tables.read_table(spark, settings, "entities.class_flows"), row.last, row.at


def _not_redone(off: DataFrame, runs: DataFrame) -> DataFrame:
    """The runs of ``off`` that no later run of ``runs`` recomputed over: a run that finished
    after one and started on or before its first day rewrote every day it wrote (each run replaces
    the days from its first on, and the whole supply state). Without this a reorg's off-chain run
    stays in metrics.runs and every later run recomputes from its first day again."""
    later = runs.select(F.col("first_day").alias("_first"), F.col("finished_at").alias("_at"))
    redone = (F.col("_at") > F.col("finished_at")) & (F.col("_first") <= F.col("first_day"))
    return off.join(later, redone, "left_anti")


def _dirty_from(spark, settings, blocks, entities_at, prices) -> tuple[dt.date | None, str | None]:
    """The first day an upstream change since the stored metrics runs touches, and the end block
    hash of the last stored run (None before the first). The first day of
    the oldest stored run whose end block left the best chain and that no later run recomputed
    over; the first day of
    entities.class_flows rewritten by the entities runs that finished after the last metrics run
    read them (their flows_from_day: types are retroactive, a run re-classes earlier days); the
    first stored day whose price is no longer market.prices' close (a corrected or late price:
    USD columns, and realized values of coins created that day, change from it on)."""
    runs = tables.read_table(spark, settings, "metrics.runs")
    stale = _not_redone(runs_off_the_chain(runs, blocks), runs).agg(F.min("first_day")).first()[0]
    seen, last_end = runs.agg(
        F.max("entities_finished_at"), F.max_by("end_hash", "finished_at")
    ).first()
    newer = None
    if entities_at is not None and (seen is None or entities_at > seen):
        ent_runs = tables.read_table(spark, settings, "entities.runs")
        if seen is not None:
            ent_runs = ent_runs.filter(F.col("finished_at") > F.lit(seen))
        newer = ent_runs.agg(F.min("flows_from_day")).first()[0]
    repriced = (
        tables.read_table(spark, settings, "metrics.miner_pressure")
        .select("day", "price_usd")
        .join(prices.select("day", "close_usd"), "day", "left")
        .filter(~F.col("price_usd").eqNullSafe(F.col("close_usd")))
        .agg(F.min("day"))
        .first()[0]
    )
    days = [d for d in (stale, newer, repriced) if d is not None]
    return (min(days) if days else None), last_end


def _with_nulls(df, key: str):
    """``df`` with the nullable columns of ``key``'s contract it lacks, as NULL (values not
    known yet: past the entities step's last day)."""
    missing = [c for c in tables.load_schema(key).columns if c.name not in df.columns]
    return df.select("*", *(F.lit(None).alias(c.name) for c in missing if c.nullable))


def _supply(spark, settings, blocks, prices, start, last, lo, log):
    """(supply_cohorts rows, lth changes, new state, new changes) for days start..last; the
    state before ``start`` from metrics.supply_state minus the stored changes since."""
    state = tables.read_table(spark, settings, "metrics.supply_state")
    changes = tables.read_table(spark, settings, "metrics.supply_changes")
    as_of = state.agg(F.max("as_of_day")).first()[0]
    if start > lo and (as_of is None or as_of < start - dt.timedelta(days=1)):
        raise MetricsError(
            f"metrics.supply_state is as of {as_of}, before the day before {start}: drop the "
            "metrics tables and run `hodlflow metrics` again (a full rebuild)"
        )
    if start <= lo:
        base = state.filter(F.lit(False)).select("created_day", "unspent_sats")
    else:
        undo = (
            changes.filter(F.col("day") >= F.lit(start))
            .groupBy("created_day")
            .agg(F.sum("delta_sats").alias("_undo"))
        )
        base = (
            state.join(undo, "created_day", "full")
            .select(
                "created_day",
                (F.coalesce("unspent_sats", F.lit(0)) - F.coalesce("_undo", F.lit(0))).alias(
                    "unspent_sats"
                ),
            )
            .filter(F.col("unspent_sats") != 0)
        )
    base = base.localCheckpoint()
    outputs = tables.read_table(spark, settings, "chain.outputs").filter(
        F.col("day") >= F.lit(start)
    )
    inputs = tables.read_table(spark, settings, "chain.inputs").filter(F.col("day") >= F.lit(start))
    genesis = get_network(settings.network).genesis_hash
    g = blocks.filter(F.col("hash") == genesis).select("height").first()
    new_changes = sp.supply_changes(
        outputs, inputs, g.height if g else None, settings.network
    ).localCheckpoint()
    lth = int(settings.entities.holder.lth_days)
    grid = sp.unspent_by_day(spark, base, new_changes, start, last).localCheckpoint()
    agg = sp.supply_aggregates(grid, prices, lth).localCheckpoint()
    spent = sp.spent_aggregates(inputs, blocks, prices, lth)
    rows = sp.supply_cohorts(spark, agg.filter(F.col("day") >= F.lit(start)), spent, prices,
                             start, last, lth)  # fmt: skip
    lth_rows = sp.lth_changes(spark, agg, start, last)
    new_state = grid.filter(F.col("day") == F.lit(last)).select(
        "created_day", "unspent_sats", F.col("day").alias("as_of_day")
    )
    log(f"supply cohorts {start}..{last}")
    return rows, lth_rows, new_state, new_changes


def _entity_balances(spark, settings, start, covered):
    """(holdings per day and entity with their holder class that day, entity_id → miner_hop)
    for days start..covered."""
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    types = read("entities.entities").select("entity_id", "entity_type")
    held = cc.holdings(
        read("entities.entity_daily"), read("entities.merges"), read("entities.runs"),
        start, covered, types,
    )  # fmt: skip
    held = cc.with_holder_class_on(held, None, settings.entities).localCheckpoint()
    return held, read("entities.entities").select("entity_id", "miner_hop")


def _write_flows(spark, settings, flows, prices, rows, start, covered, since, held, hops):
    recent = flows.filter(F.col("day") >= F.lit(start))
    days = rows.select("day").filter(F.col("day") <= F.lit(covered))
    before = (
        tables.read_table(spark, settings, "metrics.exchange_flows")
        .filter(F.col("day") < F.lit(start))
        .orderBy(F.col("day").desc())
        .select("flow_balance_btc")
        .first()
    )
    opening = before[0] if before is not None else 0.0
    balances = cc.reserves(held, hops).select("day", "balance_btc")
    exchange = (
        fl.exchange_flows(days, recent, opening)
        .join(balances, "day", "left")
        .na.fill(0.0, ["balance_btc"])
    )
    tables.replace_where(fl.entity_flows(recent, prices), settings, "metrics.entity_flows", since)
    tables.replace_where(exchange, settings, "metrics.exchange_flows", since)


def _migration_revised(spark, settings, start, covered, lo):
    """(metrics.holder_migration_revised rows, the first day they replace): from the earlier of
    ``start`` and the first unsettled day (not before the chain's first day ``lo``), to
    ``covered``."""
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    first = max(rv.revised_first_day(start, covered, settings.entities), lo)
    rows = rv.holder_migration_revised(
        spark, read("entities.transfers"), read("entities.entity_daily"),
        read("entities.entities").select("entity_id", "entity_type"), first, covered,
        settings.entities,
    )  # fmt: skip
    return rows, first


def _migration(spark, settings, flows, start, last, covered, lth_rows, held):
    """metrics.holder_migration rows for start..last: flows and concentration up to
    ``covered`` (null after), long-/short-term supply columns every day."""
    days = sp.calendar(spark, start, last)
    rows = days.join(lth_rows, "day", "left")
    if flows is None or covered < start:
        return rows
    upto = sp.calendar(spark, start, covered)
    moves = fl.holder_migration(upto, flows.filter(F.col("day") >= F.lit(start)))
    conc = cc.concentration(held, settings.entities.holder.accumulation_min_receives)
    with_counts = (
        upto.join(conc, "day", "left")
        .na.fill(0, ["entities_holding", "accumulation_entities"])
        .na.fill(0.0, ["strong_balance_btc", "weak_balance_btc"])
    )
    return rows.join(moves, "day", "left").join(with_counts, "day", "left")


@step(
    "metrics",
    needs=("chain.blocks",),
    makes=("market.prices", *METRIC_TABLES),
    missing=MetricsError,
)
def run_metrics(
    spark: SparkSession,
    settings: Settings,
    from_day: dt.date | None = None,
    log: Callable[[str], None] = print,
) -> MetricsResult:
    """Bring ``metrics.*`` up to the chain tables' last day. Example::

    run_metrics(spark, load_settings("local"))
    """
    t0 = time.time()
    blocks = tables.read_table(spark, settings, "chain.blocks")
    bounds = blocks.agg(
        F.min("day").alias("lo"), F.max("day").alias("hi"), F.max("height").alias("top")
    ).first()
    if bounds.hi is None:
        return MetricsResult(
            first_day=None, last_day=None, days=0, priced_days=0, seconds=time.time() - t0
        )
    flows, covered, entities_at = _entities_state(spark, settings)
    stored_last = (
        tables.read_table(spark, settings, "metrics.miner_pressure").agg(F.max("day")).first()[0]
    )
    start = stored_last or bounds.lo
    prices = tables.read_table(spark, settings, "market.prices")
    dirty, last_end = _dirty_from(spark, settings, blocks, entities_at, prices)
    end_hash = blocks.filter(F.col("height") == bounds.top).select("hash").first()[0]
    if from_day is None and dirty is None and last_end == end_hash:
        # Same tip, no entities run and no price change since: the stored days are current.
        log(f"metrics are up to date: the last run ended at the tip {end_hash}")
        return MetricsResult(
            first_day=None,
            last_day=stored_last,
            days=0,
            priced_days=0,
            seconds=time.time() - t0,
            up_to_date=True,
        )
    for earlier in (from_day, dirty):
        if earlier is not None and earlier < start:
            log(f"recomputing from {earlier}")
            start = earlier
    start = max(start, bounds.lo)
    last = bounds.hi
    lookback = start - dt.timedelta(days=LOOKBACK_DAYS)
    daily = daily_blocks(blocks.filter(F.col("day") >= F.lit(lookback)))
    if covered is None:
        log("no entities run yet: the miner outflow columns stay null (run `hodlflow entities`)")
    miner = None if flows is None else miner_flows(flows, covered)
    rows = miner_pressure(daily, prices, settings.metrics.cost, miner, covered).filter(
        F.col("day") >= F.lit(start)
    )
    held = hops = None
    if flows is not None and covered >= start:
        held, hops = _entity_balances(spark, settings, start, covered)
        rows = rows.join(cc.reserves(held, hops).drop("balance_btc"), "day", "left")
        reserve_cols = ["miner_reserve_btc", "miner_reserve_0hop_btc", "miner_reserve_1hop_btc"]
        covered_day = F.col("day") <= F.lit(covered)
        rows = rows.select(
            *(c for c in rows.columns if c not in reserve_cols),
            *(F.when(covered_day, F.coalesce(c, F.lit(0.0))).alias(c) for c in reserve_cols),
        )
    rows = _with_nulls(rows, "metrics.miner_pressure").localCheckpoint()
    counts = rows.agg(F.count(F.lit(1)).alias("days"), F.count("price_usd").alias("priced")).first()
    cohorts, lth_rows, new_state, new_changes = _supply(
        spark, settings, blocks, prices, start, last, bounds.lo, log
    )
    migration = _with_nulls(
        _migration(spark, settings, flows, start, last, covered, lth_rows, held),
        "metrics.holder_migration",
    )
    revised = None
    if flows is not None:
        revised = _migration_revised(spark, settings, start, covered, bounds.lo)
    run_row = spark.createDataFrame(
        [
            (
                start,
                last,
                bounds.top,
                end_hash,
                entities_at,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
            )
        ],
        "first_day date, last_day date, end_height int, end_hash string, "
        "entities_finished_at timestamp, finished_at timestamp",
    )
    since = f"day >= '{start}'"
    with tables.atomic_step(spark, settings, f"metrics from {start}", METRIC_TABLES):
        tables.replace_where(rows, settings, "metrics.miner_pressure", since)
        tables.replace_where(cohorts, settings, "metrics.supply_cohorts", since)
        tables.replace_where(new_changes, settings, "metrics.supply_changes", since)
        tables.replace_where(new_state, settings, "metrics.supply_state", "true")
        tables.replace_where(migration, settings, "metrics.holder_migration", since)
        if revised is not None:
            rows_rev, first_rev = revised
            tables.replace_where(
                rows_rev, settings, "metrics.holder_migration_revised", f"day >= '{first_rev}'"
            )
        if flows is not None and held is not None:
            _write_flows(spark, settings, flows, prices, rows, start, covered, since, held, hops)
            tables.replace_where(
                cc.balance_cohorts(spark, held, sp.calendar(spark, start, covered)),
                settings, "metrics.entity_balance_cohorts", since,
            )  # fmt: skip
        tables.append(run_row, settings, "metrics.runs")
    log(f"metrics.miner_pressure: {counts.days} day(s) from {start}")
    return MetricsResult(
        first_day=start,
        last_day=bounds.hi,
        days=counts.days,
        priced_days=counts.priced,
        seconds=time.time() - t0,
    )


def run_metrics_with_prices(
    spark: SparkSession,
    settings: Settings,
    prices: str | None = None,
    from_day: dt.date | None = None,
    log: Callable[[str], None] = print,
) -> MetricsResult:
    """`hodlflow metrics`: load the price CSV ``prices`` into market.prices first when given
    (:func:`hodlflow.metrics.prices.load_prices`, said through ``log``), then
    :func:`run_metrics` — both under one hold of the warehouse's lease, so no other step
    writes between them."""
    from hodlflow.lease import warehouse_lease
    from hodlflow.metrics.prices import load_prices

    with warehouse_lease(spark, settings, "metrics"):
        if prices:
            first, last = load_prices(spark, settings, prices)
            log(f"market.prices: {(last - first).days + 1} day(s) {first}..{last} from {prices}")
        return run_metrics(spark, settings, from_day, log=log)

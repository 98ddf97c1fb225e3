"""The metrics step: chain tables (+ ``market.prices``) → ``metrics.*``, for the days not yet
computed, atomically.

A run recomputes from the last stored day (which may have been partial) to the chain tables'
last day; ``from_day`` recomputes from an earlier day (after a deep reorg or new prices). The
rolling windows (365 days at most) read the daily aggregate of ``chain.blocks`` back to 364 days
before the first recomputed day: a day's cost follows the day, not history.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.config import Settings
from hodlflow.metrics import flows as fl
from hodlflow.metrics.miner import daily_blocks, miner_flows, miner_pressure

METRIC_TABLES = [
    "metrics.miner_pressure",
    "metrics.entity_flows",
    "metrics.exchange_flows",
    "metrics.holder_migration",
]
LOOKBACK_DAYS = 364


class MetricsError(RuntimeError):
    """The metrics step cannot run; the message says why. The tables are unchanged."""


@dataclass(frozen=True)
class MetricsResult:
    first_day: dt.date | None
    last_day: dt.date | None
    days: int
    priced_days: int
    seconds: float

    def summary(self) -> str:
        if self.first_day is None:
            return "no blocks in the chain tables: nothing to compute"
        missing = self.days - self.priced_days
        note = f"; {missing} day(s) without a price (USD columns null)" if missing else ""
        return (
            f"metrics for {self.first_day}..{self.last_day}: {self.days} day(s){note}; "
            f"{self.seconds:.1f}s"
        )


def _entity_flows(spark, settings):
    """(entities.class_flows, last day the entities step covered) or (None, None) before the
    first entities run."""
    if not tables.exists(spark, settings, "entities.runs"):
        return None, None
    covered = tables.read_table(spark, settings, "entities.runs").agg(F.max("last_day")).first()[0]
    if covered is None:
        return None, None
    return tables.read_table(spark, settings, "entities.class_flows"), covered


def _write_flows(spark, settings, flows, prices, rows, start, covered, since) -> None:
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
    tables.replace_where(fl.entity_flows(recent, prices), settings, "metrics.entity_flows", since)
    tables.replace_where(
        fl.exchange_flows(days, recent, opening), settings, "metrics.exchange_flows", since
    )
    tables.replace_where(
        fl.holder_migration(days, recent), settings, "metrics.holder_migration", since
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
    recovered = tables.recover(spark, settings)
    if recovered:
        log(f"rolled back unfinished step(s) {recovered} left by a failed run")
    if not tables.exists(spark, settings, "chain.blocks"):
        location = tables.table_location(settings, "chain.blocks")
        raise MetricsError(f"no chain.blocks table at {location}: run `hodlflow ingest` first")
    tables.ensure_table(spark, settings, "market.prices")
    for key in METRIC_TABLES:
        tables.ensure_table(spark, settings, key)
    blocks = tables.read_table(spark, settings, "chain.blocks")
    bounds = blocks.agg(F.min("day").alias("lo"), F.max("day").alias("hi")).first()
    if bounds.hi is None:
        return MetricsResult(None, None, 0, 0, time.time() - t0)
    stored_last = (
        tables.read_table(spark, settings, "metrics.miner_pressure").agg(F.max("day")).first()[0]
    )
    start = stored_last or bounds.lo
    if from_day is not None:
        start = min(start, from_day)
    start = max(start, bounds.lo)
    lookback = start - dt.timedelta(days=LOOKBACK_DAYS)
    daily = daily_blocks(blocks.filter(F.col("day") >= F.lit(lookback)))
    prices = tables.read_table(spark, settings, "market.prices")
    flows, covered = _entity_flows(spark, settings)
    if covered is None:
        log("no entities run yet: the miner outflow columns stay null (run `hodlflow entities`)")
    miner = None if flows is None else miner_flows(flows, covered)
    rows = miner_pressure(daily, prices, settings.metrics.cost, miner, covered).filter(
        F.col("day") >= F.lit(start)
    )
    rows = rows.localCheckpoint()
    counts = rows.agg(F.count(F.lit(1)).alias("days"), F.count("price_usd").alias("priced")).first()
    since = f"day >= '{start}'"
    with tables.atomic_step(spark, settings, f"metrics from {start}", METRIC_TABLES):
        tables.replace_where(rows, settings, "metrics.miner_pressure", since)
        if flows is not None:
            _write_flows(spark, settings, flows, prices, rows, start, covered, since)
    log(f"metrics.miner_pressure: {counts.days} day(s) from {start}")
    return MetricsResult(start, bounds.hi, counts.days, counts.priced, time.time() - t0)

"""The report's daily series: the gold tables joined on the day by Spark, downsampled to weeks
on the executors when the range is long, and only then collected (one row per day or week: a
few thousand rows at most)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.config import Settings
from hodlflow.report.charts import BAND_NAMES, CHARTS

# The gold tables the report reads; market.prices may be missing (the price is then a gap).
REQUIRED = (
    "metrics.miner_pressure",
    "metrics.holder_migration",
    "metrics.supply_cohorts",
    "metrics.exchange_flows",
)


class ReportError(RuntimeError):
    """The gold tables the report needs are missing or hold no day in the asked range."""


@dataclass
class ReportData:
    first: dt.date
    last: dt.date
    bucket: str  # "day" or "week"
    days: list[str]  # ISO day of each point (a week's Monday when bucket == "week")
    values: dict[str, list[float | None]]  # series key → one value per point, None = no data
    facts: dict[str, object] = field(default_factory=dict)
    # The hash-ribbon crossings in the range: (day, point day, signal), the point day being the
    # day itself, or its week's Monday when bucket == "week".
    markers: list[tuple[str, str, str]] = field(default_factory=list)


def build_report_frame(
    miner: DataFrame,
    prices: DataFrame | None,
    migration: DataFrame,
    cohorts: DataFrame,
    exchange: DataFrame,
    revised: DataFrame | None = None,
) -> DataFrame:
    """One row per day of ``miner`` (metrics.miner_pressure: every calendar day of the chain)
    with every series of the charts (``charts.CHARTS`` keys). Left joins: a day another table
    has no row for (exchange flows past the entities step's last day, a day without a price)
    keeps null there, never 0. ``prices`` None: the price column is all null; ``revised``
    (metrics.holder_migration_revised) None: the revised net is all null."""
    frame = miner.select(
        "day", "production_cost_usd_per_btc", "miner_outflow_btc", "miner_to_exchange_btc",
        "mpi_ratio", "mpi", "below_cost", "hash_rate_ths", "hash_rate_sma30_ths",
        "hash_rate_sma60_ths",
        F.col("below_cost").cast("double").alias(BELOW_COST_KEY),
    )  # fmt: skip
    if prices is not None:
        frame = frame.join(
            prices.select("day", F.col("close_usd").alias("price_usd")), "day", "left"
        )
    else:
        frame = frame.withColumn("price_usd", F.lit(None).cast("double"))
    frame = frame.join(
        migration.select(
            "day",
            "net_weak_to_strong_btc",
            "weak_to_exchange_btc",
            "exchange_to_strong_btc",
            "strong_balance_btc",
            "weak_balance_btc",
        ),  # fmt: skip
        "day",
        "left",
    )
    if revised is not None:
        frame = frame.join(
            revised.select(
                "day", F.col("net_weak_to_strong_btc").alias("revised_net_weak_to_strong_btc")
            ),
            "day",
            "left",
        )
    else:
        frame = frame.withColumn("revised_net_weak_to_strong_btc", F.lit(None).cast("double"))
    wanted = ["lth", "sth", *BAND_NAMES]
    by_cohort = (
        cohorts.filter(F.col("cohort").isin(wanted))
        .groupBy("day")
        .agg(
            F.max(F.when(F.col("cohort") == "lth", F.col("supply_btc"))).alias("lth_supply_btc"),
            F.max(F.when(F.col("cohort") == "sth", F.col("supply_btc"))).alias("sth_supply_btc"),
            *(
                F.max(F.when(F.col("cohort") == b, F.col("supply_share"))).alias(f"band_{b}")
                for b in BAND_NAMES
            ),
        )
    )
    frame = frame.join(by_cohort, "day", "left")
    frame = frame.join(
        exchange.select(
            "day",
            F.col("balance_btc").alias("exchange_balance_btc"),
            F.col("netflow_btc").alias("exchange_netflow_btc"),
        ),
        "day",
        "left",
    )
    return frame


# Not a chart's line: per point, the share of its days the price closed below the production
# cost (1.0 or 0.0 per day, the week's share by week); the flow charts shade where it is ≥ 0.5.
BELOW_COST_KEY = "below_cost_share"
MEAN_DAYS = 7  # the flow charts' trailing mean


def series_keys() -> list[str]:
    return [s.key for c in CHARTS for s in c.series] + [BELOW_COST_KEY]


def trailing_mean(values: list[float | None], days: int = MEAN_DAYS) -> list[float | None]:
    """Per point, the mean of the values among it and the ``days`` − 1 points before it that
    have one; None where the point itself has none (a gap stays a gap).

    >>> trailing_mean([1.0, 3.0, None, 5.0], days=2)
    [1.0, 2.0, None, 5.0]
    >>> trailing_mean([2.0, 4.0, 6.0], days=7)
    [2.0, 3.0, 4.0]
    """
    out: list[float | None] = []
    for i, v in enumerate(values):
        window = [w for w in values[max(0, i - days + 1) : i + 1] if w is not None]
        out.append(None if v is None else sum(window) / len(window))
    return out


def point_day(day: dt.date, bucket: str) -> str:
    """The report point a day falls on: the day itself, or its ISO week's Monday by week.

    >>> point_day(dt.date(2024, 3, 6), "week"), point_day(dt.date(2024, 3, 6), "day")
    ('2024-03-04', '2024-03-06')
    """
    if bucket == "week":
        day = day - dt.timedelta(days=day.weekday())
    return day.isoformat()


def by_week(frame: DataFrame) -> DataFrame:
    """One row per ISO week (``day`` = its Monday): the mean of each series over the week's days
    that have a value (null when none has); a week cut by the range's ends averages the days
    inside it."""
    return frame.groupBy(F.to_date(F.date_trunc("week", "day")).alias("day")).agg(
        *(F.avg(k).alias(k) for k in series_keys())
    )


def _facts(frame: DataFrame) -> dict[str, object]:
    """Key facts over the daily frame, aggregated by Spark."""
    first_below = frame.filter("below_cost").agg(F.min("day")).first()[0]
    row = frame.agg(
        F.sum(F.when(F.col("below_cost"), 1).otherwise(0)).alias("days_below"),
        F.sum("net_weak_to_strong_btc").alias("net_weak_to_strong"),
        F.max_by("price_usd", F.when(F.col("price_usd").isNotNull(), F.col("day"))).alias("price"),
        F.max_by("production_cost_usd_per_btc", "day").alias("cost"),
        F.max_by("lth_supply_btc", "day").alias("lth"),
        F.max_by(
            "exchange_balance_btc", F.when(F.col("exchange_balance_btc").isNotNull(), F.col("day"))
        ).alias("exchange_balance"),
    ).first()
    facts: dict[str, object] = {
        "first_below_cost_day": first_below.isoformat() if first_below else None,
        "days_below_cost": int(row.days_below or 0),
        "net_weak_to_strong_btc": row.net_weak_to_strong,
        "last_price_usd": row.price,
        "last_production_cost_usd_per_btc": row.cost,
        "last_lth_supply_btc": row.lth,
        "last_exchange_balance_btc": row.exchange_balance,
    }
    if first_below is not None:
        # Miner outflow per day in the 14 days before the price fell under the cost and the 14
        # days from then (the brief's question: do miners sell when mining stops paying?).
        lo, hi = first_below - dt.timedelta(days=14), first_below + dt.timedelta(days=13)
        around = (
            frame.filter(F.col("day").between(F.lit(lo), F.lit(hi)))
            .agg(
                F.avg(F.when(F.col("day") < F.lit(first_below), F.col("miner_outflow_btc"))),
                F.avg(F.when(F.col("day") >= F.lit(first_below), F.col("miner_outflow_btc"))),
            )
            .first()
        )
        facts["miner_outflow_before_btc_per_day"] = around[0]
        facts["miner_outflow_after_btc_per_day"] = around[1]
    return facts


def _clean(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def read_report_data(
    spark: SparkSession,
    settings: Settings,
    from_day: dt.date | None = None,
    to_day: dt.date | None = None,
) -> ReportData:
    """The charts' series for ``from_day``..``to_day`` (default: every day of the gold tables).

    Raises :class:`ReportError` naming the table when a gold table is missing or the range holds
    no day of metrics.miner_pressure."""
    for key in REQUIRED:
        if not tables.exists(spark, settings, key):
            raise ReportError(
                f"no {key} table at {tables.table_location(settings, key)}: "
                "run `hodlflow metrics` first"
            )

    def read(key: str) -> DataFrame:
        df = tables.read_table(spark, settings, key)
        if from_day is not None:
            df = df.filter(F.col("day") >= F.lit(from_day))
        if to_day is not None:
            df = df.filter(F.col("day") <= F.lit(to_day))
        return df

    prices = read("market.prices") if tables.exists(spark, settings, "market.prices") else None
    frame = build_report_frame(
        read("metrics.miner_pressure"),
        prices,
        read("metrics.holder_migration"),
        read("metrics.supply_cohorts"),
        read("metrics.exchange_flows"),
        read("metrics.holder_migration_revised")
        if tables.exists(spark, settings, "metrics.holder_migration_revised")
        else None,
    ).cache()
    try:
        bounds = frame.agg(F.min("day"), F.max("day"), F.count("*")).first()
        if not bounds[2]:
            where = tables.table_location(settings, "metrics.miner_pressure")
            span = f" between {from_day or 'the start'} and {to_day or 'the end'}"
            raise ReportError(
                f"metrics.miner_pressure at {where} holds no day{span if from_day or to_day else ''}"
                ": run `hodlflow metrics` first"
            )
        first, last, n_days = bounds
        weekly = n_days > settings.report.max_daily_points
        out = by_week(frame) if weekly else frame.select("day", *series_keys())
        rows = out.orderBy("day").collect()  # one row per day or week: small
        facts = _facts(frame)
        # Crossings: a few a year.
        signals = (
            read("metrics.miner_pressure")
            .filter(F.col("hash_ribbon_signal").isNotNull())
            .select("day", "hash_ribbon_signal")
            .orderBy("day")
            .collect()
        )
    finally:
        frame.unpersist()
    return ReportData(
        first=first,
        last=last,
        bucket="week" if weekly else "day",
        days=[r["day"].isoformat() for r in rows],
        values={k: [_clean(r[k]) for r in rows] for k in series_keys()},
        facts={k: (_clean(v) if isinstance(v, float) else v) for k, v in facts.items()},
        markers=[
            (
                r["day"].isoformat(),
                point_day(r["day"], "week" if weekly else "day"),
                r["hash_ribbon_signal"],
            )
            for r in signals
        ],  # fmt: skip
    )

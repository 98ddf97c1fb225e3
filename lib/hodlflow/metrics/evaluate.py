"""The gold tables against the simulator's books: the miner series of
``metrics.miner_pressure`` (``truth/miner_daily.csv``: totals and per-day errors), the flow
series (``truth/daily_flows.csv``) and the top-100 share per phase (true entities from
``truth/addresses.csv``). Only one row per day reaches the driver."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.metrics.concentration import ranked, top_sum

SERIES = (
    ("miner_outflow_btc", "miner_outflow_sats"),
    ("miner_to_exchange_btc", "miner_to_exchange_sats"),
    ("miner_to_miner_btc", "miner_to_miner_sats"),
)


def evaluate_miner_series(spark: SparkSession, settings, truth_path: str) -> dict[str, Any]:
    """Per series: our total and the true total over the days both have (BTC), the relative
    error of the total, and the median and largest relative error of the days whose true value
    is positive."""
    truth = spark.read.option("header", True).csv(truth_path)
    ours = tables.read_table(spark, settings, "metrics.miner_pressure")
    joined = ours.join(
        truth.select(
            F.col("day").cast("date").alias("day"),
            *(F.col(t).cast("bigint").alias(t) for _, t in SERIES),
        ),
        "day",
    )
    out: dict[str, Any] = {}
    for ours_col, truth_col in SERIES:
        true_btc = F.col(truth_col) / 1e8
        rel = F.abs(F.col(ours_col) - true_btc) / true_btc
        row = (
            joined.filter(F.col(ours_col).isNotNull())
            .agg(
                F.count(F.lit(1)).alias("days"),
                F.sum(ours_col).alias("ours"),
                F.sum(true_btc).alias("true"),
                F.percentile_approx(F.when(true_btc > 0, rel), 0.5).alias("median_day_error"),
                F.max(F.when(true_btc > 0, rel)).alias("max_day_error"),
            )
            .first()
        )
        total_error = abs(row.ours - row.true) / row.true if row.true else None
        out[ours_col] = {
            "days": row.days,
            "ours_btc": row.ours,
            "true_btc": row.true,
            "total_error": total_error,
            "median_day_error": row.median_day_error,
            "max_day_error": row.max_day_error,
        }
    return out


def daily_flow_comparison(spark: SparkSession, settings, truth_path: str):
    """One row per day the entities step covered: our and the true net weak→strong migration,
    exchange inflow and outflow (BTC), and the day's true transferred volume
    (``truth/daily_flows.csv``: value between different entities, all classes)."""
    truth = spark.read.option("header", True).csv(truth_path).select(
        F.col("day").cast("date").alias("day"), "from_class", "to_class",
        (F.col("value_sats").cast("bigint") / 1e8).alias("v"),
    )  # fmt: skip

    def pair(frm, to) -> F.Column:
        return F.sum(F.when(frm & to, F.col("v")).otherwise(0.0))

    fc, tc = F.col("from_class"), F.col("to_class")
    true_day = truth.groupBy("day").agg(
        F.sum("v").alias("true_volume_btc"),
        (pair(fc == "weak", tc == "strong") - pair(fc == "strong", tc == "weak")).alias(
            "true_net_weak_to_strong_btc"
        ),
        pair(fc != "exchange", tc == "exchange").alias("true_exchange_inflow_btc"),
        pair(fc == "exchange", tc != "exchange").alias("true_exchange_outflow_btc"),
    )
    migration = tables.read_table(spark, settings, "metrics.holder_migration").filter(
        F.col("net_weak_to_strong_btc").isNotNull()
    )
    exchange = tables.read_table(spark, settings, "metrics.exchange_flows")
    return (
        migration.select("day", "net_weak_to_strong_btc")
        .join(exchange.select("day", F.col("inflow_btc").alias("exchange_inflow_btc"),
                              F.col("outflow_btc").alias("exchange_outflow_btc")), "day")
        .join(true_day, "day", "left")
        .na.fill(0.0)
        .orderBy("day")
    )  # fmt: skip


def evaluate_flow_series(
    spark: SparkSession, settings, truth_path: str, min_share: float = 0.01
) -> dict[str, Any]:
    """The migration goal of the gold tables: on the days whose true net weak→strong flow is
    larger than ``min_share`` of the day's transferred volume, how often our net has the true
    sign; and the exchange inflow/outflow totals against truth."""
    daily = daily_flow_comparison(spark, settings, truth_path)
    true_net, ours = F.col("true_net_weak_to_strong_btc"), F.col("net_weak_to_strong_btc")
    considered = F.abs(true_net) > min_share * F.col("true_volume_btc")
    row = daily.agg(
        F.count(F.lit(1)).alias("days"),
        F.sum(F.when(considered, 1).otherwise(0)).alias("considered"),
        F.sum(F.when(considered & (F.signum(ours) == F.signum(true_net)), 1).otherwise(0)).alias(
            "right"
        ),
        F.sum(ours).alias("ours_net"),
        F.sum(true_net).alias("true_net"),
        F.sum("exchange_inflow_btc").alias("ours_in"),
        F.sum("true_exchange_inflow_btc").alias("true_in"),
        F.sum("exchange_outflow_btc").alias("ours_out"),
        F.sum("true_exchange_outflow_btc").alias("true_out"),
    ).first()

    def err(a, b):
        return abs(a - b) / b if b else None

    return {
        "net_weak_to_strong": {
            "days": row.days,
            "days_true_flow_over_share": row.considered,
            "sign_right_days": row.right,
            "sign_right_share": row.right / row.considered if row.considered else None,
            "ours_total_btc": row.ours_net,
            "true_total_btc": row.true_net,
        },
        "exchange_inflow_btc": {
            "ours": row.ours_in, "true": row.true_in, "total_error": err(row.ours_in, row.true_in)
        },
        "exchange_outflow_btc": {
            "ours": row.ours_out, "true": row.true_out,
            "total_error": err(row.ours_out, row.true_out),
        },
    }  # fmt: skip


def top_share(moves, days, n: int):
    """Per day of ``days`` (column ``day``): the share of the top ``n`` entities in what all
    entities with a positive balance hold at the day's end. ``moves``: (day, entity,
    value_sats), received > 0, spent < 0."""
    per_entity = moves.groupBy("day", "entity").agg(F.sum("value_sats").alias("delta"))
    held = (
        days.join(per_entity.withColumnRenamed("day", "_d"), F.col("_d") <= F.col("day"))
        .groupBy("day", "entity")
        .agg(F.sum("delta").alias("balance"))
        .filter(F.col("balance") > 0)
    )
    x = F.col("balance").cast("double")
    return (
        ranked(held, "balance", "entity")
        .groupBy("day")
        .agg((top_sum(n, x) / F.sum(x)).alias("share"))
    )


def evaluate_concentration(
    spark: SparkSession, settings, truth_addresses: str, miner_truth: str, every_days: int = 7
) -> dict[str, Any]:
    """The concentration story: per phase of the scenario (``truth/miner_daily.csv``), the
    top-100 share of ``metrics.holder_migration`` on its first and last day, and its peak over
    the phase's days sampled every ``every_days`` days (first day on, and the last day),
    against the same share over the true entities (``truth/addresses.csv``; an address outside
    it counts alone). Ours is over our entities: an owner whose addresses the clustering cannot
    link (never spent together) counts as several smaller entities."""
    phases = (
        spark.read.option("header", True).csv(miner_truth)
        .groupBy("phase")
        .agg(F.min(F.col("day").cast("date")).alias("first"),
             F.max(F.col("day").cast("date")).alias("last"))
        .collect()
    )  # fmt: skip
    sampled = {
        p.phase: [
            *(p.first + dt.timedelta(days=i) for i in range(0, (p.last - p.first).days, every_days)),
            p.last,
        ]
        for p in phases
    }
    days = spark.createDataFrame(sorted({(d,) for ds in sampled.values() for d in ds}), "day date")
    owner = spark.read.option("header", True).csv(truth_addresses).select("address", "entity_id")
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    moves = (
        read("chain.outputs").select("day", "address", "value_sats")
        .unionByName(
            read("chain.inputs").select("day", "address", (-F.col("value_sats")).alias("value_sats"))
        )
        .filter(F.col("address").isNotNull())
        .join(owner, "address", "left")
        .select("day", F.coalesce("entity_id", "address").alias("entity"), "value_sats")
    )  # fmt: skip
    true_share = {r.day: r.share for r in top_share(moves, days, 100).collect()}
    ours = {
        r.day: r.top100_share
        for r in read("metrics.holder_migration").join(days, "day").collect()
    }

    def peak(share: dict, ds: list[dt.date]) -> str:
        known = [d for d in ds if share.get(d) is not None]
        if not known:
            return "n/a"
        top = max(known, key=lambda d: (share[d], -d.toordinal()))  # the earliest of equal peaks
        return f"{share[top]:.3f} on {top}"

    out: dict[str, Any] = {}
    for p in sorted(phases, key=lambda p: p.first):
        out[f"top100_share {p.phase}"] = {
            "first_day": str(p.first),
            "ours": f"{_fmt(ours.get(p.first))} -> {_fmt(ours.get(p.last))}",
            "true": f"{_fmt(true_share.get(p.first))} -> {_fmt(true_share.get(p.last))}",
            f"ours_peak_every_{every_days}d": peak(ours, sampled[p.phase]),
            f"true_peak_every_{every_days}d": peak(true_share, sampled[p.phase]),
        }
    return out


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"

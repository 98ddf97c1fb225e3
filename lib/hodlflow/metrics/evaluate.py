"""Miner series of ``metrics.miner_pressure`` against the simulator's books
(``truth/miner_daily.csv``): totals over the scenario and per-day errors. Only one row per day
reaches the driver."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from hodlflow import tables

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

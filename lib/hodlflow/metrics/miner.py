"""``metrics.miner_pressure``: per day, what miners earn, the hash rate behind it, what it costs
and the price against that cost (METRICS.md, "Miners"; columns in
``schemas/metrics.miner_pressure.yaml``).

Everything here comes from ``chain.blocks`` (one small aggregate per day) and
``market.prices``; rolling windows run over the daily rows themselves, so a day's metrics need
the day's blocks and the daily rows before it, never the transactions of history.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hodlflow.config import CostSettings

SATS = 1e8
HASHES_PER_DIFFICULTY_SECOND = 2**32 / 600  # a block every 600 s at difficulty 1


def daily_blocks(blocks: DataFrame) -> DataFrame:
    """Per day of ``chain.blocks``: blocks, subsidy/fees (BTC), mean difficulty, hash rate."""
    return blocks.groupBy("day").agg(
        F.count(F.lit(1)).cast("int").alias("blocks"),
        (F.sum("subsidy_sats") / SATS).alias("subsidy_btc"),
        (F.sum("fees_sats") / SATS).alias("fees_btc"),
        F.avg("difficulty").alias("difficulty"),
        (F.sum("difficulty") * HASHES_PER_DIFFICULTY_SECOND / 144 / 1e12).alias("hash_rate_ths"),
    )


def _rolling_mean(col: str, days: int, order: Window) -> Column:
    """Mean of ``col`` over this day and the ``days`` − 1 before, NULL unless all are there
    (consecutive days, none NULL)."""
    w = order.rowsBetween(-(days - 1), 0)
    complete = (F.count(col).over(w) == days) & (
        F.datediff(F.col("day"), F.min("day").over(w)) == days - 1
    )
    return F.when(complete, F.avg(col).over(w))


def miner_pressure(daily: DataFrame, prices: DataFrame, cost: CostSettings) -> DataFrame:
    """The columns of ``metrics.miner_pressure`` for every day of ``daily`` (the output of
    :func:`daily_blocks`, contiguous days; earlier days may be included to fill the windows)."""
    order = Window.orderBy("day")
    base = (
        daily.join(prices.select("day", F.col("close_usd").alias("price_usd")), "day", "left")
        .withColumn("revenue_btc", F.col("subsidy_btc") + F.col("fees_btc"))
        .withColumn("revenue_usd", F.col("revenue_btc") * F.col("price_usd"))
        .withColumn("issuance_usd", F.col("subsidy_btc") * F.col("price_usd"))
    )
    kwh_per_day = F.col("hash_rate_ths") * cost.efficiency_j_per_th * 24 / 1000
    production_cost = F.when(
        F.col("revenue_btc") > 0,
        kwh_per_day * cost.power_usd_per_kwh * cost.pue / F.col("revenue_btc"),
    )
    with_windows = (
        base.withColumn("_issuance_365", _rolling_mean("issuance_usd", 365, order))
        .withColumn("hash_rate_sma30_ths", _rolling_mean("hash_rate_ths", 30, order))
        .withColumn("hash_rate_sma60_ths", _rolling_mean("hash_rate_ths", 60, order))
        .withColumn("production_cost_usd_per_btc", production_cost)
    )
    below = F.col("hash_rate_sma30_ths") < F.col("hash_rate_sma60_ths")
    was_below = F.lag(below).over(order)
    return with_windows.select(
        "*",
        (F.col("issuance_usd") / F.col("_issuance_365")).alias("puell_multiple"),
        below.alias("hash_ribbon_capitulation"),
        F.when(below & ~was_below, F.lit("capitulation"))
        .when(~below & was_below, F.lit("recovery"))
        .alias("hash_ribbon_signal"),
        F.when(F.col("hash_rate_ths") > 0, F.col("revenue_usd") / F.col("hash_rate_ths")).alias(
            "hashprice_usd_per_th_day"
        ),
        (F.col("price_usd") / F.col("production_cost_usd_per_btc")).alias("price_to_cost"),
        (F.col("price_usd") < F.col("production_cost_usd_per_btc")).alias("below_cost"),
    ).drop("_issuance_365")

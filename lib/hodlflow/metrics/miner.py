"""``metrics.miner_pressure``: per day, what miners earn, the hash rate behind it, what it costs
and the price against that cost (docs/metrics.md, "Miners"; columns in
``schemas/metrics.miner_pressure.yaml``).

Everything here comes from ``chain.blocks`` (one small aggregate per day) and
``market.prices``; rolling windows run over the daily rows themselves, so a day's metrics need
the day's blocks and the daily rows before it, never the transactions of history.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hodlflow.chain.network import COIN
from hodlflow.config import CostSettings

HASHES_PER_DIFFICULTY_SECOND = 2**32 / 600  # a block every 600 s at difficulty 1


def daily_blocks(blocks: DataFrame) -> DataFrame:
    """Per day of ``chain.blocks``: blocks, subsidy/fees (BTC), mean difficulty, hash rate."""
    return blocks.groupBy("day").agg(
        F.count(F.lit(1)).cast("int").alias("blocks"),
        (F.sum("subsidy_sats") / COIN).alias("subsidy_btc"),
        (F.sum("fees_sats") / COIN).alias("fees_btc"),
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


def miner_flows(class_flows: DataFrame, covered_through) -> DataFrame:
    """Per day, from ``entities.class_flows``: miner outflow (to any other entity, other miners
    included), to exchanges and to other miners, in BTC. ``covered_through``: the last day the
    entities step processed; days after it get no row (their outflow is unknown, not 0)."""
    miner = class_flows.filter(F.col("from_class") == "miner")
    return (
        miner.filter(F.col("day") <= F.lit(covered_through))
        .groupBy("day")
        .agg(
            (F.sum("value_sats") / COIN).alias("miner_outflow_btc"),
            (F.sum(F.when(F.col("to_class") == "exchange", F.col("value_sats")).otherwise(0)) / COIN)
            .alias("miner_to_exchange_btc"),
            (F.sum(F.when(F.col("to_class") == "miner", F.col("value_sats")).otherwise(0)) / COIN)
            .alias("miner_to_miner_btc"),
        )
    )  # fmt: skip


def _rolling_std(col: str, days: int, order: Window) -> Column:
    w = order.rowsBetween(-(days - 1), 0)
    complete = (F.count(col).over(w) == days) & (
        F.datediff(F.col("day"), F.min("day").over(w)) == days - 1
    )
    return F.when(complete, F.stddev_samp(col).over(w))


def miner_pressure(
    daily: DataFrame,
    prices: DataFrame,
    cost: CostSettings,
    flows: DataFrame | None = None,
    covered_through=None,
) -> DataFrame:
    """The columns of ``metrics.miner_pressure`` for every day of ``daily`` (the output of
    :func:`daily_blocks`, contiguous days; earlier days may be included to fill the windows).

    ``flows``: :func:`miner_flows` (None: the outflow columns are null); a day up to
    ``covered_through`` without a row had no miner outflow (0)."""
    order = Window.orderBy("day")
    base = (
        daily.join(prices.select("day", F.col("close_usd").alias("price_usd")), "day", "left")
        .withColumn("revenue_btc", F.col("subsidy_btc") + F.col("fees_btc"))
        .withColumn("revenue_usd", F.col("revenue_btc") * F.col("price_usd"))
        .withColumn("issuance_usd", F.col("subsidy_btc") * F.col("price_usd"))
    )
    flow_cols = ["miner_outflow_btc", "miner_to_exchange_btc", "miner_to_miner_btc"]
    if flows is None:
        base = base.select("*", *(F.lit(None).cast("double").alias(c) for c in flow_cols))
    else:
        covered = F.col("day") <= F.lit(covered_through)
        base = base.join(flows, "day", "left").select(
            *(c for c in base.columns),
            *(F.when(covered, F.coalesce(c, F.lit(0.0))).alias(c) for c in flow_cols),
        )
    base = base.withColumn("miner_outflow_usd", F.col("miner_outflow_btc") * F.col("price_usd"))
    kwh_per_day = F.col("hash_rate_ths") * cost.efficiency_j_per_th * 24 / 1000
    production_cost = F.when(
        F.col("revenue_btc") > 0,
        kwh_per_day * cost.power_usd_per_kwh * cost.pue / F.col("revenue_btc"),
    )
    with_windows = (
        base.withColumn("_issuance_365", _rolling_mean("issuance_usd", 365, order))
        .withColumn("_outflow_365", _rolling_mean("miner_outflow_usd", 365, order))
        .withColumn("mpi_ratio", F.col("miner_outflow_usd") / F.col("_outflow_365"))
        .withColumn("_ratio_mean", _rolling_mean("mpi_ratio", 365, order))
        .withColumn("_ratio_std", _rolling_std("mpi_ratio", 365, order))
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
        F.when(
            F.col("_ratio_std") > 0,
            (F.col("mpi_ratio") - F.col("_ratio_mean")) / F.col("_ratio_std"),
        ).alias("mpi"),
    ).drop("_issuance_365", "_outflow_365", "_ratio_mean", "_ratio_std")

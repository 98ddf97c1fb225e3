"""Flow tables from ``entities.class_flows`` (value paid between entity classes per day):
``metrics.entity_flows``, ``metrics.exchange_flows`` and ``metrics.holder_migration``
(METRICS.md: exchanges; weak→strong migration). Each reads the flows of the days it computes,
plus, for running totals, the previous stored row."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

SATS = 1e8


def entity_flows(class_flows: DataFrame, prices: DataFrame) -> DataFrame:
    """One row per (day, from_class, to_class) with flows: BTC, USD (null without a price),
    transfers."""
    return class_flows.join(
        prices.select("day", F.col("close_usd").alias("price_usd")), "day", "left"
    ).select(
        "day",
        "from_class",
        "to_class",
        (F.col("value_sats") / SATS).alias("value_btc"),
        (F.col("value_sats") / SATS * F.col("price_usd")).alias("value_usd"),
        "transfers",
    )


def _pair(frm, to) -> F.Column:
    cond = F.lit(True)
    if frm is not None:
        cond = cond & frm(F.col("from_class"))
    if to is not None:
        cond = cond & to(F.col("to_class"))
    return F.sum(F.when(cond, F.col("value_sats")).otherwise(0)) / SATS


def exchange_flows(days: DataFrame, class_flows: DataFrame, opening_balance: float) -> DataFrame:
    """Per day of ``days`` (column ``day``, contiguous): inflow (to exchanges from non-exchange
    classes), outflow (the reverse), netflow, and the flow balance: ``opening_balance`` (the
    stored balance of the day before) + Σ netflow up to the day. Exchange-to-exchange transfers
    and coinbases are not flows."""
    is_ex = lambda c: c == "exchange"  # noqa: E731
    not_ex = lambda c: c != "exchange"  # noqa: E731
    per_day = class_flows.groupBy("day").agg(
        _pair(not_ex, is_ex).alias("inflow_btc"),
        _pair(is_ex, not_ex).alias("outflow_btc"),
    )
    rows = days.join(per_day, "day", "left").na.fill(0.0, ["inflow_btc", "outflow_btc"])
    upto = Window.orderBy("day").rowsBetween(Window.unboundedPreceding, 0)
    net = F.col("inflow_btc") - F.col("outflow_btc")
    return rows.select(
        "day",
        "inflow_btc",
        "outflow_btc",
        net.alias("netflow_btc"),
        (F.lit(opening_balance) + F.sum(net).over(upto)).alias("flow_balance_btc"),
    )


def holder_migration(days: DataFrame, class_flows: DataFrame) -> DataFrame:
    """Per day of ``days``: value paid by weak to strong entities, by strong to weak, and the
    net (weak→strong − strong→weak); also what strong and weak hands bought from exchanges and
    sold to them."""
    per_day = class_flows.groupBy("day").agg(
        _pair(lambda c: c == "weak", lambda c: c == "strong").alias("weak_to_strong_btc"),
        _pair(lambda c: c == "strong", lambda c: c == "weak").alias("strong_to_weak_btc"),
        _pair(lambda c: c == "exchange", lambda c: c == "strong").alias("exchange_to_strong_btc"),
        _pair(lambda c: c == "strong", lambda c: c == "exchange").alias("strong_to_exchange_btc"),
        _pair(lambda c: c == "exchange", lambda c: c == "weak").alias("exchange_to_weak_btc"),
        _pair(lambda c: c == "weak", lambda c: c == "exchange").alias("weak_to_exchange_btc"),
    )
    cols = [c for c in per_day.columns if c != "day"]
    rows = days.join(per_day, "day", "left").na.fill(0.0, cols)
    return rows.withColumn(
        "net_weak_to_strong_btc", F.col("weak_to_strong_btc") - F.col("strong_to_weak_btc")
    )

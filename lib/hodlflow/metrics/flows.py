"""Flow tables from ``entities.class_flows`` (value paid between entity classes per day):
``metrics.entity_flows``, ``metrics.exchange_flows`` and ``metrics.holder_migration``
(exchanges; weak→strong migration). Each reads the flows of the days it computes, plus, for
running totals, the previous stored row."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hodlflow.chain.network import COIN


def entity_flows(class_flows: DataFrame, prices: DataFrame) -> DataFrame:
    """One row per (day, from_class, to_class) with flows: BTC, USD (null without a price),
    transfers."""
    return class_flows.join(
        prices.select("day", F.col("close_usd").alias("price_usd")), "day", "left"
    ).select(
        "day",
        "from_class",
        "to_class",
        (F.col("value_sats") / COIN).alias("value_btc"),
        (F.col("value_sats") / COIN * F.col("price_usd")).alias("value_usd"),
        "transfers",
    )


def _pair(frm, to) -> F.Column:
    cond = F.lit(True)
    if frm is not None:
        cond = cond & frm(F.col("from_class"))
    if to is not None:
        cond = cond & to(F.col("to_class"))
    return F.sum(F.when(cond, F.col("value_sats")).otherwise(0)) / COIN


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


def net_inflow(cls: str) -> F.Column:
    """Aggregate over class flows: the value class ``cls`` received from other classes less what
    it paid to other classes, in BTC. Flows within the class (from_class = to_class) cancel."""
    fc, tc, v = F.col("from_class"), F.col("to_class"), F.col("value_sats")
    got = F.when((tc == cls) & (fc != cls), v)
    paid = F.when((fc == cls) & (tc != cls), v)
    return F.sum(F.coalesce(got, F.lit(0)) - F.coalesce(paid, F.lit(0))) / COIN


def net_weak_to_strong(strong_net: F.Column, weak_net: F.Column) -> F.Column:
    """The net weak→strong migration from the two classes' net inflows: ½(strong − weak), the
    mean of what strong hands took in and what weak hands gave out (the rule of
    ``schemas/truth.daily_flows.yaml`` and :func:`hodlflow.sim.truth.net_weak_to_strong`)."""
    return F.lit(0.5) * (strong_net - weak_net)


def holder_migration(days: DataFrame, class_flows: DataFrame) -> DataFrame:
    """Per day of ``days``: value paid by weak to strong entities and by strong to weak (the
    direct flows) and their difference; what strong and weak hands bought from exchanges and
    sold to them; each class's net inflow from all other classes, and the net weak→strong
    migration ½(strong net inflow − weak net inflow): a direct weak→strong payment counts
    fully, a path through exchanges or any other class half on each side."""
    per_day = class_flows.groupBy("day").agg(
        _pair(lambda c: c == "weak", lambda c: c == "strong").alias("weak_to_strong_btc"),
        _pair(lambda c: c == "strong", lambda c: c == "weak").alias("strong_to_weak_btc"),
        _pair(lambda c: c == "exchange", lambda c: c == "strong").alias("exchange_to_strong_btc"),
        _pair(lambda c: c == "strong", lambda c: c == "exchange").alias("strong_to_exchange_btc"),
        _pair(lambda c: c == "exchange", lambda c: c == "weak").alias("exchange_to_weak_btc"),
        _pair(lambda c: c == "weak", lambda c: c == "exchange").alias("weak_to_exchange_btc"),
        net_inflow("strong").alias("strong_net_inflow_btc"),
        net_inflow("weak").alias("weak_net_inflow_btc"),
    )
    cols = [c for c in per_day.columns if c != "day"]
    rows = days.join(per_day, "day", "left").na.fill(0.0, cols)
    return rows.withColumn(
        "direct_net_weak_to_strong_btc", F.col("weak_to_strong_btc") - F.col("strong_to_weak_btc")
    ).withColumn(
        "net_weak_to_strong_btc",
        net_weak_to_strong(F.col("strong_net_inflow_btc"), F.col("weak_net_inflow_btc")),
    )

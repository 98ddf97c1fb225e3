"""The gold tables against the simulator's books: the miner series of
``metrics.miner_pressure`` (``truth/miner_daily.csv``: totals and per-day errors), the flow
series per day — every class pair, exchange in- and outflow, the net weak→strong migration by
the same rule on both sides (``truth/daily_flows.csv``) — and what strong and weak hands hold
(``truth/daily_balances.csv``), and the top-100 share per phase (true entities from
``truth/addresses.csv``). Only one row per day reaches the driver."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.metrics import flows as fl
from hodlflow.metrics.concentration import ranked, top_sum
from hodlflow.sim.truth import CLASSES

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


CLASS_PAIRS = tuple((a, b) for a in CLASSES for b in CLASSES)
# (name, signed): a signed series is judged by its sign too.
FLOW_SERIES = (
    ("net_weak_to_strong_btc", True),
    ("direct_net_weak_to_strong_btc", True),
    ("strong_net_inflow_btc", True),
    ("weak_net_inflow_btc", True),
    ("exchange_inflow_btc", False),
    ("exchange_outflow_btc", False),
    *((f"{a}_to_{b}_btc", False) for a, b in CLASS_PAIRS),
)
BALANCE_SERIES = ("strong_balance_btc", "weak_balance_btc")
# The revised (retroactive) net migration (metrics.holder_migration_revised), against the same
# true net.
REVISED_NET = "revised_net_weak_to_strong_btc"


def _pair_sums(flows: DataFrame, value: F.Column) -> list[F.Column]:
    fc, tc = F.col("from_class"), F.col("to_class")
    return [
        F.sum(F.when((fc == a) & (tc == b), value).otherwise(0.0)).alias(f"{a}_to_{b}_btc")
        for a, b in CLASS_PAIRS
    ]


def _flow_columns(flows: DataFrame, value: F.Column) -> DataFrame:
    """Per day of class flows (day, from_class, to_class, value): every class pair, exchange
    in- and outflow, each holder class's net inflow, the direct and the net weak→strong
    migration by the rule of :func:`hodlflow.metrics.flows.holder_migration`, in BTC."""
    fc, tc = F.col("from_class"), F.col("to_class")
    flows = flows.select("day", "from_class", "to_class", value.alias("_v"))
    value = F.col("_v")
    per_day = (
        flows.withColumn("value_sats", value * 1e8)
        .groupBy("day")
        .agg(
            *_pair_sums(flows, value),
            F.sum(F.when((fc != "exchange") & (tc == "exchange"), value).otherwise(0.0)).alias(
                "exchange_inflow_btc"
            ),
            F.sum(F.when((fc == "exchange") & (tc != "exchange"), value).otherwise(0.0)).alias(
                "exchange_outflow_btc"
            ),
            fl.net_inflow("strong").alias("strong_net_inflow_btc"),
            fl.net_inflow("weak").alias("weak_net_inflow_btc"),
            F.sum(value).alias("volume_btc"),
        )
    )
    return per_day.withColumn(
        "direct_net_weak_to_strong_btc", F.col("weak_to_strong_btc") - F.col("strong_to_weak_btc")
    ).withColumn(
        "net_weak_to_strong_btc",
        fl.net_weak_to_strong(F.col("strong_net_inflow_btc"), F.col("weak_net_inflow_btc")),
    )


def compare_daily(
    migration: DataFrame,
    entity_flows: DataFrame,
    true_flows: DataFrame,
    true_balances: DataFrame,
    revised: DataFrame | None = None,
) -> DataFrame:
    """One row per day of ``migration`` (metrics.holder_migration rows: ``day``,
    ``strong_balance_btc``, ``weak_balance_btc``) whose net migration is known (the days the
    entities step covered): for each series of :data:`FLOW_SERIES` ours (from
    ``entity_flows``: day, from_class, to_class, value_btc) and ``true_<series>`` (from
    ``true_flows``: day, from_class, to_class, value_sats — truth/daily_flows.csv), the same
    rule on both sides; our and the true strong and weak balances (``true_balances``: day,
    class, balance_sats — truth/daily_balances.csv) and their change from the day before
    (``*_change_btc``, NULL on the first day); and ``true_volume_btc``, the day's true
    transferred volume (every row of the truth, within a class too). A day without a flow
    row has 0 on that side. With ``revised`` (metrics.holder_migration_revised rows: ``day``,
    ``net_weak_to_strong_btc``), also ``revised_net_weak_to_strong_btc`` and its true
    counterpart, the true net (NULL on a day the revised table has no row)."""
    ours = _flow_columns(entity_flows, F.col("value_btc").cast("double")).drop("volume_btc")
    true = _flow_columns(true_flows, F.col("value_sats").cast("double") / 1e8)
    true = true.select(
        "day", F.col("volume_btc").alias("true_volume_btc"),
        *(F.col(c).alias(f"true_{c}") for c, _ in FLOW_SERIES),
    )  # fmt: skip
    bal = F.col("balance_sats").cast("double") / 1e8
    true_bal = true_balances.groupBy("day").agg(
        *(F.sum(F.when(F.col("class") == c.split("_")[0], bal)).alias(f"true_{c}")
          for c in BALANCE_SERIES)
    )  # fmt: skip
    days = migration.filter(F.col("net_weak_to_strong_btc").isNotNull()).select(
        "day", *BALANCE_SERIES
    )
    flow_cols = [c for c, _ in FLOW_SERIES]
    joined = (
        days.join(ours, "day", "left")
        .join(true, "day", "left")
        .join(true_bal, "day", "left")
        .na.fill(0.0, [*flow_cols, *(f"true_{c}" for c in flow_cols), "true_volume_btc"])
    )
    order = Window.orderBy("day")
    changes = [
        (F.col(f"{side}{c}") - F.lag(f"{side}{c}").over(order)).alias(
            f"{side}{c.replace('_btc', '_change_btc')}"
        )
        for c in BALANCE_SERIES
        for side in ("", "true_")
    ]
    extra = []
    if revised is not None:
        joined = joined.join(
            revised.select("day", F.col("net_weak_to_strong_btc").alias(REVISED_NET)), "day", "left"
        )
        extra = [F.col(REVISED_NET), F.when(F.col(REVISED_NET).isNotNull(),
                                            F.col("true_net_weak_to_strong_btc"))
                 .alias(f"true_{REVISED_NET}")]  # fmt: skip
    return joined.select(
        "day", "true_volume_btc",
        *(F.col(f"{side}{c}") for c, _ in FLOW_SERIES for side in ("", "true_")),
        *(F.col(f"{side}{c}") for c in BALANCE_SERIES for side in ("", "true_")),
        *changes, *extra,
    ).orderBy("day")  # fmt: skip


def daily_flow_comparison(spark: SparkSession, settings, truth_dir: str) -> DataFrame:
    """:func:`compare_daily` of the metrics tables of ``settings`` and the simulation's
    ``truth_dir`` (``truth/daily_flows.csv``, ``truth/daily_balances.csv``)."""
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    csv = lambda name: spark.read.option("header", True).csv(os.path.join(truth_dir, name))  # noqa: E731
    flows = csv("daily_flows.csv").select(
        F.col("day").cast("date").alias("day"), "from_class", "to_class",
        F.col("value_sats").cast("bigint").alias("value_sats"),
    )  # fmt: skip
    balances = csv("daily_balances.csv").select(
        F.col("day").cast("date").alias("day"), "class",
        F.col("balance_sats").cast("bigint").alias("balance_sats"),
    )  # fmt: skip
    revised = (
        read("metrics.holder_migration_revised")
        if tables.exists(spark, settings, "metrics.holder_migration_revised")
        else None
    )
    return compare_daily(read("metrics.holder_migration"), read("metrics.entity_flows"), flows,
                         balances, revised)  # fmt: skip


def _stats_columns(name: str, ours: str, true: str, signed: bool, mean: bool, min_share: float):
    o, t, vol = F.col(ours), F.col(true), F.col("true_volume_btc")
    both = o.isNotNull() & t.isNotNull()
    cols = [
        F.count(F.when(both, 1)).alias(f"{name}|days"),
        (F.avg if mean else F.sum)(F.when(both, o)).alias(f"{name}|ours"),
        (F.avg if mean else F.sum)(F.when(both, t)).alias(f"{name}|true"),
        # Pearson's r; NULL when a side is constant (F.corr divides by zero under ANSI mode).
        F.try_divide(
            F.covar_pop(F.when(both, o), F.when(both, t)),
            F.stddev_pop(F.when(both, o)) * F.stddev_pop(F.when(both, t)),
        ).alias(f"{name}|correlation"),
    ]
    if signed:
        pos = both & (t > min_share * vol)
        neg = both & (t < -min_share * vol)
        cols += [
            F.count(F.when(pos, 1)).alias(f"{name}|positive_days"),
            F.count(F.when(pos & (o > 0), 1)).alias(f"{name}|positive_right"),
            F.count(F.when(neg, 1)).alias(f"{name}|negative_days"),
            F.count(F.when(neg & (o < 0), 1)).alias(f"{name}|negative_right"),
        ]
    return cols


def series_stats(daily: DataFrame, min_share: float = 0.01) -> dict[str, dict[str, Any]]:
    """Per series of ``daily`` (:func:`compare_daily`), ours against the truth over the days
    both have a value:

    * flow series (:data:`FLOW_SERIES`): ``ours`` and ``true`` = the sums over the days
      (``of`` = "sum"), ``total_error`` = |ours − true| / |true| (None when true is 0), the
      daily Pearson ``correlation`` (None when either side is constant);
    * balances (:data:`BALANCE_SERIES`): the same with the means over the days (``of`` =
      "mean"), and their day-to-day changes (``*_change_btc``) as a signed series (sums);
    * a signed series (the net flows and the balance changes) also gets its sign agreement in
      both directions: of the ``positive_days`` whose true value exceeds ``min_share`` of the
      day's true transferred volume, ``positive_right`` have ours > 0 (``positive_share``); of
      the ``negative_days`` under −``min_share`` of it, ``negative_right`` have ours < 0
      (``negative_share``); a share over no day is None.

    One Spark job; only its one row reaches the driver."""
    spec = [(c, signed, False) for c, signed in FLOW_SERIES]
    spec += [(c, False, True) for c in BALANCE_SERIES]
    spec += [(c.replace("_btc", "_change_btc"), True, False) for c in BALANCE_SERIES]
    if REVISED_NET in daily.columns:
        spec.append((REVISED_NET, True, False))
    cols = [col for c, signed, mean in spec
            for col in _stats_columns(c, c, f"true_{c}", signed, mean, min_share)]  # fmt: skip
    row = daily.agg(*cols).first().asDict()
    out: dict[str, dict[str, Any]] = {}
    for c, signed, mean in spec:
        got = {k.split("|", 1)[1]: v for k, v in row.items() if k.split("|", 1)[0] == c}
        ours, true = got["ours"], got["true"]
        stats: dict[str, Any] = {
            "days": got["days"],
            "of": "mean" if mean else "sum",
            "ours": ours,
            "true": true,
            "total_error": abs(ours - true) / abs(true) if ours is not None and true else None,
            "correlation": got["correlation"],
        }
        if signed:
            for side in ("positive", "negative"):
                n, k = got[f"{side}_days"], got[f"{side}_right"]
                stats[f"{side}_days"] = n
                stats[f"{side}_right"] = k
                stats[f"{side}_share"] = k / n if n else None
        out[c] = stats
    return out


def evaluate_flow_series(
    spark: SparkSession, settings, truth_dir: str, min_share: float = 0.01
) -> dict[str, dict[str, Any]]:
    """:func:`series_stats` of :func:`daily_flow_comparison`: our flows, net migration and
    holder balances per day against the simulation's truth in ``truth_dir``."""
    return series_stats(daily_flow_comparison(spark, settings, truth_dir), min_share)


MAIN_SERIES = (
    "net_weak_to_strong_btc", REVISED_NET, "direct_net_weak_to_strong_btc", "strong_net_inflow_btc",
    "weak_net_inflow_btc", "strong_balance_btc", "weak_balance_btc",
    "strong_balance_change_btc", "weak_balance_change_btc", "exchange_inflow_btc",
    "exchange_outflow_btc",
)  # fmt: skip


def format_series_table(stats: dict[str, dict[str, Any]], names=None) -> str:
    """One line per series of :func:`series_stats` (``names``: which, in order; default every
    series, the class pairs whose true and our totals are both 0 left out): ours, true, total
    error, daily correlation and, for signed series, the sign agreement on the true positive and
    negative days as share (right/days)."""
    names = list(stats) if names is None else list(names)
    head = ("series", "of", "ours", "true", "error", "corr", "sign +", "sign -")
    lines = [head]

    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    def sign(st, side):
        if f"{side}_days" not in st:
            return ""
        n, k = st[f"{side}_days"], st[f"{side}_right"]
        return f"{num(st[f'{side}_share'], '.2f')} ({k}/{n})"

    for name in names:
        if name not in stats:  # the revised series of a warehouse without its table
            continue
        st = stats[name]
        if not st["ours"] and not st["true"] and st["of"] == "sum" and "positive_days" not in st:
            continue
        lines.append((
            name.removesuffix("_btc"), st["of"], num(st["ours"], ",.1f"), num(st["true"], ",.1f"),
            num(st["total_error"], ".1%"), num(st["correlation"], ".3f"),
            sign(st, "positive"), sign(st, "negative"),
        ))  # fmt: skip
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)
                  for i, (v, w) in enumerate(zip(r, widths, strict=True))).rstrip()
        for r in lines
    )  # fmt: skip


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
            *(
                p.first + dt.timedelta(days=i)
                for i in range(0, (p.last - p.first).days, every_days)
            ),
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
        r.day: r.top100_share for r in read("metrics.holder_migration").join(days, "day").collect()
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

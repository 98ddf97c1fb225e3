"""Holding concentration per day: top-10/top-100 entity share, Gini and HHI over entity
balances, entity balance cohorts, accumulation entities, and what strong and weak hands hold.

An entity's balance on a day is its last ``entities.entity_daily`` row on or before it
(entity_daily has rows only for days an entity moved). An id that a later entities run merged
away (``entities.merges``) holds its last balance until the first row of a cluster that contains
it — the survivor's first row at or after the start of the run that merged it, following merge
chains — so no coin is counted twice or lost across merges.

An entity that did not move on a day keeps the receipts and spends of its last row but not its
holder class: its coins aged since, so the class is decided again for the day
(:func:`with_holder_class_on`, the rule of :func:`hodlflow.entities.classify.holder_class` on
the aged coin age).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hodlflow.chain.network import COIN
from hodlflow.config import EntitiesSettings
from hodlflow.entities import classify
from hodlflow.metrics.supply import band_of

# Entity balance cohorts, in BTC: (name, min, max exclusive).
BALANCE_COHORTS = (
    ("lt_1", 0, 1),
    ("1_10", 1, 10),
    ("10_50", 10, 50),
    ("50_100", 50, 100),
    ("100_500", 100, 500),
    ("500_1k", 500, 1000),
    ("1k_5k", 1000, 5000),
    ("gt_5k", 5000, None),
)


def _merge_ends(entity_daily: DataFrame, merges: DataFrame, runs: DataFrame) -> DataFrame:
    """(entity_id, merged_end): for every merged-away id, the first day a row of a cluster
    containing it exists (NULL when none yet)."""
    links = merges.join(
        runs.select(F.col("end_height"), F.col("first_day").alias("_run_first")), "end_height"
    ).select(F.col("old_entity_id").alias("old"), F.col("new_entity_id").alias("new"), "_run_first")
    firsts = (
        links.join(
            entity_daily.select(F.col("entity_id").alias("new"), F.col("day").alias("_d")), "new"
        )
        .filter(F.col("_d") >= F.col("_run_first"))
        .groupBy("old", "new")
        .agg(F.min("_d").alias("link_end"))
    )
    links = links.join(firsts, ["old", "new"], "left").select("old", "new", "link_end")
    links = links.localCheckpoint()
    # Follow old → new → newer ...: the earliest first row along the chain.
    paths = links.select(F.col("old").alias("entity_id"), F.col("new").alias("cur"), "link_end")
    done = paths.filter(F.lit(False)).select("entity_id", "link_end")
    while True:
        step = paths.join(
            links.select(F.col("old").alias("cur"), F.col("new").alias("_next"),
                         F.col("link_end").alias("_le")), "cur", "left",
        )  # fmt: skip
        done = done.unionByName(
            step.filter(F.col("_next").isNull()).select("entity_id", "link_end")
        )
        paths = (
            step.filter(F.col("_next").isNotNull())
            .select("entity_id", F.col("_next").alias("cur"),
                    F.least("link_end", "_le").alias("link_end"))
            .localCheckpoint()
        )  # fmt: skip
        if paths.isEmpty():
            break
    return done.select("entity_id", F.col("link_end").alias("merged_end"))


def holdings(
    entity_daily: DataFrame,
    merges: DataFrame,
    runs: DataFrame,
    first: dt.date,
    last: dt.date,
    types: DataFrame | None = None,
) -> DataFrame:
    """(day, entity_id, entity_type, balance_sats, receive_count, send_count, row_day,
    coin_age_days, class_type) for every day ``first``..``last`` and every entity holding a
    positive balance that day; ``row_day`` is the day of the entity's last row on or before it
    and ``coin_age_days`` that row's (not aged: see :func:`with_holder_class_on`);
    ``class_type`` is the entity's type in ``types`` (entity_id, entity_type: the latest run's)
    where it has one, else the row's (joined per row, before the days are expanded)."""
    rows = entity_daily.filter(F.col("day") <= F.lit(last))
    order = Window.partitionBy("entity_id").orderBy("day")
    ends = _merge_ends(rows, merges, runs)
    intervals = (
        rows.select("entity_id", "day", "entity_type", "balance_sats", "receive_count",
                    "send_count", "coin_age_days", F.lead("day").over(order).alias("_next"))
        .join(ends, "entity_id", "left")
        .withColumn("_until", F.least("_next", "merged_end"))  # exclusive; NULL = open
        .filter(F.col("balance_sats") > 0)
        .filter(F.col("_until").isNull() | (F.col("_until") > F.lit(first)))
        .transform(lambda df: _with_class_type(df, types))
    )  # fmt: skip
    lo = F.greatest(F.col("day"), F.lit(first))
    hi = F.least(F.coalesce(F.date_sub(F.col("_until"), 1), F.lit(last)), F.lit(last))
    return intervals.filter(lo <= hi).select(
        F.explode(F.sequence(lo, hi, F.expr("INTERVAL 1 DAY"))).alias("day"),
        "entity_id", "entity_type", "balance_sats", "receive_count", "send_count",
        F.col("day").alias("row_day"), "coin_age_days", "class_type",
    )  # fmt: skip


def _with_class_type(df: DataFrame, types: DataFrame | None) -> DataFrame:
    """``df`` with ``class_type``: the type of ``types`` (entity_id, entity_type) for the
    entity, else its own ``entity_type``."""
    if types is None:
        return df.withColumn("class_type", F.col("entity_type"))
    now = types.select("entity_id", F.col("entity_type").alias("_now"))
    return (
        df.join(now, "entity_id", "left")
        .withColumn("class_type", F.coalesce("_now", "entity_type"))
        .drop("_now")
    )


def with_holder_class_on(
    held: DataFrame, types: DataFrame | None, s: EntitiesSettings
) -> DataFrame:
    """``held`` (one row per day and entity: ``day``, ``entity_id``, ``entity_type``,
    ``balance_sats``, ``receive_count``, ``send_count`` and, of the entity's last
    ``entities.entity_daily`` row on or before the day, ``row_day`` and ``coin_age_days``) with
    ``holder_class`` as of ``day``: the rule of :func:`hodlflow.entities.classify.holder_class`
    on the coin age aged to the day (:func:`hodlflow.entities.classify.aged_coin_age`), the
    receipts and spends as of the row. The type the rule reads is that of ``types``
    (entity_id, entity_type: the types known at the latest entities run, as
    ``entities.class_flows`` classes typed entities) where it knows the entity (an id merged
    away keeps its row's), or, with ``types`` None, ``held``'s ``class_type`` (from
    :func:`holdings`) or else the row's; the ``entity_type`` column stays the row's. A typed
    entity (exchange, miner, coinjoin) has no holder class (NULL), as an empty one."""
    age = classify.aged_coin_age(F.col("day"), F.col("row_day"))
    if types is not None:
        held = _with_class_type(held.drop("class_type"), types)
    elif "class_type" not in held.columns:
        held = held.withColumn("class_type", F.col("entity_type"))
    # The rule reads ``entity_type``: give it the class's type, keep the row's.
    return (
        held.withColumnRenamed("entity_type", "_row_type")
        .withColumnRenamed("class_type", "entity_type")
        .withColumn("holder_class", classify.holder_class(age, s))
        .drop("entity_type")
        .withColumnRenamed("_row_type", "entity_type")
    )


def _is_accumulator(min_receives: int) -> Column:
    return (
        ~F.col("entity_type").isin("exchange", "miner")
        & (F.col("receive_count") >= min_receives)
        & (F.col("send_count") == 0)
    )


def ranked(held: DataFrame, balance: str, key: str) -> DataFrame:
    """``held`` (one row per day and holder) with ``_rank``: 1 = the day's largest ``balance``,
    ties broken by ``key`` so the ranking is deterministic."""
    desc = Window.partitionBy("day").orderBy(F.col(balance).desc(), key)
    return held.withColumn("_rank", F.row_number().over(desc))


def top_sum(n: int, x: Column) -> Column:
    """Aggregate over rows of :func:`ranked`: the sum of ``x`` over the day's top ``n``."""
    return F.sum(F.when(F.col("_rank") <= n, x).otherwise(0.0))


def concentration(held: DataFrame, accumulation_min_receives: int) -> DataFrame:
    """Per day of ``held`` (output of :func:`holdings`): entities holding, top-10 and top-100
    share of what entities hold, Gini and HHI of entity balances, accumulation entities (≥ N
    receipts, never spent, not exchange or miner) and their balance; when ``held`` has
    ``holder_class`` (:func:`with_holder_class_on`), what the strong and the weak entities
    hold (``strong_balance_btc``, ``weak_balance_btc``) in the same pass."""
    x = F.col("balance_sats").cast("double")
    classed = "holder_class" in held.columns
    by_class = [
        F.sum(F.when(F.col("holder_class") == c, x).otherwise(0.0)).alias(f"_{c}")
        for c in (classify.STRONG, classify.WEAK)
    ] if classed else []  # fmt: skip
    agg = (
        ranked(held, "balance_sats", "entity_id")
        .groupBy("day")
        .agg(
            F.count(F.lit(1)).alias("entities_holding"),
            F.sum(x).alias("_total"),
            top_sum(10, x).alias("_top10"),
            top_sum(100, x).alias("_top100"),
            F.sum(x * x).alias("_squares"),
            # Σ i·x_i with i the ascending rank (1 = smallest) = Σ (n + 1 − rank)·x.
            F.sum(F.col("_rank").cast("double") * x).alias("_rank_x"),
            F.sum(F.when(_is_accumulator(accumulation_min_receives), 1).otherwise(0)).alias(
                "accumulation_entities"
            ),
            F.sum(F.when(_is_accumulator(accumulation_min_receives), x).otherwise(0.0)).alias(
                "_acc"
            ),
            *by_class,
        )
    )
    n = F.col("entities_holding").cast("double")
    asc_weighted = (n + 1) * F.col("_total") - F.col("_rank_x")
    return agg.select(
        "day",
        "entities_holding",
        (F.col("_top10") / F.col("_total")).alias("top10_share"),
        (F.col("_top100") / F.col("_total")).alias("top100_share"),
        (2 * asc_weighted / (n * F.col("_total")) - (n + 1) / n).alias("gini"),
        (F.col("_squares") / (F.col("_total") * F.col("_total"))).alias("hhi"),
        "accumulation_entities",
        (F.col("_acc") / COIN).alias("accumulation_btc"),
        *((F.col(f"_{c}") / COIN).alias(f"{c}_balance_btc")
          for c in (classify.STRONG, classify.WEAK) if classed),
    )  # fmt: skip


def balance_cohorts(spark: SparkSession, held: DataFrame, days: DataFrame) -> DataFrame:
    """Per day of ``days`` and balance cohort: entities in it, their balance (BTC) and its share
    of what entities hold; every cohort every day (0 where empty)."""
    spec = spark.createDataFrame(
        [(i, name, float(lo), None if hi is None else float(hi))
         for i, (name, lo, hi) in enumerate(BALANCE_COHORTS)],
        "cohort_order int, cohort string, min_btc double, max_btc double",
    )  # fmt: skip
    band = band_of(F.col("balance_sats") / COIN, BALANCE_COHORTS)
    per = (
        held.withColumn("cohort", band)
        .groupBy("day", "cohort")
        .agg(F.count(F.lit(1)).alias("entities"), F.sum("balance_sats").alias("_sats"))
    )
    total = F.sum("_sats").over(Window.partitionBy("day"))
    return (
        days.crossJoin(spec)
        .join(per, ["day", "cohort"], "left")
        .na.fill(0, ["entities", "_sats"])
        .select(
            "day", "cohort", "cohort_order", "min_btc", "max_btc", "entities",
            (F.col("_sats") / COIN).alias("balance_btc"),
            F.when(total > 0, F.col("_sats") / total).alias("share"),
        )
    )  # fmt: skip


def reserves(held: DataFrame, hops: DataFrame) -> DataFrame:
    """Per day of ``held``: miner reserve (all, 0-hop, 1-hop by ``hops``: entity_id,
    miner_hop) and exchange balance, in BTC."""
    typed = held.join(hops, "entity_id", "left")

    def total(cond: Column) -> Column:
        return F.sum(F.when(cond, F.col("balance_sats")).otherwise(0)) / COIN

    miner = F.col("entity_type") == "miner"
    return typed.groupBy("day").agg(
        total(miner).alias("miner_reserve_btc"),
        total(miner & (F.col("miner_hop") == 0)).alias("miner_reserve_0hop_btc"),
        total(miner & (F.col("miner_hop") == 1)).alias("miner_reserve_1hop_btc"),
        total(F.col("entity_type") == "exchange").alias("balance_btc"),
    )

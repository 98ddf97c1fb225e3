"""The revised (retroactive) weak→strong migration: each day's transfers classed again with what
the entities did afterwards, kept apart from the point-in-time series of
``metrics.holder_migration``.

The point-in-time classes decide each side of a payment from data up to its day: a fresh
wallet that has only received is ``other`` (neutral), whoever it turns out to be. The revised
series classes both sides of the payments of day D by the holder rule applied as of day
R = min(D + ``entities.holder.revision_days``, the last day the entities step covered), i.e.
by what the entity did in the following months:

* an entity with a type (exchange, miner, coinjoin) as known at the latest run: its type;
* an entity strong on R by the holder rule (:func:`hodlflow.entities.classify.holder_class`
  on its coins aged to R): a buyer that kept its coins ``held_days``, or holds a large
  balance never spent, is strong; one still neutral (young coins never spent, R near the last
  day) is ``other``;
* an entity weak on R, or holding nothing then: by the class of its last payment on or before
  R, by the coins it paid from (entities.transfers' payer class): strong for a long-term
  holder selling out, or moving its coins to an address of its own and buying again (young
  coins, weak by the holder rule); weak for a buyer who sold within the horizon — a first
  spend into an exchange after holding ``seller_min_hold_days`` or more included (a
  short-term holder) —;
  ``other`` for coins passed on within hours; weak when weak on R and no payment is found;
* an entity whose first payment was plumbing in the point-in-time rule (``other``: a first
  spend within hours, such as an exchange's change address that common-input ownership did
  not link, paying the next withdrawal) is ``other`` on both sides, whatever it did next;
* an entity without a row on or before R (merged ids): its point-in-time class.

Days D with D + revision_days ≤ the last covered day are settled (``settled``): later runs
do not change them unless an entities run retypes or merges their entities. The others are
revised again by every run, as published revised series are.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow.config import EntitiesSettings
from hodlflow.entities import classify
from hodlflow.entities.transforms import NEW_PAYER, OTHER
from hodlflow.metrics import flows as fl
from hodlflow.metrics.supply import calendar


def as_of_day(day: Column, covered: dt.date, horizon_days: int) -> Column:
    """R = min(day + horizon_days, covered): the day whose state revises ``day``'s classes."""
    return F.least(F.date_add(day, int(horizon_days)), F.lit(covered))


def revised_parties(
    parties: DataFrame,
    entity_daily: DataFrame,
    transfers: DataFrame,
    types: DataFrame,
    s: EntitiesSettings,
) -> DataFrame:
    """``parties`` (entity_id, as_of) with ``revised``: the entity's class as of ``as_of`` by
    the rules of the module doc for an untyped entity (strong, weak, other), NULL when it has
    no entities.entity_daily row on or before ``as_of``. The exit of an entity empty on
    ``as_of``, or weak by the holder rule then, is read from its last payment on or before it
    (``transfers``: entities.transfers of every day, ids current): its class in
    entities.class_flows, by the coins it paid from, a first spend after holding (``new``) weak
    when it paid an exchange (``types``: entity_id, entity_type, the latest run's), other
    otherwise."""
    rows = entity_daily.select(
        "entity_id",
        F.col("day").alias("_row_day"),
        "balance_sats",
        "coin_age_days",
        "receive_count",
        "send_count",
    )
    state = F.struct("_row_day", "balance_sats", "coin_age_days", "receive_count", "send_count")
    last = (
        parties.join(rows, "entity_id")
        .filter(F.col("_row_day") <= F.col("as_of"))
        .groupBy("entity_id", "as_of")
        .agg(F.max_by(state, "_row_day").alias("_s"))
        .select("entity_id", "as_of", "_s.*")
    )
    # The payer class of its last payment on or before as_of (the largest of that day's; ties
    # by the class, so the choice does not depend on the rows' order).
    exchanges = types.filter(F.col("entity_type") == classify.EXCHANGE).select(
        F.col("entity_id").alias("receiver"), F.lit(True).alias("_to_exchange")
    )
    paid_as = F.when(
        F.col("payer_class") == NEW_PAYER,
        F.when(F.col("_to_exchange").isNotNull(), classify.WEAK).otherwise(OTHER),
    ).otherwise(F.col("payer_class"))
    exits = (
        parties.join(
            transfers.filter(F.col("sender") != F.col("receiver"))
            .join(exchanges, "receiver", "left")
            .select(F.col("sender").alias("entity_id"), F.col("day").alias("_paid"),
                    paid_as.alias("_as"), "payer_class", "value_sats"),
            "entity_id",
        )
        .filter(F.col("_paid") <= F.col("as_of"))
        .groupBy("entity_id", "as_of")
        .agg(
            F.max_by("_as", F.struct("_paid", "value_sats", "_as")).alias("_exit"),
            # The point-in-time class of its first payment (other: plumbing).
            F.min_by("payer_class", F.struct("_paid", "value_sats", "payer_class")).alias("_first"),
        )
    )  # fmt: skip
    paid = F.when(F.col("_exit").isin(classify.STRONG, classify.WEAK), F.col("_exit")).when(
        F.col("_exit").isNotNull(), OTHER
    )
    age_then = classify.aged_coin_age(F.col("as_of"), F.col("_row_day"))
    now = F.when(F.col("balance_sats") > 0, F.col("_now"))
    return (
        last.join(exits, ["entity_id", "as_of"], "left")
        .withColumn("entity_type", F.lit(classify.UNKNOWN))
        .withColumn("_now", classify.holder_class(age_then, s))
        .select(
            "entity_id",
            "as_of",
            # Its first payment passed coins on within hours: a service's plumbing (an
            # exchange's change address that common-input ownership did not link), no holder.
            F.when(F.col("_first") == OTHER, OTHER)
            .when(now == classify.STRONG, classify.STRONG)
            .when(now == classify.NEUTRAL, OTHER)
            # Weak on R or empty: by what it last paid from (a holder that moved its coins to
            # an address of its own and buys again holds young coins: weak by the holder rule).
            .otherwise(F.coalesce(paid, F.when(now == classify.WEAK, classify.WEAK), F.lit(OTHER)))
            .alias("revised"),
        )
    )


def revised_class_flows(
    transfers: DataFrame,
    entity_daily: DataFrame,
    types: DataFrame,
    covered: dt.date,
    s: EntitiesSettings,
    history: DataFrame | None = None,
) -> DataFrame:
    """entities.class_flows' shape (day, from_class, to_class, value_sats, transfers) for the
    days of ``transfers`` (entities.transfers rows), each side classed as of
    :func:`as_of_day` (module doc); ``types`` (entity_id, entity_type): the latest run's;
    ``history``: entities.transfers of every day (the entities' last payments), by default
    ``transfers``."""
    horizon = int(s.holder.revision_days)
    moves = transfers.filter(F.col("sender") != F.col("receiver")).withColumn(
        "as_of", as_of_day(F.col("day"), covered, horizon)
    )
    typed = types.select(
        "entity_id",
        F.when(F.col("entity_type") != classify.UNKNOWN, F.col("entity_type")).alias("_type"),
    )
    untyped = typed.filter(F.col("_type").isNull()).select("entity_id")
    parties = (
        moves.select(F.col("sender").alias("entity_id"), "as_of")
        .unionByName(moves.select(F.col("receiver").alias("entity_id"), "as_of"))
        .distinct()
        .join(untyped, "entity_id", "left_semi")
    )
    history = transfers if history is None else history
    revised = revised_parties(parties, entity_daily, history, types, s)

    def side(name: str) -> DataFrame:
        return typed.select(F.col("entity_id").alias(name), F.col("_type").alias(f"_{name}_type"))

    def rev(name: str) -> DataFrame:
        return revised.select(
            F.col("entity_id").alias(name), "as_of", F.col("revised").alias(f"_{name}_rev")
        )

    payer_then = (
        F.when(F.col("payer_class") != NEW_PAYER, F.col("payer_class"))
        .when(F.col("_receiver_type") == classify.EXCHANGE, classify.WEAK)
        .otherwise(OTHER)
    )
    return (
        moves.join(side("sender"), "sender", "left")
        .join(side("receiver"), "receiver", "left")
        .join(rev("sender"), ["sender", "as_of"], "left")
        .join(rev("receiver"), ["receiver", "as_of"], "left")
        .select(
            "day",
            F.coalesce("_sender_type", "_sender_rev", payer_then).alias("from_class"),
            F.coalesce("_receiver_type", "_receiver_rev", "receiver_class").alias("to_class"),
            "value_sats",
            "transfers",
        )
        .groupBy("day", "from_class", "to_class")
        .agg(F.sum("value_sats").alias("value_sats"), F.sum("transfers").alias("transfers"))
    )


def revised_first_day(start: dt.date, covered: dt.date, s: EntitiesSettings) -> dt.date:
    """The first day a metrics run recomputing from ``start`` must revise: the unsettled days
    (after covered − revision_days) change with every entities run that adds days."""
    return min(start, covered - dt.timedelta(days=int(s.holder.revision_days)))


def holder_migration_revised(
    spark: SparkSession,
    transfers: DataFrame,
    entity_daily: DataFrame,
    types: DataFrame,
    first: dt.date,
    covered: dt.date,
    s: EntitiesSettings,
) -> DataFrame:
    """metrics.holder_migration_revised rows for the days ``first``..``covered``: the flows of
    :func:`hodlflow.metrics.flows.holder_migration` over :func:`revised_class_flows`."""
    horizon = int(s.holder.revision_days)
    recent = transfers.filter(F.col("day").between(F.lit(first), F.lit(covered)))
    flows = revised_class_flows(recent, entity_daily, types, covered, s, history=transfers)
    rows = fl.holder_migration(calendar(spark, first, covered), flows)
    as_of = as_of_day(F.col("day"), covered, horizon)
    return rows.select(
        "day",
        as_of.alias("as_of_day"),
        (F.date_add(F.col("day"), horizon) <= F.lit(covered)).alias("settled"),
        *(c for c in rows.columns if c != "day"),
    )

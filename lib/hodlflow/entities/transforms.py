"""The entities run's computation, apart from its writes: public transforms over DataFrames.

:func:`compute_run` builds what one run writes (an :class:`EntitiesRun`) from the chain tables
and the entities tables as they stand; :func:`hodlflow.entities.job.write_run` writes it. The
other functions are its steps, each a transform of DataFrames that tests can run alone: a
transaction split per entity (:func:`per_tx_entity`), per day (:func:`daily_totals`), the
running totals and types (:func:`running_totals`), the exchanges' own moves
(:func:`with_exchange_feeds`), the transfers between entities and their classes
(:func:`entity_transfers`, :func:`class_flows`), and what the change rules read around a run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.config import WINDOW_CHANGE_HEURISTICS, Settings
from hodlflow.entities import classify
from hodlflow.entities.components import touched_components
from hodlflow.entities.cospend import (
    build_tx_summary,
    change_edges,
    cospend_edges,
    deposit_edges,
    fingerprint_edges,
    guard_change_edges,
    peel_bursts,
    peel_edges,
    peel_steps,
    type_change_outputs,
    with_address_ids,
    with_coinjoin_flag,
)
from hodlflow.entities.labels import block_pools

# Running totals of an entity (columns of entities.entities summed over days and merges).
SUMS = [
    "address_count", "balance_sats", "coin_day_sum", "received_sats", "sent_sats",
    "receive_count", "send_count", "coinbase_sats", "coinbase_blocks", "from_miner_sats",
    "sweep_count", "coinjoin_sats", "moved_sats", "from_exchange_sats", "swept_in_sats",
    "busy_peel_days",
]  # fmt: skip


# The class of a flow's side that is neither typed nor strong or weak.
OTHER = "other"
# payer_class of a first spend of young coins held ``holder.seller_min_hold_days`` or more:
# weak into an exchange, other elsewhere (entities.class_flows).
NEW_PAYER = "new"


@dataclass(frozen=True, kw_only=True)
class EntitiesRun:
    """What one entities run computed (:func:`compute_run`), before anything is written.

    ``new_rows``: entities.address_entity rows of the run's new addresses; ``merged``:
    (old_entity_id, new_entity_id) of the entities that merged; ``running``: per (day, entity)
    the running totals, type and holder class (entities.entity_daily's rows and more);
    ``final``: each touched entity's totals at the run's end (entities.entities rows);
    ``transfers``: entities.transfers rows of the run; ``retyped``: ids of the entities whose
    earlier flows may change class; ``merges_rows``: entities.merges rows; ``edges``,
    ``merges``: the clustering edges and entity merges counted."""

    new_rows: DataFrame
    merged: DataFrame
    running: DataFrame
    final: DataFrame
    transfers: DataFrame
    retyped: DataFrame
    merges_rows: DataFrame
    edges: int
    merges: int


def compute_run(
    spark: SparkSession,
    settings: Settings,
    *,
    start: int,
    end: int,
    first_day: dt.date,
    pools: list,
    seeds: dict[str, str],
    log: Callable[[str], None] = print,
) -> EntitiesRun:
    """What the entities run over heights ``start..end`` (its first day ``first_day``) writes,
    from the chain tables and the entities tables as they are before it: nothing is written
    here (:func:`hodlflow.entities.job.write_run` writes it). ``pools`` and ``seeds``: the
    pool definitions and the exchange label seeds (address → label); ``log`` hears each
    phase's time."""
    ent = settings.entities
    t0 = time.perf_counter()

    def phase(name: str) -> None:
        log(f"  {name}: {time.perf_counter() - t0:.1f}s")

    rng = (F.col("height") >= start) & (F.col("height") <= end)
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    outs = read("chain.outputs").filter(rng)
    ins = read("chain.inputs").filter(rng)
    blocks = read("chain.blocks").filter(rng)
    ae_old = read("entities.address_entity")
    old_state = read("entities.entities")

    # 1. address ids for the run's new addresses.
    max_old = ae_old.agg(F.max("address_id")).first()[0]
    max_old = -1 if max_old is None else max_old
    ids = with_address_ids(
        outs.select("address", "height"), ae_old.select("address", "address_id", "first_height")
    )
    new_ids = ids.filter(F.col("address_id") > max_old).localCheckpoint()
    phase("address ids")
    range_addresses = outs.select("address").union(ins.select("address")).dropna().distinct()
    old_ids = range_addresses.join(ae_old.select("address", "address_id", "entity_id"), "address")
    ids_range = old_ids.select("address", "address_id").unionByName(
        new_ids.select("address", "address_id")
    )

    # 2. edges and clusters.
    flags = with_coinjoin_flag(build_tx_summary(ins, outs)).localCheckpoint()
    edges = cospend_edges(ins, flags, ids_range)
    if ent.change_heuristics:
        guessed = change_edges(ins, outs, flags, ids_range, new_ids, ent.change_heuristics)
        if set(WINDOW_CHANGE_HEURISTICS) & set(ent.change_heuristics):
            guessed = guessed.unionByName(window_edges(read, ids, start, end, first_day, ent))
        tags = owner_tags(spark, seeds, old_ids, old_state, outs, flags, ids_range)
        edges = edges.unionByName(guard_change_edges(guessed, tags))
    edges = edges.localCheckpoint()
    n_edges = edges.count()
    phase(f"{n_edges} edges")
    loops = new_ids.select(F.col("address_id").alias("src"), F.col("address_id").alias("dst"))
    previous = ae_old.select(
        F.col("address_id").alias("node"), F.col("entity_id").alias("component")
    )
    local = touched_components(
        previous, edges.unionByName(loops), checkpoint_dir=ent.checkpoint_dir
    ).localCheckpoint()
    merged = (
        local.join(previous.filter(F.col("node") == F.col("component")).select("node"), "node")
        .filter(F.col("component") != F.col("node"))
        .select(F.col("node").alias("old_entity_id"), F.col("component").alias("new_entity_id"))
        .localCheckpoint()
    )
    n_merges = merged.count()
    phase("components")
    new_rows = new_ids.join(
        local.select(F.col("node").alias("address_id"), F.col("component").alias("entity_id")),
        "address_id",
        "left",
    ).select(
        "address", "address_id", F.coalesce("entity_id", "address_id").alias("entity_id"),
        "first_height",
    ).localCheckpoint()  # fmt: skip
    remap = merged.select(F.col("old_entity_id").alias("entity_id"), "new_entity_id")

    def remapped(df: DataFrame) -> DataFrame:
        return (
            df.join(remap, "entity_id", "left")
            .withColumn("entity_id", F.coalesce("new_entity_id", "entity_id"))
            .drop("new_entity_id")
        )

    # The run's address → entity map, after the merges (old rows remapped, new rows).
    emap = (
        remapped(old_ids.select("address", "entity_id"))
        .unionByName(new_rows.select("address", "entity_id"))
        .localCheckpoint()
    )

    # 3. per transaction and entity, then per day and entity.
    day_of = blocks.select("height", "day")
    per_tx = per_tx_entity(ins, outs, flags, emap, old_state, remapped, ent).localCheckpoint()
    new_per_day = (
        new_rows.join(day_of, F.col("first_height") == F.col("height"))
        .groupBy("day", "entity_id")
        .agg(F.count(F.lit(1)).alias("address_count"))
    )
    pools_df = entity_pools(spark, blocks, outs, emap, pools)
    daily = daily_totals(per_tx, new_per_day)
    pools_df = pools_df.localCheckpoint()
    phase("pools")
    daily = daily.localCheckpoint()
    phase("daily")
    start_state = totals_before(old_state, merged, daily, remapped).localCheckpoint()
    phase("start state")
    seeded = seed_labels(spark, seeds, ae_old, new_rows, remapped).localCheckpoint()
    phase("seeds")
    # Every address's entity at the run's end, by address id (the peel steps' payers).
    id_entity = remapped(ae_old.select("address_id", "entity_id")).unionByName(
        new_rows.select("address_id", "entity_id")
    )
    steps = peel_payers(
        read, (ins, outs, flags), ids, id_entity, first_day=first_day, end=end, ent=ent
    ).localCheckpoint()
    busy = peel_bursts(steps, first_day, ent.exchange_min_peel_steps, ent.exchange_peel_days)
    daily = daily.join(busy, ["day", "entity_id"], "left").na.fill(0, ["busy_peel_days"])
    exchanges = exchange_senders(daily, start_state, seeded, old_state, remapped, ent)
    # The change of payments (the receiver's own entity, not the payer's): peel steps', and
    # the one fresh output of the inputs' script type.
    change_outputs = steps.filter(F.col("height") >= start).select("txid", "height", "address")
    if ent.hot_wallet_type_change:
        id_cols = ids.select("address", "address_id", "first_height")
        change_outputs = change_outputs.unionByName(type_change_outputs(ins, outs, flags, id_cols))
    changes = change_outputs.distinct().join(emap, "address").select("txid", "height", "entity_id")
    daily = with_exchange_feeds(
        daily, per_tx, exchanges, changes, start_state, ent
    ).localCheckpoint()
    phase("exchange sweeps")
    running = running_totals(daily, start_state, pools_df, seeded, ent).localCheckpoint()
    phase("per-day totals")

    last = Window.partitionBy("entity_id").orderBy(F.col("day").desc())
    final = (
        running.withColumn("_r", F.row_number().over(last)).filter("_r = 1")
        .unionByName(idle_survivors(start_state, running, pools_df, seeded, ent, end),
                     allowMissingColumns=True)
        .withColumn("as_of_height", F.lit(end))
        .localCheckpoint()  # read twice: the retyped entities, the entities MERGE
    )  # fmt: skip
    transfers = entity_transfers(per_tx, running, ent).localCheckpoint()
    retyped = retyped_ids(final, old_state, merged).localCheckpoint()
    end_day = blocks.filter(F.col("height") == end).select("day")
    return EntitiesRun(
        new_rows=new_rows,
        merged=merged,
        running=running,
        final=final,
        transfers=transfers,
        retyped=retyped,
        merges_rows=merged.crossJoin(end_day).withColumn("end_height", F.lit(end)),
        edges=n_edges,
        merges=n_merges,
    )


def retyped_ids(final: DataFrame, old_state: DataFrame, merged: DataFrame) -> DataFrame:
    """Ids of the entities whose earlier flows may change class: those whose type the run
    changed, and the survivors of merges (their ids now hold the merged entities' flows)."""
    changed = (
        final.select("entity_id", F.col("entity_type").alias("_new"))
        .join(old_state.select("entity_id", F.col("entity_type").alias("_old")), "entity_id")
        .filter(F.col("_new") != F.col("_old"))
        .select("entity_id")
    )
    return changed.union(merged.select(F.col("new_entity_id").alias("entity_id"))).distinct()


def first_retyped_day(transfers: DataFrame, retyped: DataFrame, first_day, ent) -> dt.date:
    """The first day whose flows the run must re-class: the earliest earlier transfer, at most
    ``retype_days`` before the run's first day, of a retyped entity; else the run's first day."""
    if ent.retype_days <= 0:
        return first_day
    recent = transfers.filter(
        (F.col("day") >= F.lit(first_day - dt.timedelta(days=ent.retype_days)))
        & (F.col("day") < F.lit(first_day))
    )
    # One pass over the window: each transfer as its two parties, one semi join.
    parties = recent.select("day", F.explode(F.array("sender", "receiver")).alias("entity_id"))
    earliest = (
        parties.join(retyped.select("entity_id"), "entity_id", "left_semi")
        .agg(F.min("day"))
        .first()[0]
    )
    return first_day if earliest is None else min(earliest, first_day)


def per_tx_entity(ins, outs, flags, emap, old_state, remapped, ent) -> DataFrame:
    """One row per (transaction, entity) that spent or received in it, with the entity's
    share of the transaction (module doc of schemas/entities.entities.yaml for the meaning)."""
    unattributed = F.lit(-1).cast("bigint")  # inputs/outputs without an address
    i = ins.join(emap, "address", "left").select(
        "txid", "height", F.coalesce("entity_id", unattributed).alias("entity_id"),
        "address", "value_sats", F.datediff("created_day", F.lit("1970-01-01")).alias("cday"),
    )  # fmt: skip
    o = outs.join(emap, "address", "left").select(
        "txid", "height", "day", "is_coinbase",
        F.coalesce("entity_id", unattributed).alias("entity_id"), "value_sats",
    )  # fmt: skip
    tx_in = i.groupBy("txid", "height", "entity_id").agg(
        F.sum("value_sats").alias("in_v"),
        F.sum(F.col("value_sats").cast("double") * F.col("cday")).alias("in_cd"),
        F.countDistinct("address").alias("in_addrs"),
    )
    tx_out = o.groupBy("txid", "height", "entity_id").agg(F.sum("value_sats").alias("out_v"))
    # 0-hop miners known so far (older runs, remapped) or paid by a coinbase in this run.
    miners0 = (
        remapped(old_state.filter(F.col("coinbase_sats") > 0).select("entity_id"))
        .union(o.filter("is_coinbase AND value_sats > 0").select("entity_id"))
        .filter(F.col("entity_id") >= 0)
        .distinct()
        .withColumn("is_miner0", F.lit(True))
    )
    tx = (
        o.groupBy("txid", "height")
        .agg(F.first("day").alias("day"), F.sum("value_sats").alias("total_out"))
        .join(
            i.groupBy("txid", "height").agg(F.sum("value_sats").alias("total_in")),
            ["txid", "height"],
            "left",
        )
        .join(
            tx_in.join(miners0, "entity_id").groupBy("txid", "height")
            .agg(F.lit(True).alias("from_miner0")),
            ["txid", "height"],
            "left",
        )
        .join(
            flags.select("txid", "height", "is_coinbase", "is_coinjoin", "output_count"),
            ["txid", "height"],
        )
    )  # fmt: skip
    rows = tx_in.join(tx_out, ["txid", "height", "entity_id"], "full").join(tx, ["txid", "height"])
    in_v = F.coalesce("in_v", F.lit(0))
    out_v = F.coalesce("out_v", F.lit(0))
    sender = in_v > 0
    total_in = F.coalesce("total_in", F.lit(0))
    share = F.when(sender, in_v / total_in).otherwise(0.0)
    fee = F.when(F.col("is_coinbase"), 0).otherwise(total_in - F.col("total_out"))
    net = out_v - in_v + share * fee  # what the entity got (> 0) or paid out (< 0), fee aside
    day_num = F.datediff("day", F.lit("1970-01-01"))
    in_cd = F.coalesce("in_cd", F.lit(0.0))
    coin_days = F.when(
        sender,
        F.least(out_v, in_v) * (in_cd / in_v)
        + F.greatest(out_v - in_v, F.lit(0)) * day_num
        - in_cd,
    ).otherwise(out_v.cast("double") * day_num)
    from_miner = (~sender) & F.coalesce("from_miner0", F.lit(False)) & ~F.col("is_coinbase")
    sweep = (
        sender & ~F.col("is_coinjoin")
        & (F.coalesce("in_addrs", F.lit(0)) >= ent.sweep_min_inputs)
        & (F.col("output_count") == 1)
    )  # fmt: skip
    return rows.filter(F.col("entity_id") >= 0).select(
        "txid",
        "day",
        "entity_id",
        "height",
        in_v.alias("in_sats"),
        out_v.alias("out_sats"),
        (out_v - in_v).alias("balance_sats"),
        coin_days.alias("coin_day_sum"),
        F.when(sender, F.floor(F.greatest(net, F.lit(0.0))))
        .otherwise(out_v)
        .cast("bigint")
        .alias("received_sats"),
        F.when(sender, F.floor(F.greatest(-net, F.lit(0.0)))).otherwise(0).cast("bigint")
        .alias("sent_sats"),
        F.floor(share * fee).cast("bigint").alias("fees_sats"),
        F.when(~sender & (out_v > 0), 1).otherwise(0).alias("receive_count"),
        F.when(sender, 1).otherwise(0).alias("send_count"),
        F.when(F.col("is_coinbase"), out_v).otherwise(0).alias("coinbase_sats"),
        F.when(F.col("is_coinbase") & (out_v > 0), 1).otherwise(0).alias("coinbase_blocks"),
        F.when(from_miner, out_v).otherwise(0).alias("from_miner_sats"),
        F.when(sweep, 1).otherwise(0).alias("sweep_count"),
        F.when(F.col("is_coinjoin"), in_v + out_v).otherwise(0).alias("coinjoin_sats"),
        (in_v + out_v).alias("moved_sats"),
        # Value-weighted age (days) of the coins the entity spent in the transaction.
        F.when(sender, day_num - in_cd / in_v).alias("spent_age_days"),
    )  # fmt: skip


def entity_transfers(per_tx: DataFrame, running: DataFrame, ent) -> DataFrame:
    """Value paid between entities per day (schemas/entities.transfers.yaml): in every
    transaction each receiving entity that spent nothing in it is paid by the spending entities
    in proportion to their inputs; change and any output back to a spender are not flows, nor
    are coinbases (no spender).

    ``payer_class``: by the coins the payer pays from, with a the older of two value-weighted
    ages: of the coins it spends (their chain age: a holder still buying that sells its oldest
    coins), and of what its entity held when the day began (``sod_*`` of ``running``,
    entity-adjusted: a holder selling out of its own change, which kept the age of the coins it
    came from); strong when a gives the LTH weight 1 / (1 + e^(−0.1·(a − lth_days))) ≥
    ``holder.strong_min_weight`` (the entity-adjusted weight of docs/metrics.md), or when a ≥
    ``holder.held_days`` and it kept a balance at the day's end (a holder selling a tranche into
    strength; an exit of the whole position is judged by the weight alone), weak otherwise. A
    seller is so judged by what it sells, not by what is left after: a trader that sells its
    whole wallet has no balance, hence no holder class, at the end of that day. Except a first
    spend: an entity that never spent before that day and now spends young coins (weak by the
    rule above) is ``new`` when it held them ``holder.seller_min_hold_days`` or more, else
    ``other``: nothing it did yet says which hands it is (a fresh wallet's first payment, an
    exchange hot wallet's change address that common-input ownership has not linked paying its
    next withdrawals within hours); entities.class_flows makes ``new`` weak when it pays an
    exchange (a buyer who sells back after days), other otherwise. ``receiver_class``: its
    holder class (strong, weak) at the end of the day, else other."""
    keys = ["txid", "height"]
    senders = per_tx.filter(F.col("in_sats") > 0).select(
        *keys, "day", F.col("entity_id").alias("sender"), "in_sats", "spent_age_days"
    )
    total = senders.groupBy(*keys).agg(F.sum("in_sats").alias("total_in"))
    receivers = per_tx.filter((F.col("in_sats") == 0) & (F.col("out_sats") > 0)).select(
        *keys, F.col("entity_id").alias("receiver"), "out_sats"
    )
    day_num = F.datediff("day", F.lit("1970-01-01"))
    first_spend = running.select(
        "day",
        F.col("entity_id").alias("sender"),
        (F.col("send_count") == F.col("day_send_count")).alias("_first_spend"),
        (F.col("balance_sats") > 0).alias("_kept"),
        F.when(
            F.col("sod_balance_sats") > 0,
            day_num - F.col("sod_coin_day_sum") / F.col("sod_balance_sats"),
        ).alias("_held_age"),
    )
    age = F.greatest("_held_age", "spent_age_days")  # nulls skipped: began the day empty
    coins = classify.coins_class(age, F.col("_kept"), ent)
    held = age >= F.lit(ent.holder.seller_min_hold_days)
    payer_class = F.when(
        F.col("_first_spend") & (coins == classify.WEAK),
        F.when(held, NEW_PAYER).otherwise(OTHER),
    ).otherwise(coins)
    holder = running.select(
        "day",
        F.col("entity_id").alias("receiver"),
        F.when(F.col("holder_class").isin(classify.STRONG, classify.WEAK), F.col("holder_class"))
        .otherwise(OTHER)
        .alias("receiver_class"),
    )
    # The share first (a double; exactly 1.0 for a sole payer): sats × sats overflows a bigint.
    value = F.floor(F.col("out_sats") * (F.col("in_sats") / F.col("total_in"))).cast("bigint")
    return (
        receivers.join(senders, keys)
        .join(total, keys)
        .join(first_spend, ["day", "sender"])
        .select(
            "day", "sender", "receiver", value.alias("value_sats"), payer_class.alias("payer_class"),
        )
        .join(holder, ["day", "receiver"])
        .groupBy("day", "sender", "receiver", "payer_class", "receiver_class")
        .agg(F.sum("value_sats").alias("value_sats"), F.count(F.lit(1)).alias("transfers"))
    )  # fmt: skip


def class_flows(transfers: DataFrame, types: DataFrame) -> DataFrame:
    """entities.class_flows from ``transfers`` and the entities' current ``types`` (entity_id,
    entity_type): a typed entity is of its type's class on every day (types are retroactive),
    else the payer's class by its coins and the receiver's by its holder class on that day; a
    first spend of coins held a while (payer class new) is weak when it pays an exchange (a
    seller), other otherwise. Payments between entities that have since merged (sender =
    receiver) are no flows."""
    typed = types.select(
        "entity_id",
        F.when(F.col("entity_type") != classify.UNKNOWN, F.col("entity_type")).alias("_type"),
    )
    side = lambda name: typed.select(  # noqa: E731
        F.col("entity_id").alias(name), F.col("_type").alias(f"_{name}_type")
    )
    return (
        transfers.filter(F.col("sender") != F.col("receiver"))
        .join(side("sender"), "sender", "left")
        .join(side("receiver"), "receiver", "left")
        .select(
            "day",
            F.coalesce(
                "_sender_type",
                F.when(F.col("payer_class") != NEW_PAYER, F.col("payer_class"))
                .when(F.col("_receiver_type") == classify.EXCHANGE, classify.WEAK)
                .otherwise(OTHER),
            ).alias("from_class"),
            F.coalesce("_receiver_type", "receiver_class").alias("to_class"),
            "value_sats",
            "transfers",
        )
        .groupBy("day", "from_class", "to_class")
        .agg(F.sum("value_sats").alias("value_sats"), F.sum("transfers").alias("transfers"))
    )


def daily_totals(per_tx: DataFrame, new_per_day: DataFrame) -> DataFrame:
    # Added apart: address_count here, busy_peel_days by peel_bursts, the feeds by
    # with_exchange_feeds.
    fed = ("address_count", "from_exchange_sats", "swept_in_sats", "busy_peel_days")
    sums = [c for c in SUMS if c not in fed] + ["fees_sats"]
    moved = per_tx.groupBy("day", "entity_id").agg(
        *(F.sum(c).alias(c) for c in sums),
        F.min("height").alias("first_height"),
        F.max("height").alias("last_height"),
    )
    return moved.join(new_per_day, ["day", "entity_id"], "full").na.fill(
        0, [*sums, "address_count"]
    )


def exchange_senders(daily, start_state, seeded, old_state, remapped, ent) -> DataFrame:
    """Ids of the entities that are exchanges by the end of the run: seeded, typed exchange by
    an earlier run, sweeping enough (the behaviour rule on their totals at the run's end), or
    paying at a hot wallet's pace on a day of the run (``busy_peel_days`` of ``daily``)."""
    run = daily.groupBy("entity_id").agg(
        F.sum("sweep_count").alias("_sw"), F.sum("address_count").alias("_ac")
    )
    totals = run.join(
        start_state.select("entity_id", "sweep_count", "address_count"), "entity_id", "left"
    )
    swept = totals.filter(
        (F.col("_sw") + F.coalesce("sweep_count", F.lit(0)) >= ent.exchange_min_sweeps)
        & (F.col("_ac") + F.coalesce("address_count", F.lit(0)) >= ent.exchange_min_addresses)
    ).select("entity_id")
    earlier = remapped(old_state.filter(F.col("entity_type") == "exchange").select("entity_id"))
    busy = daily.filter(F.col("busy_peel_days") > 0).select("entity_id")
    return swept.union(seeded.select("entity_id")).union(earlier).union(busy).distinct()


def with_exchange_feeds(daily, per_tx, exchanges, changes, start_state, ent) -> DataFrame:
    """Add ``from_exchange_sats`` and ``swept_in_sats``: per day and entity, what it received
    from exchange entities as their own coins move, and the part of it that came in their
    sweeps.

    An exchange's own moves are: its sweeps (an exchange gathering its deposits into its hot
    wallet); once an entity has received a sweep (on an earlier day, in an earlier run:
    ``start_state``'s ``swept_in_sats`` > 0, or the same day), every payment exchanges make to
    it (the cold wallet refilling the hot one: customers never receive an exchange's sweep,
    so the wallet that does is the exchange's); and the change of their payments
    (``changes``: txid, height, entity_id of each payment's change: a peel step's,
    :func:`hodlflow.entities.cospend.peel_steps`, a hot wallet's withdrawal paying the rest of
    its coin to a fresh address of its own kind; and with ``entities.hot_wallet_type_change``
    the one fresh output of the inputs' script type,
    :func:`hodlflow.entities.cospend.type_change_outputs`, however large the withdrawal).

    The payers of that change are ``exchanges`` (entity_id: seeded, typed earlier, sweeping,
    busy)
    and the hot wallets the run finds: entities that meet the hot-wallet rule
    (:func:`classify.fed_by_exchanges`) on their sweeps and refills by the run's end (with
    ``start_state``'s totals). A receipt counts once (a sweep has one output and a peel step
    two or more; a refill that is also shaped as change counts once)."""
    keys = ["txid", "height"]
    sweeps = (
        per_tx.filter(F.col("sweep_count") == 1)
        .join(exchanges, "entity_id")
        .select(*keys)
        .distinct()
    )
    receipts = per_tx.filter((F.col("send_count") == 0) & (F.col("received_sats") > 0))
    from_sweeps = receipts.join(sweeps, keys)
    swept_since = (
        from_sweeps.groupBy("entity_id")
        .agg(F.min("day").alias("_since"))
        .unionByName(
            start_state.filter(F.col("swept_in_sats") > 0).select(
                "entity_id",
                F.lit("2009-01-01").cast("date").alias("_since"),  # before any block
            )
        )
        .groupBy("entity_id")
        .agg(F.min("_since").alias("_since"))
    )
    exchange_paid = (
        per_tx.filter(F.col("in_sats") > 0).join(exchanges, "entity_id").select(*keys).distinct()
    )
    refills = (
        receipts.join(exchange_paid, keys)
        .join(swept_since, "entity_id")
        .filter(F.col("day") >= F.col("_since"))
        .drop("_since")
    )
    own = from_sweeps.unionByName(refills).dropDuplicates([*keys, "entity_id"])
    run = (
        own.groupBy("entity_id")
        .agg(F.sum("received_sats").alias("_fed"))
        .join(daily.groupBy("entity_id").agg(F.sum("received_sats").alias("_got")), "entity_id")
        .join(
            start_state.select("entity_id", "received_sats", "from_exchange_sats"),
            "entity_id",
            "left",
        )
    )
    hot = (
        run.select(
            "entity_id",
            (F.coalesce("from_exchange_sats", F.lit(0)) + F.col("_fed")).alias(
                "from_exchange_sats"
            ),
            (F.coalesce("received_sats", F.lit(0)) + F.col("_got")).alias("received_sats"),
        )
        .filter(classify.fed_by_exchanges(ent))
        .select("entity_id")
    )
    payers = exchanges.select("entity_id").union(hot).distinct()
    paid = per_tx.filter(F.col("in_sats") > 0).join(payers, "entity_id").select(*keys).distinct()
    fed = (
        own.unionByName(receipts.join(paid, keys).join(changes, [*keys, "entity_id"]))
        .dropDuplicates([*keys, "entity_id"])
        .groupBy("day", "entity_id")
        .agg(F.sum("received_sats").alias("from_exchange_sats"))
    )
    swept_in = from_sweeps.groupBy("day", "entity_id").agg(
        F.sum("received_sats").alias("swept_in_sats")
    )
    return (
        daily.join(fed, ["day", "entity_id"], "left")
        .join(swept_in, ["day", "entity_id"], "left")
        .na.fill(0, ["from_exchange_sats", "swept_in_sats"])
    )


def totals_before(old_state, merged, daily, remapped) -> DataFrame:
    """Running totals before the run of every entity the run touches: old rows of entities
    that moved or merged, summed under their surviving id."""
    touched = (
        daily.select("entity_id")
        .union(merged.select(F.col("old_entity_id").alias("entity_id")))
        .union(merged.select(F.col("new_entity_id").alias("entity_id")))
        .distinct()
    )
    old = old_state.join(touched, "entity_id")
    return (
        remapped(old)
        .groupBy("entity_id")
        .agg(
            *(F.sum(c).alias(c) for c in SUMS),
            F.min("first_height").alias("first_height"),
            F.max("last_height").alias("last_height"),
            F.max_by("pool_name", "coinbase_blocks").alias("pool_name"),
            F.max_by("pool_matched_by", "coinbase_blocks").alias("pool_matched_by"),
        )
    )


def entity_pools(spark, blocks, outs, emap, pools) -> DataFrame:
    """Per entity paid by the run's coinbases: the pool of the most blocks (ties: name)."""
    cb = outs.filter("is_coinbase AND value_sats > 0").select("height", "address")
    named = block_pools(spark, blocks.select("height", "coinbase_tag"), cb, pools).filter(
        F.col("pool_name").isNotNull()
    )
    per = (
        cb.join(emap, "address")
        .select("height", "entity_id")
        .distinct()
        .join(named, "height")
        .groupBy("entity_id", "pool_name", "matched_by")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    best = Window.partitionBy("entity_id").orderBy(F.col("n").desc(), "pool_name")
    return (
        per.withColumn("_r", F.row_number().over(best))
        .filter("_r = 1")
        .select("entity_id", F.col("pool_name").alias("run_pool"),
                F.col("matched_by").alias("run_pool_by"))
    )  # fmt: skip


def peel_payers(read, run_chain, ids, id_entity, *, first_day, end, ent) -> DataFrame:
    """The peel steps (:func:`hodlflow.entities.cospend.peel_steps`) of the run (``run_chain``:
    its inputs, outputs and transaction flags) and, when the hot-wallet pace rule is on, of the
    ``entities.exchange_peel_days`` − 1 days before it, with their payer: ``txid``, ``height``,
    ``day``, ``address`` (the change), ``entity_id`` (``id_entity``'s entity of the step's
    smallest input address id)."""
    ins, outs, flags = run_chain
    lookback = ent.exchange_peel_days - 1 if ent.exchange_min_peel_steps > 0 else 0
    if lookback > 0:
        window = (F.col("day") >= F.lit(first_day - dt.timedelta(days=lookback))) & (
            F.col("height") <= end
        )
        ins = read("chain.inputs").filter(window)
        outs = read("chain.outputs").filter(window)
        flags = with_coinjoin_flag(build_tx_summary(ins, outs))
    steps = peel_steps(
        ins, outs, flags, ids.select("address", "address_id", "first_height"), ent.peel_min_ratio
    )
    owners = steps.select(F.col("owner").alias("address_id")).distinct()
    payer = id_entity.join(owners, "address_id").withColumnRenamed("address_id", "owner")
    return steps.join(payer, "owner").select("txid", "height", "day", "address", "entity_id")


def window_edges(read, ids, start, end, first_day, ent) -> DataFrame:
    """The change edges that look days back (``peel_change``: a chain whose second step is in
    the run; ``fingerprint_change``: a change its wallet pays on from in the run;
    ``deposit_change``: a payment whose deposit is swept in the run): the chain tables are
    read from ``entities.peel_max_days`` / ``entities.deposit_max_days`` days before the run's
    first day, so a chain or a sweep crossing the start of a run links as in one run over
    both (``fingerprint_change``: ``entities.fingerprint_max_days``)."""
    peel = "peel_change" in ent.change_heuristics
    deposit = "deposit_change" in ent.change_heuristics
    fingerprint = "fingerprint_change" in ent.change_heuristics
    days = max(
        ent.peel_max_days if peel else 0,
        ent.deposit_max_days if deposit else 0,
        ent.fingerprint_max_days if fingerprint else 0,
    )
    window = (F.col("day") >= F.lit(first_day - dt.timedelta(days=days))) & (F.col("height") <= end)
    ins_w = read("chain.inputs").filter(window)
    outs_w = read("chain.outputs").filter(window)
    flags_w = with_coinjoin_flag(build_tx_summary(ins_w, outs_w))
    id_w = ids.select("address", "address_id", "first_height")
    found = []
    if peel:
        found.append(peel_edges(
            ins_w, outs_w, flags_w, id_w, ent.peel_min_ratio, ent.peel_max_days, start,
        ))  # fmt: skip
    if fingerprint:
        txs_w = read("chain.transactions").filter(window)
        found.append(fingerprint_edges(
            ins_w, outs_w, flags_w, txs_w, id_w, ent.fingerprint_max_days, start,
        ))  # fmt: skip
    if deposit:
        found.append(deposit_edges(
            ins_w, outs_w, flags_w, id_w, ent.sweep_min_inputs, ent.deposit_max_days, start,
        ))  # fmt: skip
    edges = found[0]
    for more in found[1:]:
        edges = edges.unionByName(more)
    return edges


def owner_tags(spark, seeds, old_ids, old_state, outs, flags, ids_range) -> DataFrame:
    """(address_id, tag) for the run's addresses whose owner is already known: a label seed
    (``exchange:LABEL``), an address of a typed entity of older runs (``exchange:LABEL``,
    ``miner``, ``coinjoin``), a coinbase's receiver in the run (``miner``); the guard of the
    change heuristics (:func:`hodlflow.entities.cospend.guard_change_edges`)."""
    typed = old_state.filter(F.col("entity_type") != classify.UNKNOWN).select(
        "entity_id",
        F.when(
            F.col("entity_type") == classify.EXCHANGE,
            F.concat(F.lit("exchange:"), F.coalesce(F.col("label"), F.lit(""))),
        )
        .otherwise(F.col("entity_type"))
        .alias("tag"),
    )
    parts = [
        old_ids.join(typed, "entity_id").select("address_id", "tag"),
        outs.join(flags.filter("is_coinbase").select("txid", "height"), ["txid", "height"])
        .join(ids_range, "address")
        .select("address_id", F.lit(classify.MINER).alias("tag")),
    ]
    if seeds:
        parts.append(
            ids_range.join(seed_frame(spark, seeds), "address").select(
                "address_id", F.concat(F.lit("exchange:"), "seed_label").alias("tag")
            )
        )
    tags = parts[0]
    for more in parts[1:]:
        tags = tags.unionByName(more)
    # One tag per address (the last by name in the rare case of several: any differs from an
    # unknown payer, and the guard only asks whether two tags are equal).
    return tags.groupBy("address_id").agg(F.max("tag").alias("tag"))


def seed_frame(spark, seeds: dict[str, str]) -> DataFrame:
    """The label seeds as a broadcast (address, seed_label) frame."""
    return F.broadcast(
        spark.createDataFrame(sorted(seeds.items()), "address string, seed_label string")
    )


def seed_labels(spark, seeds: dict[str, str], ae_old, new_rows, remapped) -> DataFrame:
    """entity_id → seed_label for the entities holding a seeded address (first label by name
    when two seeds of different labels ended in one entity)."""
    if not seeds:
        return spark.createDataFrame([], "entity_id bigint, seed_label string")
    seed_df = seed_frame(spark, seeds)
    located = remapped(
        ae_old.select("address", "entity_id").join(seed_df.select("address"), "address")
    )
    located = located.unionByName(new_rows.select("address", "entity_id").join(
        seed_df.select("address"), "address"))  # fmt: skip
    return (
        located.join(seed_df, "address")
        .groupBy("entity_id")
        .agg(F.min("seed_label").alias("seed_label"))
    )


def running_totals(daily, start_state, pools_df, seeded, ent) -> DataFrame:
    """Per (day, entity) of the run: running totals, type and holder class at the day's end."""
    upto = (
        Window.partitionBy("entity_id")
        .orderBy("day")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    base = daily.join(start_state.select(
        "entity_id", *(F.col(c).alias(f"_s_{c}") for c in SUMS),
        F.col("first_height").alias("_s_first"), F.col("pool_name").alias("_s_pool"),
        F.col("pool_matched_by").alias("_s_pool_by"),
    ), "entity_id", "left")  # fmt: skip
    base = base.join(pools_df, "entity_id", "left").join(seeded, "entity_id", "left")
    day_cols = [
        F.col(c).alias(f"day_{c}")
        for c in ("received_sats", "sent_sats", "fees_sats", "send_count")
    ]
    running = base.select(
        "day", "entity_id", *day_cols, "seed_label",
        *((F.coalesce(F.col(f"_s_{c}"), F.lit(0)) + F.sum(c).over(upto)).alias(c) for c in SUMS),
        # What it held when the day began (the day's own moves taken off): the age of a payer.
        *((F.coalesce(F.col(f"_s_{c}"), F.lit(0)) + F.sum(c).over(upto) - F.col(c))
          .alias(f"sod_{c}") for c in ("balance_sats", "coin_day_sum")),
        F.least(F.coalesce("_s_first", F.lit(2**31 - 1)), F.min("first_height").over(upto))
        .alias("first_height"),
        F.max("last_height").over(upto).alias("last_height"),
        # The pool: what older runs found, else this run's (it names the entity's coinbases).
        F.coalesce("_s_pool", "run_pool").alias("pool_name"),
        F.coalesce("_s_pool_by", "run_pool_by").alias("pool_matched_by"),
    )  # fmt: skip
    typed = classify.with_type(running, ent)
    return classify.with_holder_class(typed, F.col("day"), ent)


def idle_survivors(start_state, running, pools_df, seeded, ent, end) -> DataFrame:
    """Entities that merged in the run but did not move in it: their summed old totals."""
    idle = start_state.join(running.select("entity_id").distinct(), "entity_id", "left_anti")
    typed = classify.with_type(idle.join(seeded, "entity_id", "left"), ent)
    return typed.withColumn("last_height", F.coalesce("last_height", F.lit(end))).withColumn(
        "first_height", F.coalesce("first_height", F.lit(end))
    )

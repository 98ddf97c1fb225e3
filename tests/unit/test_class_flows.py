"""entities.transfers and entities.class_flows from hand-written per-(transaction, entity) rows:
a payer of no known type is strong or weak by the older of the age of the coins it spends and of
what its entity held when the day began (LTH weight ≥ 0.5, i.e. ≥ 155 days with the default
settings), or of ≥ 60 days (entities.holder.held_days) when it keeps a balance after the day
— except a first spend of young coins, other, or weak when it pays an exchange —, a receiver by
its holder class at the day's end; a typed entity is of its type's class on every day, as its
type is known now."""

from __future__ import annotations

import datetime as dt

from hodlflow.config import load_settings
from hodlflow.entities.transforms import class_flows, entity_transfers

D = dt.date(2025, 1, 10)
COIN = 100_000_000
PER_TX = (
    "txid string, height int, day date, entity_id bigint, in_sats bigint, out_sats bigint, "
    "spent_age_days double"
)
RUNNING = (
    "day date, entity_id bigint, entity_type string, holder_class string, send_count bigint, "
    "day_send_count bigint, sod_balance_sats bigint, sod_coin_day_sum double, balance_sats bigint"
)
# Entities: 1 trader (sold its whole wallet: no balance, no holder class at the day's end),
# 2 whale (strong), 3 old holder, 4 exchange, 5 miner, 6 newcomer (neutral), 7 holder at the
# 155-day edge, 8 holder just under it; all of them spent before D. 9, 10 and 11 spend for the
# first time on D (send_count = that day's sends).
DAY_NUM = (D - dt.date(1970, 1, 1)).days


def _held(btc: float, age_days: float) -> tuple[int, float]:
    """(sod_balance_sats, sod_coin_day_sum) of an entity that began the day holding ``btc``
    of value-weighted age ``age_days`` (coin_day_sum = Σ value × the day it counts from)."""
    return int(btc * COIN), float(btc * COIN * (DAY_NUM - age_days))


# What each held when the day began is what it spends below (12 got its coins that same day).
RUNNING_ROWS = [
    (D, 1, "unknown", None, 4, 1, *_held(3, 10), 0),
    (D, 2, "unknown", "strong", 2, 0, *_held(0, 0), 2 * COIN),
    (
        D,
        3,
        "unknown",
        "weak",
        3,
        1,
        *_held(5, 400),
        1 * COIN,
    ),  # its class at the day's end does not decide how it pays
    (D, 4, "exchange", None, 9, 0, *_held(0, 0), 0),
    (D, 5, "miner", None, 5, 1, *_held(1, 1), 0),
    (D, 6, "unknown", "neutral", 0, 0, *_held(0, 0), 4 * COIN),
    (D, 7, "unknown", "strong", 2, 1, *_held(3, 155), 0),
    (D, 8, "unknown", "weak", 2, 1, *_held(1, 154), 0),
    (D, 9, "unknown", "weak", 1, 1, *_held(1, 4), 0),
    (D, 10, "unknown", "weak", 1, 1, *_held(2, 6), 0),
    (D, 11, "unknown", "strong", 1, 1, *_held(7, 300), 0),
    (D, 12, "unknown", "weak", 1, 1, *_held(0, 0), 0),
    # 13: a long-term holder whose entity began the day with 10 BTC of age 400, its change of
    # yesterday's sale among them; 14: a trader holding 2 BTC bought 5 days ago.
    (D, 13, "unknown", "strong", 3, 1, *_held(10, 400), 8 * COIN),
    (D, 14, "unknown", "weak", 2, 1, *_held(2, 5), 1 * COIN),
    # 15: a long-term holder still buying: 20 BTC of average age 30 (fresh purchases beside
    # a few old coins).
    (D, 15, "unknown", "weak", 4, 1, *_held(20, 30), 17 * COIN),
    # 16: a long-term holder that bought for months (10 BTC of average age 90) and never spent
    # before; 17: a buyer holding 2 BTC of age 90; 18: a holder of 3 BTC of age 59, an earlier
    # seller.
    (D, 16, "unknown", "strong", 1, 1, *_held(10, 90), 9 * COIN),
    (D, 17, "unknown", None, 1, 1, *_held(2, 90), 0),
    (D, 18, "unknown", "weak", 2, 1, *_held(3, 59), 2 * COIN),
]
PER_TX_ROWS = [
    # t1: the trader spends 10-day-old coins (3 BTC): 2 to the whale, 1 back as change.
    ("t1", 100, D, 1, 3 * COIN, 1 * COIN, 10.0),
    ("t1", 100, D, 2, 0, 2 * COIN, None),
    # t2: the old holder spends 400-day-old coins into the exchange.
    ("t2", 101, D, 3, 5 * COIN, 0, 400.0),
    ("t2", 101, D, 4, 0, 5 * COIN, None),
    # t3: the miner (1 BTC) and the holder at exactly 155 days (3 BTC) pay the newcomer 4 BTC.
    ("t3", 102, D, 5, 1 * COIN, 0, 1.0),
    ("t3", 102, D, 7, 3 * COIN, 0, 155.0),
    ("t3", 102, D, 6, 0, 4 * COIN, None),
    # t4: coins of 154 days (LTH weight 0.475) pay the old holder (weak at the day's end).
    ("t4", 103, D, 8, 1 * COIN, 0, 154.0),
    ("t4", 103, D, 3, 0, 1 * COIN, None),
]
# First spends: 9 deposits 4-day-old coins at the exchange (a buyer selling back: weak); 10
# pays 6-day-old coins to the whale (nothing says yet which hands 10 is: other); 11 spends
# 300-day-old coins for the first time into the exchange (old coins: strong); 12 passes coins
# it got the same day on to the exchange (entities.holder.seller_min_hold_days = 2: plumbing,
# an exchange's unlinked change address, not a sale: other).
FIRST_SPENDS = [
    ("t5", 104, D, 9, 1 * COIN, 0, 4.0),
    ("t5", 104, D, 4, 0, 1 * COIN, None),
    ("t6", 105, D, 10, 2 * COIN, 0, 6.0),
    ("t6", 105, D, 2, 0, 2 * COIN, None),
    ("t7", 106, D, 11, 7 * COIN, 0, 300.0),
    ("t7", 106, D, 4, 0, 7 * COIN, None),
    ("t8", 107, D, 12, 3 * COIN, 0, 0.0),
    ("t8", 107, D, 4, 0, 3 * COIN, None),
]


# The entities' current types (entities.entities): what class_flows classes typed entities by.
TYPES = [(4, "exchange"), (5, "miner"), *((n, "unknown") for n in (1, 2, 3, *range(6, 19)))]


def _flows(spark, per_tx_rows, types):
    ent = load_settings("test").entities
    per_tx = spark.createDataFrame(per_tx_rows, PER_TX)
    running = spark.createDataFrame(RUNNING_ROWS, RUNNING)
    transfers = entity_transfers(per_tx, running, ent)
    flows = class_flows(
        transfers, spark.createDataFrame(types, "entity_id bigint, entity_type string")
    )
    return sorted(
        tuple(r)
        for r in flows.select("day", "from_class", "to_class", "value_sats", "transfers").collect()
    )


def test_payers_by_the_age_of_the_coins_they_spend_receivers_by_their_class(spark):
    assert _flows(spark, PER_TX_ROWS, TYPES) == [
        (D, "miner", "other", 1 * COIN, 1),
        (D, "strong", "exchange", 5 * COIN, 1),
        (D, "strong", "other", 3 * COIN, 1),
        (D, "weak", "strong", 2 * COIN, 1),  # the trader selling: weak, though classless after
        (D, "weak", "weak", 1 * COIN, 1),
    ]


def test_a_type_found_later_reclasses_earlier_flows_and_merged_entities_pay_no_flow(spark):
    """The newcomer (6) is found to be an exchange after D: t3's payment to it becomes
    exchange inflow. The whale (2) has since merged into the trader's entity (1): t1's payment
    from 1 to 2 is a transfer inside one entity."""
    merged = [
        (t, h, d, 1 if e == 2 else e, i, o, a) for t, h, d, e, i, o, a in PER_TX_ROWS
    ]  # the transfers' ids after the merge (entities.transfers rewrites them)
    types = [(e, "exchange" if e == 6 else k) for e, k in TYPES if e != 2]
    assert _flows(spark, merged, types) == [
        (D, "miner", "exchange", 1 * COIN, 1),
        (D, "strong", "exchange", 8 * COIN, 2),
        (D, "weak", "weak", 1 * COIN, 1),
    ]


def test_a_first_spend_of_young_coins_is_weak_into_an_exchange_after_days_else_other(spark):
    assert _flows(spark, FIRST_SPENDS, TYPES) == [
        (D, "other", "exchange", 3 * COIN, 1),
        (D, "other", "strong", 2 * COIN, 1),
        (D, "strong", "exchange", 7 * COIN, 1),
        (D, "weak", "exchange", 1 * COIN, 1),
    ]


def _into_exchange(*sales):
    """Per-transaction rows of ``sales`` (txid, height, payer, BTC, age of the coins spent in
    days), each paying the exchange (4) alone."""
    return [
        row
        for txid, height, payer, btc, age in sales
        for row in ((txid, height, D, payer, btc * COIN, 0, age),
                    (txid, height, D, 4, 0, btc * COIN, None))
    ]  # fmt: skip


def test_a_payer_is_judged_by_the_older_of_its_coins_and_what_its_entity_held(spark):
    """13 sells again out of the change of yesterday's sale (coins 1 day old on the chain): the
    change stayed in its entity and kept the age of the coins it came from (entity-adjusted),
    so the sale is a strong hand's. 14 sells coins of the same chain age and is weak: what it
    held was 5 days old. 15 holds mostly fresh purchases (average age 30 days) and sells its
    400-day-old coins: a strong hand's sale too."""
    rows = _into_exchange(
        ("t9", 108, 13, 2, 1.0), ("t10", 109, 14, 1, 1.0), ("t11", 110, 15, 3, 400.0)
    )
    assert _flows(spark, rows, TYPES) == [
        (D, "strong", "exchange", 5 * COIN, 2),
        (D, "weak", "exchange", 1 * COIN, 1),
    ]


def test_a_holder_selling_a_tranche_into_strength_is_strong_an_exit_is_not(spark):
    """16 sells 1 of its 10 BTC of 90 days (entities.holder.held_days = 60) into the exchange,
    its first spend, and holds the rest: a long-term holder taking profit, strong though its
    coins are under the 155 days of the LTH weight. 17 sells all of its coins of the same age:
    an exit, judged by the weight alone (a first spend of young coins into an exchange: weak).
    18 sells 1 of its 3 BTC of 59 days: not held long enough, weak."""
    rows = _into_exchange(
        ("t12", 111, 16, 1, 90.0), ("t13", 112, 17, 2, 90.0), ("t14", 113, 18, 1, 59.0)
    )
    assert _flows(spark, rows, TYPES) == [
        (D, "strong", "exchange", 1 * COIN, 1),
        (D, "weak", "exchange", 3 * COIN, 2),
    ]

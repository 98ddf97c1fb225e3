"""The revised (retroactive) classes of metrics.holder_migration_revised from hand-written
transfers and entity rows: each side of day D's payments classed by what the entity did by
R = min(D + revision_days, the last covered day) — kept its coins (its holder class on R), or
else by its last payment: sold them within the horizon (weak), sold old coins (strong),
passed them on within hours (other) — where the point-in-time classes leave a fresh buyer
``other``."""

from __future__ import annotations

import datetime as dt

from hodlflow.config import load_settings
from hodlflow.metrics.revised import holder_migration_revised, revised_class_flows

D = dt.date(2025, 1, 10)
COIN = 100_000_000
TRANSFERS = (
    "day date, sender bigint, receiver bigint, payer_class string, receiver_class string, "
    "value_sats bigint, transfers bigint"
)
DAILY = (
    "entity_id bigint, day date, balance_sats bigint, coin_age_days double, "
    "receive_count bigint, send_count bigint"
)


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


# 1 an exchange. 2 a buyer that withdraws 1 BTC on D and keeps it. 3 a trader that withdraws
# 2 BTC on D and deposits them all back on D+20. 4 an exchange's change address that common-
# input ownership did not link: 5 BTC in on D and paid on within the day to 5, a customer who
# keeps them. 6 a long-term holder selling 3 of its 10 BTC (bought 300 days before) on D.
# 7 a long-term holder selling its whole 3 BTC, held 300 days, on D. 9 a receiver with no row
# (an id merged away): it keeps its point-in-time class. 8, a long-term holder that swept its
# 6 BTC of 400 days into an address of its own on D (common-input ownership cannot link a
# one-output move): its entity's row of the day before shows only the part it held alone, a
# day old; its payment says what it paid from (strong). 11, a long-term holder that moved its
# 50 BTC of 300 days to an address of its own (12) ten days before D and buys again from D on:
# on D+155 it holds young coins after a spend (weak by the holder rule), and what it last paid
# from says strong. 13, another unlinked change address of the exchange: 3 BTC in on D, 2 paid
# on to customer 14 within the day (plumbing), 0.5 five days later (weak by the point-in-time
# rule); it still holds 0.5 BTC of young coins on D+155. 16 buys 5 BTC on D, pays 2 of them
# three days later to 17 (a first spend to no exchange: no sale, and no plumbing) and keeps
# the rest.
TRANSFER_ROWS = [
    (D, 1, 2, "strong", "other", 1 * COIN, 1),
    (D, 1, 3, "strong", "other", 2 * COIN, 1),
    (D, 1, 4, "strong", "other", 5 * COIN, 1),
    (D, 4, 5, "other", "other", 4 * COIN, 1),
    (D, 6, 1, "strong", "other", 3 * COIN, 1),
    (D, 7, 1, "strong", "other", 3 * COIN, 1),
    (D, 1, 9, "strong", "weak", COIN // 2, 1),
    (day(20), 3, 1, "new", "other", 2 * COIN, 1),
    (D, 8, 10, "strong", "other", 6 * COIN, 1),
    (day(-10), 11, 12, "strong", "strong", 50 * COIN, 1),
    (D, 1, 11, "strong", "other", 2 * COIN, 1),
    (D, 1, 13, "strong", "other", 3 * COIN, 1),
    (D, 13, 14, "other", "other", 2 * COIN, 1),
    (day(5), 13, 15, "weak", "other", COIN // 2, 1),
    (D, 1, 16, "strong", "other", 5 * COIN, 1),
    (day(3), 16, 17, "new", "other", 2 * COIN, 1),
]
DAILY_ROWS = [
    (1, D, 90 * COIN, 1.0, 50, 40),
    (2, D, 1 * COIN, 0.0, 1, 0),
    (3, D, 2 * COIN, 0.0, 1, 0),
    (3, day(20), 0, None, 1, 1),
    (4, D, 0, None, 1, 1),  # empty at the end of the day it received
    (5, D, 4 * COIN, 0.0, 1, 0),
    (6, day(-300), 10 * COIN, 0.0, 1, 0),
    (6, D, 7 * COIN, 300.0, 1, 1),
    (7, day(-300), 3 * COIN, 0.0, 1, 0),
    (7, D, 0, None, 1, 1),
    (8, day(-1), 1 * COIN, 1.0, 1, 0),
    (8, D, 0, None, 6, 1),
    (10, D, 6 * COIN, 400.0, 1, 0),
    (11, day(-310), 50 * COIN, 0.0, 1, 0),
    (11, day(-10), 0, None, 1, 1),
    (11, D, 2 * COIN, 0.0, 2, 1),
    (11, day(150), 30 * COIN, 5.0, 10, 1),
    (12, day(-10), 50 * COIN, 300.0, 1, 0),
    (13, D, 1 * COIN, 0.0, 1, 1),
    (13, day(5), COIN // 2, 5.0, 1, 2),
    (14, D, 2 * COIN, 0.0, 1, 0),
    (16, D, 5 * COIN, 0.0, 1, 0),
    (16, day(3), 3 * COIN, 3.0, 1, 1),
    (17, day(3), 2 * COIN, 3.0, 1, 0),
]


def _frames(spark):
    types = spark.createDataFrame(
        [(1, "exchange"), *((i, "unknown") for i in range(2, 18))],
        "entity_id bigint, entity_type string",
    )
    return (
        spark.createDataFrame(TRANSFER_ROWS, TRANSFERS),
        spark.createDataFrame(DAILY_ROWS, DAILY),
        types,
    )


def _matrix(df) -> dict[tuple[dt.date, str, str], float]:
    return {(r.day, r.from_class, r.to_class): r.value_sats / COIN for r in df.collect()}


def test_each_side_is_classed_by_what_the_entity_did_within_the_horizon(spark):
    s = load_settings("test").entities
    assert s.holder.revision_days == 155
    transfers, daily, types = _frames(spark)
    got = _matrix(revised_class_flows(transfers, daily, types, day(200), s))
    assert got == {
        (D, "exchange", "strong"): 8.0,  # 2 kept its coins 155 days (point in time: other); 11;
        # 16
        (D, "exchange", "weak"): 2.5,  # 3 sold all after 20 days (a first spend): weak; 9 keeps
        # its point-in-time weak
        (D, "exchange", "other"): 8.0,  # 4 and 13 passed coins on the same day: plumbing
        (D, "other", "strong"): 6.0,  # ... to 5 and 14, who kept them
        (day(5), "other", "other"): 0.5,  # 13 is plumbing whatever it does next (15: no row)
        (D, "strong", "exchange"): 6.0,  # 6 still holds 7 BTC; 7 left with 300-day-old coins
        (D, "strong", "strong"): 6.0,  # 8's move to an address of its own
        (day(20), "weak", "exchange"): 2.0,  # 3's sale (point in time: a first spend, weak)
        (day(-10), "strong", "strong"): 50.0,  # 11 to its own new address
        (day(3), "strong", "strong"): 2.0,  # 16 to 17, both holding on D+158
    }


def test_near_the_last_day_the_classes_are_those_of_the_last_covered_day(spark):
    s = load_settings("test").entities
    transfers, daily, types = _frames(spark)
    got = _matrix(revised_class_flows(transfers, daily, types, day(30), s).filter(f"day = '{D}'"))
    # By D+30, 2 has held 30 days (< held_days 60), never spent, 1 BTC: still neutral (other);
    # 5 likewise; 3 had already sold (weak); 11 is weak by the holder rule, strong by what it
    # last paid from; 16 holds 3 BTC of 30 days after a spend (weak by the holder rule) and last
    # paid no exchange (other).
    assert got == {
        (D, "exchange", "strong"): 2.0,
        (D, "exchange", "other"): 14.0,
        (D, "exchange", "weak"): 2.5,
        (D, "other", "other"): 6.0,
        (D, "strong", "exchange"): 6.0,
        (D, "strong", "strong"): 6.0,
    }


def test_the_table_rows_carry_the_day_they_are_revised_as_of_and_whether_settled(spark):
    s = load_settings("test").entities
    transfers, daily, types = _frames(spark)
    rows = {
        r.day: r
        for r in holder_migration_revised(spark, transfers, daily, types, D, day(200), s).collect()
    }
    assert sorted(rows) == [day(i) for i in range(201)]
    first = rows[D]
    assert (first.as_of_day, first.settled) == (day(155), True)
    assert (rows[day(45)].as_of_day, rows[day(45)].settled) == (day(200), True)
    assert (rows[day(46)].as_of_day, rows[day(46)].settled) == (day(200), False)
    # D: strong +8 (bought) +6 (from 4 and 13, plumbing) −6 (sold) = +8; weak +2.5;
    # net ½(8 − 2.5).
    # (11's move of D−10, before the first day, is read for its class only.)
    assert (first.strong_net_inflow_btc, first.weak_net_inflow_btc) == (8.0, 2.5)
    assert first.net_weak_to_strong_btc == 2.75
    assert (first.exchange_to_strong_btc, first.exchange_to_weak_btc) == (8.0, 2.5)
    assert rows[day(20)].net_weak_to_strong_btc == 1.0  # weak hands sold 2 BTC
    assert rows[day(1)].net_weak_to_strong_btc == 0.0

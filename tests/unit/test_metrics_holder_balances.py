"""What strong and weak hands hold per day (metrics.holder_migration strong_balance_btc,
weak_balance_btc) from hand-written entities.entity_daily rows: an entity that does not move
keeps its balance while its coins age, and its holder class is decided again each day
(defaults of conf/hodlflow.yaml: strong at w ≥ 0.5, i.e. a coin age ≥ 155 days; a large holder
never spent holding ≥ 10 BTC; a holder at 60 days, spent or not; weak when it has
spent coins younger than that)."""

from __future__ import annotations

import datetime as dt

import pytest

from hodlflow.config import load_settings
from hodlflow.metrics.concentration import concentration, holdings, with_holder_class_on

D = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(4)]
COIN = 100_000_000
SETTINGS = load_settings("test").entities
DAILY = (
    "day date, entity_id bigint, entity_type string, received_sats bigint, sent_sats bigint, "
    "fees_sats bigint, balance_sats bigint, coin_age_days double, lth_weight double, "
    "holder_class string, receive_count bigint, send_count bigint"
)


def _row(day, entity, etype, balance, age, receives, sends):
    return (D[day], entity, etype, 0, 0, 0, balance * COIN, age, None, None, receives, sends)


def _held(spark, types=True, in_holdings=False):
    daily = spark.createDataFrame(
        [
            # 1: spent before, 58.5 days old on d0: weak on d0 and d1, strong from d2 (60.5 days:
            #    entities.holder.held_days) without moving again.
            _row(0, 1, "unknown", 10, 58.5, 1, 1),
            # 2: one receipt of 4 BTC, never spent: neutral; a second receipt on d2 makes it a
            #    large holder (strong) with 12.
            _row(0, 2, "unknown", 4, 0.0, 1, 0),
            _row(2, 2, "unknown", 12, 1.0, 2, 0),
            # 6: two receipts, never spent, but 3 BTC (under large_holder_min_btc): neutral.
            _row(0, 6, "unknown", 3, 0.0, 2, 0),
            # 3: an exchange: no holder class.
            _row(0, 3, "exchange", 100, 3.0, 9, 9),
            # 4: untyped on its day, an exchange by the latest run (entities.entities): no class.
            _row(0, 4, "unknown", 5, 10.0, 3, 2),
            # 5: never spent, 59.5 days on d1 (neutral), held from d2 (60.5), spends all on d3.
            _row(1, 5, "unknown", 7, 59.5, 1, 0),
            _row(3, 5, "unknown", 0, None, 1, 1),
        ],
        DAILY,
    )
    merges = spark.createDataFrame([], "old_entity_id bigint, new_entity_id bigint, end_height int")
    runs = spark.createDataFrame([], "end_height int, first_day date")
    latest = spark.createDataFrame(
        [
            (1, "unknown"),
            (2, "unknown"),
            (3, "exchange"),
            (4, "exchange"),
            (5, "unknown"),
            (6, "unknown"),
        ],  # fmt: skip
        "entity_id bigint, entity_type string",
    )
    if in_holdings:  # the metrics step's way: the latest types joined before the expansion
        return with_holder_class_on(
            holdings(daily, merges, runs, D[0], D[3], latest), None, SETTINGS
        )
    held = holdings(daily, merges, runs, D[0], D[3])
    return with_holder_class_on(held, latest if types else None, SETTINGS)


def test_holder_class_is_decided_again_each_day_as_the_coins_age(spark):
    got = {(r.day, r.entity_id): r.holder_class for r in _held(spark).collect()}
    assert [got[(d, 1)] for d in D] == ["weak", "weak", "strong", "strong"]
    assert [got[(d, 2)] for d in D] == ["neutral", "neutral", "strong", "strong"]
    assert [got.get((d, 5)) for d in D] == [None, "neutral", "strong", None]  # d3: empty
    assert [got[(d, 6)] for d in D] == ["neutral"] * 4
    assert {got[(d, 3)] for d in D} == {got[(d, 4)] for d in D} == {None}


def test_the_row_type_stays_for_the_other_columns(spark):
    types = {
        r.entity_id: r.entity_type for r in _held(spark).filter("day = DATE'2025-01-01'").collect()
    }
    assert types[4] == "unknown"  # reserves and accumulators read the row's type as before


def test_strong_and_weak_balances_per_day_by_hand(spark):
    rows = {r.day: r for r in concentration(_held(spark), 2).collect()}
    # d0: 1 weak (10); d1: 1 weak (10); d2: 1 + 2 + 5 strong (10 + 12 + 7); d3: 1 + 2 (5 spent).
    # 6 (3 BTC, neutral) is in neither.
    assert [rows[d].strong_balance_btc for d in D] == pytest.approx([0, 0, 29, 22])
    assert [rows[d].weak_balance_btc for d in D] == pytest.approx([10, 10, 0, 0])
    assert [rows[d].entities_holding for d in D] == [5, 6, 6, 5]


def test_without_the_latest_types_the_rows_type_decides(spark):
    rows = {r.day: r for r in concentration(_held(spark, types=False), 2).collect()}
    assert rows[D[0]].weak_balance_btc == pytest.approx(15)  # 4 is weak by its row (spent)


def test_the_latest_types_joined_in_holdings_give_the_same_classes(spark):
    key = lambda r: (r.day, r.entity_id)  # noqa: E731
    apart = sorted((key(r), r.holder_class, r.entity_type) for r in _held(spark).collect())
    joined = sorted((key(r), r.holder_class, r.entity_type)
                     for r in _held(spark, in_holdings=True).collect())  # fmt: skip
    assert joined == apart

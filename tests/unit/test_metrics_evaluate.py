"""The true concentration the evaluation compares with: top-N share of entity balances per day,
worked by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from hodlflow.metrics.evaluate import top_share

D = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(3)]


def test_top_share_of_balances_at_each_days_end_by_hand(spark):
    moves = spark.createDataFrame(
        [
            (D[0], "a", 60), (D[0], "b", 30), (D[0], "c", 10),
            # d1: a pays 50 to b, c receives 40 more.
            (D[1], "a", -50), (D[1], "b", 50), (D[1], "c", 40),
            # d2: b spends everything (to outside the set), d: dust of 0 is not holding.
            (D[2], "b", -80), (D[2], "d", 0),
        ],
        "day date, entity string, value_sats bigint",
    )  # fmt: skip
    days = spark.createDataFrame([(d,) for d in D], "day date")
    got = {r.day: r.share for r in top_share(moves, days, 1).collect()}
    # d0: a 60 of 100; d1: a 10, b 80, c 50 → 80/140; d2: a 10, c 50 → 50/60.
    assert got == pytest.approx({D[0]: 0.6, D[1]: 80 / 140, D[2]: 50 / 60})
    two = {r.day: r.share for r in top_share(moves, days, 2).collect()}
    assert two == pytest.approx({D[0]: 0.9, D[1]: 130 / 140, D[2]: 1.0})

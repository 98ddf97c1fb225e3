"""Exchange flows, holder migration (direct flows and the net migration rule) and class flows in
BTC/USD from hand-written class flows."""

from __future__ import annotations

import datetime as dt

import pytest

from hodlflow.metrics.flows import entity_flows, exchange_flows, holder_migration
from hodlflow.sim.truth import net_weak_to_strong

D = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(3)]
FLOWS = "day date, from_class string, to_class string, value_sats bigint, transfers bigint"
COIN = 100_000_000


def _flows(spark):
    return spark.createDataFrame(
        [
            (D[0], "weak", "exchange", 3 * COIN, 2),
            (D[0], "exchange", "strong", 5 * COIN, 1),
            (D[0], "exchange", "exchange", 7 * COIN, 1),  # between exchanges: not a flow
            (D[0], "weak", "strong", 2 * COIN, 1),
            # d1: weak hands pay a coinjoin, strong hands take the same out of it; within a
            # class (strong to strong, weak to weak) nothing migrates.
            (D[1], "weak", "coinjoin", 2 * COIN, 1),
            (D[1], "coinjoin", "strong", 2 * COIN, 1),
            (D[1], "strong", "strong", 9 * COIN, 1),
            (D[1], "weak", "weak", 4 * COIN, 1),
            (D[2], "strong", "weak", 1 * COIN, 1),
            (D[2], "miner", "exchange", 4 * COIN, 1),
        ],
        FLOWS,
    )


def _days(spark):
    return spark.createDataFrame([(d,) for d in D], "day date")


def test_exchange_in_out_net_and_running_balance(spark):
    rows = {r.day: r for r in exchange_flows(_days(spark), _flows(spark), 10.0).collect()}
    assert (rows[D[0]].inflow_btc, rows[D[0]].outflow_btc, rows[D[0]].netflow_btc) == (
        3.0,
        5.0,
        -2.0,
    )
    assert (rows[D[1]].inflow_btc, rows[D[1]].netflow_btc) == (0.0, 0.0)  # a quiet day is 0
    assert [rows[d].flow_balance_btc for d in D] == [8.0, 8.0, 12.0]


def test_direct_flows_between_weak_and_strong_and_their_difference(spark):
    rows = {r.day: r for r in holder_migration(_days(spark), _flows(spark)).collect()}
    assert (rows[D[0]].weak_to_strong_btc, rows[D[0]].direct_net_weak_to_strong_btc) == (2.0, 2.0)
    assert (rows[D[0]].exchange_to_strong_btc, rows[D[0]].weak_to_exchange_btc) == (5.0, 3.0)
    assert (rows[D[2]].strong_to_weak_btc, rows[D[2]].direct_net_weak_to_strong_btc) == (1.0, -1.0)
    assert rows[D[1]].direct_net_weak_to_strong_btc == 0.0  # no direct payment that day


def test_net_migration_is_half_the_strong_net_inflow_less_the_weak_net_inflow(spark):
    rows = {r.day: r for r in holder_migration(_days(spark), _flows(spark)).collect()}
    # d0: strong received 5 (exchange) + 2 (weak) = 7, paid nothing; weak paid 3 + 2 = 5:
    # ½(7 − (−5)) = 6 — the direct 2 in full, the 3 deposited and 5 withdrawn half each.
    d0 = rows[D[0]]
    assert (d0.strong_net_inflow_btc, d0.weak_net_inflow_btc, d0.net_weak_to_strong_btc) == (
        7.0, -5.0, 6.0
    )  # fmt: skip
    # d1: through a coinjoin 2 in, 2 out: ½(2 − (−2)) = 2; strong→strong and weak→weak cancel.
    d1 = rows[D[1]]
    assert (d1.strong_net_inflow_btc, d1.weak_net_inflow_btc, d1.net_weak_to_strong_btc) == (
        2.0, -2.0, 2.0
    )  # fmt: skip
    # d2: strong paid weak 1; the miner's deposit touches neither class.
    d2 = rows[D[2]]
    assert (d2.strong_net_inflow_btc, d2.weak_net_inflow_btc, d2.net_weak_to_strong_btc) == (
        -1.0, 1.0, -1.0
    )  # fmt: skip


def test_net_migration_is_the_truths_rule(spark):
    """The same numbers as hodlflow.sim.truth.net_weak_to_strong on each day's pairs."""
    flows = _flows(spark).collect()
    rows = {r.day: r for r in holder_migration(_days(spark), _flows(spark)).collect()}
    for d in D:
        pairs: dict[tuple[str, str], float] = {}
        for f in flows:
            if f.day == d:
                key = (f.from_class, f.to_class)
                pairs[key] = pairs.get(key, 0.0) + f.value_sats / COIN
        assert rows[d].net_weak_to_strong_btc == pytest.approx(net_weak_to_strong(pairs)), d


def test_class_flows_in_btc_and_usd(spark):
    prices = spark.createDataFrame([(D[0], 50_000.0)], "day date, close_usd double")
    rows = {
        (r.day, r.from_class, r.to_class): r for r in entity_flows(_flows(spark), prices).collect()
    }
    r = rows[(D[0], "weak", "exchange")]
    assert (r.value_btc, r.value_usd, r.transfers) == (3.0, 150_000.0, 2)
    assert rows[(D[2], "miner", "exchange")].value_usd is None  # no price that day
    assert len(rows) == 10

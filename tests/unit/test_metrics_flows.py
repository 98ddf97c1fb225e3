"""Exchange flows, holder migration and class flows in BTC/USD from hand-written class flows."""

from __future__ import annotations

import datetime as dt

from hodlflow.metrics.flows import entity_flows, exchange_flows, holder_migration

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
            (D[2], "strong", "weak", 1 * COIN, 1),
            (D[2], "miner", "exchange", 4 * COIN, 1),
        ],
        FLOWS,
    )


def _days(spark):
    return spark.createDataFrame([(d,) for d in D], "day date")


def test_exchange_in_out_net_and_running_balance(spark):
    rows = {r.day: r for r in exchange_flows(_days(spark), _flows(spark), 10.0).collect()}
    assert (rows[D[0]].inflow_btc, rows[D[0]].outflow_btc, rows[D[0]].netflow_btc) == (3.0, 5.0, -2.0)
    assert (rows[D[1]].inflow_btc, rows[D[1]].netflow_btc) == (0.0, 0.0)  # a quiet day is 0
    assert [rows[d].flow_balance_btc for d in D] == [8.0, 8.0, 12.0]


def test_weak_to_strong_migration_and_net(spark):
    rows = {r.day: r for r in holder_migration(_days(spark), _flows(spark)).collect()}
    assert (rows[D[0]].weak_to_strong_btc, rows[D[0]].net_weak_to_strong_btc) == (2.0, 2.0)
    assert (rows[D[0]].exchange_to_strong_btc, rows[D[0]].weak_to_exchange_btc) == (5.0, 3.0)
    assert (rows[D[2]].strong_to_weak_btc, rows[D[2]].net_weak_to_strong_btc) == (1.0, -1.0)
    assert rows[D[1]].net_weak_to_strong_btc == 0.0


def test_class_flows_in_btc_and_usd(spark):
    prices = spark.createDataFrame([(D[0], 50_000.0)], "day date, close_usd double")
    rows = {(r.day, r.from_class, r.to_class): r for r in entity_flows(_flows(spark), prices).collect()}
    r = rows[(D[0], "weak", "exchange")]
    assert (r.value_btc, r.value_usd, r.transfers) == (3.0, 150_000.0, 2)
    assert rows[(D[2], "miner", "exchange")].value_usd is None  # no price that day
    assert len(rows) == 6

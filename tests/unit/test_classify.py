"""Entity typing and holder-class rules on hand-written running totals (defaults of
conf/hodlflow.yaml: 20 sweeps and 20 addresses for a sweeping exchange, half of the receipts for
exchange-fed and 1-hop, a busy peel-paying day for a hot wallet, half of the moved value for coinjoin; holder: 155 days, w ≥ 0.5, 2
receipts, 60 days held)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pyspark.sql import functions as F

from hodlflow.config import load_settings
from hodlflow.entities import classify

COLS = (
    "name string, seed_label string, coinbase_sats bigint, sweep_count bigint, "
    "address_count bigint, from_exchange_sats bigint, coinjoin_sats bigint, moved_sats bigint, "
    "from_miner_sats bigint, received_sats bigint, pool_name string, pool_matched_by string, "
    "busy_peel_days bigint"
)
SETTINGS = load_settings("test").entities


def _types(spark, rows):
    df = spark.createDataFrame(rows, COLS)
    out = classify.with_type(df, SETTINGS).collect()
    return {r.name: (r.entity_type, r.label, r.label_source, r.miner_hop) for r in out}


def test_each_rule_and_its_precedence(spark):
    rows = [
        # name, seed, coinbase, sweeps, addrs, from_ex, cj, moved, from_miner, received, pool, by,
        # busy days
        ("seeded_miner", "Ex", 5, 0, 1, 0, 0, 10, 0, 5, "P", "tag", 0),
        ("pool", None, 5, 0, 1, 0, 0, 10, 0, 5, "P", "tag", 0),
        ("solo", None, 5, 0, 1, 0, 0, 10, 0, 5, None, None, 0),
        ("sweeper", None, 0, 20, 20, 0, 0, 10, 0, 5, None, None, 0),
        ("few_sweeps", None, 0, 19, 500, 0, 0, 10, 0, 5, None, None, 0),
        ("few_addresses", None, 0, 500, 19, 0, 0, 10, 0, 5, None, None, 0),
        ("hot_wallet", None, 0, 0, 2, 6, 0, 10, 0, 10, None, None, 0),
        ("mixer", None, 0, 0, 1, 0, 5, 10, 0, 5, None, None, 0),
        ("member", None, 0, 0, 1, 0, 0, 10, 5, 10, None, None, 0),
        ("buyer", None, 0, 0, 1, 0, 0, 10, 4, 10, None, None, 0),
        # paid ≥ 10 peel steps within 7 days on some day: a hot wallet by its pace
        ("busy_payer", None, 0, 0, 3, 0, 0, 10, 0, 10, None, None, 1),
        ("busy_miner", None, 5, 0, 1, 0, 0, 10, 0, 5, "P", "tag", 1),
    ]
    assert _types(spark, rows) == {
        "seeded_miner": ("exchange", "Ex", "seed", None),
        "pool": ("miner", "P", "pool_tag", 0),
        "solo": ("miner", None, None, 0),
        "sweeper": ("exchange", None, None, None),
        "few_sweeps": ("unknown", None, None, None),
        "few_addresses": ("unknown", None, None, None),
        "hot_wallet": ("exchange", None, None, None),
        "mixer": ("coinjoin", None, None, None),
        "member": ("miner", None, None, 1),
        "buyer": ("unknown", None, None, None),
        "busy_payer": ("exchange", None, None, None),
        "busy_miner": ("miner", "P", "pool_tag", 0),
    }


HOLD = (
    "name string, entity_type string, balance_sats bigint, coin_day_sum double, "
    "receive_count bigint, send_count bigint"
)
DAY = dt.date(2025, 1, 1)
DAY_NUM = (DAY - dt.date(1970, 1, 1)).days


def _held(age_days: float, value: int = 100) -> float:
    """coin_day_sum of ``value`` sats whose value-weighted age on DAY is ``age_days``."""
    return float(value * (DAY_NUM - age_days))


def test_holder_classes_from_age_accumulation_holding_and_spending(spark):
    rows = [
        ("old", "unknown", 100, _held(200), 1, 3),
        ("at_155", "unknown", 100, _held(155), 1, 3),
        ("young_spender", "unknown", 100, _held(30), 3, 1),
        # entities.holder.large_holder_min_btc = 10: exactly 10 BTC never spent is a large
        # holder's, in two receipts or in one (a fund's withdrawal to its cold storage); a
        # retail buyer's 1 BTC in three receipts is not yet anything, nor 10 BTC of a spender.
        ("accumulator", "unknown", 10 * 10**8, _held(5, 10 * 10**8), 2, 0),
        ("large_buyer", "unknown", 10 * 10**8, _held(5, 10 * 10**8), 1, 0),
        ("large_spender", "unknown", 10 * 10**8, _held(5, 10 * 10**8), 1, 1),
        ("small_accumulator", "unknown", 10**8, _held(5, 10**8), 3, 0),
        ("dormant", "unknown", 100, _held(60), 1, 0),
        ("fresh", "unknown", 100, _held(59), 1, 0),
        # sold a part and holds the rest, 60 days old (entity-adjusted): a holder taking profit
        # into strength; a day younger, a spender of young coins.
        ("tranche_seller", "unknown", 100, _held(60), 4, 2),
        ("young_tranche_seller", "unknown", 100, _held(59), 4, 2),
        ("empty", "unknown", 0, 0.0, 1, 1),
        ("exchange", "exchange", 100, _held(300), 5, 5),
    ]
    df = spark.createDataFrame(rows, HOLD)
    out = {
        r.name: (r.holder_class, r.coin_age_days, r.lth_weight)
        for r in classify.with_holder_class(df, F.lit(DAY), SETTINGS).collect()
    }
    assert {k: v[0] for k, v in out.items()} == {
        "old": "strong",
        "at_155": "strong",
        "young_spender": "weak",
        "accumulator": "strong",
        "large_buyer": "strong",
        "large_spender": "weak",
        "small_accumulator": "neutral",
        "dormant": "strong",
        "fresh": "neutral",
        "tranche_seller": "strong",
        "young_tranche_seller": "weak",
        "empty": None,
        "exchange": None,
    }
    assert out["young_spender"][1] == pytest.approx(30.0)
    assert out["young_spender"][2] == pytest.approx(1 / (1 + math.exp(-0.1 * (30 - 155))))
    assert out["at_155"][2] == pytest.approx(0.5)
    assert out["empty"][1:] == (None, None)

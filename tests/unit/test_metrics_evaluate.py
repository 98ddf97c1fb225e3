"""The evaluation's comparisons with the truth: the true top-N share of entity balances per day,
worked by hand; the per-day flow, migration and balance series (ours and the truth's by the same
rule) and their totals, correlations and sign agreement, against a pure-Python oracle."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from hodlflow.metrics.evaluate import top_share
from hodlflow.sim.truth import net_weak_to_strong

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


# ---------------------------------------------------------------------------- flows per day

E = [dt.date(2025, 6, 1) + dt.timedelta(days=i) for i in range(5)]
COIN = 100_000_000
OURS = [  # (day, from, to, BTC): metrics.entity_flows
    (0, "weak", "exchange", 4.0), (0, "exchange", "strong", 3.0), (0, "weak", "strong", 1.0),
    (1, "strong", "exchange", 6.0), (1, "exchange", "weak", 2.0), (1, "miner", "exchange", 5.0),
    (2, "weak", "strong", 0.5), (2, "exchange", "exchange", 9.0),
    (3, "strong", "weak", 2.0), (3, "weak", "exchange", 1.0),
    (4, "weak", "strong", 100.0),  # past the covered days: not compared
]  # fmt: skip
TRUE = [  # (day, from, to, BTC): truth/daily_flows.csv
    (0, "weak", "exchange", 5.0), (0, "exchange", "strong", 5.0), (0, "other", "weak", 1.0),
    (1, "strong", "exchange", 8.0), (1, "exchange", "weak", 4.0), (1, "miner", "exchange", 5.0),
    (2, "exchange", "exchange", 9.0), (2, "weak", "strong", 0.04),
    (3, "strong", "weak", 3.0), (3, "exchange", "strong", 1.0),
]  # fmt: skip
OUR_HELD = {0: (10.0, 4.0), 1: (6.0, 7.0), 2: (6.5, 7.0), 3: (5.0, 8.0)}  # strong, weak
TRUE_HELD = {0: (12.0, 3.0), 1: (5.0, 9.0), 2: (5.5, 9.0), 3: (6.0, 8.5), 4: (1.0, 1.0)}


def _compare(spark):
    from hodlflow.metrics.evaluate import compare_daily

    migration = spark.createDataFrame(
        [(E[d], 0.0, *OUR_HELD[d]) for d in range(4)] + [(E[4], None, None, None)],
        "day date, net_weak_to_strong_btc double, strong_balance_btc double, "
        "weak_balance_btc double",
    )
    ours = spark.createDataFrame(
        [(E[d], a, b, v) for d, a, b, v in OURS],
        "day date, from_class string, to_class string, value_btc double",
    )
    true = spark.createDataFrame(
        [(E[d], a, b, round(v * COIN)) for d, a, b, v in TRUE],
        "day date, from_class string, to_class string, value_sats bigint",
    )
    balances = spark.createDataFrame(
        [(E[d], c, round(v * COIN)) for d, held in TRUE_HELD.items()
         for c, v in zip(("strong", "weak", "exchange"), (*held, 50.0), strict=True)],
        "day date, class string, balance_sats bigint",
    )  # fmt: skip
    return compare_daily(migration, ours, true, balances)


def _oracle_day(flows, d):
    pairs: dict[tuple[str, str], float] = {}
    for day, a, b, v in flows:
        if day == d:
            pairs[(a, b)] = pairs.get((a, b), 0.0) + v

    def net(cls):
        return sum(v for (a, b), v in pairs.items() if b == cls and a != cls) - sum(
            v for (a, b), v in pairs.items() if a == cls and b != cls
        )

    return {
        "net_weak_to_strong_btc": net_weak_to_strong(pairs),
        "direct_net_weak_to_strong_btc": pairs.get(("weak", "strong"), 0.0)
        - pairs.get(("strong", "weak"), 0.0),
        "strong_net_inflow_btc": net("strong"),
        "weak_net_inflow_btc": net("weak"),
        "exchange_inflow_btc": sum(v for (a, b), v in pairs.items() if b == "exchange" != a),
        "exchange_outflow_btc": sum(v for (a, b), v in pairs.items() if a == "exchange" != b),
        "exchange_to_weak_btc": pairs.get(("exchange", "weak"), 0.0),
        "volume": sum(pairs.values()),
    }


def test_daily_comparison_is_the_same_rule_on_both_sides(spark):
    rows = {r.day: r for r in _compare(spark).collect()}
    assert sorted(rows) == E[:4]  # the days our net migration is known
    for d in range(4):
        ours, true, r = _oracle_day(OURS, d), _oracle_day(TRUE, d), rows[E[d]]
        for key in ours:
            if key != "volume":
                assert getattr(r, key) == pytest.approx(ours[key]), (d, key)
                assert getattr(r, f"true_{key}") == pytest.approx(true[key]), (d, key)
        assert r.true_volume_btc == pytest.approx(true["volume"])
        assert (r.strong_balance_btc, r.true_strong_balance_btc) == pytest.approx(
            (OUR_HELD[d][0], TRUE_HELD[d][0])
        )
        assert (r.weak_balance_btc, r.true_weak_balance_btc) == pytest.approx(
            (OUR_HELD[d][1], TRUE_HELD[d][1])
        )
    assert rows[E[0]].strong_balance_change_btc is None
    assert rows[E[1]].true_strong_balance_change_btc == pytest.approx(5.0 - 12.0)
    assert rows[E[2]].other_to_weak_btc == 0.0 and rows[E[0]].true_other_to_weak_btc == 1.0


def _pearson(xs, ys):
    return statistics.correlation(xs, ys)


def test_series_stats_against_a_pure_python_oracle(spark):
    from hodlflow.metrics.evaluate import series_stats

    stats = series_stats(_compare(spark), min_share=0.01)
    days = range(4)
    ours = [_oracle_day(OURS, d) for d in days]
    true = [_oracle_day(TRUE, d) for d in days]
    for key in ("net_weak_to_strong_btc", "strong_net_inflow_btc", "exchange_inflow_btc",
                "exchange_to_weak_btc"):  # fmt: skip
        o, t = [x[key] for x in ours], [x[key] for x in true]
        s = stats[key]
        assert (s["days"], s["of"]) == (4, "sum")
        assert (s["ours"], s["true"]) == pytest.approx((sum(o), sum(t)))
        assert s["total_error"] == pytest.approx(abs(sum(o) - sum(t)) / abs(sum(t)))
        assert s["correlation"] == pytest.approx(_pearson(o, t))
    # Sign agreement of the net migration, by hand: true nets 4.5, −6, 0.04, −2.5 against
    # volumes 11, 17, 9.04, 4; d2's 0.04 is under 1 % of 9.04 (0.0904): not judged.
    net = stats["net_weak_to_strong_btc"]
    t = [x["net_weak_to_strong_btc"] for x in true]
    assert t == pytest.approx([4.5, -6.0, 0.04, -2.5])
    o = [x["net_weak_to_strong_btc"] for x in ours]
    assert o == pytest.approx([4.5, -4.0, 0.5, -1.5])
    assert (net["positive_days"], net["positive_right"], net["positive_share"]) == (1, 1, 1.0)
    assert (net["negative_days"], net["negative_right"], net["negative_share"]) == (2, 2, 1.0)
    direct = stats["direct_net_weak_to_strong_btc"]  # ours 1, 0, 0.5, −2; true 0, 0, 0.04, −3
    assert (direct["positive_days"], direct["negative_days"], direct["negative_right"]) == (0, 1, 1)
    assert direct["positive_share"] is None
    # Balances: means over the days; their changes are signed sums.
    bal = stats["strong_balance_btc"]
    assert (bal["of"], bal["ours"], bal["true"]) == (
        "mean",
        pytest.approx(27.5 / 4),
        pytest.approx(28.5 / 4),
    )
    assert "positive_days" not in bal
    ch = stats["strong_balance_change_btc"]  # ours −4, 0.5, −1.5; true −7, 0.5, 0.5
    assert (ch["days"], ch["ours"], ch["true"]) == (3, pytest.approx(-5.0), pytest.approx(-6.0))
    # Against volumes 17, 9.04, 4: +0.5 > 0.0904 (ours +0.5: right), +0.5 > 0.04 (ours −1.5).
    assert (
        ch["positive_days"],
        ch["positive_right"],
        ch["negative_days"],
        ch["negative_right"],
    ) == (2, 1, 1, 1)


def test_series_table_prints_a_line_per_series():
    from hodlflow.metrics.evaluate import format_series_table

    stats = {
        "net_weak_to_strong_btc": {"days": 4, "of": "sum", "ours": 1.5, "true": -3.0,
                                   "total_error": 1.5, "correlation": 0.25, "positive_days": 2,
                                   "positive_right": 1, "positive_share": 0.5,
                                   "negative_days": 0, "negative_right": 0, "negative_share": None},
        "weak_to_coinjoin_btc": {"days": 4, "of": "sum", "ours": 0.0, "true": 0.0,
                                 "total_error": None, "correlation": None},
    }  # fmt: skip
    lines = format_series_table(stats).splitlines()
    assert len(lines) == 2  # the pair that is 0 on both sides is left out
    assert lines[1].split() == ["net_weak_to_strong", "sum", "1.5", "-3.0", "150.0%", "0.250",
                                "0.50", "(1/2)", "n/a", "(0/0)"]  # fmt: skip

"""evaluate-suite's table and measures, from hand-written evaluation results (no Spark)."""

from __future__ import annotations

import pytest

from hodlflow.suite import (
    MEASURES,
    format_suite_table,
    met,
    scenario_measures,
    suite_scenarios,
    worst,
)


def _result(precision=1.0, net=(90.0, 100.0), sign=(9, 10, 4, 5), inflow=(103.0, 100.0)):
    return {
        "entities": {
            "clustering": {"precision": precision, "adjusted_rand_index": 0.5},
            "exchanges": {"address_recall": 0.95},
            "miners": {"address_recall": 0.9},
        },
        "holders_over_days": {"all": {
            "decided_share": 0.7, "worst_decided_share": 0.5, "worst_decided": "0.500 on d",
            "right_share": 0.9, "worst_right_share": 0.8, "worst_right": "0.800 on d",
            "holders": 10,
        }},
        "flow_series": {
            "net_weak_to_strong_btc": {
                "ours": net[0], "true": net[1], "correlation": 0.85,
                "positive_days": sign[1], "positive_right": sign[0], "positive_share": sign[0] / sign[1],
                "negative_days": sign[3], "negative_right": sign[2], "negative_share": sign[2] / sign[3],
            },
            "revised_net_weak_to_strong_btc": {
                "ours": 104.0, "true": net[1], "correlation": 0.95,
                "negative_days": 5, "negative_right": 4, "negative_share": 0.8,
            },
            "exchange_inflow_btc": {"ours": inflow[0], "true": inflow[1]},
            "exchange_outflow_btc": {"ours": 100.0, "true": 100.0},
        },
        "miner_series": {
            "miner_outflow_btc": {"ours_btc": 99.0, "true_btc": 100.0},
            "miner_to_exchange_btc": {"ours_btc": 50.0, "true_btc": 40.0},
        },
    }  # fmt: skip


def test_measures_are_read_from_an_evaluation_with_signed_errors():
    m = scenario_measures(_result())
    assert m["net_error"] == pytest.approx(-0.1)
    assert m["exchange_inflow_error"] == pytest.approx(0.03)
    assert m["miner_to_exchange_error"] == pytest.approx(0.25)
    assert (m["net_sign_positive"], m["net_sign_positive_days"], m["net_sign_positive_right"]) == (
        0.9,
        10,
        9,
    )
    assert (m["decided_worst_day"], m["right"]) == (0.5, 0.9)
    # The revised series, shown beside the point-in-time one.
    assert m["revised_net_error"] == pytest.approx(0.04)
    assert (m["revised_net_correlation"], m["revised_net_sign_negative"]) == (0.95, 0.8)
    assert (m["revised_net_sign_negative_days"], m["revised_net_sign_negative_right"]) == (5, 4)


def test_worst_and_goals():
    by_key = {x.key: x for x in MEASURES}
    assert worst(by_key["precision"], [0.999, 0.95, None]) == 0.95
    assert worst(by_key["net_error"], [0.1, -0.3, 0.2]) == -0.3  # the largest in size
    assert met(by_key["net_error"], -0.19) and not met(by_key["net_error"], -0.21)
    assert met(by_key["precision"], 0.99) and not met(by_key["ari"], 0.69)
    assert met(by_key["net_ours"], 5.0) is None and worst(by_key["net_ours"], [1.0]) is None


def test_the_table_has_a_line_per_scenario_then_worst_goal_and_met():
    rows = [
        ("a", scenario_measures(_result())),
        ("b", scenario_measures(_result(precision=0.98, net=(-50.0, 100.0), sign=(3, 10, 5, 5)))),
    ]
    lines = format_suite_table(rows).splitlines()
    assert [ln.split()[0] for ln in lines] == ["scenario", "a", "b", "worst", "goal", "goal"]
    worst_line = lines[3]
    assert "0.980" in worst_line and "-150.0%" in worst_line and "0.30 (3/10)" in worst_line
    met_line = lines[5].split()
    assert met_line[:4] == ["goal", "met", "NO", "NO"]  # precision 0.98, ARI 0.5
    md = format_suite_table(rows, markdown=True).splitlines()
    assert md[0].startswith("| scenario | precision | ARI |") and md[1].startswith("|---|")
    head = md[0].split(" | ")
    cells = dict(zip(head, md[2].split(" | "), strict=True))
    assert (cells["rev net err"], cells["rev corr"], cells["rev sign -"]) == (
        "+4.0%", "0.950", "0.80 (4/5)",
    )  # fmt: skip
    # No goal: nothing judged in the worst and met lines.
    worst_cells = dict(zip(head, md[-3].split(" | "), strict=True))
    assert worst_cells["rev corr"] == ""
    assert len(md) == 2 + 2 + 3


def test_quick_suites_have_only_random_scenarios_and_the_default_has_the_named_ones_first():
    assert [s.name for s in suite_scenarios(1, 2, quick=True)] == [
        "random-1-0-quick",
        "random-1-1-quick",
    ]
    names = [s.name for s in suite_scenarios(1, 3)]
    assert names == ["capitulation", "distribution", "random-1-0", "random-1-1", "random-1-2"]

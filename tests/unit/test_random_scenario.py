"""The suite's random scenarios: a pure function of (seed, index), valid for parse_scenario, of
the promised sizes and variety, and the same YAML after a round trip."""

from __future__ import annotations

import pytest
import yaml

from hodlflow.sim.random_scenario import production_cost_usd, random_scenario
from hodlflow.sim.scenario import parse_scenario

SEEDS = range(50)


def _cost(data) -> float:
    c, m = data["chain"], data["cost_model"]
    return production_cost_usd(
        c["difficulty"], m["efficiency_j_per_th"], m["power_usd_per_kwh"], m["pue"]
    )


@pytest.mark.parametrize("quick", [False, True])
def test_every_seed_gives_a_valid_scenario_of_the_promised_size(quick):
    for seed in SEEDS:
        data = random_scenario(seed, seed % 3, quick=quick)
        # Through YAML as the suite writes it into the scenario's folder.
        s = parse_scenario(yaml.safe_load(yaml.safe_dump(data, sort_keys=False)), data["name"])
        story = [p for p in s.phases if p.activity >= 1.0]
        assert 3 <= len(story) <= 5, seed
        assert (12 <= s.days <= 25) if quick else (100 <= s.days <= 250), (seed, s.days)
        if not quick:
            assert 30 <= s.phases[0].days <= 90 and s.phases[0].activity < 1.0
        assert 2 <= len(s.agents.pools) <= 5 and 2 <= len(s.agents.exchanges) <= 5


def test_the_same_seed_gives_the_same_scenarios_and_others_differ():
    assert [random_scenario(s, i) for s in SEEDS for i in range(2)] == [
        random_scenario(s, i) for s in SEEDS for i in range(2)
    ]
    names = {yaml.safe_dump(random_scenario(s, i)) for s in SEEDS for i in range(2)}
    assert len(names) == 2 * len(SEEDS)


def test_the_draws_vary_what_the_analyzer_is_sensitive_to():
    drawn = [random_scenario(s, 0) for s in SEEDS]
    ex = [e for d in drawn for e in d["agents"]["exchanges"]]
    assert {e["withdrawal_batch"] for e in ex} >= {1, 4, 8, 20}
    assert {e["change_to_hot_address"] for e in ex} == {True, False}
    assert {e["sweep_every_days"] for e in ex} >= {1, 2, 3}
    strong = [d["agents"]["strong_holders"] for d in drawn]
    assert {s["take_profit_above"] is None for s in strong} == {True, False}
    assert {d["agents"]["late_buyers"]["count"] > 0 for d in drawn} == {True, False}
    # Every story turns far over the production cost or under it, and both kinds occur.
    tops = [max(p["end_usd"] for p in d["phases"][1:]) / _cost(d) for d in drawn]
    lows = [min(p["end_usd"] for p in d["phases"][1:]) / _cost(d) for d in drawn]
    assert all(t >= 1.95 or lo <= 0.96 for t, lo in zip(tops, lows, strict=True))
    assert any(t >= 1.95 for t in tops) and any(lo < 1.0 for lo in lows)


def test_the_production_cost_is_the_metrics_formula():
    # 1.1e14 difficulty: 7.87e8 TH/s × 30 J/TH × 24 / 1000 × 0.05 $/kWh × 1.1 / (140 × 3.125 BTC).
    hash_ths = 1.1e14 * 2**32 / 600 / 1e12
    assert production_cost_usd(1.1e14, 30, 0.05, 1.1, 140) == pytest.approx(
        hash_ths * 30 * 24 / 1000 * 0.05 * 1.1 / (140 * 3.125)
    )

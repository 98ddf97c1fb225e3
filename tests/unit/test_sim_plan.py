"""The simulator's plans alone (hodlflow.sim.plan): the block schedule and the market are pure
functions of the scenario, checked against Bitcoin's retarget rule and the production-cost
definition worked by hand, without running any agent."""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path

import pytest
import yaml

from hodlflow.sim.plan import plan_chain, plan_market
from hodlflow.sim.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "conf" / "scenarios" / "tiny.yaml").read_text())


def scenario(**changes):
    """tiny.yaml with top-level sections replaced or updated (dicts are merged one level)."""
    data = copy.deepcopy(TINY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_scenario(data)


def test_the_plans_depend_on_the_scenario_only_and_not_on_its_agents():
    sc = scenario()
    fewer = scenario(agents={**TINY["agents"], "weak_traders": {**TINY["agents"]["weak_traders"], "count": 3}})  # fmt: skip
    assert plan_chain(sc) == plan_chain(sc) == plan_chain(fewer)
    assert plan_market(sc, plan_chain(sc)) == plan_market(fewer, plan_chain(fewer))
    assert plan_chain(scenario(seed=8)) != plan_chain(sc)


def test_each_day_holds_its_blocks_in_order_and_the_heights_follow_on():
    sc = scenario()
    chain = plan_chain(sc)
    start = int(dt.datetime(2025, 3, 1, tzinfo=dt.UTC).timestamp())
    assert chain.start_ts == start
    assert len(chain.blocks_per_day) == 6
    assert chain.first_height[0] == 880000
    for d in range(1, 6):
        assert chain.first_height[d] == chain.first_height[d - 1] + chain.blocks_per_day[d - 1]
    assert chain.tip_height == 880000 + sum(chain.blocks_per_day) - 1
    assert len(chain.block_times) == len(chain.block_bits) == sum(chain.blocks_per_day)
    i = 0
    for d, n in enumerate(chain.blocks_per_day):
        day_times = chain.block_times[i : i + n]
        assert all(start + d * 86_400 <= t < start + (d + 1) * 86_400 for t in day_times)
        assert day_times == sorted(set(day_times))  # strictly increasing
        i += n
    # The daily noise telescopes: the run's total stays within a day's noise of the plan.
    planned = 3 * 144 + 3 * 140
    assert abs(sum(chain.blocks_per_day) - planned) <= 3 * math.sqrt(144 / 2) + 1
    assert chain.activity == [1.0] * 6
    assert chain.cum_activity == [float(k) for k in range(7)]


def test_the_difficulty_retargets_at_a_multiple_of_2016_by_how_fast_the_blocks_came():
    # Twice mainnet's pace (288 a day) from 100 blocks before a retarget height: the window
    # of 2016 blocks ends with those 100 in about half their time; the heights before the start
    # count 600 s each. Bitcoin's rule: new target = old × actual span / two weeks.
    sc = scenario(
        chain={"start_height": 2016 * 500 - 100, "retarget": True},
        phases=[{"name": "fast", "days": 3, "blocks_per_day": 288, "activity": 1.0, "end_usd": 90000}],
    )  # fmt: skip
    chain = plan_chain(sc)
    at = 100  # index of height 2016 × 500
    before, after = chain.block_difficulty[at - 1], chain.block_difficulty[at]
    assert before == pytest.approx(1.1e14, rel=1e-3)
    assert set(chain.block_bits[:at]) == {chain.block_bits[0]}
    assert set(chain.block_bits[at:]) == {chain.block_bits[at]}
    # Span = time of height H − 1 (the 100th planned block) − time of height H − 2016 (1,916
    # heights before the start at 600 s): the difficulty grows by two weeks / span ≈ 1.026.
    span = (chain.block_times[at - 1] - chain.start_ts) + 1916 * 600
    assert after / before == pytest.approx(2016 * 600 / span, rel=2e-3)
    unchanged = plan_chain(scenario(chain={"start_height": 2016 * 500 - 100, "retarget": False},
                                    phases=sc_phases(sc)))  # fmt: skip
    assert set(unchanged.block_bits) == {chain.block_bits[0]}


def sc_phases(sc):
    return [{"name": p.name, "days": p.days, "blocks_per_day": p.blocks_per_day,
             "activity": p.activity, "end_usd": p.end_usd} for p in sc.phases]  # fmt: skip


def test_the_production_cost_is_the_fleets_electricity_over_the_btc_mined():
    # No price noise: the price walks in log space to each phase's end exactly.
    sc = scenario(price={"start_usd": 96000, "daily_volatility": 0.0})
    chain = plan_chain(sc)
    market = plan_market(sc, chain)
    assert market.price[2] == 94000 and market.price[5] == 58000
    assert market.price[0] == pytest.approx(96000 * (94000 / 96000) ** (1 / 3), abs=0.01)
    # Day 0 by hand: hash rate = Σ difficulty × 2^32 / 600 / 144 (H/s); power = hash rate in
    # TH/s × 30 J/TH = W; × 24 h / 1000 = kWh; × 0.05 $/kWh × PUE 1.1 = USD; over the BTC
    # mined (3.125 BTC subsidy a block at height 880,000: the fourth halving era).
    n = chain.blocks_per_day[0]
    hash_rate = n * chain.block_difficulty[0] * 2**32 / 600 / 144
    usd = hash_rate / 1e12 * 30 * 24 / 1000 * 0.05 * 1.1
    assert market.electricity[0] == pytest.approx(usd, rel=1e-9)
    assert market.cost[0] == pytest.approx(usd / (n * 3.125), rel=1e-9)
    assert 60_000 < market.cost[0] < 80_000  # the scenario's "~$69k"
    assert market.ratio[0] == pytest.approx(market.price[0] / market.cost[0])
    assert market.cum_electricity[-1] == pytest.approx(sum(market.electricity))
    # Holders buy dip_multiplier times more under cost (the last days), 1× otherwise.
    sh = sc.agents.strong_holders
    steps = [b - a for a, b in zip(market.cum_demand, market.cum_demand[1:], strict=False)]
    want = [sh.dip_multiplier if r < 1 else sh.expensive_multiplier if r > sh.expensive_ratio
            else 1.0 for r in market.ratio]  # fmt: skip
    assert steps == pytest.approx(want)
    assert market.ratio[5] < 1 < market.ratio[0]


def test_fee_rates_rise_when_the_price_falls_under_the_cost():
    sc = scenario(price={"start_usd": 96000, "daily_volatility": 0.0})
    market = plan_market(sc, plan_chain(sc))
    for phase_range, r, rate in zip(
        [p.fee_rate_sat_vb for p in sc.phase_of_day()], market.ratio, market.fee_rates, strict=True
    ):
        lo, hi = phase_range
        factor = 1 + 1.5 * max(0.0, 1 - r)
        assert lo * factor <= rate <= hi * factor

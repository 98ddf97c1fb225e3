"""Random scenarios for the evaluation suite: a pure function of a seed (and an index) to a
scenario dict that :func:`hodlflow.sim.scenario.parse_scenario` accepts, so the same seed always
gives the same scenarios.

Each scenario is small (~100–250 days at full block density, a short quiet history, a few
hundred to a few thousand agents) and varies what the analyzer is sensitive to: how many
pools, exchanges, holders, traders and payment users there are and which scripts they use;
the exchanges' habits (withdrawal batches, change back to the hot address or to a fresh one,
sweeping every day or every few days); address reuse; a price path of 3–5 story phases that
can rise far above the production cost or fall under it; long-term holders taking profit and
late buyers on or off. ``quick=True`` gives tiny-sized scenarios (a couple of weeks, a few
dozen agents) for tests.

>>> from hodlflow.sim.scenario import parse_scenario
>>> s = parse_scenario(random_scenario(1, 0), "random")
>>> 100 <= s.days <= 250 and 3 <= len([p for p in s.phases if p.activity >= 1]) <= 5
True
>>> random_scenario(1, 0) == random_scenario(1, 0) != random_scenario(1, 1)
True
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

SUBSIDY_BTC = 3.125
SCRIPTS = ("p2wpkh", "p2pkh", "p2sh_p2wpkh", "p2tr", "p2wsh", "p2sh_multisig")
POOL_NAMES = ("Ore", "Lode", "Vein", "Quarry", "Shaft", "Seam", "Drift", "Adit")
EXCHANGE_NAMES = ("Tradewell", "Coinbourse", "Kryptomart", "Satsmarkt", "Blockhalle", "Ledgerly")


def production_cost_usd(difficulty: float, chain_eff: float, power: float, pue: float,
                        blocks_per_day: int = 144) -> float:  # fmt: skip
    """The production cost per BTC at ``difficulty`` (the metrics' formula: hash rate in TH/s ×
    J/TH × 24 / 1000 × $/kWh × PUE / BTC mined a day, fees left out).

    >>> round(production_cost_usd(1.1e14, 30, 0.05, 1.1, 140) / 1000)
    71
    """
    hash_ths = difficulty * 2**32 / 600 / 1e12
    return hash_ths * chain_eff * 24 / 1000 * power * pue / (blocks_per_day * SUBSIDY_BTC)


def _weights(rng: random.Random, kinds: tuple[str, ...], n: int) -> dict[str, float]:
    return {k: float(rng.randint(1, 4)) for k in rng.sample(kinds, n)}


def _price_path(rng: random.Random, cost: float, phases: int) -> list[float]:
    """End prices (USD) of the story phases: a walk in the price/cost ratio that either rises
    far over the cost (a top over 2×) or falls under it, clipped to 0.5–3.5×."""
    ratio = rng.uniform(1.2, 1.6)
    up = rng.random() < 0.5
    ratios = []
    for i in range(phases):
        if i == phases // 2:  # the story's turn: far above, or under the cost
            target = rng.uniform(2.0, 3.2) if up else rng.uniform(0.6, 0.95)
        else:
            target = ratio * math.exp(rng.uniform(-0.35, 0.35))
        ratio = min(3.5, max(0.5, target))
        ratios.append(ratio)
    return [round(r * cost, -2) for r in ratios]


def random_scenario(seed: int, index: int = 0, quick: bool = False) -> dict[str, Any]:
    """Scenario number ``index`` of ``seed``: a dict for
    :func:`~hodlflow.sim.scenario.parse_scenario` (plain YAML types). See the module doc."""
    rng = random.Random(seed * 1_000_003 + index)
    name = f"random-{seed}-{index}{'-quick' if quick else ''}"
    start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 500))
    difficulty = rng.uniform(7e13, 1.2e14)
    eff, power, pue = rng.uniform(20, 32), rng.uniform(0.04, 0.065), rng.uniform(1.05, 1.2)
    cost = production_cost_usd(difficulty, eff, power, pue)
    k = 0.04 if quick else 1.0  # agent counts: tiny-sized when quick
    story = rng.randint(3, 5)
    days = [rng.randint(3, 4) for _ in range(story)] if quick else [
        rng.randint(15, 40) for _ in range(story)
    ]  # fmt: skip
    lo = max(30, 100 - sum(days))
    history = rng.randint(3, 5) if quick else rng.randint(lo, max(lo, min(90, 245 - sum(days))))
    ends = _price_path(rng, cost, story)
    start_usd = round(cost * rng.uniform(1.1, 1.5), -2)
    phases = [{
        "name": "history", "days": history, "blocks_per_day": 144, "activity": 0.1,
        "end_usd": round(start_usd * rng.uniform(0.95, 1.1), -2), "fee_rate_sat_vb": [2, 10],
    }]  # fmt: skip
    for i, (n, end) in enumerate(zip(days, ends, strict=True)):
        under = end < cost
        phases.append({
            "name": f"story-{i + 1}-{'under' if under else 'over'}-{end / cost:.1f}x",
            "days": n, "blocks_per_day": rng.randint(136, 142) if under else 144,
            "activity": 1.0, "end_usd": end,
            "fee_rate_sat_vb": [rng.randint(2, 5), rng.randint(10, 40)],
        })  # fmt: skip

    def count(lo: int, hi: int) -> int:
        return max(1, round(rng.randint(lo, hi) * k))

    pools = []
    for base in rng.sample(POOL_NAMES, rng.randint(2, 5)):
        pools.append({
            "name": f"{base}Pool", "tag": f"/{base}Pool/", "hashrate_share": round(rng.uniform(0.05, 0.35), 3),
            "members": count(5, 25), "payout_every_days": rng.randint(1, 3),
            "coinbase_script": rng.choice(SCRIPTS[:4]), "wallet_script": rng.choice(SCRIPTS[:4]),
            "coinbase_addresses": rng.randint(1, 3), "member_scripts": _weights(rng, SCRIPTS[:4], 2),
        })  # fmt: skip
    exchanges = []
    for base in rng.sample(EXCHANGE_NAMES, rng.randint(2, 5)):
        exchanges.append({
            "name": base, "market_share": round(rng.uniform(0.05, 0.4), 3),
            "deposit_script": rng.choice(SCRIPTS[:4]), "hot_script": rng.choice(SCRIPTS[:4]),
            "cold_script": rng.choice(("p2wsh", "p2sh_multisig", "p2tr")),
            "hot_addresses": rng.randint(1, 3), "cold_addresses": rng.randint(1, 2),
            "withdrawal_batch": rng.choice((1, 1, 4, 8, 20)),
            "change_to_hot_address": rng.random() < 0.5,
            "sweep_every_days": rng.choice((1, 1, 2, 3)),
        })  # fmt: skip
    take_profit = rng.random() < 0.5
    strong = {
        "count": count(80, 400), "daily_usd": round(rng.uniform(2e6, 2e7) * max(k, 0.1), -3),
        "concentration": round(rng.uniform(1.2, 2.0), 2), "buy_every_days": rng.randint(7, 21),
        "spend_prob_per_year": round(rng.uniform(0.05, 0.2), 3),
        "address_reuse": round(rng.uniform(0.05, 0.6), 2),
        "whale_address_reuse": round(rng.uniform(0.5, 0.95), 2) if rng.random() < 0.6 else None,
        "take_profit_above": round(rng.uniform(1.4, 2.0), 2) if take_profit else None,
        "take_profit_fraction": round(rng.uniform(0.03, 0.1), 3),
        "scripts": _weights(rng, SCRIPTS, 3),
    }  # fmt: skip
    if strong["whale_address_reuse"] is None:  # the whales reuse like the others
        del strong["whale_address_reuse"]
    late = rng.random() < 0.5
    coinjoin_users = 0 if rng.random() < 0.3 else max(4, count(10, 60))
    participants = [3, max(3, min(rng.randint(5, 12), coinjoin_users or 12))]
    agents = {
        "pools": pools,
        "solo_miners": ({"count": rng.randint(1, 4), "hashrate_share": 0.05}
                        if rng.random() < 0.7 else {"count": 0}),
        "miners": {
            "sell_every_days": rng.randint(1, 10), "otc_share": round(rng.uniform(0, 0.2), 3),
            "address_reuse": round(rng.uniform(0.5, 0.95), 2),
        },
        "exchanges": exchanges,
        "inter_exchange": {"daily_prob": round(rng.uniform(0, 0.3), 3), "fraction": 0.02},
        "strong_holders": strong,
        "weak_traders": {
            "count": count(100, 700), "trade_usd": round(rng.uniform(5e3, 5e4), -2),
            "entry_every_days": rng.randint(5, 15),
            "hold_days": [rng.randint(1, 5), rng.randint(10, 40)],
            "otc_share": round(rng.uniform(0, 0.15), 3),
            "address_reuse": round(rng.uniform(0, 0.4), 2),
            "scripts": _weights(rng, SCRIPTS[:4], 2),
        },
        "forced_sellers": {
            "count": count(0, 300), "position_usd": round(rng.uniform(5e4, 8e5), -3),
            "buy_above_ratio": round(rng.uniform(1.1, 2.0), 2), "buy_every_days": 15,
            "sell_below_ratio": round(rng.uniform(0.9, 1.1), 2),
            "otc_share": round(rng.uniform(0, 0.3), 3),
        },
        "late_buyers": ({
            "count": count(200, 1500), "position_usd": round(rng.uniform(2e4, 1.5e5), -3),
            "momentum_days": rng.randint(20, 45),
            "enter_above_momentum": round(rng.uniform(1.2, 1.5), 2),
        } if late else {"count": 0}),
        "coinjoin": {"users": coinjoin_users, "participants": participants},
        "payments": {
            "users": count(200, 1500), "merchants": count(10, 60),
            "payments_per_user_day": round(rng.uniform(0.05, 0.2), 3),
            "address_reuse": round(rng.uniform(0, 0.3), 2),
        },
    }  # fmt: skip
    if agents["solo_miners"]["count"] == 0:
        agents["solo_miners"] = {"count": 0, "hashrate_share": 0.0}
    return {
        "name": name,
        "description": (
            f"Drawn from seed {seed}, index {index}: {story} story phases after {history} quiet "
            f"days; production cost ~${cost:,.0f} at the start; price/cost ends "
            + ", ".join(f"{e / cost:.2f}" for e in ends)
            + f"; take profit {'on' if take_profit else 'off'}, late buyers "
            f"{'on' if late else 'off'}."
        ),
        "seed": rng.randint(1, 2**31 - 1),
        "scale": 1.0,
        "chain": {
            "start_height": rng.randint(840_000, 880_000),
            "start_date": start.isoformat(),
            "difficulty": float(f"{difficulty:.3e}"),
            "retarget": True,
            "stale_blocks": rng.randint(1, 3),
            "blk_file_mb": 16.0 if not quick else 0.5,
            "out_of_order": 0.02,
        },  # fmt: skip
        "cost_model": {
            "efficiency_j_per_th": round(eff, 2),
            "power_usd_per_kwh": round(power, 4),
            "pue": round(pue, 3),
        },  # fmt: skip
        "price": {"start_usd": start_usd, "daily_volatility": round(rng.uniform(0.01, 0.03), 3)},
        "phases": phases,
        "agents": agents,
    }

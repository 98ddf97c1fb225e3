"""The simulator's plans, drawn before anyone acts: the block schedule and the market.

Both are pure functions of the scenario (and its seed): the same scenario gives the same plans,
and each draws from its own random stream, so changing what agents do never moves a block or a
price. The day's production cost is known from the planned blocks before the day starts, so
agents can compare the price with it (hash rate from difficulty × fleet efficiency × power
price × PUE, over the BTC mined that day).

    chain = plan_chain(load_scenario("tiny"))
    market = plan_market(load_scenario("tiny"), chain)
    market.ratio[0]   # price / production cost on the first day
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from hodlflow.chain.network import MAIN
from hodlflow.sim import fastchain as fc
from hodlflow.sim.fastchain import COIN
from hodlflow.sim.scenario import Phase, Scenario

DAY_SECONDS = 86_400
RETARGET_INTERVAL = 2016
TARGET_TIMESPAN = RETARGET_INTERVAL * 600
POW_LIMIT = fc.bits_to_target(MAIN.pow_limit_bits)


class SimulationError(RuntimeError):
    """The scenario cannot be simulated as asked (e.g. more transactions than block space)."""


@dataclass(frozen=True)
class ChainPlan:
    """The block schedule of a whole run, one entry per day or per block (index = height −
    the scenario's ``chain.start_height``)."""

    phase_of_day: list[Phase]
    activity: list[float]  # per day: its phase's activity
    cum_activity: list[float]  # running sum of activity, days + 1 entries, starting at 0
    start_ts: int  # Unix time of the first day's 00:00 UTC
    blocks_per_day: list[int]
    first_height: list[int]  # per day: height of its first block
    tip_height: int
    block_times: list[int]  # per block: header time
    block_bits: list[int]  # per block: nBits
    block_difficulty: list[float]  # per block: difficulty of its nBits


@dataclass(frozen=True)
class MarketPlan:
    """Per day: the price, what mining costs, and the fee rate."""

    price: list[float]  # close, USD
    electricity: list[float]  # USD the network's fleet spends on power that day
    cost: list[float]  # production cost, USD per BTC mined (subsidy only)
    ratio: list[float]  # price / cost
    cum_electricity: list[float]  # running sum, days + 1 entries, starting at 0
    cum_demand: list[float]  # running sum of long-term holders' buying multiplier, days + 1
    fee_rates: list[float]  # sat/vB


def plan_chain(sc: Scenario) -> ChainPlan:
    """Blocks per day, header times and nBits for the whole run.

    Daily counts vary like mainnet's (standard deviation about √blocks_per_day) without
    drifting: each day's count is blocks_per_day plus the difference of two independent
    draws, so the noise of consecutive days cancels and a phase keeps days × blocks_per_day.
    Header times are spread over the UTC day, strictly increasing. nBits follow Bitcoin's
    retarget every 2016 blocks from the header times when ``chain.retarget`` is on (heights
    before the start are taken to have come every 600 s), clamped to 4× either way.
    Raises :class:`SimulationError` when a day cannot hold its blocks.
    """
    chain = sc.chain
    rng = random.Random(f"hodlflow-sim:blocks:{sc.seed}")
    phase_of_day = sc.phase_of_day()
    activity = [p.activity for p in phase_of_day]
    cum_activity = [0.0]
    for a in activity:
        cum_activity.append(cum_activity[-1] + a)
    start_ts = int(dt.datetime.combine(chain.start_date, dt.time(), tzinfo=dt.UTC).timestamp())
    counts, times = [], []
    noise = 0.0
    for d, phase in enumerate(phase_of_day):
        bpd = phase.blocks_per_day
        fresh = rng.gauss(0.0, math.sqrt(bpd / 2)) if bpd >= 24 else 0.0
        n = max(1, min(2000, round(bpd + fresh - noise)))
        noise = fresh
        offsets = sorted(rng.randrange(DAY_SECONDS) for _ in range(n))
        base = start_ts + d * DAY_SECONDS
        prev = -1
        for off in offsets:
            off = max(off, prev + 1)
            prev = off
            times.append(base + off)
        if prev >= DAY_SECONDS:  # a day of over 86,400 blocks is refused by the scenario
            raise SimulationError(f"day {d}: too many blocks to fit the day")
        counts.append(n)
    first_height = []
    h = chain.start_height
    for n in counts:
        first_height.append(h)
        h += n
    target = fc.bits_to_target(fc.difficulty_to_bits(chain.difficulty))
    bits = fc.target_to_bits(target)
    start = chain.start_height

    def time_at(height: int) -> int:
        i = height - start
        return times[i] if i >= 0 else start_ts - (-i) * 600

    block_bits = []
    for i in range(len(times)):
        height = start + i
        if chain.retarget and height % RETARGET_INTERVAL == 0 and i > 0:
            span = time_at(height - 1) - time_at(height - RETARGET_INTERVAL)
            span = min(max(span, TARGET_TIMESPAN // 4), TARGET_TIMESPAN * 4)
            target = min(fc.bits_to_target(bits) * span // TARGET_TIMESPAN, POW_LIMIT)
            bits = fc.target_to_bits(target)
        block_bits.append(bits)
    return ChainPlan(
        phase_of_day=phase_of_day,
        activity=activity,
        cum_activity=cum_activity,
        start_ts=start_ts,
        blocks_per_day=counts,
        first_height=first_height,
        tip_height=h - 1,
        block_times=times,
        block_bits=block_bits,
        block_difficulty=[fc.difficulty_of_bits(b) for b in block_bits],
    )


def plan_market(sc: Scenario, chain: ChainPlan) -> MarketPlan:
    """Price, production cost and fee rate per day.

    The price walks in log space from each phase's start to its ``end_usd`` with AR(1) noise
    (0.85 persistence, the scenario's ``daily_volatility``). The production cost of day d is
    the fleet's electricity — hash rate (Σ difficulty of the day's blocks × 2³² / 600 / 144)
    × J/TH × 24 h × USD/kWh × PUE — over the subsidy of the day's blocks (fees are not known
    before the day is mined; the truth file recomputes it with fees). Long-term holders' demand
    multiplier is ``dip_multiplier`` under cost, ``expensive_multiplier`` over
    ``expensive_ratio`` × cost, else 1. The fee rate is drawn within the phase's range and
    raised up to 2.5× as the price falls under the cost (miners and forced sellers compete
    for block space).
    """
    rng = random.Random(f"hodlflow-sim:price:{sc.seed}")
    prices = []
    logp = math.log(sc.price.start_usd)
    noise = 0.0
    sigma = sc.price.daily_volatility
    for phase in sc.phases:
        end = math.log(phase.end_usd)
        for k in range(phase.days):
            trend = logp + (end - logp) * (k + 1) / phase.days
            noise = 0.85 * noise + rng.gauss(0.0, sigma)
            prices.append(round(math.exp(trend + noise), 2))
        logp = end
    cm = sc.cost_model
    electricity, cost = [], []
    i = 0
    for d, n in enumerate(chain.blocks_per_day):
        diff_sum = sum(chain.block_difficulty[i : i + n])
        subsidy = sum(MAIN.subsidy(chain.first_height[d] + k) for k in range(n))
        i += n
        hash_rate = diff_sum * 2**32 / 600 / 144
        usd = hash_rate / 1e12 * cm.efficiency_j_per_th * 24 / 1000 * cm.power_usd_per_kwh * cm.pue
        electricity.append(usd)
        cost.append(usd / (subsidy / COIN) if subsidy else float("inf"))
    ratio = [p / c for p, c in zip(prices, cost, strict=True)]
    cum_electricity = [0.0]
    for usd in electricity:
        cum_electricity.append(cum_electricity[-1] + usd)
    sh = sc.agents.strong_holders
    cum_demand = [0.0]
    for r in ratio:
        m = (
            sh.dip_multiplier
            if r < 1
            else (sh.expensive_multiplier if r > sh.expensive_ratio else 1.0)
        )
        cum_demand.append(cum_demand[-1] + m)
    lo_hi = [p.fee_rate_sat_vb for p in chain.phase_of_day]
    fee_rates = [
        rng.uniform(lo, hi) * (1 + 1.5 * max(0.0, 1 - r))
        for (lo, hi), r in zip(lo_hi, ratio, strict=True)
    ]
    return MarketPlan(
        price=prices,
        electricity=electricity,
        cost=cost,
        ratio=ratio,
        cum_electricity=cum_electricity,
        cum_demand=cum_demand,
        fee_rates=fee_rates,
    )

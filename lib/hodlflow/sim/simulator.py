"""The ground-truth chain simulator: agents with known habits write a mainnet-format chain.

``run_simulation("capitulation", "out")`` reads a scenario (``conf/scenarios/*.yaml``, see
:mod:`hodlflow.sim.scenario`) and writes::

    out/blocks/          blk*.dat (+ xor.dat): Bitcoin Core's layout, a few stale blocks,
                         some blocks stored after their child
    out/prices.csv       day, close_usd
    out/truth/addresses.csv, daily_flows.csv, daily_balances.csv, miner_daily.csv
                         (schemas/truth.*.yaml)
    out/labels/pools.json, exchanges.csv   what an analyst knows publicly: the pools' coinbase
                         tags and the exchanges' cold wallets (hodlflow.entities.labels formats)
    out/manifest.json    what to give the ingest (network main, check_pow false, start hash
                         and height), counts, seed, scale, the cost model

How a day runs (the same seed and scenario give byte-identical files):

1. the block schedule of the whole run is drawn first (blocks per day, header times spread over
   the UTC day, nBits with Bitcoin's 2016-block retarget), so the day's production cost —
   hash rate from difficulty × fleet efficiency × power price × PUE / BTC mined — is known
   before anyone acts, and agents compare it with the scenario's price;
2. coinbase outputs 100 blocks deep mature into their miner's wallet;
3. pools pay their members (one transaction spends many coinbase outputs, many outputs);
   agents whose turn it is act (miners sell to cover electricity, holders buy, traders open or
   close positions, forced sellers capitulate, users pay merchants, merchants cash out);
   coinjoin rounds run; exchanges sweep deposits into hot wallets, pay withdrawals (queued by
   the buyers), move coins between hot and cold wallets and to other exchanges;
4. the day's transactions fill the day's blocks in order (a block holds at most 4M weight
   units; the rest waits for the next block) and the ground truth (flows between classes, what
   each class holds, the miners' day) is booked on the day of the block.

Reactions to the price (ratio = price / production cost): under 1, miners sell more than they
mine (electricity costs more BTC) plus part of their reserve; forced sellers sell everything;
traders hold for shorter and open fewer positions; long-term holders buy more (and withdraw
what they buy from exchanges). Long-term holders' weights are log-normal, so a few whales
absorb most of it and holdings concentrate. In a rally, long-term holders may distribute
(``take_profit_above``: they sell to exchanges while the price is far over what they paid)
and late buyers come in once the price has risen fast, then stop out under their cost.

What the chain does not meet (it is valid for everything hodlflow checks with
``check_pow: false``): proof of work (headers carry realistic nBits, about 1e14, but hashes do
not meet their targets), signatures (dummy DER/Schnorr bytes; public keys are form-valid but
mostly not curve points; programs do hash what a spend reveals), sigop limits, and the
relay policies (ancestor limits, dust and fee floors). Coinbase maturity (100 blocks), BIP34
heights, BIP141 witness commitments, merkle roots, the subsidy schedule, the block weight
limit, monotonic header times (so median-time-past holds) and lock times are kept.

Density: every day carries its ``blocks_per_day`` (144 ≈ one block per 600 s), history days
included, so the hash-rate estimate, the issuance (Puell multiple, miner position index) and
the production cost are right on every day; a history phase is sparse in *transactions*
(``activity`` well under 1), not in blocks. ``activity`` stretches everyone's waits except the
miners': pools pay out and miners sell on their own calendar in every phase, so miner flows
(and their 365-day averages) are smooth across the history. A scenario may also give a phase
fewer blocks per day: production cost per BTC is still right (hash rate and BTC mined scale
together), but the hash-rate estimate and the issuance are then low on those days (meaningful
on full-density days only), and with ``retarget`` the difficulty falls after them as it would
on mainnet. Daily block counts vary like mainnet's without drifting from ``blocks_per_day``.

``scale`` multiplies the number of agents (pool members, holders, traders, users...) and so
the transactions; per-agent budgets of holders, traders and forced sellers are divided by it,
so the BTC moved between classes stays about the same at any scale. Payment sizes are not.

Speed: about 8,000 transactions a second on one core at a million transactions (addresses
cost no elliptic-curve math, see :mod:`hodlflow.sim.fastchain`); memory about 1.5 GB there,
since the blocks are kept until they are written.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import hashlib
import json
import math
import random
import re
import time as _time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from hodlflow.chain.network import MAIN
from hodlflow.chain.script import classify_script
from hodlflow.sim import fastchain as fc
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sim.fastchain import COIN, DUST, Address, Coin
from hodlflow.sim.scenario import Scenario, load_scenario
from hodlflow.sim.truth import (
    CLASSES,
    MINER,
    TYPE_CLASS,
    AddressTruth,
    BalanceTruth,
    FlowTruth,
    MinerTruth,
    write_prices,
)

COINBASE_MATURITY = 100
DAY_SECONDS = 86_400
RETARGET_INTERVAL = 2016
TARGET_TIMESPAN = RETARGET_INTERVAL * 600
POW_LIMIT = fc.bits_to_target(MAIN.pow_limit_bits)
SPENDABLE = frozenset(fc.SPENDABLE_KINDS)
MIN_SALE = 20_000  # sats: smaller sales are not worth a transaction
MAX_TAKE_PROFIT = 0.6  # most of its balance a long-term holder sells in one profit-taking turn
MAX_INPUTS = 400  # inputs per ordinary spend
STAMP_SATS = 1_000
FEE_JITTER = (0.8, 1.3)  # a transaction's fee rate is the day's rate times a draw from this


class SimulationError(RuntimeError):
    """The scenario cannot be simulated as asked (e.g. more transactions than block space)."""


# ---------------------------------------------------------------------------------------------
# Wallets and entities.


class Wallet:
    """Spendable coins of one entity (an exchange has three: deposit, hot, cold)."""

    __slots__ = ("entity", "coins", "balance")

    def __init__(self, entity: Entity):
        self.entity = entity
        self.coins: list[Coin] = []
        self.balance = 0

    def add(self, coin: Coin) -> None:
        self.coins.append(coin)
        self.balance += coin.value


class Entity:
    """One real-world owner. ``kind`` is the script kind of its own addresses; ``reuse`` the
    chance it receives on its first address again; ``change_reuse`` the chance change goes
    back to the address just spent. An entity that ``tracks_cost`` adds the USD value (at the
    day's price) of what other entities pay it to ``cost_usd``: what it paid for its coins."""

    tracks_cost = False

    def __init__(self, sim: Simulation, etype: str, label: str, kind: str, reuse: float = 0.0):
        self.eid = len(sim.entities)
        sim.entities.append(self)
        self.etype = etype
        self.cls = TYPE_CLASS[etype]
        self.label = label
        self.kind = kind
        self.reuse = reuse
        self.change_reuse = 0.0
        self.wallet = Wallet(self)
        self.cost_usd = 0.0
        self.home: Address | None = None
        self.exchange: Exchange | None = None
        self.last = -1  # last day it acted on accrued budgets
        self.sequence = 0xFFFFFFFD if sim.rng.random() < 0.7 else 0xFFFFFFFE
        self.locktime_height = sim.rng.random() < 0.5  # anti fee-sniping, as Bitcoin Core

    def act(self, sim: Simulation, d: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Miner(Entity):
    """Pool members and solo miners: sell to pay for electricity, keep the rest as reserve."""

    def __init__(self, sim, etype, label, kind, reuse, hash_share):
        super().__init__(sim, etype, label, kind, reuse)
        self.hash_share = hash_share  # share of the network's hash rate
        self.received = 0  # income since the last sale
        self.immature: deque[Coin] = deque()

    def act(self, sim: Simulation, d: int) -> None:
        habits = sim.sc.agents.miners
        opex_usd = self.hash_share * (
            sim.cum_electricity[d + 1] - sim.cum_electricity[self.last + 1]
        )
        self.last = d
        price, ratio = sim.price[d], sim.ratio[d]
        need = int(opex_usd / price * COIN)
        received, self.received = self.received, 0
        amount = need + int(habits.profit_sell_fraction * max(0, received - need))
        balance = self.wallet.balance
        if ratio < 1:
            amount += int(habits.stress_reserve_sell * (1 - ratio) * max(0, balance - amount))
        amount = min(amount, balance)
        if amount >= MIN_SALE:
            buyer = None
            if sim.otc_buyers and sim.rng.random() < habits.otc_share:
                buyer = sim.pick_otc_buyer()
            if buyer is not None:
                target = sim.receive_address(buyer)
            else:
                target = self.exchange.deposit_address(sim, self)
            sim.pay_or_sweep(self, target, amount)
        # Miners sell on their own calendar in every phase (``activity`` does not slow them).
        sim.schedule(self, d + sim.calendar_delay(habits.sell_every_days))


class Pool(Entity):
    """Mines blocks to its coinbase addresses, pays its members (1 hop), keeps a fee."""

    def __init__(self, sim, spec, hash_share):
        super().__init__(sim, "pool", f"pool:{spec.name}", spec.wallet_script)
        self.spec = spec
        self.tag = spec.tag.encode("ascii")
        self.hash_share = hash_share
        self.coinbase_addrs = [
            sim.new_address(self.wallet, spec.coinbase_script, "coinbase")
            for _ in range(spec.coinbase_addresses)
        ]
        self.wallet_addr = sim.new_address(self.wallet, spec.wallet_script, "pool_wallet")
        self.blocks_found = 0
        self.immature: deque[Coin] = deque()
        self.income = 0  # matured, not yet distributed
        self.kept = 0  # the pool's own share, not yet sold
        self.next_payout = 0
        self.version_rolling = sim.rng.random() < 0.5
        n = max(1, round(spec.members * sim.sc.scale))
        weights = [sim.rng.lognormvariate(0.0, 1.2) for _ in range(n)]
        total = sum(weights)
        self.members: list[Miner] = []
        self.owed: list[int] = [0] * n
        self.weights = [w / total for w in weights]
        for i, w in enumerate(self.weights):
            kind = sim.pick_kind(spec.member_scripts)
            m = Miner(
                sim,
                "pool_member",
                f"member:{spec.name}:{i}",
                kind,
                sim.sc.agents.miners.address_reuse,
                hash_share * (1 - spec.fee) * w,
            )
            self.members.append(m)

    def coinbase_address(self) -> Address:
        addr = self.coinbase_addrs[self.blocks_found % len(self.coinbase_addrs)]
        self.blocks_found += 1
        return addr

    def payout(self, sim: Simulation, d: int) -> None:
        spec = self.spec
        self.next_payout = d + spec.payout_every_days  # pools pay on their calendar
        income, self.income = self.income, 0
        keep = int(income * spec.fee)
        self.kept += keep
        share = income - keep
        owed = self.owed
        for i, w in enumerate(self.weights):
            owed[i] += int(share * w)
        threshold = int(spec.min_payout_btc * COIN)
        payees = [i for i in range(len(owed)) if owed[i] >= max(threshold, DUST)]
        for start in range(0, len(payees), 200):
            chunk = payees[start : start + 200]
            total = sum(owed[i] for i in chunk)
            # A payout spends every coinbase output it needs: hundreds after a quiet stretch.
            inputs = sim.select(self.wallet, total, 43 * len(chunk), max_inputs=5_000)
            if inputs is None:
                break
            payments = []
            for i in chunk:
                m = self.members[i]
                addr = sim.receive_address(m, "payout")
                payments.append((addr, owed[i]))
                m.received += owed[i]
                owed[i] = 0
            sim.spend(self, inputs, payments, change=self.wallet_addr)
        # Sell part of the pool's own share (more of it under the production cost).
        stress = max(0.0, 1.0 - sim.ratio[d])
        amount = int(self.kept * min(1.0, spec.sell_fraction * (1 + 2 * stress)))
        free = self.wallet.balance - sum(owed)
        amount = min(amount, free)
        if amount >= MIN_SALE and self.exchange is not None:
            target = self.exchange.deposit_address(sim, self)
            if sim.pay(self, [(target, amount)], change=self.wallet_addr):
                self.kept -= amount


class Exchange(Entity):
    """Deposit address per customer, sweeps into hot wallets, cold storage, batched
    withdrawals, transfers to other exchanges."""

    def __init__(self, sim, spec):
        super().__init__(sim, "exchange", f"exchange:{spec.name}", spec.hot_script)
        self.spec = spec
        self.deposit = Wallet(self)
        self.hot = self.wallet
        self.cold = Wallet(self)
        self.hot_addrs = [
            sim.new_address(self.hot, spec.hot_script, "hot") for _ in range(spec.hot_addresses)
        ]
        self.cold_addrs = [
            sim.new_address(self.cold, spec.cold_script, "cold") for _ in range(spec.cold_addresses)
        ]
        self.deposit_addrs: dict[int, Address] = {}
        self.queue: list[tuple[Address, int]] = []
        self.queued = 0
        self.next_sweep = 0
        self._n = 0
        self.sequence = 0xFFFFFFFF

    def _rot(self, addrs: list[Address]) -> Address:
        self._n += 1
        return addrs[self._n % len(addrs)]

    def deposit_address(self, sim: Simulation, customer: Entity) -> Address:
        """The customer's own deposit address here (created on first use, then reused)."""
        addr = self.deposit_addrs.get(customer.eid)
        if addr is None:
            addr = sim.new_address(self.deposit, self.spec.deposit_script, "deposit")
            self.deposit_addrs[customer.eid] = addr
        return addr

    def request(self, addr: Address, want: int) -> int:
        """Queue a withdrawal of up to ``want`` sats to ``addr``; return what was granted
        (what the hot and cold wallets hold beyond a small float and earlier requests)."""
        available = int((self.hot.balance + self.cold.balance) * 0.98) - self.queued
        grant = min(want, available)
        if grant < MIN_SALE:
            return 0
        self.queue.append((addr, grant))
        self.queued += grant
        return grant

    def morning(self, sim: Simulation, d: int) -> None:
        """Sweep the deposits of earlier days into the hot wallet, before customers act."""
        if d >= self.next_sweep:
            self._sweep(sim, d)
            # Quiet phases sweep less often, but at least every 4 sweep periods.
            every = self.spec.sweep_every_days
            self.next_sweep = d + min(sim.delay(every, d, exact=True), 4 * every)

    def evening(self, sim: Simulation, d: int) -> None:
        """Pay the day's withdrawals, rebalance hot and cold, maybe pay another exchange."""
        self._withdrawals(sim)
        self._rebalance(sim)
        ie = sim.sc.agents.inter_exchange
        if (
            len(sim.exchanges) > 1
            and self.hot.balance > 10 * MIN_SALE
            and sim.rng.random() < ie.daily_prob * min(1.0, sim.activity[d])
        ):
            other = sim.rng.choice([x for x in sim.exchanges if x is not self])
            amount = int(self.hot.balance * ie.fraction)
            if amount >= MIN_SALE:
                target = other.deposit_address(sim, self)
                sim.pay(self, [(target, amount)], wallet=self.hot, change=self._rot(self.hot_addrs))

    def _sweep(self, sim: Simulation, d: int) -> None:
        coins = self.deposit.coins
        n = 0
        while n < len(coins) and coins[n].day < d:  # deposits of earlier days only
            n += 1
        for start in range(0, n, self.spec.max_sweep_inputs):
            chunk = coins[start : min(n, start + self.spec.max_sweep_inputs)]
            sim.sweep(self, chunk, self._rot(self.hot_addrs))
        del coins[:n]
        self.deposit.balance = sum(c.value for c in coins)

    def _withdrawals(self, sim: Simulation) -> None:
        if not self.queue:
            return
        items, self.queue, self.queued = self.queue, [], 0
        batch = self.spec.withdrawal_batch
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            total = sum(v for _, v in chunk)
            margin = total + 200_000 + 50_000 * len(chunk)
            if self.hot.balance < margin and self.cold.balance:
                refill = margin - self.hot.balance + int(self.spec.hot_fraction * self.cold.balance)
                self._move(sim, self.cold, self.cold_addrs, self.hot_addrs, refill)
            change = self._rot(self.hot_addrs) if self.spec.change_to_hot_address else None
            sim.pay(self, chunk, wallet=self.hot, change=change)

    def _rebalance(self, sim: Simulation) -> None:
        total = self.hot.balance + self.cold.balance
        target = int(self.spec.hot_fraction * total)
        if self.hot.balance > 1.5 * target and self.hot.balance - target > COIN:
            self._move(sim, self.hot, self.hot_addrs, self.cold_addrs, self.hot.balance - target)
        elif self.hot.balance < 0.5 * target and self.cold.balance > COIN:
            self._move(sim, self.cold, self.cold_addrs, self.hot_addrs, target - self.hot.balance)

    def _move(self, sim, src: Wallet, src_addrs, dst_addrs, amount: int) -> None:
        """Hot <-> cold: ``amount`` from ``src`` to one of ``dst_addrs``, change back to src."""
        amount = min(amount, src.balance - 100_000)
        if amount < MIN_SALE:
            return
        if amount >= src.balance - 200_000:
            inputs = sim.take_all(src, MAX_INPUTS)
            sim.sweep(self, inputs, self._rot(dst_addrs))
        else:
            sim.pay(self, [(self._rot(dst_addrs), amount)], wallet=src, change=self._rot(src_addrs))


class StrongHolder(Entity):
    """Buys through an exchange and withdraws, more under the production cost; rarely moves.

    With ``take_profit_above`` set it also distributes into rallies, as real long-term holders
    do: their unrealized profit is largest at market tops, and that is when they sell (the
    long-term-holder supply falls at tops while new short-term buyers take the coins, then
    rises again in the bear market that follows). The holder knows its cost basis (USD paid
    for what it received from other entities: exchange withdrawals and over-the-counter
    purchases, at the day's price; a sale lowers it in proportion), and while the price is
    at or over ``take_profit_above`` × its average cost it sells ``take_profit_fraction`` of
    its balance a turn to its exchange, more the higher the multiple, and buys nothing (a
    holder taking profit is not buying). Off (None), it behaves and draws exactly as before.
    """

    tracks_cost = True

    def __init__(self, sim, label, kind, reuse, daily_usd):
        super().__init__(sim, "long_term_holder", label, kind, reuse)
        self.daily_usd = daily_usd
        self.pending_usd = 0.0
        self.distributing = False

    def profit_multiple(self, price: float) -> float:
        """Price over the average cost of what it holds (0.0 when it holds nothing)."""
        if self.wallet.balance <= 0 or self.cost_usd <= 0:
            return 0.0
        return price * self.wallet.balance / COIN / self.cost_usd

    def sell(self, sim: Simulation, amount: int) -> None:
        """Pay ``amount`` to its exchange deposit address; the cost basis falls in proportion."""
        before = self.wallet.balance
        if sim.pay_or_sweep(self, self.exchange.deposit_address(sim, self), amount) and before:
            self.cost_usd *= max(0, self.wallet.balance) / before

    def act(self, sim: Simulation, d: int) -> None:
        spec = sim.sc.agents.strong_holders
        # Budget accrued since the last turn, over at most two of the phase's usual intervals
        # (so the first turn of a busy phase does not spend a quiet phase's months at once).
        window = 2 * spec.buy_every_days / max(sim.activity[d], 1e-9)
        since = max(self.last, d - int(window))
        usd = self.daily_usd * (sim.cum_demand[d + 1] - sim.cum_demand[since + 1])
        elapsed, self.last = d - self.last, d
        price, ratio = sim.price[d], sim.ratio[d]
        above = spec.take_profit_above
        multiple = self.profit_multiple(price) if above is not None else 0.0
        self.distributing = above is not None and multiple >= above
        if self.distributing:
            # Distribute: a share of the balance growing with the profit, and no buying.
            share = spec.take_profit_fraction * min(3.0, multiple / above)
            amount = int(self.wallet.balance * min(MAX_TAKE_PROFIT, share))
            if amount >= MIN_SALE:
                self.sell(sim, amount)
            self.pending_usd = 0.0
            sim.schedule(self, d + sim.delay(spec.buy_every_days, d))
            return
        usd += min(self.pending_usd, self.daily_usd * 60)  # unfilled demand fades after 60 days
        want = int(usd / price * COIN)
        if want >= MIN_SALE:
            got = self.exchange.request(sim.receive_address(self), want)
            self.pending_usd = (want - got) / COIN * price
        else:
            self.pending_usd = usd
        if self.wallet.coins and sim.rng.random() < spec.spend_prob_per_year * elapsed / 365:
            if ratio > 1.3:  # take a little profit
                amount = int(self.wallet.balance * sim.rng.uniform(0.05, 0.3))
                if amount >= MIN_SALE:
                    self.sell(sim, amount)
            elif len(self.wallet.coins) >= 5:  # consolidate into a new own address
                inputs = sim.take_all(self.wallet, MAX_INPUTS)
                sim.sweep(self, inputs, sim.new_address(self.wallet, self.kind, "receive"))
        mean = spec.buy_every_days / (2.0 if ratio < 1 else 1.0)
        sim.schedule(self, d + sim.delay(mean, d))


class WeakTrader(Entity):
    """Buys, holds days to weeks, sells back to an exchange; panics under the cost."""

    def __init__(self, sim, label, kind, reuse):
        super().__init__(sim, "short_term_trader", label, kind, reuse)
        self.long = False
        self.sell_day = 0

    def act(self, sim: Simulation, d: int) -> None:
        spec = sim.sc.agents.weak_traders
        ratio = sim.ratio[d]
        rng = sim.rng
        if not self.long:
            if ratio < 1 and rng.random() > spec.fear_entry_factor:
                sim.schedule(self, d + sim.delay(spec.entry_every_days, d))
                return
            usd = spec.trade_usd / sim.sc.scale * rng.lognormvariate(0.0, 1.0)
            got = self.exchange.request(sim.receive_address(self), int(usd / sim.price[d] * COIN))
            if got:
                self.long = True
                hold = rng.randint(*spec.hold_days)
                if ratio < 1:
                    hold = max(1, int(hold * spec.panic_hold_factor))
                self.sell_day = d + hold
                sim.schedule(self, d + min(hold, 3))
            else:
                sim.schedule(self, d + sim.delay(spec.entry_every_days, d))
            return
        panic = ratio < 1 and rng.random() < 0.3 * (1 - min(1.0, spec.panic_hold_factor))
        if d >= self.sell_day or panic:
            if self.wallet.coins:
                target = sim.otc_target(spec.otc_share)
                if target is None:
                    ex = self.exchange if rng.random() < 0.9 else rng.choice(sim.exchanges)
                    target = ex.deposit_address(sim, self)
                sim.sweep(self, sim.take_all(self.wallet, MAX_INPUTS), target)
            if not self.wallet.coins:
                self.long = False
            sim.schedule(self, d + sim.delay(spec.entry_every_days, d))
        else:
            sim.schedule(self, d + min(self.sell_day - d, 3))


class ForcedSeller(Entity):
    """Buys late in the rally (price well over cost), must sell everything under the cost."""

    def __init__(self, sim, label, kind, reuse, budget_usd):
        super().__init__(sim, "forced_seller", label, kind, reuse)
        self.budget_usd = budget_usd
        self.spent_usd = 0.0

    def act(self, sim: Simulation, d: int) -> None:
        spec = sim.sc.agents.forced_sellers
        ratio, price, rng = sim.ratio[d], sim.price[d], sim.rng
        if ratio < spec.sell_below_ratio and self.wallet.coins:
            if rng.random() < spec.sell_daily_prob:
                sim.sell_all(self, spec.otc_share)
                self.spent_usd = self.budget_usd  # wiped out: no more buying this cycle
            sim.schedule(self, d + 1)
            return
        if ratio > spec.buy_above_ratio + 0.2:
            self.spent_usd = min(self.spent_usd, self.budget_usd * 0.5)  # a new cycle of greed
        if ratio > spec.buy_above_ratio and self.spent_usd < self.budget_usd:
            usd = min(self.budget_usd - self.spent_usd, self.budget_usd / 3 * rng.uniform(0.5, 1.5))
            got = self.exchange.request(sim.receive_address(self), int(usd / price * COIN))
            self.spent_usd += got / COIN * price
        near = ratio < spec.sell_below_ratio * 1.15 and self.wallet.balance > 0
        sim.schedule(self, d + (1 if near else sim.delay(spec.buy_every_days, d)))


class LateBuyer(Entity):
    """A retail buyer who comes in late in a rally and leaves at a loss, as real ones do.

    Short-term holders pile in after a strong rally (fear of missing out: the short-term-holder
    supply rises into market tops) and sell when the price falls under what they paid. Out of
    the market it looks at the price now and then; once the price is ``enter_above_momentum``
    × its level ``momentum_days`` ago it buys a position (median ``position_usd``, log-normal)
    through its exchange in ``purchases`` purchases a few days apart, each withdrawn to a fresh
    address of its own. It then sells everything back to its exchange when the price is
    ``stop_loss`` under its average cost, or after ``max_hold_days``; a flipper (chance
    ``flip_share``) buys once and sells as soon as it is in profit after ``flip_hold_days``.
    After a sale it buys again only on a new rally: the momentum must first fall under the
    threshold and then cross it again.
    """

    tracks_cost = True

    def __init__(self, sim, label, kind, flipper: bool):
        super().__init__(sim, "late_buyer", label, kind, 0.0)
        self.flipper = flipper
        self.armed = True  # may enter on the next rally
        self.entry_day = -1  # first purchase of the position held; -1 = out of the market
        self.left = 0  # purchases still to make
        self.per_purchase_usd = 0.0
        self.next_buy = 0
        self.flip_day = 0

    def act(self, sim: Simulation, d: int) -> None:
        spec = sim.sc.agents.late_buyers
        if self.entry_day < 0:
            momentum = sim.momentum(d, spec.momentum_days)
            if momentum is not None and momentum < spec.enter_above_momentum:
                self.armed = True
            elif momentum is not None and self.armed:
                self._enter(sim, d, spec)
                sim.schedule(self, d + 1)
                return
            sim.schedule(self, d + sim.delay(spec.watch_every_days, d))
            return
        price = sim.price[d]
        balance = self.wallet.balance
        if balance > 0:
            cost = self.cost_usd / (balance / COIN)
            if (
                price <= cost * (1 - spec.stop_loss)
                or d - self.entry_day >= spec.max_hold_days
                or (self.flipper and d >= self.flip_day and price > cost)
            ):
                if sim.sell_all(self) and not self.wallet.coins:
                    self._leave()
                    sim.schedule(self, d + sim.delay(spec.watch_every_days, d))
                    return
        if self.left and d >= self.next_buy:
            self._buy(sim, d, spec)
        elif not self.left and balance <= 0:
            self._leave()  # nothing was granted: the position never opened
            sim.schedule(self, d + sim.delay(spec.watch_every_days, d))
            return
        sim.schedule(self, d + 1)  # holders watch the price every day

    def _enter(self, sim: Simulation, d: int, spec) -> None:
        rng = sim.rng
        self.armed = False
        self.entry_day = d
        self.left = 1 if self.flipper else rng.randint(*spec.purchases)
        position = spec.position_usd / sim.sc.scale * rng.lognormvariate(0.0, 1.0)
        self.per_purchase_usd = position / self.left
        if self.flipper:
            self.flip_day = d + rng.randint(*spec.flip_hold_days)
        self._buy(sim, d, spec)

    def _buy(self, sim: Simulation, d: int, spec) -> None:
        addr = sim.new_address(self.wallet, self.kind, "receive")  # self custody, fresh address
        self.exchange.request(addr, int(self.per_purchase_usd / sim.price[d] * COIN))
        self.left -= 1
        if self.left:
            self.next_buy = d + sim.rng.randint(*spec.purchase_gap_days)

    def _leave(self) -> None:
        self.entry_day = -1
        self.left = 0
        self.cost_usd = 0.0


class CoinjoinUser(Entity):
    """Buys, mixes in coinjoin rounds, spends mixed coins one by one."""

    def act(self, sim: Simulation, d: int) -> None:
        spec = sim.sc.agents.coinjoin
        rng = sim.rng
        mixed = [c for c in self.wallet.coins if c.addr.role == "mix"]
        if mixed and rng.random() < 0.7:
            coin = mixed[0]
            self.wallet.coins.remove(coin)
            self.wallet.balance -= coin.value
            if sim.merchants and rng.random() < 0.7:
                target = sim.merchant_address(rng.choice(sim.merchants))
            else:
                target = self.exchange.deposit_address(sim, self)
            sim.sweep(self, [coin], target)
        elif self.wallet.balance < 1.5 * max(spec.denominations_btc) * COIN:
            usd = spec.buy_usd * rng.lognormvariate(0.0, 0.7)
            addr = sim.new_address(self.wallet, self.kind, "premix")
            self.exchange.request(addr, int(usd / sim.price[d] * COIN))
        sim.schedule(self, d + sim.delay(spec.postmix_spend_every_days, d))


class Coordinator(Entity):
    """Collects coinjoin fees; cashes them out now and then."""

    def act(self, sim: Simulation, d: int) -> None:
        if self.wallet.balance >= MIN_SALE:
            sim.sell_all(self)
        sim.schedule(self, d + sim.delay(14, d))


class User(Entity):
    """Pays merchants and other users; tops up on an exchange when low."""

    def act(self, sim: Simulation, d: int) -> None:
        spec = sim.sc.agents.payments
        rng = sim.rng
        price = sim.price[d]
        amount = int(spec.payment_usd * rng.lognormvariate(0.0, 1.0) / price * COIN)
        amount = max(amount, 5 * DUST)
        if self.wallet.balance < amount + 50_000:
            usd = spec.topup_usd * rng.lognormvariate(0.0, 0.5)
            self.exchange.request(sim.receive_address(self), int(usd / price * COIN))
            sim.schedule(self, d + 1 + sim.delay(1 / max(spec.payments_per_user_day, 1e-6), d))
            return
        if len(sim.users) > 1 and (not sim.merchants or rng.random() < spec.p2p_share):
            other = rng.choice(sim.users)
            if other is self:
                other = sim.users[(sim.users.index(self) + 1) % len(sim.users)]
            target = sim.receive_address(other)
        else:
            target = sim.merchant_address(rng.choice(sim.merchants))
        payments = [(target, amount)]
        extras: list[tuple[int, bytes]] = []
        if rng.random() < spec.op_return_share:
            extras.append(fc.op_return_output(b"hodlflow:" + rng.randbytes(rng.randint(8, 40))))
        if rng.random() < spec.stamp_share:
            payments.append((sim.new_address(self.wallet, "multisig", "stamp"), STAMP_SATS))
        if rng.random() < spec.witness_v2_share:
            payments.append((sim.new_address(self.wallet, "witness_v2", "future"), STAMP_SATS))
        sim.pay(self, payments, extras=extras)
        sim.schedule(self, d + sim.delay(1 / max(spec.payments_per_user_day, 1e-6), d))


class Merchant(Entity):
    """Receives at a fresh invoice address per payment; cashes out on an exchange."""

    def __init__(self, sim, label, kind, reuse):
        super().__init__(sim, "merchant", label, kind, reuse)
        self.static = sim.new_address(self.wallet, kind, "static")

    def act(self, sim: Simulation, d: int) -> None:
        if self.wallet.balance >= MIN_SALE:
            sim.sell_all(self)
        sim.schedule(self, d + sim.delay(sim.sc.agents.payments.merchant_sell_every_days, d))


# ---------------------------------------------------------------------------------------------
# The simulation.


class TxRec:
    """A queued transaction: its bytes, fee, transfers between entities and, per class, the
    change of what the class holds (outputs it receives less inputs it spends)."""

    __slots__ = ("enc", "fee", "transfers", "deltas")

    def __init__(self, enc: fc.EncodedTx, fee: int, transfers: list, deltas: list[int]):
        self.enc = enc
        self.fee = fee
        self.transfers = transfers
        self.deltas = deltas


class Simulation:
    """One run of a scenario: ``run()`` makes the blocks (kept in memory until
    :func:`run_simulation` writes them) and streams the address truth to ``truth_dir``."""

    def __init__(self, sc: Scenario, truth_dir: Path):
        self.sc = sc
        self.rng = random.Random(f"hodlflow-sim:agents:{sc.seed}")
        self._addr_prefix = hashlib.sha256(f"hodlflow-sim:addr:{sc.seed}".encode()).digest()
        self._addr_n = 0
        self.entities: list[Entity] = []
        self.days = sc.days
        self.day = 0
        self.addresses = AddressTruth(truth_dir / "addresses.csv")
        self.queue: deque[TxRec] = deque()
        self.stored: list[tuple[float, bytes]] = []  # (storage order key, raw block)
        self.n_tx = 0
        self.n_blocks = 0
        self._plan_chain()
        self._plan_market()
        self.flows = FlowTruth()
        self.balances = BalanceTruth(self.days)
        self.miners_truth = MinerTruth(
            [p.name for p in self.phase_of_day],
            self.price,
            sc.cost_model.efficiency_j_per_th,
            sc.cost_model.power_usd_per_kwh,
            sc.cost_model.pue,
        )
        self.miner_reserve = 0
        self.agenda: list[list[Entity]] = [[] for _ in range(self.days)]
        self.day = -1  # while agents are made: first turns may fall on day 0
        self._make_agents()
        self.day = 0

    # -- plan: blocks, times, difficulty, price, cost -----------------------------------------

    def _plan_chain(self) -> None:
        sc, chain = self.sc, self.sc.chain
        rng = random.Random(f"hodlflow-sim:blocks:{sc.seed}")
        self.phase_of_day = sc.phase_of_day()
        self.activity = [p.activity for p in self.phase_of_day]
        self.cum_activity = [0.0]
        for a in self.activity:
            self.cum_activity.append(self.cum_activity[-1] + a)
        start_ts = int(dt.datetime.combine(chain.start_date, dt.time(), tzinfo=dt.UTC).timestamp())
        self.start_ts = start_ts
        counts, times = [], []
        # Daily counts vary like mainnet's (standard deviation about sqrt(blocks_per_day)), as
        # the difference of two independent draws: the noise of consecutive days cancels, so a
        # phase's total stays at days x blocks_per_day and the difficulty does not drift.
        noise = 0.0
        for d, phase in enumerate(self.phase_of_day):
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
        self.blocks_per_day = counts
        self.first_height = []
        h = chain.start_height
        for n in counts:
            self.first_height.append(h)
            h += n
        self.tip_height = h - 1
        self.block_times = times
        # nBits per block: Bitcoin's retarget every 2016 blocks from the header times; heights
        # before the start are assumed to have come every 600 s.
        target = fc.bits_to_target(fc.difficulty_to_bits(chain.difficulty))
        bits = fc.target_to_bits(target)
        start = chain.start_height

        def time_at(height: int) -> int:
            i = height - start
            return times[i] if i >= 0 else start_ts - (-i) * 600

        self.block_bits = []
        for i in range(len(times)):
            height = start + i
            if chain.retarget and height % RETARGET_INTERVAL == 0 and i > 0:
                span = time_at(height - 1) - time_at(height - RETARGET_INTERVAL)
                span = min(max(span, TARGET_TIMESPAN // 4), TARGET_TIMESPAN * 4)
                target = min(fc.bits_to_target(bits) * span // TARGET_TIMESPAN, POW_LIMIT)
                bits = fc.target_to_bits(target)
            self.block_bits.append(bits)
        self.block_difficulty = [fc.difficulty_of_bits(b) for b in self.block_bits]

    def _plan_market(self) -> None:
        sc = self.sc
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
        self.price = prices
        # The day's production cost from the planned blocks (subsidy only: fees are not known
        # before the day is mined; the truth file recomputes it with fees).
        cm = sc.cost_model
        electricity, cost = [], []
        i = 0
        for d, n in enumerate(self.blocks_per_day):
            diff_sum = sum(self.block_difficulty[i : i + n])
            subsidy = sum(MAIN.subsidy(self.first_height[d] + k) for k in range(n))
            i += n
            hash_rate = diff_sum * 2**32 / 600 / 144
            usd = (
                hash_rate
                / 1e12
                * cm.efficiency_j_per_th
                * 24
                / 1000
                * cm.power_usd_per_kwh
                * cm.pue
            )
            electricity.append(usd)
            cost.append(usd / (subsidy / COIN) if subsidy else float("inf"))
        self.electricity = electricity
        self.cost = cost
        self.ratio = [p / c for p, c in zip(prices, cost, strict=True)]
        self.cum_electricity = [0.0]
        for usd in electricity:
            self.cum_electricity.append(self.cum_electricity[-1] + usd)
        sh = sc.agents.strong_holders
        self.cum_demand = [0.0]
        for r in self.ratio:
            m = (
                sh.dip_multiplier
                if r < 1
                else (sh.expensive_multiplier if r > sh.expensive_ratio else 1.0)
            )
            self.cum_demand.append(self.cum_demand[-1] + m)
        lo_hi = [p.fee_rate_sat_vb for p in self.phase_of_day]
        self.fee_rates = [
            rng.uniform(lo, hi) * (1 + 1.5 * max(0.0, 1 - r))
            for (lo, hi), r in zip(lo_hi, self.ratio, strict=True)
        ]

    # -- agents -------------------------------------------------------------------------------

    def pick_kind(self, weights: dict[str, float]) -> str:
        kinds = list(weights)
        return self.rng.choices(kinds, weights=[weights[k] for k in kinds])[0]

    def _count(self, n: int) -> int:
        return max(1, round(n * self.sc.scale)) if n > 0 else 0

    def _make_agents(self) -> None:
        sc, ag, rng = self.sc, self.sc.agents, self.rng
        self.exchanges = [Exchange(self, spec) for spec in ag.exchanges]
        ex_weights = [e.spec.market_share for e in self.exchanges]

        def assign(ent: Entity) -> Entity:
            ent.exchange = rng.choices(self.exchanges, weights=ex_weights)[0]
            return ent

        total_hash = sum(p.hashrate_share for p in ag.pools) + (
            ag.solo_miners.hashrate_share if ag.solo_miners.count else 0.0
        )
        self.pools = [
            assign(Pool(self, spec, spec.hashrate_share / total_hash)) for spec in ag.pools
        ]
        for pool in self.pools:
            for m in pool.members:
                assign(m)
        solo = ag.solo_miners
        self.solos: list[Miner] = []
        for i in range(solo.count):
            share = solo.hashrate_share / total_hash / solo.count
            m = Miner(self, "solo_miner", f"solo:{i}", self.pick_kind(solo.scripts), 1.0, share)
            m.tag = solo.tag.encode("ascii")
            m.coinbase_addr = self.new_address(m.wallet, m.kind, "coinbase")
            m.home = m.coinbase_addr
            self.solos.append(assign(m))
        # Block producers by hash share (pools and solo miners).
        self.producers: list[Entity] = [*self.pools, *self.solos]
        self.producer_weights = [p.hash_share for p in self.producers]

        sh = ag.strong_holders
        n = self._count(sh.count)
        weights = [rng.lognormvariate(0.0, sh.concentration) for _ in range(n)]
        total = sum(weights) or 1.0
        self.strong: list[StrongHolder] = []
        for i, w in enumerate(weights):
            kind = self.pick_kind(sh.scripts)
            h = StrongHolder(self, f"strong:{i}", kind, sh.address_reuse, sh.daily_usd * w / total)
            self.strong.append(assign(h))
        # Whales: the largest 5% of holders. They buy over the counter (chosen by weight) and
        # may keep their coins on one cold-storage address (whale_address_reuse).
        ranked = sorted(range(n), key=lambda i: -weights[i])[: max(1, n // 20)] if n else []
        self.otc_buyers = [self.strong[i] for i in ranked]
        self.otc_weights = [weights[i] for i in ranked]
        if sh.whale_address_reuse is not None:
            for whale in self.otc_buyers:
                whale.reuse = sh.whale_address_reuse

        wt = ag.weak_traders
        self.traders = [
            assign(WeakTrader(self, f"trader:{i}", self.pick_kind(wt.scripts), wt.address_reuse))
            for i in range(self._count(wt.count))
        ]
        fs = ag.forced_sellers
        self.forced = []
        for i in range(self._count(fs.count)):
            budget = fs.position_usd / sc.scale * rng.lognormvariate(0.0, 0.8)
            kind = self.pick_kind(fs.scripts)
            self.forced.append(assign(ForcedSeller(self, f"forced:{i}", kind, 0.5, budget)))
        lb = ag.late_buyers
        self.late: list[LateBuyer] = []
        for i in range(self._count(lb.count)):
            kind = self.pick_kind(lb.scripts)
            flipper = rng.random() < lb.flip_share
            self.late.append(assign(LateBuyer(self, f"late:{i}", kind, flipper)))
        cj = ag.coinjoin
        self.cj_users: list[CoinjoinUser] = []
        self.coordinator: Coordinator | None = None
        if cj.users:
            self.coordinator = assign(
                Coordinator(self, "coinjoin_coordinator", "coinjoin:coordinator", "p2wpkh", 1.0)
            )
            self.coordinator_addr = self.new_address(
                self.coordinator.wallet, "p2wpkh", "coordinator"
            )
            self.coordinator.home = self.coordinator_addr
            self.cj_users = [
                assign(
                    CoinjoinUser(self, "coinjoin_user", f"coinjoin:{i}", self.pick_kind(cj.scripts))
                )
                for i in range(self._count(cj.users))
            ]
        self.next_round = 0
        pay = ag.payments
        self.merchants = [
            assign(Merchant(self, f"merchant:{i}", self.pick_kind(pay.merchant_scripts), 0.0))
            for i in range(self._count(pay.merchants))
        ]
        self.users = []
        for i in range(self._count(pay.users)):
            u = assign(User(self, "user", f"user:{i}", self.pick_kind(pay.user_scripts), 0.3))
            u.change_reuse = pay.address_reuse
            self.users.append(u)
        for ex in self.exchanges:
            ex.change_reuse = 1.0 if ex.spec.change_to_hot_address else 0.0

        # First turns, spread over each agent's usual interval.
        def first(ent: Entity, mean: float) -> None:
            self.schedule(ent, self.delay(mean, 0) - 1)

        for pool in self.pools:
            for m in pool.members:
                self.schedule(m, self.calendar_delay(ag.miners.sell_every_days) - 1)
        for m in self.solos:
            self.schedule(m, self.calendar_delay(ag.miners.sell_every_days) - 1)
        for h in self.strong:
            first(h, sh.buy_every_days)
        for t in self.traders:
            first(t, wt.entry_every_days)
        for f in self.forced:
            first(f, fs.buy_every_days)
        for b in self.late:
            first(b, lb.watch_every_days)
        for u in self.cj_users:
            first(u, cj.postmix_spend_every_days)
        if self.coordinator is not None:
            first(self.coordinator, 14)
        for m in self.merchants:
            first(m, pay.merchant_sell_every_days)
        for u in self.users:
            first(u, 1 / max(pay.payments_per_user_day, 1e-6))

    def schedule(self, ent: Entity, day: int) -> None:
        """Give ``ent`` a turn on ``day`` (never today again: the earliest is tomorrow)."""
        day = max(day, self.day + 1)
        if day < self.days:
            self.agenda[day].append(ent)

    def delay(self, mean_days: float, d: int, exact: bool = False) -> int:
        """Days from ``d`` to an agent's next turn, at least 1.

        The wait is measured in *activity-days* (a day counts its phase's ``activity``):
        exponential with mean ``mean_days`` (``exact``: exactly that), so a turn drawn in a
        quiet phase comes sooner once a busy phase starts, and a phase of activity 0 is skipped.
        """
        wait = mean_days if exact else self.rng.expovariate(1.0 / mean_days)
        cum = self.cum_activity
        target = cum[d + 1] + wait
        if target > cum[-1]:
            return self.days + 1
        return max(1, bisect.bisect_left(cum, target) - 1 - d)

    def calendar_delay(self, mean_days: float) -> int:
        """Days to the next turn of an agent that keeps its habits whatever the phase."""
        return 1 + int(self.rng.expovariate(1.0 / max(mean_days - 0.5, 0.01)))

    def momentum(self, d: int, days: int) -> float | None:
        """Price on day ``d`` over the price ``days`` earlier (None before that day exists)."""
        return self.price[d] / self.price[d - days] if d >= days else None

    def pick_otc_buyer(self) -> Entity | None:
        """A whale buying over the counter, by weight; whales taking profit do not buy (None
        when all of them are)."""
        buyers, weights = self.otc_buyers, self.otc_weights
        if any(w.distributing for w in buyers):
            pairs = [(b, w) for b, w in zip(buyers, weights, strict=True) if not b.distributing]
            if not pairs:
                return None
            buyers, weights = [b for b, _ in pairs], [w for _, w in pairs]
        return self.rng.choices(buyers, weights=weights)[0]

    # -- addresses ----------------------------------------------------------------------------

    def new_address(self, wallet: Wallet, kind: str, role: str) -> Address:
        self._addr_n += 1
        seed = hashlib.sha256(self._addr_prefix + self._addr_n.to_bytes(8, "little")).digest()
        addr = fc.make_address(kind, seed)
        addr.owner = wallet
        addr.role = role
        return addr

    def receive_address(self, ent: Entity, role: str = "receive") -> Address:
        if ent.home is not None and self.rng.random() < ent.reuse:
            return ent.home
        addr = self.new_address(ent.wallet, ent.kind, role)
        if ent.home is None:
            ent.home = addr
        return addr

    def merchant_address(self, m: Merchant) -> Address:
        if self.rng.random() < self.sc.agents.payments.merchant_address_reuse:
            return m.static
        return self.new_address(m.wallet, m.kind, "invoice")

    def _register(self, addr: Address) -> None:
        addr.registered = True
        script_type, address = classify_script(addr.script, MAIN)
        if address is None:
            return  # bare multisig: no address form
        ent = addr.owner.entity
        self.addresses.add(address, ent.eid, ent.label, ent.etype, addr.role, script_type)

    # -- spending -----------------------------------------------------------------------------

    def select(
        self, wallet: Wallet, amount: int, out_bytes: int, max_inputs: int = MAX_INPUTS
    ) -> list[Coin] | None:
        """Oldest coins first until ``amount`` plus the highest fee :meth:`_fee` can ask is
        covered (``out_bytes``: serialized size of the outputs, change excluded); None when the
        wallet cannot (the coins stay). The chosen coins leave the wallet."""
        rate = self.fee_rates[self.day] * FEE_JITTER[1]
        need_base = amount + rate * (11 + out_bytes + 43) + 2
        vb = fc.INPUT_VBYTES
        total, k = 0, 0
        for c in wallet.coins:
            total += c.value
            k += 1
            need_base += rate * vb[c.addr.kind]
            if total >= need_base:
                break
            if k >= max_inputs:
                return None
        else:
            return None
        chosen = wallet.coins[:k]
        del wallet.coins[:k]
        wallet.balance -= total
        return chosen

    def take_all(self, wallet: Wallet, max_inputs: int) -> list[Coin]:
        chosen = wallet.coins[:max_inputs]
        del wallet.coins[:max_inputs]
        wallet.balance -= sum(c.value for c in chosen)
        return chosen

    def pay(
        self,
        ent: Entity,
        payments: Sequence[tuple[Address, int]],
        wallet: Wallet | None = None,
        change: Address | None = None,
        extras: Sequence[tuple[int, bytes]] = (),
    ) -> bool:
        """Pay ``payments`` from ``wallet`` (default: the entity's) with change; False when
        the wallet cannot cover them."""
        wallet = wallet or ent.wallet
        total = sum(v for _, v in payments)
        out_bytes = sum(9 + len(a.script) for a, _ in payments) + sum(9 + len(x) for _, x in extras)
        inputs = self.select(wallet, total, out_bytes)
        if inputs is None:
            return False
        if change is None:
            change = self.change_address(ent, inputs)
        self.spend(ent, inputs, payments, change=change, extras=extras)
        return True

    def pay_or_sweep(self, ent: Entity, target: Address, amount: int) -> bool:
        """Pay ``amount`` to ``target``; when that is (nearly) everything, send it all."""
        if amount >= ent.wallet.balance * 0.97:
            inputs = self.take_all(ent.wallet, MAX_INPUTS)
            return self.sweep(ent, inputs, target) if inputs else False
        return self.pay(ent, [(target, amount)])

    def otc_target(self, share: float) -> Address | None:
        """With chance ``share``: the receive address of a large long-term holder buying over
        the counter (a direct weak→strong transfer); else None (sell on an exchange). Draws
        nothing when ``share`` is 0, so scenarios without OTC sales keep their chains."""
        if share and self.otc_buyers and self.rng.random() < share:
            buyer = self.pick_otc_buyer()
            return self.receive_address(buyer) if buyer is not None else None
        return None

    def sell_all(self, ent: Entity, otc_share: float = 0.0) -> bool:
        """Send the entity's whole wallet (up to MAX_INPUTS coins) to its exchange deposit, or
        with chance ``otc_share`` to an OTC buyer."""
        inputs = self.take_all(ent.wallet, MAX_INPUTS)
        if not inputs:
            return False
        target = self.otc_target(otc_share) or ent.exchange.deposit_address(self, ent)
        return self.sweep(ent, inputs, target)

    def change_address(self, ent: Entity, inputs: Sequence[Coin]) -> Address:
        if ent.change_reuse and self.rng.random() < ent.change_reuse:
            addr = inputs[0].addr
            if addr.kind in SPENDABLE and addr.owner.entity is ent:
                return addr
        return self.new_address(ent.wallet, ent.kind, "change")

    def sweep(self, ent: Entity, inputs: Sequence[Coin], target: Address) -> bool:
        """Send the whole value of ``inputs`` (less the fee) to ``target``."""
        total = sum(c.value for c in inputs)
        fee = self._fee(inputs, [(0, target.script)])
        if total - fee < DUST:  # not worth it: give the coins back
            for c in inputs:
                c.addr.owner.add(c)
            return False
        self._emit(ent, inputs, [(target, total - fee)], ())
        return True

    def spend(
        self,
        ent: Entity,
        inputs: Sequence[Coin],
        payments: Sequence[tuple[Address, int]],
        change: Address | None,
        extras: Sequence[tuple[int, bytes]] = (),
    ) -> None:
        total = sum(c.value for c in inputs)
        paid = sum(v for _, v in payments) + sum(v for v, _ in extras)
        outs = [(v, a.script) for a, v in payments] + list(extras)
        fee = self._fee(inputs, outs + [(0, change.script)] if change else outs)
        rest = total - paid - fee
        if rest < 0:
            raise SimulationError(f"{ent.label}: inputs {total} cannot pay {paid} + fee {fee}")
        outputs: list[tuple[Address, int]] = list(payments)
        if change is not None and rest >= DUST:
            outputs.insert(self.rng.randrange(len(outputs) + 1), (change, rest))
        self._emit(ent, inputs, outputs, extras)

    def _fee(self, inputs: Sequence[Coin], outs: Sequence[tuple[int, bytes]]) -> int:
        rate = self.fee_rates[self.day] * self.rng.uniform(*FEE_JITTER)
        return int(rate * fc.estimate_vsize(inputs, outs)) + 1

    def _emit(
        self,
        ent: Entity,
        inputs: Sequence[Coin],
        outputs: Sequence[tuple[Address, int]],
        extras: Sequence[tuple[int, bytes]],
        transfers: list | None = None,
    ) -> None:
        """Serialize, credit the outputs to their wallets, book transfers, queue the tx."""
        raw_outs = [(v, a.script) for a, v in outputs] + list(extras)
        locktime = self.first_height[self.day] - 1 if ent.locktime_height else 0
        enc = fc.encode_tx(inputs, raw_outs, sequence=ent.sequence, locktime=locktime)
        txid, day = enc.txid, self.day
        deltas = [0] * len(CLASSES)
        total_in = 0
        for c in inputs:
            total_in += c.value
            deltas[c.addr.owner.entity.cls] -= c.value
        own_transfers = transfers is None
        if own_transfers:
            transfers = []
        src = ent.cls
        total_out = 0
        for vout, (addr, value) in enumerate(outputs):
            total_out += value
            if not addr.registered:
                self._register(addr)
            owner = addr.owner
            if addr.kind in SPENDABLE:
                owner.add(Coin(txid, vout, value, addr, -1, day))
            rcv = owner.entity
            deltas[rcv.cls] += value
            if rcv.tracks_cost and rcv is not ent:
                rcv.cost_usd += value / COIN * self.price[day]
            if own_transfers and rcv is not ent:
                transfers.append((src, rcv.cls, value))
        fee = total_in - total_out - sum(v for v, _ in extras)
        self.queue.append(TxRec(enc, fee, transfers, deltas))
        self.n_tx += 1

    # -- coinjoin -----------------------------------------------------------------------------

    def _coinjoin_rounds(self, d: int) -> None:
        if not self.cj_users or d < self.next_round:
            return
        spec = self.sc.agents.coinjoin
        self.next_round = d + self.delay(spec.every_days, d)
        rounds = max(1, int(self.activity[d] / spec.every_days))
        for _ in range(rounds):
            self._coinjoin_round(spec)

    def _coinjoin_round(self, spec) -> None:
        """One round: a denomination enough users can afford, one unmixed coin from each of up
        to ``participants[1]`` of them, an equal-value output per participant, their change,
        and the coordinator's fee output. Each participant pays its share of the mining fee."""
        rng = self.rng
        rate = self.fee_rates[self.day]
        k = rng.randint(*spec.participants)
        order = list(self.cj_users)
        rng.shuffle(order)
        denoms = sorted((int(x * COIN) for x in spec.denominations_btc), reverse=True)
        rng.shuffle(denoms)
        for denom in denoms:
            cfee = int(denom * spec.coordinator_fee)
            picked: list[tuple[CoinjoinUser, Coin, int]] = []
            for u in order:
                mfee = int(rate * (fc.INPUT_VBYTES[u.kind] + 2 * 43)) + 1
                need = denom + cfee + mfee
                for c in u.wallet.coins:
                    if c.addr.role != "mix" and c.value >= need:
                        picked.append((u, c, mfee))
                        break
                if len(picked) >= k:
                    break
            if len(picked) >= spec.participants[0]:
                break
        else:
            return  # no denomination found enough participants
        inputs, equal, other, transfers = [], [], [], []
        for u, c, mfee in picked:
            u.wallet.coins.remove(c)
            u.wallet.balance -= c.value
            inputs.append(c)
            equal.append((self.new_address(u.wallet, u.kind, "mix"), denom))
            rest = c.value - denom - cfee - mfee
            if rest >= DUST:
                other.append((self.new_address(u.wallet, u.kind, "change"), rest))
            if cfee:
                transfers.append((u.cls, self.coordinator.cls, cfee))
        if cfee * len(picked) >= DUST:
            other.append((self.coordinator_addr, cfee * len(picked)))
        else:
            transfers = []  # fee too small for an output: it goes to the miners
        other.sort(key=lambda o: -o[1])
        self._emit(self.coordinator, inputs, equal + other, (), transfers=transfers)

    # -- the day loop -------------------------------------------------------------------------

    def run(self, progress: Callable[[str], None] | None = None) -> None:
        self.prev_hash = hashlib.sha256(f"hodlflow-sim:parent:{self.sc.seed}".encode()).digest()
        self.prev_hash = self.prev_hash[:22] + bytes(10)  # looks like a mined hash when shown
        self.start_hash: bytes | None = None
        self.stale_heights = self._pick_stale_heights()
        self._block_index = 0
        try:
            self._run_days(progress)
        finally:
            self.addresses.close()
        if self.queue:
            raise SimulationError(
                f"{len(self.queue)} transactions did not fit in the blocks of the last day: "
                "give the last phase more blocks_per_day or lower the scale"
            )

    def _run_days(self, progress: Callable[[str], None] | None) -> None:
        for d in range(self.days):
            self.day = d
            self._mature(d)
            for pool in self.pools:
                if d >= pool.next_payout and pool.income:
                    pool.payout(self, d)
            for ex in self.exchanges:
                ex.morning(self, d)
            agenda, self.agenda[d] = self.agenda[d], []
            for ent in agenda:
                ent.act(self, d)
            self._coinjoin_rounds(d)
            for ex in self.exchanges:
                ex.evening(self, d)
            self._place_blocks(d)
            self.miners_truth.set_reserve(d, self.miner_reserve)
            if progress and (d % 50 == 0 or d == self.days - 1):
                progress(f"day {d + 1}/{self.days}: {self.n_tx:,} transactions")

    def _pick_stale_heights(self) -> set[int]:
        n = self.sc.chain.stale_blocks
        lo, hi = self.sc.chain.start_height + 1, self.tip_height - 3
        if n <= 0 or hi <= lo:
            return set()
        rng = random.Random(f"hodlflow-sim:stale:{self.sc.seed}")
        n = min(n, hi - lo + 1)
        return set(rng.sample(range(lo, hi + 1), n))

    def _mature(self, d: int) -> None:
        limit = self.first_height[d] - COINBASE_MATURITY
        for p in self.producers:
            imm = p.immature
            while imm and imm[0].height <= limit:
                coin = imm.popleft()
                p.wallet.add(coin)
                if isinstance(p, Pool):
                    p.income += coin.value
                else:
                    p.received += coin.value

    def _place_blocks(self, d: int) -> None:
        sc = self.sc
        queue = self.queue
        for _ in range(self.blocks_per_day[d]):
            i = self._block_index
            self._block_index += 1
            height = sc.chain.start_height + i
            producer = self.rng.choices(self.producers, weights=self.producer_weights)[0]
            txs: list[TxRec] = []
            weight = 0
            limit = fc.MAX_BLOCK_WEIGHT - 8_000
            while queue and weight + queue[0].enc.weight <= limit:
                rec = queue.popleft()
                weight += rec.enc.weight
                txs.append(rec)
            fees = sum(t.fee for t in txs)
            subsidy = MAIN.subsidy(height)
            if isinstance(producer, Pool):
                addr, tag = producer.coinbase_address(), producer.tag
            else:
                addr, tag = producer.coinbase_addr, producer.tag
            raw, block_hash, cb_txid = self._block(
                height, i, producer, tag, addr, subsidy + fees, [t.enc for t in txs], 0
            )
            self.stored.append((float(i), raw))
            if height in self.stale_heights:
                rival = self.rng.choices(self.producers, weights=self.producer_weights)[0]
                raddr = rival.coinbase_addrs[0] if isinstance(rival, Pool) else rival.coinbase_addr
                encs = [t.enc for t in txs]  # the same transactions, another coinbase
                sraw, _, _ = self._block(
                    height, i, rival, rival.tag, raddr, subsidy + fees, encs, 1
                )
                self.stored.append((i + 0.5, sraw))
            if self.start_hash is None:
                self.start_hash = block_hash
            self.prev_hash = block_hash
            self.n_blocks += 1
            coin = Coin(cb_txid, 0, subsidy + fees, addr, height, d)
            producer.immature.append(coin)
            self.miner_reserve += subsidy + fees
            self.balances.add_coinbase(d, subsidy + fees)
            self.miners_truth.add_block(d, subsidy, fees, self.block_difficulty[i])
            for t in txs:
                if t.transfers:
                    self.flows.add(d, t.transfers)
                    self.miners_truth.add_transfers(d, t.transfers)
                self.balances.add(d, t.deltas)
                self.miner_reserve += t.deltas[MINER]

    def _block(
        self, height, i, producer, tag, addr, value, txs, sibling
    ) -> tuple[bytes, bytes, bytes]:
        if not addr.registered:
            self._register(addr)
        version = self.sc.chain.block_version
        if isinstance(producer, Pool) and producer.version_rolling:
            version |= (self.rng.getrandbits(16) << 13) & 0x1FFFE000
        extranonce = self.rng.randbytes(8)
        time = self.block_times[i] + (self.rng.randint(1, 40) if sibling else 0)
        return fc.encode_block(
            version=version,
            prev_hash=self.prev_hash,
            time=time,
            bits=self.block_bits[i],
            nonce=self.rng.getrandbits(32),
            height=height,
            tag=tag,
            extranonce=extranonce,
            coinbase_outputs=[(value, addr.script)],
            txs=txs,
        )

    # -- output -------------------------------------------------------------------------------

    def storage_order(self) -> list[bytes]:
        """Blocks in download order: height order, stale blocks after their rival, and a share
        ``out_of_order`` of blocks stored after their child (as parallel download leaves them)."""
        rng = random.Random(f"hodlflow-sim:store:{self.sc.seed}")
        blocks = [raw for _, raw in sorted(self.stored, key=lambda x: x[0])]
        p = self.sc.chain.out_of_order
        i = 1  # the first block stays first, so a reader finds the start at once
        while i < len(blocks) - 1:
            if rng.random() < p:
                blocks[i], blocks[i + 1] = blocks[i + 1], blocks[i]
                i += 2
            else:
                i += 1
        return blocks


def _display(h: bytes) -> str:
    return h[::-1].hex()


def _write_labels(sim: Simulation, labels_dir: Path) -> None:
    """What an analyst knows publicly, in the formats of :mod:`hodlflow.entities.labels`.

    ``pools.json``: the scenario's pools as a mempool-format list (ids 1, 2, ... in scenario
    order, the coinbase tag as an escaped regular expression, no addresses: those have to be
    found). ``exchanges.csv``: each exchange's cold-wallet addresses that appear in the chain,
    labelled with the exchange's name. Reads no random numbers, so the chain is unchanged.
    """
    labels_dir.mkdir(parents=True, exist_ok=True)
    pools = [
        {
            "id": i,
            "name": pool.spec.name,
            "addresses": [],
            "tags": [re.escape(pool.spec.tag)] if pool.spec.tag else [],
            "link": "",
        }
        for i, pool in enumerate(sim.pools, start=1)
    ]
    (labels_dir / "pools.json").write_text(
        json.dumps(pools, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    with open(labels_dir / "exchanges.csv", "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["address", "label", "source"])
        for ex in sim.exchanges:
            for addr in ex.cold_addrs:
                address = classify_script(addr.script, MAIN)[1]
                if addr.registered and address is not None:  # seen on chain, has a text form
                    out.writerow([address, ex.spec.name, "simulator"])


def run_simulation(
    scenario_path: str,
    out_dir: str,
    seed: int | None = None,
    scale: float | None = None,
    xor: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Simulate a scenario and write its blocks directory, prices and ground truth.

    ``scenario_path`` is a file or a name in ``conf/scenarios/``; ``seed`` and ``scale``
    override the scenario's. Writes ``out_dir/blocks/``, ``prices.csv``, ``truth/*.csv``,
    ``labels/pools.json``, ``labels/exchanges.csv`` and ``manifest.json`` and returns the
    manifest plus the run's ``elapsed_seconds`` and ``tx_per_s`` (those two are not written:
    the files depend only on scenario and seed).
    Refuses an ``out_dir`` whose ``blocks/`` already holds blk files.

    Example::

        m = run_simulation("tiny", "/tmp/sim")
        # hodlflow ingest --set network=main --set check_pow=false
        #   --set ingest.blocks_dir=/tmp/sim/blocks --set ingest.start_hash=<m["start_hash"]>
        #   --set ingest.start_height=<m["start_height"]>
    """
    t0 = _time.perf_counter()
    sc = load_scenario(scenario_path).with_overrides(seed=seed, scale=scale)
    out = Path(out_dir)
    blocks_dir = out / "blocks"
    if blocks_dir.exists() and any(blocks_dir.glob("blk*.dat")):
        raise FileExistsError(f"{blocks_dir} already holds blk files; choose an empty out_dir")
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    sim = Simulation(sc, truth_dir)
    sim.run(progress)
    xor_key = hashlib.sha256(f"hodlflow-sim:xor:{sc.seed}".encode()).digest()[:8] if xor else None
    files = write_blocks_dir(
        blocks_dir,
        sim.storage_order(),
        MAIN,
        xor_key=xor_key,
        max_file_bytes=int(sc.chain.blk_file_mb * 1_000_000),
    )
    first_day = sc.first_day
    write_prices(out / "prices.csv", first_day, sim.price)
    flow_rows = sim.flows.write(truth_dir / "daily_flows.csv", first_day)
    sim.balances.write(truth_dir / "daily_balances.csv", first_day)
    sim.miners_truth.write(truth_dir / "miner_daily.csv", first_day)
    _write_labels(sim, out / "labels")
    cm = sc.cost_model
    n_tx = sim.n_tx + sim.n_blocks
    manifest = {
        "scenario": sc.name,
        "scenario_file": Path(sc.source).name,
        "network": MAIN.name,
        "check_pow": False,
        "start_hash": _display(sim.start_hash),
        "start_height": sc.chain.start_height,
        "tip_hash": _display(sim.prev_hash),
        "tip_height": sim.tip_height,
        "first_day": first_day.isoformat(),
        "last_day": (first_day + dt.timedelta(days=sc.days - 1)).isoformat(),
        "days": sc.days,
        "phases": [
            {
                "name": p.name,
                "days": p.days,
                "blocks_per_day": p.blocks_per_day,
                "activity": p.activity,
                "end_usd": p.end_usd,
            }
            for p in sc.phases
        ],
        "blocks": sim.n_blocks,
        "stale_blocks": len(sim.stale_heights),
        "transactions": n_tx,
        "coinbase_transactions": sim.n_blocks,
        "addresses": sim.addresses.count,
        "entities": len(sim.entities),
        "blk_files": len(files),
        "blocks_bytes": sum(len(raw) for _, raw in sim.stored),
        "xor": xor,
        "seed": sc.seed,
        "scale": sc.scale,
        "cost_model": {
            "efficiency_j_per_th": cm.efficiency_j_per_th,
            "power_usd_per_kwh": cm.power_usd_per_kwh,
            "pue": cm.pue,
        },
        "ingest_settings": {
            "network": "main",
            "check_pow": False,
            "ingest.blocks_dir": "blocks",
            "ingest.start_hash": _display(sim.start_hash),
            "ingest.start_height": sc.chain.start_height,
        },
        "files": {
            "blocks": "blocks",
            "prices": "prices.csv",
            "addresses": "truth/addresses.csv",
            "daily_flows": "truth/daily_flows.csv",
            "daily_balances": "truth/daily_balances.csv",
            "miner_daily": "truth/miner_daily.csv",
            "pools": "labels/pools.json",
            "exchange_labels": "labels/exchanges.csv",
        },
        "daily_flow_rows": flow_rows,
        "not_enforced": [
            "proof of work (hashes do not meet their nBits target: ingest with check_pow=false)",
            "signatures (dummy bytes) and sigop limits",
            "relay policy (ancestor limits, dust and minimum fee rates)",
        ],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    elapsed = _time.perf_counter() - t0
    return {**manifest, "elapsed_seconds": elapsed, "tx_per_s": n_tx / elapsed if elapsed else 0.0}


__all__ = ["SimulationError", "Simulation", "run_simulation"]

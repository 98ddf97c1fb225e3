"""The simulator's agents: what real owners of coins do, each on its own turns.

Every agent is an :class:`Entity` with a wallet and habits drawn from the scenario
(``conf/scenarios/*.yaml``, :mod:`hodlflow.sim.scenario`): pools and solo miners mine and sell to
cover electricity (more when the price falls under the production cost); exchanges take
deposits, sweep them into hot wallets, pay withdrawals and keep most coins cold; long-term
holders buy on a schedule (more in dips) and may take profit far over their cost; traders open
and close short positions; forced sellers hold until the price falls under the cost and then
sell everything; late buyers enter a rally and stop out under their cost; coinjoin users mix;
users pay merchants, who cash out to an exchange. An agent decides *what* to do on its turn
(``act``) and asks the simulation's :class:`hodlflow.sim.ledger.Ledger` (``sim.ledger``) to pay,
sweep or give it an address, and the simulation (``sim.schedule``, ``sim.delay``) for its next
turn.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from hodlflow.sim import fastchain as fc
from hodlflow.sim.fastchain import COIN, DUST, Address, Coin
from hodlflow.sim.ledger import MAX_INPUTS
from hodlflow.sim.truth import TYPE_CLASS

if TYPE_CHECKING:
    from hodlflow.sim.simulator import Simulation

MIN_SALE = 20_000  # sats: smaller sales are not worth a transaction
MAX_TAKE_PROFIT = 0.6  # most of its balance a long-term holder sells in one profit-taking turn
STAMP_SATS = 1_000


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
            sim.market.cum_electricity[d + 1] - sim.market.cum_electricity[self.last + 1]
        )
        self.last = d
        price, ratio = sim.market.price[d], sim.market.ratio[d]
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
                target = sim.ledger.receive_address(buyer)
            else:
                target = self.exchange.deposit_address(sim, self)
            sim.ledger.pay_or_sweep(self, target, amount)
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
            sim.ledger.new_address(self.wallet, spec.coinbase_script, "coinbase")
            for _ in range(spec.coinbase_addresses)
        ]
        self.wallet_addr = sim.ledger.new_address(self.wallet, spec.wallet_script, "pool_wallet")
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
            inputs = sim.ledger.select(self.wallet, total, 43 * len(chunk), max_inputs=5_000)
            if inputs is None:
                break
            payments = []
            for i in chunk:
                m = self.members[i]
                addr = sim.ledger.receive_address(m, "payout")
                payments.append((addr, owed[i]))
                m.received += owed[i]
                owed[i] = 0
            sim.ledger.spend(self, inputs, payments, change=self.wallet_addr)
        # Sell part of the pool's own share (more of it under the production cost).
        stress = max(0.0, 1.0 - sim.market.ratio[d])
        amount = int(self.kept * min(1.0, spec.sell_fraction * (1 + 2 * stress)))
        free = self.wallet.balance - sum(owed)
        amount = min(amount, free)
        if amount >= MIN_SALE and self.exchange is not None:
            target = self.exchange.deposit_address(sim, self)
            if sim.ledger.pay(self, [(target, amount)], change=self.wallet_addr):
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
            sim.ledger.new_address(self.hot, spec.hot_script, "hot")
            for _ in range(spec.hot_addresses)
        ]
        self.cold_addrs = [
            sim.ledger.new_address(self.cold, spec.cold_script, "cold")
            for _ in range(spec.cold_addresses)
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
            addr = sim.ledger.new_address(self.deposit, self.spec.deposit_script, "deposit")
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
            and sim.rng.random() < ie.daily_prob * min(1.0, sim.chain_plan.activity[d])
        ):
            other = sim.rng.choice([x for x in sim.exchanges if x is not self])
            amount = int(self.hot.balance * ie.fraction)
            if amount >= MIN_SALE:
                target = other.deposit_address(sim, self)
                sim.ledger.pay(
                    self, [(target, amount)], wallet=self.hot, change=self._rot(self.hot_addrs)
                )

    def _sweep(self, sim: Simulation, d: int) -> None:
        coins = self.deposit.coins
        n = 0
        while n < len(coins) and coins[n].day < d:  # deposits of earlier days only
            n += 1
        for start in range(0, n, self.spec.max_sweep_inputs):
            chunk = coins[start : min(n, start + self.spec.max_sweep_inputs)]
            sim.ledger.sweep(self, chunk, self._rot(self.hot_addrs))
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
            sim.ledger.pay(self, chunk, wallet=self.hot, change=change)

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
            inputs = sim.ledger.take_all(src, MAX_INPUTS)
            sim.ledger.sweep(self, inputs, self._rot(dst_addrs))
        else:
            sim.ledger.pay(
                self, [(self._rot(dst_addrs), amount)], wallet=src, change=self._rot(src_addrs)
            )


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
        if (
            sim.ledger.pay_or_sweep(self, self.exchange.deposit_address(sim, self), amount)
            and before
        ):
            self.cost_usd *= max(0, self.wallet.balance) / before

    def act(self, sim: Simulation, d: int) -> None:
        spec = sim.sc.agents.strong_holders
        # Budget accrued since the last turn, over at most two of the phase's usual intervals
        # (so the first turn of a busy phase does not spend a quiet phase's months at once).
        window = 2 * spec.buy_every_days / max(sim.chain_plan.activity[d], 1e-9)
        since = max(self.last, d - int(window))
        usd = self.daily_usd * (sim.market.cum_demand[d + 1] - sim.market.cum_demand[since + 1])
        elapsed, self.last = d - self.last, d
        price, ratio = sim.market.price[d], sim.market.ratio[d]
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
            got = self.exchange.request(sim.ledger.receive_address(self), want)
            self.pending_usd = (want - got) / COIN * price
        else:
            self.pending_usd = usd
        if self.wallet.coins and sim.rng.random() < spec.spend_prob_per_year * elapsed / 365:
            if ratio > 1.3:  # take a little profit
                amount = int(self.wallet.balance * sim.rng.uniform(0.05, 0.3))
                if amount >= MIN_SALE:
                    self.sell(sim, amount)
            elif len(self.wallet.coins) >= 5:  # consolidate into a new own address
                inputs = sim.ledger.take_all(self.wallet, MAX_INPUTS)
                sim.ledger.sweep(
                    self, inputs, sim.ledger.new_address(self.wallet, self.kind, "receive")
                )
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
        ratio = sim.market.ratio[d]
        rng = sim.rng
        if not self.long:
            if ratio < 1 and rng.random() > spec.fear_entry_factor:
                sim.schedule(self, d + sim.delay(spec.entry_every_days, d))
                return
            usd = spec.trade_usd / sim.sc.scale * rng.lognormvariate(0.0, 1.0)
            got = self.exchange.request(
                sim.ledger.receive_address(self), int(usd / sim.market.price[d] * COIN)
            )
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
                sim.ledger.sweep(self, sim.ledger.take_all(self.wallet, MAX_INPUTS), target)
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
        ratio, price, rng = sim.market.ratio[d], sim.market.price[d], sim.rng
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
            got = self.exchange.request(sim.ledger.receive_address(self), int(usd / price * COIN))
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
        price = sim.market.price[d]
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
        addr = sim.ledger.new_address(
            self.wallet, self.kind, "receive"
        )  # self custody, fresh address
        self.exchange.request(addr, int(self.per_purchase_usd / sim.market.price[d] * COIN))
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
                target = sim.ledger.merchant_address(rng.choice(sim.merchants))
            else:
                target = self.exchange.deposit_address(sim, self)
            sim.ledger.sweep(self, [coin], target)
        elif self.wallet.balance < 1.5 * max(spec.denominations_btc) * COIN:
            usd = spec.buy_usd * rng.lognormvariate(0.0, 0.7)
            addr = sim.ledger.new_address(self.wallet, self.kind, "premix")
            self.exchange.request(addr, int(usd / sim.market.price[d] * COIN))
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
        price = sim.market.price[d]
        amount = int(spec.payment_usd * rng.lognormvariate(0.0, 1.0) / price * COIN)
        amount = max(amount, 5 * DUST)
        if self.wallet.balance < amount + 50_000:
            usd = spec.topup_usd * rng.lognormvariate(0.0, 0.5)
            self.exchange.request(sim.ledger.receive_address(self), int(usd / price * COIN))
            sim.schedule(self, d + 1 + sim.delay(1 / max(spec.payments_per_user_day, 1e-6), d))
            return
        if len(sim.users) > 1 and (not sim.merchants or rng.random() < spec.p2p_share):
            other = rng.choice(sim.users)
            if other is self:
                other = sim.users[(sim.users.index(self) + 1) % len(sim.users)]
            target = sim.ledger.receive_address(other)
        else:
            target = sim.ledger.merchant_address(rng.choice(sim.merchants))
        payments = [(target, amount)]
        extras: list[tuple[int, bytes]] = []
        if rng.random() < spec.op_return_share:
            extras.append(fc.op_return_output(b"hodlflow:" + rng.randbytes(rng.randint(8, 40))))
        if rng.random() < spec.stamp_share:
            payments.append((sim.ledger.new_address(self.wallet, "multisig", "stamp"), STAMP_SATS))
        if rng.random() < spec.witness_v2_share:
            payments.append(
                (sim.ledger.new_address(self.wallet, "witness_v2", "future"), STAMP_SATS)
            )
        sim.ledger.pay(self, payments, extras=extras)
        sim.schedule(self, d + sim.delay(1 / max(spec.payments_per_user_day, 1e-6), d))


class Merchant(Entity):
    """Receives at a fresh invoice address per payment; cashes out on an exchange."""

    def __init__(self, sim, label, kind, reuse):
        super().__init__(sim, "merchant", label, kind, reuse)
        self.static = sim.ledger.new_address(self.wallet, kind, "static")

    def act(self, sim: Simulation, d: int) -> None:
        if self.wallet.balance >= MIN_SALE:
            sim.sell_all(self)
        sim.schedule(self, d + sim.delay(sim.sc.agents.payments.merchant_sell_every_days, d))

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

The simulator's rooms: :mod:`hodlflow.sim.plan` (the block schedule and the market, pure
functions of the scenario, drawn first), :mod:`hodlflow.sim.agents` (what each kind of owner
does on its turn), :mod:`hodlflow.sim.ledger` (addresses, coin selection, payments, the
transaction queue and the truth each transaction books) and this module (the agents' creation,
the day loop, the blocks, the files).

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
import os
import random
import re
import time as _time
from collections.abc import Callable
from pathlib import Path

from hodlflow.chain.network import MAIN
from hodlflow.chain.script import classify_script
from hodlflow.sim import fastchain as fc
from hodlflow.sim.agents import (
    CoinjoinUser,
    Coordinator,
    Entity,
    Exchange,
    ForcedSeller,
    LateBuyer,
    Merchant,
    Miner,
    Pool,
    StrongHolder,
    User,
    WeakTrader,
)
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sim.fastchain import COIN, DUST, Address, Coin
from hodlflow.sim.ledger import MAX_INPUTS, Ledger, TxRec
from hodlflow.sim.plan import SimulationError, plan_chain, plan_market
from hodlflow.sim.scenario import Scenario, load_scenario
from hodlflow.sim.truth import (
    MINER,
    AddressTruth,
    BalanceTruth,
    FlowTruth,
    MinerTruth,
    write_prices,
)

COINBASE_MATURITY = 100


class Simulation:
    """One run of a scenario: ``run()`` makes the blocks (kept in memory until
    :func:`run_simulation` writes them) and streams the address truth to ``truth_dir``."""

    def __init__(self, sc: Scenario, truth_dir: Path):
        self.sc = sc
        self.rng = random.Random(f"hodlflow-sim:agents:{sc.seed}")
        self.entities: list[Entity] = []
        self.days = sc.days
        self.chain_plan = plan_chain(sc)
        self.market = plan_market(sc, self.chain_plan)
        self.ledger = Ledger(
            seed=sc.seed,
            rng=self.rng,
            chain_plan=self.chain_plan,
            market=self.market,
            addresses=AddressTruth(truth_dir / "addresses.csv"),
            merchant_address_reuse=sc.agents.payments.merchant_address_reuse,
        )
        self.stored: list[tuple[float, bytes]] = []  # (storage order key, raw block)
        self.n_blocks = 0
        self.flows = FlowTruth()
        self.balances = BalanceTruth(self.days)
        self.miners_truth = MinerTruth(
            [p.name for p in self.chain_plan.phase_of_day],
            self.market.price,
            sc.cost_model.efficiency_j_per_th,
            sc.cost_model.power_usd_per_kwh,
            sc.cost_model.pue,
        )
        self.miner_reserve = 0
        self.agenda: list[list[Entity]] = [[] for _ in range(self.days)]
        self.day = -1  # while agents are made: first turns may fall on day 0
        self._make_agents()
        self.day = 0

    @property
    def day(self) -> int:
        """The day being simulated (the ledger's: its fee rate and prices are that day's)."""
        return self.ledger.day

    @day.setter
    def day(self, d: int) -> None:
        self.ledger.day = d

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
            m.coinbase_addr = self.ledger.new_address(m.wallet, m.kind, "coinbase")
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
            self.coordinator_addr = self.ledger.new_address(
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
        cum = self.chain_plan.cum_activity
        target = cum[d + 1] + wait
        if target > cum[-1]:
            return self.days + 1
        return max(1, bisect.bisect_left(cum, target) - 1 - d)

    def calendar_delay(self, mean_days: float) -> int:
        """Days to the next turn of an agent that keeps its habits whatever the phase."""
        return 1 + int(self.rng.expovariate(1.0 / max(mean_days - 0.5, 0.01)))

    def momentum(self, d: int, days: int) -> float | None:
        """Price on day ``d`` over the price ``days`` earlier (None before that day exists)."""
        return self.market.price[d] / self.market.price[d - days] if d >= days else None

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

    def otc_target(self, share: float) -> Address | None:
        """With chance ``share``: the receive address of a large long-term holder buying over
        the counter (a direct weak→strong transfer); else None (sell on an exchange). Draws
        nothing when ``share`` is 0, so scenarios without OTC sales keep their chains."""
        if share and self.otc_buyers and self.rng.random() < share:
            buyer = self.pick_otc_buyer()
            return self.ledger.receive_address(buyer) if buyer is not None else None
        return None

    def sell_all(self, ent: Entity, otc_share: float = 0.0) -> bool:
        """Send the entity's whole wallet (up to MAX_INPUTS coins) to its exchange deposit, or
        with chance ``otc_share`` to an OTC buyer."""
        inputs = self.ledger.take_all(ent.wallet, MAX_INPUTS)
        if not inputs:
            return False
        target = self.otc_target(otc_share) or ent.exchange.deposit_address(self, ent)
        return self.ledger.sweep(ent, inputs, target)

    # -- coinjoin -----------------------------------------------------------------------------

    def _coinjoin_rounds(self, d: int) -> None:
        if not self.cj_users or d < self.next_round:
            return
        spec = self.sc.agents.coinjoin
        self.next_round = d + self.delay(spec.every_days, d)
        rounds = max(1, int(self.chain_plan.activity[d] / spec.every_days))
        for _ in range(rounds):
            self._coinjoin_round(spec)

    def _coinjoin_round(self, spec) -> None:
        """One round: a denomination enough users can afford, one unmixed coin from each of up
        to ``participants[1]`` of them, an equal-value output per participant, their change,
        and the coordinator's fee output. Each participant pays its share of the mining fee."""
        rng = self.rng
        rate = self.market.fee_rates[self.day]
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
            equal.append((self.ledger.new_address(u.wallet, u.kind, "mix"), denom))
            rest = c.value - denom - cfee - mfee
            if rest >= DUST:
                other.append((self.ledger.new_address(u.wallet, u.kind, "change"), rest))
            if cfee:
                transfers.append((u.cls, self.coordinator.cls, cfee))
        if cfee * len(picked) >= DUST:
            other.append((self.coordinator_addr, cfee * len(picked)))
        else:
            transfers = []  # fee too small for an output: it goes to the miners
        other.sort(key=lambda o: -o[1])
        self.ledger.emit(self.coordinator, inputs, equal + other, (), transfers=transfers)

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
            self.ledger.addresses.close()
        if self.ledger.queue:
            raise SimulationError(
                f"{len(self.ledger.queue)} transactions did not fit in the blocks of the last day: "
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
                progress(f"day {d + 1}/{self.days}: {self.ledger.n_tx:,} transactions")

    def _pick_stale_heights(self) -> set[int]:
        n = self.sc.chain.stale_blocks
        lo, hi = self.sc.chain.start_height + 1, self.chain_plan.tip_height - 3
        if n <= 0 or hi <= lo:
            return set()
        rng = random.Random(f"hodlflow-sim:stale:{self.sc.seed}")
        n = min(n, hi - lo + 1)
        return set(rng.sample(range(lo, hi + 1), n))

    def _mature(self, d: int) -> None:
        limit = self.chain_plan.first_height[d] - COINBASE_MATURITY
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
        queue = self.ledger.queue
        for _ in range(self.chain_plan.blocks_per_day[d]):
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
            self.miners_truth.add_block(d, subsidy, fees, self.chain_plan.block_difficulty[i])
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
            self.ledger.register(addr)
        version = self.sc.chain.block_version
        if isinstance(producer, Pool) and producer.version_rolling:
            version |= (self.rng.getrandbits(16) << 13) & 0x1FFFE000
        extranonce = self.rng.randbytes(8)
        time = self.chain_plan.block_times[i] + (self.rng.randint(1, 40) if sibling else 0)
        return fc.encode_block(
            version=version,
            prev_hash=self.prev_hash,
            time=time,
            bits=self.chain_plan.block_bits[i],
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
    write_prices(out / "prices.csv", first_day, sim.market.price)
    flow_rows = sim.flows.write(truth_dir / "daily_flows.csv", first_day)
    sim.balances.write(truth_dir / "daily_balances.csv", first_day)
    sim.miners_truth.write(truth_dir / "miner_daily.csv", first_day)
    _write_labels(sim, out / "labels")
    cm = sc.cost_model
    n_tx = sim.ledger.n_tx + sim.n_blocks
    manifest = {
        "scenario": sc.name,
        "scenario_file": Path(sc.source).name,
        "network": MAIN.name,
        "check_pow": False,
        "start_hash": _display(sim.start_hash),
        "start_height": sc.chain.start_height,
        "tip_hash": _display(sim.prev_hash),
        "tip_height": sim.chain_plan.tip_height,
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
        "addresses": sim.ledger.addresses.count,
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


def next_steps(manifest: dict, out_dir: str) -> str:
    """The commands that ingest, cluster and score the simulation ``run_simulation`` wrote into
    ``out_dir`` (its ``manifest``): the start block and the published labels it needs."""
    labels = manifest.get("files", {})
    return (
        f"ingest it with:\n  hodlflow ingest --blocks-dir {os.path.join(out_dir, 'blocks')} "
        f"--set check_pow=false --set ingest.start_hash={manifest['start_hash']} "
        f"--set ingest.start_height={manifest['start_height']}"
        f"\nthen cluster it with the simulator's published labels and score it:\n"
        f"  hodlflow entities --set entities.pools=conf/pools.json,"
        f"{os.path.join(out_dir, labels.get('pools', 'labels/pools.json'))} "
        f"--set entities.label_seeds=conf/labels/exchanges.csv,"
        f"{os.path.join(out_dir, labels.get('exchange_labels', 'labels/exchanges.csv'))}\n"
        f"  hodlflow evaluate --sim {out_dir}"
    )

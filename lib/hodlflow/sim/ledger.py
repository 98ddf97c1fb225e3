"""The simulator's ledger: addresses, coin selection, payments and sweeps, and the queue of
transactions they make (with the ground truth each books).

Agents decide *what* to pay (:mod:`hodlflow.sim.agents`); the ledger decides *how*, the way a
wallet does: it picks the oldest coins until the amount and the fee are covered, pays change to
a fresh address of the payer's kind (or back to the spent address, the entity's
``change_reuse``), draws the fee rate around the day's, serializes the transaction, credits the
outputs to their owners' wallets and queues it for the day's blocks with the transfers between
owners and the change of what each class holds.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hodlflow.chain.network import MAIN
from hodlflow.chain.script import classify_script
from hodlflow.sim import fastchain as fc
from hodlflow.sim.fastchain import COIN, DUST, Address, Coin
from hodlflow.sim.plan import ChainPlan, MarketPlan, SimulationError
from hodlflow.sim.truth import CLASSES, AddressTruth

if TYPE_CHECKING:
    from hodlflow.sim.agents import Entity, Merchant, Wallet

SPENDABLE = frozenset(fc.SPENDABLE_KINDS)
MAX_INPUTS = 400  # inputs per ordinary spend
FEE_JITTER = (0.8, 1.3)  # a transaction's fee rate is the day's rate times a draw from this


class TxRec:
    """A queued transaction: its bytes, fee, transfers between entities and, per class, the
    change of what the class holds (outputs it receives less inputs it spends)."""

    __slots__ = ("enc", "fee", "transfers", "deltas")

    def __init__(self, enc: fc.EncodedTx, fee: int, transfers: list, deltas: list[int]):
        self.enc = enc
        self.fee = fee
        self.transfers = transfers
        self.deltas = deltas


class Ledger:
    """Addresses and payments of one run. ``rng`` is the simulation's agent stream (shared, so
    the order of draws is the day's order of events); ``day`` is set by the day loop; the
    transactions wait in ``queue`` until the day's blocks take them; ``addresses`` receives
    each address the first time an output pays it."""

    def __init__(
        self,
        *,
        seed: int,
        rng: random.Random,
        chain_plan: ChainPlan,
        market: MarketPlan,
        addresses: AddressTruth,
        merchant_address_reuse: float,
    ):
        self.rng = rng
        self.chain_plan = chain_plan
        self.market = market
        self.addresses = addresses
        self.merchant_address_reuse = merchant_address_reuse
        self._addr_prefix = hashlib.sha256(f"hodlflow-sim:addr:{seed}".encode()).digest()
        self._addr_n = 0
        self.day = 0
        self.queue: deque[TxRec] = deque()
        self.n_tx = 0

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
        if self.rng.random() < self.merchant_address_reuse:
            return m.static
        return self.new_address(m.wallet, m.kind, "invoice")

    def register(self, addr: Address) -> None:
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
        rate = self.market.fee_rates[self.day] * FEE_JITTER[1]
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
        self.emit(ent, inputs, [(target, total - fee)], ())
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
        self.emit(ent, inputs, outputs, extras)

    def _fee(self, inputs: Sequence[Coin], outs: Sequence[tuple[int, bytes]]) -> int:
        rate = self.market.fee_rates[self.day] * self.rng.uniform(*FEE_JITTER)
        return int(rate * fc.estimate_vsize(inputs, outs)) + 1

    def emit(
        self,
        ent: Entity,
        inputs: Sequence[Coin],
        outputs: Sequence[tuple[Address, int]],
        extras: Sequence[tuple[int, bytes]],
        transfers: list | None = None,
    ) -> None:
        """Serialize, credit the outputs to their wallets, book transfers, queue the tx."""
        raw_outs = [(v, a.script) for a, v in outputs] + list(extras)
        locktime = self.chain_plan.first_height[self.day] - 1 if ent.locktime_height else 0
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
                self.register(addr)
            owner = addr.owner
            if addr.kind in SPENDABLE:
                owner.add(Coin(txid, vout, value, addr, -1, day))
            rcv = owner.entity
            deltas[rcv.cls] += value
            if rcv.tracks_cost and rcv is not ent:
                rcv.cost_usd += value / COIN * self.market.price[day]
            if own_transfers and rcv is not ent:
                transfers.append((src, rcv.cls, value))
        fee = total_in - total_out - sum(v for v, _ in extras)
        self.queue.append(TxRec(enc, fee, transfers, deltas))
        self.n_tx += 1

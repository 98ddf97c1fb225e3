"""The tiny regtest chain of the ingest tests, with its answers worked out by hand.

    height 0  G   coinbase 50 BTC → p2wpkh(K0)
    height 1  B1  coinbase 50 BTC
    height 2  B2  coinbase 50 BTC + 10,000 sat fee; tx A spends G:0 (50 BTC) →
                  A:0 10 BTC p2pkh(HA), A:1 0 sat OP_RETURN, A:2 39.9999 BTC p2wpkh(HB)
    height 3  B3  coinbase 50 BTC + 5,000 sat fee; tx C spends A:0 (10 BTC) →
                  C:0 9.99995 BTC p2wsh(HC)
    stale     S2  a sibling of B2 on B1 (shorter branch: dropped)

A spends a segwit output, so A has a witness and B2's coinbase carries the BIP141 commitment
(a second, OP_RETURN output of 0 sat). Supply: 4 × 50 BTC, all unspent but G:0 and A:0.
"""

from __future__ import annotations

from dataclasses import dataclass

from hodlflow.chain.network import REGTEST
from hodlflow.sim.builder import BuiltBlock, BuiltTx, ChainBuilder, op_return, p2pkh, p2wpkh, p2wsh

COIN = 100_000_000
HA = bytes.fromhex("a1" * 20)
HB = bytes.fromhex("b2" * 20)
HC = bytes.fromhex("c3" * 32)
K0 = bytes.fromhex("d4" * 20)


@dataclass
class TinyChain:
    builder: ChainBuilder
    g: BuiltBlock
    b1: BuiltBlock
    b2: BuiltBlock
    b3: BuiltBlock
    stale: BuiltBlock
    a: BuiltTx
    c: BuiltTx

    @property
    def best(self) -> list[BuiltBlock]:
        return [self.g, self.b1, self.b2, self.b3]

    @property
    def stored(self) -> list[bytes]:
        return [x.raw for x in (self.g, self.b1, self.b2, self.stale, self.b3)]


def build_tiny_chain() -> TinyChain:
    b = ChainBuilder(REGTEST, start_time=1_700_000_000, payout_script=p2wpkh(K0))
    g = b.add_block()
    b1 = b.add_block()
    a = b.tx(
        [g.coinbase.outpoint(0)],
        [
            (10 * COIN, p2pkh(HA)),
            (0, op_return(b"hodlflow")),
            (50 * COIN - 10 * COIN - 10_000, p2wpkh(HB)),
        ],
    )
    b2 = b.add_block([a])
    c = b.tx([a.outpoint(0)], [(10 * COIN - 5_000, p2wsh(HC))])
    b3 = b.add_block([c])
    stale = b.add_block(parent=b1.hash, coinbase_tag=b"/stale/")
    return TinyChain(b, g, b1, b2, b3, stale, a, c)


FIVE_DAY_NAMES = ["P", "A1", "A2", "B1", "B2", "D1", "D2", "X", "E"]
FIVE_DAY_FEE = 10_000


def five_day_chain(hashes: dict[str, bytes], start_time: int) -> tuple[str, list[bytes]]:
    """The entities and report tests' chain: five regtest blocks a day apart, all paid to P by
    the /TestPool/ coinbase, ``hashes`` naming the 20-byte p2wpkh key hash of each of
    :data:`FIVE_DAY_NAMES`. Returns (genesis hash, raw blocks).

        day 0  coinbase 50 BTC → P
        day 1  T1: P's coinbase → A1 20, A2 10, B1 10, B2 5, back to P 5 − fee
        day 2  T2: B1 + B2 → D1 15 − fee;  T3: A2 → D2 10 − fee
        day 3  T4: D1 + D2 → X 25 − 3 fees;  T5: A1 → E 20 − fee
        day 4  coinbase only
    """
    fee = FIVE_DAY_FEE
    s = {n: p2wpkh(hashes[n]) for n in FIVE_DAY_NAMES}
    b = ChainBuilder(REGTEST, start_time=start_time, interval=86_400, payout_script=s["P"])
    b0 = b.add_block(coinbase_tag=b"/TestPool/")
    t1 = b.tx(
        [b0.coinbase.outpoint(0)],
        [(20 * COIN, s["A1"]), (10 * COIN, s["A2"]), (10 * COIN, s["B1"]), (5 * COIN, s["B2"]),
         (5 * COIN - fee, s["P"])],
    )  # fmt: skip
    b.add_block([t1], coinbase_tag=b"/TestPool/")
    t2 = b.tx([t1.outpoint(2), t1.outpoint(3)], [(15 * COIN - fee, s["D1"])])
    t3 = b.tx([t1.outpoint(1)], [(10 * COIN - fee, s["D2"])])
    b.add_block([t2, t3], coinbase_tag=b"/TestPool/")
    t4 = b.tx([t2.outpoint(0), t3.outpoint(0)], [(25 * COIN - 3 * fee, s["X"])])
    t5 = b.tx([t1.outpoint(0)], [(20 * COIN - fee, s["E"])])
    b.add_block([t4, t5], coinbase_tag=b"/TestPool/")
    b.add_block(coinbase_tag=b"/TestPool/")
    return b0.hash, [blk.raw for blk in b.blocks]

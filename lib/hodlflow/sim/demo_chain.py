"""A small deterministic mainnet-format chain for ``make demo`` and quick trials.

Every script type, legacy and segwit spends, chains of payments, a stale fork, blocks stored
out of order across several blk files, an xor key. The headers carry easy ``bits`` without the
work of mainnet, so ingest runs with ``check_pow: false`` (the only check it skips).
"""

from __future__ import annotations

import random
from pathlib import Path

from hodlflow.chain.network import MAIN
from hodlflow.sim import builder as b
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sim.keys import KeyRing, sha256

DEMO_XOR_KEY = bytes.fromhex("5a17c3e98b04d261")


def _scripts(keys: KeyRing, i: int) -> list[bytes]:
    k = keys[i % 16]
    h = sha256(i.to_bytes(4, "little"))
    return [
        b.p2pkh(h[:20]),
        b.p2wpkh(h[1:21]),
        b.p2sh(h[2:22]),
        b.p2wsh(h),
        b.p2tr(k.xonly),
        b.p2pk(k.pubkey),
        b.multisig(1, [k.pubkey, keys[(i + 1) % 16].pubkey]),
        b.witness_program(2, h[:16]),
    ]


def build_demo_blocks(blocks: int = 150, seed: int = 7) -> tuple[list[b.BuiltBlock], str]:
    """Return the built blocks (best chain and one stale block) and the first block's hash."""
    rng = random.Random(seed)
    keys = KeyRing(seed)
    chain = b.ChainBuilder(MAIN, start_time=1_700_000_000, mine=False, bits=0x1D00FFFF)
    built: list[b.BuiltBlock] = []
    spendable: list[tuple[str, int, int]] = []  # (txid, vout, value) of mature outputs
    pending: list[tuple[int, str, int, int]] = []  # (height made, txid, vout, value)
    for height in range(blocks):
        txs = []
        rng.shuffle(spendable)
        for _ in range(min(len(spendable), rng.randint(5, 30))):
            txid, vout, value = spendable.pop()
            fee = rng.randint(200, 5000)
            scripts = _scripts(keys, rng.randint(0, 10**6))
            pay = rng.randint(value // 10, value // 2)
            outs = [(pay, rng.choice(scripts)), (value - pay - fee, rng.choice(scripts[:5]))]
            if rng.random() < 0.15:
                outs.append((0, b.op_return(b"hodlflow demo %d" % height)))
            tx = chain.tx([(txid, vout)], outs)
            txs.append(tx)
            for n, (v, script) in enumerate(outs):
                if v > 10_000 and script[0] != 0x6A and not _bare_multisig(script):
                    pending.append((height, tx.txid, n, v))
        blk = chain.add_block(txs, coinbase_tag=b"/demo-pool-%d/" % (height % 3))
        built.append(blk)
        pending.append((height, blk.coinbase_txid, 0, blk.coinbase.outputs[0][0]))
        # Coinbase outputs mature after 100 blocks; other outputs may be spent a block later.
        keep = []
        for made, txid, vout, value in pending:
            cb = txid == blk.coinbase_txid or any(txid == x.coinbase_txid for x in built[-101:])
            if height - made >= (100 if cb else 1):
                spendable.append((txid, vout, value))
            else:
                keep.append((made, txid, vout, value))
        pending = keep
    stale = chain.add_block(parent=built[-3].hash, coinbase_tag=b"/stale/")
    return [*built, stale], built[0].hash


def _bare_multisig(script: bytes) -> bool:
    return script[-1] == 0xAE


def write_demo_chain(out: str, blocks: int = 150, xor: bool = True) -> dict:
    """Write the demo chain as a blocks directory under ``out/blocks``; return its facts."""
    built, first = build_demo_blocks(blocks)
    target = Path(out) / "blocks"
    files = write_blocks_dir(
        target,
        [x.raw for x in built],
        MAIN,
        xor_key=DEMO_XOR_KEY if xor else None,
        max_file_bytes=32 * 1024,
        shuffle_seed=11,
    )
    return {
        "blocks_dir": str(target),
        "files": len(files),
        "start_hash": first,
        "best_height": blocks - 1,
        "stored_blocks": len(built),
        "transactions": sum(len(x.txids) for x in built[:-1]),
    }

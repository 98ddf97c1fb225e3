"""Generate the benchmark's chain: a deterministic, valid mainnet-format Bitcoin Core datadir.

Layout written under ``OUT``::

    OUT/blocks/blk00000.dat ...  blocks, mainnet magic, no xor.dat (the peers cannot read xor)
    OUT/blocks/index/            Bitcoin Core's LevelDB block index (only when plyvel imports;
                                 bitcoin-explorer needs it, every other reader ignores it)
    OUT/chain.json               what is where: the files, heights and sizes of each shape

Three groups of blocks, each in blk files of its own (so a parser can be timed on one shape by
reading only that shape's files), all one valid chain (every input spends an output created
earlier on it, so ``run_ingest`` accepts it):

* ``setup`` (heights 0-1): a coinbase with a few dozen outputs, then fan-out transactions that
  each split one of them into ``fanout_outputs`` outputs: the funds the two shapes spend.
* ``small``: blocks of ``small_txs_per_block`` transactions with 1-3 inputs and 2 outputs
  (payment + change), like today's mainnet blocks.
* ``input_heavy``: blocks of ``heavy_txs_per_block`` consolidations, each spending
  ``heavy_inputs_per_tx`` outputs into one.

Output scripts are P2WPKH 40 %, P2TR 20 %, P2PKH 15 %, P2SH 15 %, P2WSH 10 %, each paying a fresh
hash-derived 20- or 32-byte program (no EC work; no address repeats, so address caches do not
help anyone). Inputs carry the builder's dummy unlocking data shaped like real spends of their
output type (72-byte signatures, 33-byte keys, 2-of-3 multisig for P2SH and P2WSH, 64-byte
Schnorr signatures for P2TR). Nothing is mined (``mine=False``): ingest with ``check_pow=False``;
the peer parsers do not check proof of work.

Usage: ``python bench/gen_chain.py OUT [--scale 0.5]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace

from hodlflow.chain.blkfile import Record, list_blk_files, read_block, scan_records
from hodlflow.chain.network import MAIN
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sim.builder import BuiltBlock, ChainBuilder, p2pkh, p2sh, p2tr, p2wpkh, p2wsh

SEED = 20_240_601
MANIFEST = "chain.json"
SHAPES = ("small", "input_heavy")

# (script kind, weight in %), roughly today's mainnet mix of new outputs.
OUTPUT_MIX = (("p2wpkh", 40), ("p2tr", 20), ("p2pkh", 15), ("p2sh", 15), ("p2wsh", 10))


@dataclass(frozen=True)
class Sizes:
    """How much to generate. The defaults keep the whole ``make bench`` under ~10 minutes."""

    small_blocks: int = 24
    small_txs_per_block: int = 2000
    heavy_blocks: int = 8
    heavy_txs_per_block: int = 4
    heavy_inputs_per_tx: int = 2500
    fanout_outputs: int = 2000
    small_pool: int = 6000  # outputs the small blocks start from (their 1-3 inputs draw on it)
    max_file_bytes: int = 8 * 2**20  # small, so each shape spans several blk files

    def scaled(self, factor: float) -> Sizes:
        """Fewer (or more) blocks of the same shape: for quick trial runs."""
        return replace(
            self,
            small_blocks=max(1, round(self.small_blocks * factor)),
            heavy_blocks=max(1, round(self.heavy_blocks * factor)),
        )


@dataclass
class GroupInfo:
    """One group of blocks and the blk files that hold exactly it."""

    name: str
    files: list[str]  # file names inside blocks/
    first_height: int
    last_height: int
    blocks: int = 0
    txs: int = 0
    inputs: int = 0  # coinbase inputs excluded
    outputs: int = 0
    block_bytes: int = 0  # the blocks' serialized sizes (record framing excluded)


@dataclass
class ChainInfo:
    datadir: str
    blocks_dir: str
    start_hash: str  # hash of the block at height 0 (ingest.start_hash)
    block_index: bool  # blocks/index (LevelDB) written
    block_index_note: str
    sizes: dict
    groups: dict[str, GroupInfo] = field(default_factory=dict)
    seconds: float = 0.0

    def shape_files(self, shape: str) -> list[str]:
        return [os.path.join(self.blocks_dir, f) for f in self.groups[shape].files]


def load_chain(datadir: str) -> ChainInfo:
    with open(os.path.join(datadir, MANIFEST)) as fh:
        raw = json.load(fh)
    raw["groups"] = {k: GroupInfo(**v) for k, v in raw["groups"].items()}
    return ChainInfo(**raw)


# --- scripts ---------------------------------------------------------------------------------


class _Payees:
    """Fresh output scripts: a seeded draw of the script kind, a counter-derived program."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._n = 0
        self._kinds = [k for k, _ in OUTPUT_MIX]
        self._weights = [w for _, w in OUTPUT_MIX]

    def script(self, kind: str | None = None) -> bytes:
        if kind is None:
            kind = self._rng.choices(self._kinds, self._weights)[0]
        self._n += 1
        h = hashlib.sha256(b"hodlflow-bench-payee" + struct.pack("<Q", self._n)).digest()
        if kind == "p2wpkh":
            return p2wpkh(h[:20])
        if kind == "p2tr":
            return p2tr(h)
        if kind == "p2pkh":
            return p2pkh(h[:20])
        if kind == "p2sh":
            return p2sh(h[:20])
        return p2wsh(h)


# --- the chain -------------------------------------------------------------------------------


def build_chain(sizes: Sizes) -> tuple[ChainBuilder, dict[str, list[BuiltBlock]]]:
    """Build every block in memory; return the builder and the blocks of each group."""
    rng = random.Random(SEED)
    payees = _Payees(rng)
    b = ChainBuilder(
        MAIN,
        start_height=0,
        start_time=1_700_000_000,
        bits=0x17053894,  # a 2023 mainnet target: realistic headers; nothing is mined
        mine=False,
    )
    n_small_fan = -(-sizes.small_pool // sizes.fanout_outputs)
    heavy_inputs = sizes.heavy_blocks * sizes.heavy_txs_per_block * sizes.heavy_inputs_per_tx
    n_heavy_fan = -(-heavy_inputs // sizes.fanout_outputs)
    n_fan = n_small_fan + n_heavy_fan
    funds = MAIN.subsidy(0) // n_fan
    genesis = b.add_block(
        coinbase_outputs=[(funds, payees.script("p2wpkh")) for _ in range(n_fan)],
        coinbase_tag=b"/hodlflow bench/",
    )

    # Height 1: fan-outs. Each spends one coinbase output into fanout_outputs outputs.
    fanouts = []
    for i in range(n_fan):
        each = (funds - 10_000) // sizes.fanout_outputs
        outs = [(each, payees.script()) for _ in range(sizes.fanout_outputs)]
        fanouts.append(b.tx([(genesis.coinbase_txid, i)], outs))
    setup = [genesis, b.add_block(fanouts)]

    def outputs_of(txs):
        return [(t.txid, vout, value) for t in txs for vout, (value, _) in enumerate(t.outputs)]

    # Small blocks: FIFO over a pool of spendable outputs; each tx adds its 2 outputs back.
    pool = deque(outputs_of(fanouts[:n_small_fan]))
    small = []
    for _ in range(sizes.small_blocks):
        txs = []
        for _ in range(sizes.small_txs_per_block):
            spent = [pool.popleft() for _ in range(rng.randint(1, 3))]
            total = sum(v for _, _, v in spent)
            fee = min(110 * len(spent) + 70, total // 50)
            pay = int((total - fee) * rng.uniform(0.1, 0.9))
            change = total - fee - pay
            tx = b.tx(
                [(txid, vout) for txid, vout, _ in spent],
                [(pay, payees.script()), (change, payees.script())],
            )
            txs.append(tx)
            pool.extend(outputs_of([tx]))
        small.append(b.add_block(txs))

    # Input-heavy blocks: consolidations of heavy_inputs_per_tx outputs into one.
    heavy_pool = deque(outputs_of(fanouts[n_small_fan:]))
    heavy = []
    for _ in range(sizes.heavy_blocks):
        txs = []
        for _ in range(sizes.heavy_txs_per_block):
            spent = [heavy_pool.popleft() for _ in range(sizes.heavy_inputs_per_tx)]
            total = sum(v for _, _, v in spent)
            fee = 60 * len(spent)
            txs.append(
                b.tx([(t, v) for t, v, _ in spent], [(total - fee, payees.script("p2wpkh"))])
            )
        heavy.append(b.add_block(txs))
    return b, {"setup": setup, "small": small, "input_heavy": heavy}


def _write_groups(blocks_dir: str, groups: dict[str, list[BuiltBlock]], max_file_bytes: int):
    """Write each group into blk files of its own, numbered on from the previous group's."""
    os.makedirs(blocks_dir, exist_ok=True)
    names: dict[str, list[str]] = {}
    number = 0
    for name, blocks in groups.items():
        with tempfile.TemporaryDirectory(dir=blocks_dir) as tmp:
            paths = write_blocks_dir(tmp, [blk.raw for blk in blocks], MAIN, None, max_file_bytes)
            names[name] = []
            for path in paths:
                target = f"blk{number:05d}.dat"
                os.replace(path, os.path.join(blocks_dir, target))
                names[name].append(target)
                number += 1
    return names


# --- Bitcoin Core's block index (for bitcoin-explorer) ----------------------------------------

_BLOCK_VALID_SCRIPTS = 5
_BLOCK_HAVE_DATA = 8
_CLIENT_VERSION = 259_900  # Bitcoin Core writes this constant into every block index record


def core_varint(n: int) -> bytes:
    """Bitcoin Core's VARINT (serialize.h): base 128, most significant group first, each
    continuation group minus one; not the CompactSize of the wire format.

    >>> core_varint(127).hex(), core_varint(128).hex(), core_varint(16511).hex()
    ('7f', '8000', 'ff7f')
    """
    out = [n & 0x7F]
    while n > 0x7F:
        n = (n >> 7) - 1
        out.append((n & 0x7F) | 0x80)
    return bytes(reversed(out))


def write_block_index(blocks_dir: str, heights: dict[str, tuple[int, int]]) -> str:
    """Write ``blocks/index`` as Bitcoin Core's LevelDB block index: one ``b`` + hash record per
    block (CDiskBlockIndex: version, height, status, tx count, file, data position, header).

    ``heights`` maps block hash -> (height, tx count). Positions come from scanning the files
    as written. Only the records a reader of the index needs; no undo data, file info or flags.
    Returns a note for the report.
    """
    try:
        import plyvel
    except ImportError as exc:
        return f"no blocks/index: plyvel does not import ({exc})"
    path = os.path.join(blocks_dir, "index")
    shutil.rmtree(path, ignore_errors=True)
    db = plyvel.DB(path, create_if_missing=True, compression=None)  # Core: no compression
    try:
        with db.write_batch() as batch:
            for n_file, blk in enumerate(list_blk_files(blocks_dir)):
                with open(blk, "rb") as fh:
                    for rec in scan_records(blk, MAIN, None):
                        header = read_block(blk, Record(rec.offset, 80), None, fh)
                        digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
                        height, n_tx = heights[digest[::-1].hex()]
                        value = b"".join(
                            core_varint(v)
                            for v in (
                                _CLIENT_VERSION,
                                height,
                                _BLOCK_VALID_SCRIPTS | _BLOCK_HAVE_DATA,
                                n_tx,
                                n_file,
                                rec.offset,
                            )
                        )
                        batch.put(b"b" + digest, value + header)
    finally:
        db.close()
    return "blocks/index written (LevelDB, Bitcoin Core's block index records)"


# --- entry point -----------------------------------------------------------------------------


def generate(datadir: str, sizes: Sizes = Sizes(), log=print) -> ChainInfo:  # noqa: B008
    """Generate the chain into ``datadir`` (emptied first) and return its manifest."""
    t0 = time.perf_counter()
    if os.path.exists(datadir):
        shutil.rmtree(datadir)
    blocks_dir = os.path.join(datadir, "blocks")
    builder, groups = build_chain(sizes)
    names = _write_groups(blocks_dir, groups, sizes.max_file_bytes)
    heights = {blk.hash: (blk.height, len(blk.txids)) for g in groups.values() for blk in g}
    note = write_block_index(blocks_dir, heights)
    info = ChainInfo(
        datadir=os.path.abspath(datadir),
        blocks_dir=os.path.abspath(blocks_dir),
        start_hash=groups["setup"][0].hash,
        block_index=os.path.isdir(os.path.join(blocks_dir, "index")),
        block_index_note=note,
        sizes=asdict(sizes),
    )
    for name, blocks in groups.items():
        g = GroupInfo(name, names[name], blocks[0].height, blocks[-1].height)
        for blk in blocks:
            g.blocks += 1
            g.txs += len(blk.txs)
            g.inputs += sum(len(t.inputs) for t in blk.txs)  # coinbases have none here
            g.outputs += sum(len(t.outputs) for t in blk.txs)
            g.block_bytes += len(blk.raw)
        info.groups[name] = g
    info.seconds = time.perf_counter() - t0
    with open(os.path.join(datadir, MANIFEST), "w") as fh:
        json.dump(asdict(info), fh, indent=1)
    del builder
    log(describe(info))
    return info


def describe(info: ChainInfo) -> str:
    lines = [
        f"generated chain in {info.seconds:.1f}s: {info.blocks_dir} "
        f"({sum(len(g.files) for g in info.groups.values())} blk files; {info.block_index_note})",
        f"  {'group':<12} {'heights':>9} {'files':>5} {'blocks':>6} {'txs':>7} "
        f"{'inputs':>7} {'outputs':>7} {'MB':>6} {'tx/block':>8} {'in/tx':>6}",
    ]
    for g in info.groups.values():
        lines.append(
            f"  {g.name:<12} {f'{g.first_height}-{g.last_height}':>9} {len(g.files):>5} "
            f"{g.blocks:>6} {g.txs:>7} {g.inputs:>7} {g.outputs:>7} {g.block_bytes / 1e6:>6.1f} "
            f"{g.txs / g.blocks:>8.0f} {g.inputs / max(1, g.txs - g.blocks):>6.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="datadir to (re)create")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the block counts")
    args = ap.parse_args(argv)
    generate(args.out, Sizes().scaled(args.scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parser throughput on one core: hodlflow's parser against the parsers a user would pick instead.

Every parser reads the same bytes: the blk files of one shape of the chain ``gen_chain.py``
wrote (``small``: ~2,000 transactions a block; ``input_heavy``: consolidations of thousands of
inputs). The process pins itself to one CPU first, so a peer that starts threads (the Rust
iterator of bitcoin-explorer) gets one core as well. What each one does, timed with
``time.perf_counter``, best of N runs:

* ``hodlflow (memory)``: ``parse_block`` on blocks already in memory (read beforehand with our
  scanner), then ``classify_script`` on every output; our address caches are emptied before
  each run (no address repeats in the chain anyway).
* ``hodlflow (files)``: the same, reading the blk files inside the timing: ``scan_records`` +
  ``read_block`` + parse. Compared with the peers that read the files themselves.
* ``bitcoinlib``: ``Block.parse_bytes(raw, parse_transactions=True)`` on the in-memory blocks,
  then every transaction's txid and every output's ``address``. Slow, so only the first blocks
  of each shape (the row says how many).
* ``blockchain-parser``: ``Blockchain(blk_file).get_unordered_blocks()`` (it reads and mmaps
  the files itself), then every transaction's ``txid`` and every output's ``addresses``.
* ``bitcoin-explorer``: ``BitcoinDB(datadir).get_block_iter_range(...)`` over the shape's
  heights, full format (txids, scripts, witnesses, addresses: what our parser returns) and
  simple format (no witnesses, no scripts); every output's ``addresses``. It only reads a
  datadir with Bitcoin Core's LevelDB block index, which ``gen_chain.py`` writes.

Transactions per second count every transaction, coinbases included; MB are 10^6 bytes of
block data (record framing excluded); "addresses" counts outputs given at least one address.
Each peer's addresses are also compared, output by output, with ours on one block per shape.

Usage: ``python bench/parser_bench.py DATADIR [--runs 5]``
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from gen_chain import SHAPES, ChainInfo, load_chain
from hodlflow.chain.address import clear_address_caches
from hodlflow.chain.blkfile import read_block, read_xor_key, scan_records
from hodlflow.chain.block import parse_block
from hodlflow.chain.network import MAIN
from hodlflow.chain.script import classify_script

# bitcoinlib (imported where it is timed) writes a data folder under the home directory on
# import unless told otherwise.
os.environ.setdefault(
    "BCL_DATA_DIR", os.path.join(tempfile.gettempdir(), "hodlflow-bench-bitcoinlib")
)

OURS_MEM = "hodlflow (memory)"
OURS_FILES = "hodlflow (files)"

# Seen in this bench's output and the peers' sources; printed under the table.
PEER_NOTES = (
    "blockchain-parser gives no address for P2TR outputs (its output types stop at segwit v0),",
    "  reads only the mainnet magic and catches every exception while reading transactions.",
    "bitcoinlib logs a 'Taproot is not supported' warning (to its log file) for every P2TR",
    "  spend and leaves its witness uninterpreted (the bytes are still read).",
    "No peer reads xor-obfuscated blocks directories (xor.dat, the Bitcoin Core 28+ default);",
    "  hodlflow does. This chain has no xor.dat, so every peer can read it.",
)


@dataclass
class Counts:
    blocks: int = 0
    txs: int = 0
    inputs: int = 0
    nbytes: int = 0
    addresses: int = 0


@dataclass
class Row:
    parser: str
    shape: str
    counts: Counts | None = None
    seconds: float = 0.0  # best run
    runs: int = 0
    cpu_seconds: float = 0.0  # process CPU time of the best run (all threads)
    baseline: str | None = None  # the hodlflow row this one is compared with
    note: str = ""
    agree: str = ""  # address agreement with ours on one block

    @property
    def tx_per_s(self) -> float:
        return self.counts.txs / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.counts.nbytes / 1e6 / self.seconds


def measure(
    fn: Callable[[], Counts], runs: int, budget_s: float
) -> tuple[Counts, float, float, int]:
    """Best of up to ``runs`` calls; stop repeating once ``budget_s`` seconds have passed."""
    best = cpu_best = None
    counts = None
    start = time.perf_counter()
    done = 0
    while done < runs:
        c0 = time.process_time()
        t0 = time.perf_counter()
        counts = fn()
        dt = time.perf_counter() - t0
        if best is None or dt < best:
            best, cpu_best = dt, time.process_time() - c0
        done += 1
        if time.perf_counter() - start > budget_s:
            break
    return counts, best, cpu_best, done


# --- the shapes' bytes -----------------------------------------------------------------------


def load_raw_blocks(paths: list[str]) -> list[bytes]:
    """Every block of the files, in file order, read with our scanner."""
    raws = []
    for path in paths:
        key = read_xor_key(os.path.dirname(path))
        with open(path, "rb") as fh:
            raws.extend(read_block(path, rec, key, fh) for rec in scan_records(path, MAIN, key))
    return raws


# --- hodlflow --------------------------------------------------------------------------------


def ours_memory(raws: list[bytes]) -> Counts:
    clear_address_caches()
    c = Counts(blocks=len(raws))
    classify, net = classify_script, MAIN
    for raw in raws:
        c.nbytes += len(raw)
        for tx in parse_block(raw).txs:
            c.txs += 1
            c.inputs += len(tx.inputs)
            for out in tx.outputs:
                if classify(out.script_pubkey, net)[1] is not None:
                    c.addresses += 1
    return c


def ours_files(paths: list[str]) -> Counts:
    clear_address_caches()
    c = Counts()
    classify, net = classify_script, MAIN
    for path in paths:
        key = read_xor_key(os.path.dirname(path))
        with open(path, "rb") as fh:
            for rec in scan_records(path, net, key):
                raw = read_block(path, rec, key, fh)
                c.blocks += 1
                c.nbytes += len(raw)
                for tx in parse_block(raw, where=path, base_offset=rec.offset).txs:
                    c.txs += 1
                    c.inputs += len(tx.inputs)
                    for out in tx.outputs:
                        if classify(out.script_pubkey, net)[1] is not None:
                            c.addresses += 1
    return c


def ours_addresses(raw: bytes) -> list[str | None]:
    return [
        classify_script(o.script_pubkey, MAIN)[1] for tx in parse_block(raw).txs for o in tx.outputs
    ]


# --- bitcoinlib ------------------------------------------------------------------------------


def bitcoinlib_memory(raws: list[bytes]) -> Counts:
    from bitcoinlib.blocks import Block

    c = Counts(blocks=len(raws))
    for raw in raws:
        c.nbytes += len(raw)
        for tx in Block.parse_bytes(raw, parse_transactions=True).transactions:
            c.txs += 1
            c.inputs += len(tx.inputs)
            _ = tx.txid
            for out in tx.outputs:
                if out.address:
                    c.addresses += 1
    return c


def bitcoinlib_addresses(raw: bytes) -> list[str | None]:
    from bitcoinlib.blocks import Block

    blk = Block.parse_bytes(raw, parse_transactions=True)
    return [o.address or None for tx in blk.transactions for o in tx.outputs]


# --- blockchain-parser -----------------------------------------------------------------------


def bcp_files(paths: list[str]) -> Counts:
    from blockchain_parser.blockchain import Blockchain

    c = Counts()
    for path in paths:
        # Given a file instead of a directory, it reads just that file.
        for block in Blockchain(path).get_unordered_blocks():
            c.blocks += 1
            c.nbytes += block.size
            for tx in block.transactions:
                c.txs += 1
                c.inputs += tx.n_inputs
                _ = tx.txid
                for out in tx.outputs:
                    addresses = out.addresses
                    if addresses:
                        for a in addresses:
                            _ = a.address
                        c.addresses += 1
    return c


def bcp_addresses(raw: bytes) -> list[str | None]:
    from blockchain_parser.block import Block

    out = []
    for tx in Block(raw).transactions:
        for o in tx.outputs:
            a = o.addresses
            out.append(a[0].address if len(a) == 1 else None)
    return out


# --- bitcoin-explorer ------------------------------------------------------------------------


def _bitcoin_explorer():
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import bitcoin_explorer

    # Its import runs logging.basicConfig (INFO to stderr). Undo it, or every library's
    # warnings reach the console while timed (bitcoinlib logs one per taproot input; its own
    # log file handler, its default, stays).
    root.handlers[:] = handlers
    root.setLevel(level)
    return bitcoin_explorer


def bex_open(datadir: str):
    return _bitcoin_explorer().BitcoinDB(datadir, tx_index=False)


def bex_blocks(datadir: str, first: int, last: int, simplify: bool, nbytes: int) -> Counts:
    db = bex_open(datadir)  # loads the block index: part of a user's cost
    c = Counts(nbytes=nbytes)
    for block in db.get_block_iter_range(stop=last + 1, start=first, simplify=simplify):
        c.blocks += 1
        for tx in block["txdata"]:
            c.txs += 1
            c.inputs += len(tx["input"])
            _ = tx["txid"]
            for out in tx["output"]:
                if out["addresses"]:
                    c.addresses += 1
    return c


def bex_addresses(datadir: str, height: int) -> list[str | None]:
    block = bex_open(datadir).get_block(height, simplify=False)
    out = []
    for tx in block["txdata"]:
        for o in tx["output"]:
            a = o["addresses"]
            out.append(a[0] if len(a) == 1 else None)
    return out


def bex_without_index(info: ChainInfo) -> str:
    """What bitcoin-explorer says about a plain blocks directory (blk files, no index)."""
    api = sorted(n for n in dir(_bitcoin_explorer().BitcoinDB) if not n.startswith("_"))
    raw_api = [n for n in api if any(k in n for k in ("raw", "decode", "bytes", "parse_block"))]
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "blocks"))
        for name in info.groups["small"].files[:1]:
            os.symlink(os.path.join(info.blocks_dir, name), os.path.join(tmp, "blocks", name))
        try:
            bex_open(tmp)
            opened = "opened it (unexpected)"
        except Exception as exc:  # noqa: BLE001 - we report whatever it raises
            opened = f"fails: {type(exc).__name__}: {str(exc).strip()[:160]}"
    decode = (
        f"raw-block functions: {raw_api}"
        if raw_api
        else f"no raw-block decode function (its API: {', '.join(api)})"
    )
    return (
        "bitcoin-explorer cannot read a blocks directory without a LevelDB block index: "
        f"BitcoinDB on blk files alone {opened}; {decode}"
    )


# --- agreement -------------------------------------------------------------------------------


def agreement(ours: list[str | None], theirs: list[str | None]) -> str:
    if len(ours) != len(theirs):
        return f"{len(theirs)} outputs vs our {len(ours)}"
    same = sum(1 for a, b in zip(ours, theirs, strict=True) if a == b)
    missing = sum(1 for a, b in zip(ours, theirs, strict=True) if a and not b)
    text = f"{same}/{len(ours)} same"
    if missing:
        text += f", {missing} without address"
    return text


# --- where the time goes ---------------------------------------------------------------------


def time_split(raws: list[bytes], runs: int) -> str:
    """Parse alone vs classification of the outputs (addresses), each best of ``runs``."""

    def parse_only() -> Counts:
        for raw in raws:
            parse_block(raw)
        return Counts()

    scripts = [o.script_pubkey for raw in raws for tx in parse_block(raw).txs for o in tx.outputs]

    def classify_only() -> Counts:
        clear_address_caches()
        for s in scripts:
            classify_script(s, MAIN)
        return Counts()

    _, t_parse, _, _ = measure(parse_only, runs, 30)
    _, t_class, _, _ = measure(classify_only, runs, 30)
    total = t_parse + t_class
    return (
        f"parse_block {t_parse:.3f}s ({100 * t_parse / total:.0f}%), classify_script on "
        f"{len(scripts)} outputs {t_class:.3f}s ({100 * t_class / total:.0f}%, "
        f"{t_class / len(scripts) * 1e6:.2f} us/output)"
    )


def profile_top(raws: list[bytes], top: int = 8) -> list[str]:
    prof = cProfile.Profile()
    prof.enable()
    ours_memory(raws)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    lines = [f"    {'own s':>7} {'%':>4} {'calls':>9}  function"]
    for (filename, line, func), (_cc, nc, tt, _ct, _callers) in rows:
        where = f"{os.path.basename(filename)}:{line}" if line else "built-in"
        lines.append(f"    {tt:>7.3f} {100 * tt / total:>4.0f} {nc:>9}  {func} ({where})")
    lines.append(f"    total under the profiler {total:.2f}s")
    return lines


# --- the run ---------------------------------------------------------------------------------


def pin_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


@dataclass
class _Contender:
    row: Row
    fn: Callable[[], Counts]
    budget_s: float  # no further rounds once this much time has been spent on it
    spent_s: float = 0.0


def run_rounds(contenders: list[_Contender], runs: int) -> None:
    """Run every contender once per round, ``runs`` rounds, keeping each one's best time.

    Interleaving spreads any load from other processes over all parsers alike instead of
    penalising whichever ran while it lasted.
    """
    for n in range(runs):
        for c in contenders:
            if c.row.note.startswith("failed") or (n and c.spent_s > c.budget_s):
                continue
            c0 = time.process_time()
            t0 = time.perf_counter()
            try:
                counts = c.fn()
            except Exception as exc:  # noqa: BLE001 - a peer failing is a result to report
                c.row.note = f"failed: {type(exc).__name__}: {exc}"[:160]
                traceback.print_exc(file=sys.stderr)
                continue
            dt = time.perf_counter() - t0
            c.spent_s += dt
            c.row.runs += 1
            if c.row.counts is None or dt < c.row.seconds:
                c.row.counts, c.row.seconds = counts, dt
                c.row.cpu_seconds = time.process_time() - c0


def bench(
    info: ChainInfo, runs: int, bitcoinlib_blocks: dict[str, int], log=print
) -> tuple[list[Row], list[str]]:
    """Measure every parser on every shape; return the rows and notes for the report."""
    rows: list[Row] = []
    notes: list[str] = []
    for shape in SHAPES:
        group = info.groups[shape]
        paths = info.shape_files(shape)
        raws = load_raw_blocks(paths)
        log(f"  {shape}: {len(raws)} blocks, {group.txs} txs, {group.block_bytes / 1e6:.1f} MB")
        ours_ref = ours_addresses(raws[0])
        n_lib = min(len(raws), bitcoinlib_blocks[shape])
        lib = Row("bitcoinlib", shape, baseline=OURS_MEM)
        if n_lib < len(raws):
            lib.note = f"first {n_lib} of {len(raws)} blocks (slow)"
        contenders = [
            _Contender(Row(OURS_MEM, shape), lambda r=raws: ours_memory(r), 60),
            _Contender(Row(OURS_FILES, shape), lambda p=paths: ours_files(p), 60),
            _Contender(lib, lambda r=raws[:n_lib]: bitcoinlib_memory(r), 15),
            _Contender(
                Row("blockchain-parser", shape, baseline=OURS_FILES),
                lambda p=paths: bcp_files(p),
                30,
            ),
        ]
        if info.block_index:
            for simplify, label in ((False, "full"), (True, "simple")):
                row = Row(f"bitcoin-explorer {label}", shape, baseline=OURS_FILES)
                if simplify:
                    row.note = "no witnesses, no scripts"
                fn = functools.partial(
                    bex_blocks,
                    info.datadir,
                    group.first_height,
                    group.last_height,
                    simplify,
                    group.block_bytes,
                )
                contenders.append(_Contender(row, fn, 30))
        run_rounds(contenders, runs)
        checks = {
            "bitcoinlib": lambda r=raws[0]: bitcoinlib_addresses(r),
            "blockchain-parser": lambda r=raws[0]: bcp_addresses(r),
            "bitcoin-explorer full": lambda h=group.first_height: bex_addresses(info.datadir, h),
        }
        for c in contenders:
            check = checks.get(c.row.parser)
            if check is not None:
                c.row.agree = _agree(ours_ref, check)
        rows.extend(c.row for c in contenders)
        if not info.block_index:
            rows.append(Row("bitcoin-explorer", shape, note=info.block_index_note))
    try:
        notes.append(bex_without_index(info))
    except Exception as exc:  # noqa: BLE001
        notes.append(f"bitcoin-explorer does not import: {exc}")
    return rows, notes


def _agree(ours: list[str | None], theirs: Callable[[], list[str | None]]) -> str:
    try:
        return agreement(ours, theirs())
    except Exception as exc:  # noqa: BLE001
        return f"check failed: {type(exc).__name__}"


def ours_over_peer(r: Row, by_key: dict[tuple[str, str], Row]) -> float | None:
    """Our tx/s over the peer's, against the hodlflow row the peer is compared with."""
    base = by_key.get((r.baseline, r.shape)) if r.baseline else None
    if not (base and base.counts and base.seconds and r.counts and r.seconds):
        return None
    return base.tx_per_s / r.tx_per_s


def rows_json(rows: list[Row]) -> list[dict]:
    by_key = {(r.parser, r.shape): r for r in rows}
    out = []
    for r in rows:
        ok = r.counts is not None and r.seconds > 0
        out.append(
            {
                "parser": r.parser,
                "shape": r.shape,
                "tx_per_s": r.tx_per_s if ok else None,
                "mb_per_s": r.mb_per_s if ok else None,
                "inputs_per_s": r.counts.inputs / r.seconds if ok else None,
                "addresses": r.counts.addresses if ok else None,
                "ours_over_peer": ours_over_peer(r, by_key),
                "note": r.note,
            }
        )
    return out


def format_rows(rows: list[Row]) -> list[str]:
    by_key = {(r.parser, r.shape): r for r in rows}
    head = (
        f"  {'parser':<25} {'shape':<11} {'blocks':>6} {'txs':>6} {'tx/s':>8} {'inputs/s':>9} "
        f"{'MB/s':>6} {'addresses':>9} {'ours÷peer':>9} {'runs':>4}  notes"
    )
    lines = [head, "  " + "-" * (len(head) - 2)]
    shape = None
    for r in rows:
        if shape is not None and r.shape != shape:
            lines.append("")
        shape = r.shape
        if r.counts is None or not r.seconds:
            lines.append(f"  {r.parser:<25} {r.shape:<11} {'-':>6} {'-':>6} {'':>8} {'':>9} "
                         f"{'':>6} {'':>9} {'':>9} {'':>4}  {r.note}")  # fmt: skip
            continue
        speedup = ours_over_peer(r, by_key)
        ratio = "" if speedup is None else f"{speedup:.2f}x"
        notes = "; ".join(n for n in (r.note, r.agree and f"addresses vs ours: {r.agree}") if n)
        if r.cpu_seconds > 1.15 * r.seconds:
            notes += f"; CPU {r.cpu_seconds:.2f}s for {r.seconds:.2f}s wall"
        lines.append(
            f"  {r.parser:<25} {r.shape:<11} {r.counts.blocks:>6} {r.counts.txs:>6} "
            f"{r.tx_per_s:>8,.0f} {r.counts.inputs / r.seconds:>9,.0f} {r.mb_per_s:>6.2f} "
            f"{r.counts.addresses:>9} {ratio:>9} {r.runs:>4}  {notes}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datadir", help="a datadir written by gen_chain.py")
    ap.add_argument("--runs", type=int, default=5, help="best of this many runs (time-capped)")
    ap.add_argument("--bitcoinlib-small", type=int, default=4, help="blocks bitcoinlib parses")
    ap.add_argument("--bitcoinlib-heavy", type=int, default=2, help="blocks bitcoinlib parses")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json", help="also write the rows here (for run.py's summary)")
    args = ap.parse_args(argv)
    info = load_chain(args.datadir)

    print(f"== parser throughput, one core ({pin_one_core()}; best of up to {args.runs} runs)")
    limits = {"small": args.bitcoinlib_small, "input_heavy": args.bitcoinlib_heavy}
    rows, notes = bench(info, args.runs, limits, log=lambda s: print(s, file=sys.stderr))
    print("\n".join(format_rows(rows)))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows_json(rows), fh, indent=1)
    print("  ours÷peer: our tx/s over the peer's; against bitcoinlib the in-memory row (it is")
    print("  given bytes), against the others the row that reads the files too.")
    for note in notes:
        print(f"  {note}")
    for note in PEER_NOTES:
        print(f"  {note}")

    if not args.no_profile:
        print("\n== where the time goes (hodlflow, one core)")
        for shape in SHAPES:
            raws = load_raw_blocks(info.shape_files(shape))
            print(f"  {shape}: {time_split(raws, 3)}")
            print(f"  {shape}: cProfile, top 8 functions by own time (profiler overhead included)")
            print("\n".join(profile_top(raws)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

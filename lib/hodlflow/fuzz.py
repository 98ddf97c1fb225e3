"""Bad input, tried wide: a seeded fuzz run of the blk-file reader and the block parser.

Each case takes one to three consecutive block records of a blk file (the simulated tiny
chain's blocks directory, xor-obfuscated as Bitcoin Core 28 stores it; mainnet's genesis block;
any real blocks given with ``--blocks``), damages them in one of the ways disks, copies and
half-written files do, and reads the result through the ingest's own per-file code (record scan, header and
proof-of-work check, block parse, hash check, merkle check, rows): what an ingest task does
with a blk file. Every case must end in one of:

* ``same`` — the same blocks with the same rows as the undamaged records (the damage hit
  bytes nothing reads: zero padding, a witness byte, bytes between records);
* ``dropped`` — some of the blocks, each unchanged, the others not read: damaged framing is
  skipped by scanning forward to the next magic and a record running past the end of the file
  is a block still being written (both as Bitcoin Core's reader does); the chain selection of
  ingest then sees the missing block as a gap;
* ``error`` — hodlflow's own error (a ``ChainError`` or ``BlocksDirError``) naming the file and
  the byte offset;
* ``header accepted`` — only for sources read without the proof-of-work check (the simulated
  chain: its headers carry mainnet's difficulty without the work): a changed header field is
  a new, well-formed block, which nothing but proof of work can tell from the original.

Anything else fails the run: another exception (``IndexError``, ``struct.error``,
``MemoryError``, ...), an error without file or offset, a changed block accepted, or a case
running longer than ``--case-timeout`` seconds (a hang). The run's address space is capped
(``--memory-mb``) so that a count read as a huge allocation raises ``MemoryError`` instead of
swapping.

    python -m hodlflow.fuzz --cases 100000 --seed 1                    # = make fuzz
    python -m hodlflow.fuzz --cases 2000 --blocks ~/.bitcoin/blocks/blk04000.dat

Prints the cases tried per kind of damage and outcome; writes ``failures.json`` (seed and case
number of each failure, to replay it with ``--only``) into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hodlflow.chain.blkfile import (
    BlocksDirError,
    list_blk_files,
    read_xor_key,
    scan_records,
    xor_bytes,
)
from hodlflow.chain.errors import ChainError
from hodlflow.chain.network import MAIN, MAIN_GENESIS_BLOCK, NETWORKS, Network
from hodlflow.config import CONF_DIR

HEADER = 80
KINDS = ("truncate", "flip", "varint", "length", "magic", "insert", "delete", "zeros")
OK = ("same", "dropped", "error", "header accepted")
# CompactSize encodings of counts no block can hold (the parser must refuse, not allocate).
HUGE_VARINTS = (
    b"\xfd\xff\xff",
    b"\xfe\xff\xff\xff\xff",
    b"\xfe\x00\x00\x00\x80",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xff\x00\x00\x00\x00\x00\x00\x00\x80",
    b"\xfd\x01\x00",  # non-canonical: 1 written in three bytes
)


class CaseTimeout(Exception):
    """A case ran past ``--case-timeout``."""


@dataclasses.dataclass
class Source:
    """A blk file's plaintext and how ingest reads it: its xor key (or None), whether its
    headers are checked for proof of work, and its records' (start, end) spans (magic
    included)."""

    name: str
    plain: bytes
    key: bytes | None
    pow_check: bool
    network: Network
    spans: list[tuple[int, int]]


@dataclasses.dataclass
class Outcome:
    kind: str
    outcome: str
    detail: str = ""


def _records(plain: bytes, name: str, network: Network) -> list[tuple[int, int]]:
    recs = scan_records(name, network, None, io.BytesIO(plain))
    return [(r.offset - 8, r.offset + r.length) for r in recs]


def load_sources(blocks_dirs: list[str], files: list[str], network: Network = MAIN):
    """The sources: each blk file of ``blocks_dirs`` (with the directory's xor key, read without
    the proof-of-work check: simulated chains) and each of ``files`` (read with it: real
    blocks). A file is a blk file (``blk*.dat`` or ``*.blk``: framed records), a block in hex
    (``.hex``) or a raw block (any other name); raw and hex blocks are framed here as a node
    stores them."""
    sources = []
    for d in blocks_dirs:
        key = read_xor_key(d)
        for path in list_blk_files(d):
            plain = xor_bytes(Path(path).read_bytes(), key, 0)
            name = path  # the full path: names are unique, and errors must name it
            sources.append(Source(name, plain, key, False, network, _records(plain, name, network)))
    for path in dict.fromkeys(files):
        data = Path(path).read_bytes()
        if path.endswith(".hex"):
            data = bytes.fromhex(data.decode().strip())
        if not path.endswith(".blk") and not os.path.basename(path).startswith("blk"):
            data = network.magic + struct.pack("<I", len(data)) + data
        name = path
        sources.append(Source(name, data, None, True, network, _records(data, name, network)))
    return [s for s in sources if s.spans]


def genesis_source() -> Source:
    """Mainnet's genesis block framed as a node stores it, read with the proof-of-work check:
    the real block every run has, whatever blocks it is given."""
    data = MAIN.magic + struct.pack("<I", len(MAIN_GENESIS_BLOCK)) + MAIN_GENESIS_BLOCK
    name = "mainnet-genesis.blk"
    return Source(name, data, None, True, MAIN, _records(data, name, MAIN))


def read_blk(data: bytes, name: str, src: Source) -> list[tuple[str, str]]:
    """What ingest's per-file code makes of the stored bytes ``data`` of a blk file named
    ``name``: (block hash, digest of its rows) per block, in file order."""
    from hodlflow.ingest.blocks_dir import _parse_blocks, _scan_file

    fh = io.BytesIO(data)
    out = []
    heads = list(_scan_file(0, name, fh, src.network, src.key, src.pow_check))
    for block_hash, _prev, _bits, _time, _i, offset, length in heads:
        rows = _parse_blocks(
            name, fh, [(0, 0, offset, length, block_hash)], src.network, src.key,
            src.network.genesis_hash,
        )  # fmt: skip
        digest = hashlib.sha256(repr(list(rows)).encode()).hexdigest()
        out.append((block_hash, digest))
    return out


def mutate(rng: random.Random, plain: bytes, spans: list[tuple[int, int]], kind: str):
    """``plain`` damaged by ``kind``; returns the new bytes and the [start, end) range of the
    original bytes the damage changed (None when bytes were inserted or removed)."""
    n = len(plain)
    if kind == "truncate":
        cut = rng.randrange(0, n)
        return plain[:cut], None
    if kind == "flip":
        data = bytearray(plain)
        first = rng.randrange(n)
        for _ in range(rng.randint(1, 4)):
            data[min(n - 1, first + rng.randrange(0, 16))] ^= rng.randrange(1, 256)
        diff = [i for i in range(first, min(n, first + 16)) if data[i] != plain[i]]
        return bytes(data), (diff[0], diff[-1] + 1) if diff else (first, first)
    if kind == "varint":
        start, end = rng.choice(spans)
        # The transaction count (after the header), or any position inside the block.
        p = start + 8 + HEADER if rng.random() < 0.4 else rng.randrange(start + 8, end)
        v = rng.choice(HUGE_VARINTS)
        data = plain[:p] + v + plain[p + len(v) :]
        return data[:n], (p, min(n, p + len(v)))
    if kind == "length":
        start, end = rng.choice(spans)
        size = end - start - 8
        new = rng.choice((0, 1, size - 1, size + 1, size * 2, rng.randrange(1 << 32), 0xFFFFFFFF))
        new &= 0xFFFFFFFF
        return plain[: start + 4] + struct.pack("<I", new) + plain[start + 8 :], (
            start + 4,
            start + 8,
        )
    if kind == "magic":
        start, _ = rng.choice(spans)
        others = [net.magic for net in NETWORKS.values() if net.magic != plain[start : start + 4]]
        new = rng.choice([*others, rng.randbytes(4)])
        return plain[:start] + new + plain[start + 4 :], (start, start + 4)
    if kind == "insert":
        p = rng.randrange(0, n + 1)
        return plain[:p] + rng.randbytes(rng.randint(1, 64)) + plain[p:], None
    if kind == "delete":
        p = rng.randrange(0, n)
        return plain[:p] + plain[p + rng.randint(1, 64) :], None
    if kind == "zeros":
        p = rng.randrange(0, n)
        k = rng.randint(1, 256)
        return plain[:p] + bytes(min(k, n - p)) + plain[p + k :], (p, min(n, p + k))
    raise ValueError(f"unknown kind of damage {kind!r}")


@contextlib.contextmanager
def _deadline(seconds: float):
    def expire(signum, frame):
        raise CaseTimeout(f"no answer in {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _changed(before: bytes, after: bytes, hint) -> tuple[int, int] | None:
    """The [first, last + 1) span of the bytes that differ, inside the span ``hint`` the
    damage wrote (None when bytes were inserted or removed)."""
    if hint is None or len(before) != len(after):
        return None
    diff = [i for i in range(*hint) if before[i] != after[i]]
    return (diff[0], diff[-1] + 1) if diff else (0, 0)


def _located(exc: Exception, name: str) -> bool:
    """Does the error name the file and a byte offset?"""
    text = str(exc)
    return name in text and "offset" in text


def run_case(src: Source, seed: int, case: int, timeout: float, expected_cache: dict) -> Outcome:
    """One case: the records window and the damage drawn from (seed, case)."""
    rng = random.Random(f"{seed}:{case}")
    kind = KINDS[rng.randrange(len(KINDS))]
    first = rng.randrange(len(src.spans))
    last = min(len(src.spans), first + rng.randint(1, 3))
    lo, hi = src.spans[first][0], src.spans[last - 1][1]
    window = src.plain[lo:hi]
    spans = [(a - lo, b - lo) for a, b in src.spans[first:last]]
    name = f"{src.name}[{first}:{last}]"
    key = (src.name, first, last)
    if key not in expected_cache:
        expected_cache[key] = read_blk(xor_bytes(window, src.key, 0), name, src)
    expected = expected_cache[key]
    damaged, hint = mutate(rng, window, spans, kind)
    changed = _changed(window, damaged, hint)
    try:
        with _deadline(timeout):
            got = read_blk(xor_bytes(damaged, src.key, 0), name, src)
    except (ChainError, BlocksDirError) as exc:
        if _located(exc, name):
            return Outcome(kind, "error", type(exc).__name__)
        return Outcome(kind, "failed: error without file and offset", str(exc)[:300])
    except CaseTimeout as exc:
        return Outcome(kind, "failed: hang", str(exc))
    except MemoryError:
        return Outcome(kind, "failed: MemoryError")
    except RecursionError:
        return Outcome(kind, "failed: RecursionError")
    except Exception as exc:  # noqa: BLE001 - every other exception is what the run looks for
        return Outcome(kind, f"failed: {type(exc).__name__}", str(exc)[:300])
    if got == expected:
        return Outcome(kind, "same")
    known = set(expected)
    if all(b in known for b in got):
        return Outcome(kind, "dropped", f"{len(got)} of {len(expected)} blocks")
    in_header = changed is not None and any(
        a + 8 <= changed[0] and changed[1] <= a + 8 + HEADER for a, _ in spans
    )
    if in_header and not src.pow_check:
        return Outcome(kind, "header accepted")
    return Outcome(kind, "failed: changed block accepted", f"damaged bytes {changed}")


def run(
    sources: list[Source], cases: int, seed: int, timeout: float, only: list[int] | None = None
):
    """Run the cases (``only``: just those case numbers); returns the outcomes with their
    case numbers and source names."""
    cache: dict = {}
    results = []
    numbers = only if only is not None else range(cases)
    for case in numbers:
        src = sources[random.Random(f"{seed}:{case}:source").randrange(len(sources))]
        results.append((case, src.name, run_case(src, seed, case, timeout, cache)))
    return results


def report(results, seconds: float, checked: set[str] | None = None) -> str:
    """The run's table: cases per kind of damage and outcome (``checked``: the names of the
    sources read with the proof-of-work check)."""
    table = Counter((o.kind, o.outcome) for _, _, o in results)
    outcomes = sorted(
        {o for _, o in table}, key=lambda o: (o not in OK, OK.index(o) if o in OK else 0, o)
    )
    lines = [f"{len(results)} cases in {seconds:.0f} s", "", f"{'damage':10s} " + " ".join(
        f"{o:>{max(8, len(o))}s}" for o in outcomes
    )]  # fmt: skip
    for kind in KINDS:
        lines.append(f"{kind:10s} " + " ".join(
            f"{table[(kind, o)]:>{max(8, len(o))}d}" for o in outcomes
        ))  # fmt: skip
    lines.append(f"{'all':10s} " + " ".join(
        f"{sum(table[(k, o)] for k in KINDS):>{max(8, len(o))}d}" for o in outcomes
    ))  # fmt: skip
    failed = sum(1 for _, _, o in results if o.outcome.startswith("failed"))
    lines += [""]
    if checked is not None:
        real = sum(1 for _, name, _ in results if name in checked)
        lines += [f"{real} cases on blocks read with the proof-of-work check (real blocks), "
                  f"{len(results) - real} without (the simulated chain)"]  # fmt: skip
    lines += [f"failures: {failed}"]
    return "\n".join(lines)


def _simulated_blocks(out: Path) -> str:
    from hodlflow.sim.simulator import run_simulation

    sim = out / "sim"
    shutil.rmtree(sim, ignore_errors=True)  # the run's own copy, simulated again (seconds)
    manifest = run_simulation(str(CONF_DIR / "scenarios" / "tiny.yaml"), str(sim))
    return str(sim / manifest["files"]["blocks"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hodlflow.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--out", default=None, help="folder for failures.json (default: a temporary one)"
    )
    p.add_argument("--blocks", nargs="*", default=[],
                   help="real blocks to fuzz beside the simulated chain: blk files, raw or hex blocks")  # fmt: skip
    p.add_argument("--blocks-dir", action="append", default=[],
                   help="a blocks directory read without proof-of-work checks (default: the "
                        "simulated tiny chain)")  # fmt: skip
    p.add_argument("--case-timeout", type=float, default=10.0)
    p.add_argument("--memory-mb", type=int, default=4096)
    p.add_argument("--only", type=int, nargs="*", default=None, help="replay these case numbers")
    args = p.parse_args(argv)
    limit = args.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="hodlflow-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    dirs = args.blocks_dir or [_simulated_blocks(out)]
    sources = [*load_sources(dirs, args.blocks), genesis_source()]
    t0 = time.time()
    results = run(sources, args.cases, args.seed, args.case_timeout, args.only)
    text = report(results, time.time() - t0, {s.name for s in sources if s.pow_check})
    print(f"sources: {len(sources)} blk files ({sum(len(s.spans) for s in sources)} blocks)")
    print(text)
    failures = [
        {"seed": args.seed, "case": c, "source": s, **dataclasses.asdict(o)}
        for c, s, o in results
        if o.outcome.startswith("failed")
    ]
    (out / "failures.json").write_text(json.dumps(failures, indent=1))
    (out / "report.txt").write_text(text + "\n")
    print(f"written: {out / 'report.txt'}, {out / 'failures.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

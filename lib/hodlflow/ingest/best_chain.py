"""Order the headers found in a blocks directory into the best chain (driver side, headers only).

Blocks lie in blk files in download order, not height order, and stale blocks (forks that lost)
stay in the files. The best chain is the one of most cumulative work that descends from the
start block (the network's genesis, or ``ingest.start_hash``); ties go to the block stored first,
as a node keeps the first block it received.
"""

from __future__ import annotations

from dataclasses import dataclass

from hodlflow.chain.block import block_work


class ChainSelectionError(ValueError):
    """The start block is missing, or no chain can be built from the headers."""


@dataclass(frozen=True)
class HeaderLoc:
    """A header and where its block lies: ``file_index`` into the file list, byte ``offset``."""

    hash: str
    prev_hash: str
    bits: int
    time: int
    file_index: int
    offset: int
    length: int


@dataclass(frozen=True)
class ChainBlock:
    height: int
    median_time: int
    loc: HeaderLoc


def best_chain(
    headers: list[HeaderLoc], start_hash: str, start_height: int = 0
) -> tuple[list[ChainBlock], int]:
    """Return the best chain from ``start_hash`` (heights from ``start_height``) and the number
    of stored blocks left out of it (stale forks, orphans, duplicates).

    ``median_time`` is the median of the header times of the block and up to 10 before it
    (within the returned chain).
    """
    by_hash: dict[str, HeaderLoc] = {}
    order: dict[str, int] = {}
    for i, h in enumerate(sorted(headers, key=lambda x: (x.file_index, x.offset))):
        if h.hash not in by_hash:  # a block stored twice: keep the first copy
            by_hash[h.hash] = h
            order[h.hash] = i
    if start_hash not in by_hash:
        raise ChainSelectionError(
            f"the start block {start_hash} is not in the blocks directory "
            f"({len(by_hash)} blocks found): is it the right network, or should "
            "ingest.start_hash name the first block of this directory?"
        )
    children: dict[str, list[str]] = {}
    for h in by_hash.values():
        children.setdefault(h.prev_hash, []).append(h.hash)
    # Cumulative work by a walk from the start block (iterative: mainnet is ~10^6 deep).
    work = {start_hash: block_work(by_hash[start_hash].bits)}
    stack = [start_hash]
    best = start_hash
    while stack:
        cur = stack.pop()
        w = work[cur]
        if w > work[best] or (w == work[best] and order[cur] < order[best]):
            best = cur
        for child in children.get(cur, ()):
            work[child] = w + block_work(by_hash[child].bits)
            stack.append(child)
    path = []
    cur = best
    while True:
        path.append(by_hash[cur])
        if cur == start_hash:
            break
        cur = by_hash[cur].prev_hash
    path.reverse()
    chain = []
    window: list[int] = []
    for i, loc in enumerate(path):
        window.append(loc.time)
        if len(window) > 11:
            window.pop(0)
        # Bitcoin Core's median time past: the middle of the sorted window (upper middle when even).
        chain.append(ChainBlock(start_height + i, sorted(window)[len(window) // 2], loc))
    return chain, len(by_hash) - len(path) + (len(headers) - len(by_hash))


def first_block_at_or_after(chain: list[ChainBlock], time_s: int) -> ChainBlock | None:
    """The first block of ``chain`` (in height order) whose header time is ≥ ``time_s``, or
    None when every block is older.

    Header times are not monotonic (a block may carry an earlier time than its parent), so a
    time boundary is cut at the first block past it: every block below that height belongs to
    the time before it, whatever its own header says. Example: times [10, 30, 20, 40] and
    ``time_s=25`` → the block with time 30 (heights below it: the first one only).
    """
    return next((c for c in chain if c.loc.time >= time_s), None)

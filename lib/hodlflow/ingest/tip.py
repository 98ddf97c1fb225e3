"""Where a blocks directory's best chain ends, read without Spark (headers only).

The daily schedule asks this before ingesting an interval: has the chain passed the interval's
end by the confirmation depth? (`hodlflow tip --after TIME`.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hodlflow.chain.blkfile import list_blk_files, read_xor_key
from hodlflow.chain.network import get_network
from hodlflow.config import Settings
from hodlflow.ingest.best_chain import HeaderLoc, best_chain, first_block_at_or_after
from hodlflow.ingest.blocks_dir import _scan_files
from hodlflow.paths import local_path


@dataclass(frozen=True)
class Tip:
    """The best chain's last block and, for a time boundary, the first block past it."""

    height: int
    hash: str
    time: int
    boundary_height: int | None = None
    boundary_confirmations: int | None = None
    ready: bool | None = None

    def as_dict(self) -> dict:
        def iso(t: int) -> str:
            return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")

        out = {"tip_height": self.height, "tip_hash": self.hash, "tip_time": iso(self.time)}
        if self.ready is not None:
            out.update(
                boundary_height=self.boundary_height,
                boundary_confirmations=self.boundary_confirmations,
                ready=self.ready,
            )
        return out


def read_tip(settings: Settings, after: int | None = None) -> Tip:
    """Scan the headers of ``settings.ingest.blocks_dir`` (one pass, no block bodies) and
    return its best chain's tip.

    With ``after`` (Unix seconds): ``ready`` says whether the first block whose header time is
    ≥ ``after`` exists and has at least ``settings.ingest.confirmations`` confirmations (itself
    included), i.e. every block before ``after`` is final.
    """
    blocks_dir = settings.ingest.blocks_dir
    if not blocks_dir:
        raise ValueError("no blocks directory: set ingest.blocks_dir (or --blocks-dir)")
    blocks_dir = local_path(blocks_dir, "ingest.blocks_dir")
    network = get_network(settings.network)
    files = list_blk_files(blocks_dir)
    key = read_xor_key(blocks_dir)
    headers = [
        HeaderLoc(*r) for r in _scan_files(enumerate(files), network, key, settings.check_pow)
    ]
    start_hash = settings.ingest.start_hash or network.genesis_hash
    chain, _ = best_chain(headers, start_hash, settings.ingest.start_height)
    last = chain[-1]
    tip = Tip(last.height, last.loc.hash, last.loc.time)
    if after is None:
        return tip
    boundary = first_block_at_or_after(chain, after)
    if boundary is None:
        return Tip(tip.height, tip.hash, tip.time, None, 0, False)
    confirmations = last.height - boundary.height + 1
    return Tip(
        tip.height,
        tip.hash,
        tip.time,
        boundary.height,
        confirmations,
        confirmations >= settings.ingest.confirmations,
    )

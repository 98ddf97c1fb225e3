"""Write raw blocks the way Bitcoin Core lays them out in its ``blocks/`` directory.

Each ``blkNNNNN.dat`` file is a run of records ``magic (4) | length (4, little-endian) | block``;
a node starts the next file when a block would not fit under its size limit. Blocks arrive out
of order during initial download, so their order in the files need not be height order. Since
Bitcoin Core 28 a new directory holds ``xor.dat`` (8 bytes) and every byte of every blk file is
stored XORed with ``key[file_offset % 8]``; an all-zero key means no obfuscation.

>>> import tempfile
>>> from hodlflow.chain.network import REGTEST
>>> d = tempfile.mkdtemp()
>>> [p.rsplit("/", 1)[1] for p in write_blocks_dir(d, [b"x" * 100] * 3, REGTEST, max_file_bytes=250)]
['blk00000.dat', 'blk00001.dat']
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Sequence
from pathlib import Path

from hodlflow.chain.blkfile import xor_bytes  # the reader's own helper: one definition
from hodlflow.chain.network import Network

XOR_KEY_SIZE = 8

# Zero runs written after records when junk_between=True, cycled: some records are followed by
# nothing, some by fewer bytes than a record header, some by more.
_JUNK_LENGTHS = (3, 0, 8, 1, 64, 13)


def write_blocks_dir(
    path: str | os.PathLike[str],
    blocks: Sequence[bytes],
    network: Network,
    xor_key: bytes | None = None,
    max_file_bytes: int = 128 * 2**20,
    shuffle_seed: int | None = None,
    junk_between: bool = False,
) -> list[str]:
    """Write ``blocks`` (raw serialized) as ``blk00000.dat``, ``blk00001.dat``, ... under
    ``path``; return the blk file paths in file order.

    - ``max_file_bytes``: a new file starts when the next record (with its padding) would
      push the current file past it; a record larger than the limit gets a file of its own.
    - ``shuffle_seed``: store the blocks in a seeded random order across the files.
    - ``junk_between``: follow records with runs of zero bytes (cycling through a few lengths,
      one after the last record too); readers must scan forward to the next magic.
    - ``xor_key``: write ``xor.dat`` holding the 8-byte key and obfuscate every byte of every
      blk file with it (padding included). ``None`` writes no ``xor.dat``; an all-zero key
      writes one and leaves the data plain, as Bitcoin Core does with ``-blocksxor=0``.

    Refuses a directory that already holds blk files, so old files never mix with new ones.
    """
    if max_file_bytes <= 0:
        raise ValueError(f"max_file_bytes must be > 0, got {max_file_bytes}")
    if xor_key is not None and len(xor_key) != XOR_KEY_SIZE:
        raise ValueError(f"xor_key must be {XOR_KEY_SIZE} bytes, got {len(xor_key)}")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in directory.glob("blk*.dat"))
    if existing:
        raise FileExistsError(f"{directory} already holds blk files: {existing[:3]}")

    order = list(range(len(blocks)))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)

    files: list[bytearray] = []
    for k, i in enumerate(order):
        block = blocks[i]
        record = network.magic + struct.pack("<I", len(block)) + block
        if junk_between:
            record += bytes(_JUNK_LENGTHS[k % len(_JUNK_LENGTHS)])
        if not files or (files[-1] and len(files[-1]) + len(record) > max_file_bytes):
            files.append(bytearray())
        files[-1] += record

    if xor_key is not None:
        (directory / "xor.dat").write_bytes(bytes(xor_key))
    written = []
    for n, content in enumerate(files):
        target = directory / f"blk{n:05d}.dat"
        data = xor_bytes(bytes(content), xor_key) if xor_key is not None else bytes(content)
        target.write_bytes(data)
        written.append(str(target))
    return written

"""Bitcoin Core's blocks directory: blk*.dat framing and the xor.dat obfuscation key.

A blk file is a sequence of records ``magic (4 bytes) | length (4 bytes, little-endian) |
block``. Bitcoin Core scans forward to the next magic when bytes in between do not start one
(zero padding after a crash, pre-allocated space), and a node still writing its last block
leaves a record that ends past the end of the file: that is the end of the file, not an error.

Since Bitcoin Core 28 a new blocks directory holds ``xor.dat``, an 8-byte key; every byte of
every blk/rev file is stored XORed with ``key[file_offset % 8]``. All-zero key = not obfuscated.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from hodlflow.chain.errors import ParseError
from hodlflow.chain.network import NETWORKS, Network

XOR_FILE = "xor.dat"
_BLK_RE = re.compile(r"^blk(\d{5})\.dat$")
_SCAN_CHUNK = 1 << 20


class BlocksDirError(ValueError):
    """The blocks directory is missing, empty, unreadable or wrongly obfuscated."""


@dataclass(frozen=True)
class Record:
    """Where one block lies in a blk file: ``offset`` of its first byte, ``length`` bytes."""

    offset: int
    length: int


def xor_bytes(data: bytes, key: bytes | None, file_offset: int = 0) -> bytes:
    """Undo (or apply) the rolling 8-byte XOR for ``data`` read at ``file_offset``.

    Whole-buffer XOR of two Python ints: one C-level operation instead of a per-byte loop.
    """
    if not key or not any(key) or not data:
        return bytes(data)
    shift = file_offset % len(key)
    rolled = key[shift:] + key[:shift]
    n = len(data)
    pattern = (rolled * (n // len(rolled) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pattern, "little")).to_bytes(
        n, "little"
    )


def read_xor_key(blocks_dir: str) -> bytes | None:
    """The directory's obfuscation key, or None when there is no ``xor.dat`` (older nodes)."""
    path = os.path.join(blocks_dir, XOR_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as fh:
            key = fh.read()
    except OSError as exc:
        raise BlocksDirError(f"cannot read the xor key {path}: {exc}") from exc
    return check_xor_key(key, path)


def check_xor_key(key: bytes, where: str) -> bytes | None:
    """The key read from ``where`` (an xor.dat), None when all zero; an error unless 8 bytes."""
    if len(key) != 8:
        raise BlocksDirError(f"{where}: an xor key must be 8 bytes, found {len(key)}")
    return key if any(key) else None


def is_blk_name(name: str) -> bool:
    """True for a blk file's name (``blk00042.dat``)."""
    return _BLK_RE.match(name) is not None


def list_blk_files(blocks_dir: str) -> list[str]:
    """The directory's blk*.dat files in file-number order; a clear error when there are none."""
    if not os.path.isdir(blocks_dir):
        raise BlocksDirError(f"blocks directory {blocks_dir} does not exist or is not a directory")
    names = sorted(n for n in os.listdir(blocks_dir) if _BLK_RE.match(n))
    if not names:
        raise BlocksDirError(f"blocks directory {blocks_dir} holds no blk*.dat files")
    return [os.path.join(blocks_dir, n) for n in names]


def _other_network(magic: bytes, expected: Network) -> str | None:
    for net in NETWORKS.values():
        if net.magic == magic and net.name != expected.name:
            return net.name
    return None


def _read_at(fh, offset: int, n: int, key: bytes | None) -> bytes:
    fh.seek(offset)
    return xor_bytes(fh.read(n), key, offset)


def scan_records(path: str, network: Network, key: bytes | None, fh=None) -> Iterator[Record]:
    """Yield the block records of one blk file, in file order, without reading whole blocks.

    Reads 8 framing bytes per record and seeks over the block. Where the bytes at the current
    position are not the magic, scans forward to the next magic (as Bitcoin Core's reindex
    does). Stops at the end of the file or at a record that runs past it (a block still being
    written). Raises :class:`ParseError` naming the file and offset when the file holds another
    network's magic, or data but no magic at all (a wrong or missing xor key).

    ``fh``: the file already open (any seekable binary file, such as the bytes of a file read
    through Hadoop); by default ``path`` is opened and closed here.
    """
    if fh is not None:
        yield from _records(fh, path, network, key)
        return
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise BlocksDirError(f"cannot read blk file {path}: {exc}") from exc
    with fh:
        yield from _records(fh, path, network, key)


def _records(fh, path: str, network: Network, key: bytes | None) -> Iterator[Record]:
    magic = network.magic
    size = fh.seek(0, os.SEEK_END)
    pos = 0
    found_any = False
    while pos + 8 <= size:
        frame = _read_at(fh, pos, 8, key)
        if frame[:4] != magic:
            nxt = _find_magic(fh, pos, size, magic, key)
            if nxt is None:
                if not found_any:
                    _no_magic_error(fh, path, pos, size, network, key, frame)
                return
            pos = nxt
            continue
        (length,) = struct.unpack_from("<I", frame, 4)
        if pos + 8 + length > size:
            return  # a block still being written: the end of the file
        found_any = True
        yield Record(pos + 8, length)
        pos += 8 + length


def _find_magic(fh, start: int, size: int, magic: bytes, key: bytes | None) -> int | None:
    pos = start + 1
    while pos < size:
        chunk = _read_at(fh, pos, _SCAN_CHUNK + 3, key)
        i = chunk.find(magic)
        if i >= 0:
            return pos + i
        pos += _SCAN_CHUNK
    return None


def _no_magic_error(fh, path, pos, size, network, key, frame) -> None:
    rest = _read_at(fh, pos, min(size - pos, _SCAN_CHUNK), key)
    if not rest.strip(b"\x00"):
        return  # only zero padding: an empty (pre-allocated) file
    other = _other_network(frame[:4], network)
    if other:
        raise ParseError(
            f"network magic {frame[:4].hex()} is {other}'s, "
            f"but the configured network {network.name} expects {network.magic.hex()}",
            offset=pos,
            where=path,
        )
    hint = "the xor key in xor.dat does not match" if key else "no xor key (xor.dat) was found"
    raise ParseError(
        f"no {network.name} block magic {network.magic.hex()} in the file "
        f"(first bytes {frame.hex()}); {hint}: is the directory obfuscated with another key, "
        "or not a blocks directory?",
        offset=pos,
        where=path,
    )


def read_block(path: str, record: Record, key: bytes | None, fh=None) -> bytes:
    """The raw (deobfuscated) bytes of one block."""
    if fh is not None:
        return _read_at(fh, record.offset, record.length, key)
    with open(path, "rb") as f:
        return _read_at(f, record.offset, record.length, key)

"""Decode the blocks in one file, for ``hodlflow inspect``: a raw block, a hex text file of a
block, or a blk*.dat file of Bitcoin Core (magic, 4-byte little-endian length, block, ...).

The format is detected from the content:

1. Hex text: the file's bytes are hex digits and whitespace only (a raw or framed block
   always holds bytes outside that set: its header has zero bytes). The whole text is one
   block; offsets in errors then count bytes of the decoded block.
2. Framed: the file starts with the network's magic. A file that starts with another
   network's magic raises ParseError naming the magic found and the one expected.
3. Raw: the whole file decodes as exactly one block.
4. Framed after junk: the network's magic occurs later in the file; the bytes before it are
   skipped, as Bitcoin Core's ``LoadExternalBlockFile`` scans forward to the magic.

Inside a framed file the same holds after every block: the next bytes should be the magic;
other bytes are junk (Bitcoin Core pads files with zeros) and the reader scans forward to the
next magic or the end. Another network's magic where a block should start is an error. A
trailing partial block (its length runs past the end of the file) ends the file quietly, as
it does for Bitcoin Core, which writes blocks while it runs. A file of zeros only holds no
block. For a raw block of another network nothing can tell: its addresses are simply
rendered with this network's prefixes.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from collections.abc import Iterator
from typing import Any

from hodlflow.chain.block import (
    Block,
    bip34_height,
    check_merkle,
    difficulty,
    parse_block,
)
from hodlflow.chain.errors import ParseError
from hodlflow.chain.network import NETWORKS, Network, get_network
from hodlflow.chain.script import classify_script

__all__ = ["MAX_BLOCK_SERIALIZED_SIZE", "block_record", "inspect_path", "tx_records"]

MAX_BLOCK_SERIALIZED_SIZE = 4_000_000  # bytes; BIP141's weight limit bounds a block's size
_HEX_TEXT = re.compile(rb"[0-9a-fA-F\s]*")
_NOT_HEX = re.compile(rb"[^0-9a-fA-F\s]")
_U32 = struct.Struct("<I").unpack_from


def block_record(block: Block, path: str, offset: int) -> dict[str, Any]:
    """The ``{"type": "block", ...}`` summary of one decoded block.

    ``offset`` is the byte offset of the block's header in ``path`` (after the magic and
    length in a blk file; 0 for a raw or hex file). ``bits`` is 8 lowercase hex digits.
    ``height`` is the BIP34 height from the coinbase for blocks of version 2 or more, None
    before (version 1 coinbases start with arbitrary data, so no height can be read).
    """
    header = block.header
    txs = block.txs
    height = None
    if header.version >= 2 and txs[0].is_coinbase:
        height = bip34_height(txs[0].inputs[0].script_sig)
    return {
        "type": "block",
        "hash": header.hash,
        "prev_hash": header.prev_hash,
        "height": height,
        "time": header.time,
        "bits": f"{header.bits:08x}",
        "difficulty": difficulty(header.bits),
        "tx_count": len(txs),
        "total_output_sats": sum(out.value for tx in txs for out in tx.outputs),
        "size": block.size,
        "stripped_size": block.stripped_size,
        "weight": block.weight,
        "merkle_root": header.merkle_root,
        "file": path,
        "offset": offset,
    }


def tx_records(block: Block, network: Network) -> Iterator[dict[str, Any]]:
    """One ``{"type": "tx", ...}`` record per transaction, outputs classified on ``network``.

    A coinbase's single input keeps its all-zero prev_txid and prev_vout 4294967295.
    """
    block_hash = block.header.hash
    for tx in block.txs:
        outputs = []
        for vout, out in enumerate(tx.outputs):
            script_type, address = classify_script(out.script_pubkey, network)
            outputs.append(
                {"vout": vout, "value": out.value, "script_type": script_type, "address": address}
            )
        yield {
            "type": "tx",
            "block_hash": block_hash,
            "txid": tx.txid,
            "wtxid": tx.wtxid,
            "size": tx.size,
            "vsize": tx.vsize,
            "weight": tx.weight,
            "is_coinbase": tx.is_coinbase,
            "inputs": [{"prev_txid": i.prev_txid, "prev_vout": i.prev_vout} for i in tx.inputs],
            "outputs": outputs,
        }


def inspect_path(
    path: str | os.PathLike[str],
    network: Network | str,
    with_txs: bool = False,
    check: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield a record per block in the file (and, with ``with_txs``, per transaction).

    Records come in file order; with ``with_txs`` each block's record comes before its
    transactions' records. With ``check`` every block's merkle root is verified
    (MerkleError names the file, offset and block hash). ``network`` (a Network or its
    name) gives the blk magic and the address prefixes. Decoding problems raise ParseError
    naming the file and byte offset.

    >>> for rec in inspect_path("blk00000.dat", MAIN):  # doctest: +SKIP
    ...     print(rec["hash"], rec["height"], rec["tx_count"])
    """
    if isinstance(network, str):
        network = get_network(network)
    name = os.fspath(path)
    with open(name, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise ParseError("empty file: no block", offset=0, where=name)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for block, offset, where in _blocks(data, name, network):
                if check:
                    check_merkle(block, where=where, offset=offset)
                yield block_record(block, name, offset)
                if with_txs:
                    yield from tx_records(block, network)


def _blocks(data: mmap.mmap, name: str, network: Network) -> Iterator[tuple[Block, int, str]]:
    """Detect the file's format and yield (block, offset of its header, context for errors)."""
    head = data[:4]
    if _HEX_TEXT.fullmatch(data[: min(len(data), 4096)]) and data[:64].strip():
        yield _hex_block(data, name), 0, f"{name} (hex-decoded)"
        return
    if head == network.magic:
        yield from _framed(data, name, network, 0)
        return
    _raise_if_foreign_magic(head, 0, name, network)
    raw_error = None
    if len(data) <= MAX_BLOCK_SERIALIZED_SIZE:
        try:
            block = parse_block(data[:], where=name)
        except ParseError as exc:
            raw_error = exc
        else:
            yield block, 0, name
            return
    start = data.find(network.magic)
    if start >= 0:
        yield from _framed(data, name, network, start)
        return
    if _all_zero(data):
        return  # a preallocated blk file that holds no block yet
    foreign = [data.find(n.magic) for n in NETWORKS.values() if n.magic != network.magic]
    first_foreign = min((pos for pos in foreign if pos >= 0), default=-1)
    if first_foreign >= 0:
        _raise_if_foreign_magic(
            data[first_foreign : first_foreign + 4], first_foreign, name, network
        )
    if raw_error is not None:
        raise raw_error
    raise ParseError(
        f"neither a raw block (larger than {MAX_BLOCK_SERIALIZED_SIZE} bytes) nor a blk file: "
        f"no {network.name} magic {network.magic.hex()} found",
        offset=0,
        where=name,
    )


def _all_zero(data: mmap.mmap) -> bool:
    step = 1 << 20
    return not any(data[i : i + step].strip(b"\x00") for i in range(0, len(data), step))


def _hex_block(data: mmap.mmap, name: str) -> Block:
    bad = _NOT_HEX.search(data)
    if bad is not None:
        raise ParseError(
            f"hex text holds a non-hex byte 0x{data[bad.start()]:02x}",
            offset=bad.start(),
            where=name,
        )
    text = re.sub(rb"\s+", b"", data[:])
    if len(text) % 2:
        raise ParseError(
            f"hex text has an odd number of digits ({len(text)})", offset=len(data), where=name
        )
    return parse_block(bytes.fromhex(text.decode("ascii")), where=f"{name} (hex-decoded)")


def _raise_if_foreign_magic(found: bytes, offset: int, name: str, network: Network) -> None:
    for other in NETWORKS.values():
        if found == other.magic and other.magic != network.magic:
            raise ParseError(
                f"found the {other.name} magic {found.hex()} where a block should start, "
                f"expected the {network.name} magic {network.magic.hex()}",
                offset=offset,
                where=name,
            )


def _framed(
    data: mmap.mmap, name: str, network: Network, pos: int
) -> Iterator[tuple[Block, int, str]]:
    """Walk magic + length + block records from ``pos`` (which holds a magic) to the end."""
    magic = network.magic
    end = len(data)
    while pos + 8 <= end:
        if data[pos : pos + 4] != magic:
            _raise_if_foreign_magic(data[pos : pos + 4], pos, name, network)
            pos = data.find(magic, pos + 1)  # junk: scan forward, as Bitcoin Core does
            if pos < 0:
                return
            continue
        (size,) = _U32(data, pos + 4)
        start = pos + 8
        if not 81 <= size <= MAX_BLOCK_SERIALIZED_SIZE:
            raise ParseError(
                f"block length {size} after the magic is not between 81 and "
                f"{MAX_BLOCK_SERIALIZED_SIZE}",
                offset=pos + 4,
                where=name,
            )
        if start + size > end:
            return  # a trailing partial block ends the file
        yield parse_block(data[start : start + size], where=name, base_offset=start), start, name
        pos = start + size

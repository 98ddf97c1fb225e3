"""Decode raw blocks and transactions (BIP144 segwit serialization), and check them.

The decoder walks one ``bytes`` object with ``struct.unpack_from`` and slices; no per-byte
Python loops. Transaction ids are hashed straight from ``memoryview`` slices of the block:
for a segwit transaction the non-witness serialization is the join of three slices
(version, inputs+outputs, locktime).

Conventions:

* Hashes (block hash, txid, wtxid, prev_txid, merkle root) are display-order hex: the
  double-SHA256 reversed, lowercase, as explorers and Bitcoin Core's RPC show them.
* ``wtxid`` is the double-SHA256 of the full serialization for every transaction, the
  coinbase included (BIP141 *commits* to an all-zero wtxid for the coinbase; we still report
  what its bytes hash to, so the field means one thing everywhere). Without witness data
  ``wtxid == txid``.
* ``weight = 3 * stripped_size + size``; ``vsize = ceil(weight / 4)`` (BIP141).
* A coinbase is a transaction with a single input spending the all-zero txid, output
  0xffffffff.
* Block versions are signed 32-bit (as Bitcoin Core's header); transaction versions, times,
  bits, nonces, sequences and lock times unsigned 32-bit.

Every decoding problem raises :class:`~hodlflow.chain.errors.ParseError` naming what is wrong,
the absolute byte offset (``base_offset`` + position in ``buf``) and ``where``.

>>> genesis_header = bytes.fromhex(
...     "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd"
...     "7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c")
>>> parse_header(genesis_header).hash
'000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f'
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

from hodlflow.chain.errors import ChainError, MerkleError, ParseError, PowError
from hodlflow.chain.network import Network

__all__ = [
    "Block",
    "Header",
    "Tx",
    "TxIn",
    "TxOut",
    "bip34_height",
    "bits_to_target",
    "block_work",
    "check_merkle",
    "check_pow",
    "coinbase_tag",
    "difficulty",
    "merkle_root",
    "parse_block",
    "parse_header",
    "parse_tx",
]


@dataclass(slots=True)
class Header:
    hash: str
    prev_hash: str
    merkle_root: str
    version: int
    time: int
    bits: int
    nonce: int


@dataclass(slots=True)
class TxIn:
    prev_txid: str
    prev_vout: int
    script_sig: bytes
    sequence: int
    witness: list[bytes]


@dataclass(slots=True)
class TxOut:
    value: int  # satoshis
    script_pubkey: bytes


@dataclass(slots=True)
class Tx:
    txid: str
    wtxid: str
    version: int
    locktime: int
    size: int  # bytes of the full serialization
    stripped_size: int  # bytes without marker, flag and witnesses
    vsize: int
    weight: int
    is_coinbase: bool
    inputs: list[TxIn]
    outputs: list[TxOut]


@dataclass(slots=True)
class Block:
    header: Header
    size: int
    stripped_size: int
    weight: int
    txs: list[Tx]

    @property
    def hash(self) -> str:
        return self.header.hash


HEADER_SIZE = 80
_NULL_TXID = b"\x00" * 32
_COINBASE_VOUT = 0xFFFFFFFF
_MIN_TX_SIZE = 60  # version + 1 input (41) + 1 output (9) + counts + locktime; a bound, not a rule
_MIN_INPUT_SIZE = 41
_MIN_OUTPUT_SIZE = 9

_sha256 = hashlib.sha256
_HEADER = struct.Struct("<i32s32sIII")
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_IN_HEAD = struct.Struct("<32sIB").unpack_from  # prev txid, prev vout, first script-length byte
_OUT_HEAD = struct.Struct("<qB").unpack_from  # value, first script-length byte


class _Malformed(Exception):
    """Internal: a decoding problem at a position relative to the buffer being walked."""

    def __init__(self, what: str, pos: int):
        super().__init__(what)
        self.what = what
        self.pos = pos


def _dsha256(data: bytes | memoryview) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


def _varint_tail(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """Finish a CompactSize whose first byte (already consumed) is 0xfd, 0xfe or 0xff.

    Non-canonical encodings (a value that fits a shorter form) are rejected, as Bitcoin Core
    does.
    """
    if first == 0xFD:
        (n,) = _U16(buf, pos)
        if n < 0xFD:
            raise _Malformed(f"non-canonical CompactSize 0xfd {n}", pos - 1)
        return n, pos + 2
    if first == 0xFE:
        (n,) = _U32(buf, pos)
        if n <= 0xFFFF:
            raise _Malformed(f"non-canonical CompactSize 0xfe {n}", pos - 1)
        return n, pos + 4
    (n,) = _U64(buf, pos)
    if n <= 0xFFFFFFFF:
        raise _Malformed(f"non-canonical CompactSize 0xff {n}", pos - 1)
    return n, pos + 8


def _read_tx(buf: bytes, mv: memoryview, pos: int) -> tuple[Tx, int]:
    """Decode the transaction starting at ``pos``; return it and the position after it.

    Running past the end of ``buf`` surfaces as ``IndexError``, ``struct.error`` or, after a
    huge length, ``OverflowError`` (every transaction ends with a ``struct`` read of its lock
    time, so a short slice before it is always caught); the caller turns those into a
    ParseError.
    """
    start = pos
    (version,) = _U32(buf, pos)
    pos += 4
    n_in = buf[pos]
    pos += 1
    segwit = n_in == 0
    if segwit:
        flag = buf[pos]
        if flag != 1:
            raise _Malformed(f"unknown transaction flag byte 0x{flag:02x} after marker 0x00", pos)
        pos += 1
        body = pos
        n_in = buf[pos]
        pos += 1
    else:
        body = start + 4
    if n_in >= 0xFD:
        n_in, pos = _varint_tail(buf, pos, n_in)
    if n_in * _MIN_INPUT_SIZE > len(buf) - pos:
        raise _Malformed(f"input count {n_in} cannot fit in the remaining bytes", pos)

    inputs = []
    add_input = inputs.append
    for _ in range(n_in):
        prev, vout, n = _IN_HEAD(buf, pos)
        pos += 37
        if n >= 0xFD:
            n, pos = _varint_tail(buf, pos, n)
        script = buf[pos : pos + n]
        pos += n
        (sequence,) = _U32(buf, pos)
        pos += 4
        add_input(TxIn(prev[::-1].hex(), vout, script, sequence, []))

    n_out = buf[pos]
    pos += 1
    if n_out >= 0xFD:
        n_out, pos = _varint_tail(buf, pos, n_out)
    if n_out * _MIN_OUTPUT_SIZE > len(buf) - pos:
        raise _Malformed(f"output count {n_out} cannot fit in the remaining bytes", pos)
    outputs = []
    add_output = outputs.append
    for _ in range(n_out):
        value, n = _OUT_HEAD(buf, pos)
        pos += 9
        if n >= 0xFD:
            n, pos = _varint_tail(buf, pos, n)
        add_output(TxOut(value, buf[pos : pos + n]))
        pos += n

    if segwit:
        witness_start = pos
        for txin in inputs:
            count = buf[pos]
            pos += 1
            if count:
                if count >= 0xFD:
                    count, pos = _varint_tail(buf, pos, count)
                    if count > len(buf) - pos:
                        raise _Malformed(f"witness item count {count} cannot fit", pos)
                items = []
                add_item = items.append
                for _ in range(count):
                    n = buf[pos]
                    pos += 1
                    if n >= 0xFD:
                        n, pos = _varint_tail(buf, pos, n)
                    add_item(buf[pos : pos + n])
                    pos += n
                txin.witness = items
        (locktime,) = _U32(buf, pos)
        pos += 4
        stripped = buf[start : start + 4] + mv[body:witness_start] + buf[pos - 4 : pos]
        txid = _dsha256(stripped)[::-1].hex()
        wtxid = _dsha256(mv[start:pos])[::-1].hex()
        size = pos - start
        stripped_size = len(stripped)
    else:
        (locktime,) = _U32(buf, pos)
        pos += 4
        txid = wtxid = _dsha256(mv[start:pos])[::-1].hex()
        size = stripped_size = pos - start

    weight = 3 * stripped_size + size
    # With exactly one input, ``prev`` and ``vout`` still hold that input's outpoint.
    is_coinbase = n_in == 1 and vout == _COINBASE_VOUT and prev == _NULL_TXID
    tx = Tx(
        txid,
        wtxid,
        version,
        locktime,
        size,
        stripped_size,
        (weight + 3) // 4,
        weight,
        is_coinbase,
        inputs,
        outputs,
    )
    return tx, pos


def _parse_error(
    exc: Exception, buf: bytes, pos: int, base_offset: int, where: str | None, what: str
) -> ParseError:
    if isinstance(exc, _Malformed):
        return ParseError(f"{exc.what} in {what}", offset=base_offset + exc.pos, where=where)
    return ParseError(
        f"truncated data: {what} (starting at byte offset {base_offset + pos}) runs past the "
        f"end of the data",
        offset=base_offset + len(buf),
        where=where,
    )


def parse_header(buf: bytes | memoryview, offset: int = 0) -> Header:
    """Decode the 80-byte block header at ``offset``; its hash is the double-SHA256."""
    raw = bytes(buf[offset : offset + HEADER_SIZE])
    if len(raw) < HEADER_SIZE:
        raise ParseError(
            f"truncated block header: {len(raw)} of {HEADER_SIZE} bytes", offset=offset + len(raw)
        )
    version, prev, merkle, time, bits, nonce = _HEADER.unpack(raw)
    return Header(
        _dsha256(raw)[::-1].hex(),
        prev[::-1].hex(),
        merkle[::-1].hex(),
        version,
        time,
        bits,
        nonce,
    )


def parse_block(buf: bytes | memoryview, where: str | None = None, base_offset: int = 0) -> Block:
    """Decode one serialized block that must fill ``buf`` exactly.

    ``where`` (a file name or other context) and ``base_offset`` (the position of ``buf[0]``
    in that file) only serve error messages: a ParseError names the absolute offset
    ``base_offset + position``. Raises ParseError for truncated data, trailing bytes,
    non-canonical counts, unknown segwit flags and blocks without transactions.
    """
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    end = len(buf)
    if end < HEADER_SIZE + 1:
        raise ParseError(
            f"truncated block: {end} bytes, shorter than a header and a transaction count",
            offset=base_offset + end,
            where=where,
        )
    header = parse_header(buf)
    mv = memoryview(buf)
    pos = HEADER_SIZE
    try:
        n_tx = buf[pos]
        pos += 1
        if n_tx >= 0xFD:
            n_tx, pos = _varint_tail(buf, pos, n_tx)
    except (IndexError, OverflowError, struct.error, _Malformed) as exc:
        raise _parse_error(exc, buf, HEADER_SIZE, base_offset, where, "transaction count") from None
    if n_tx == 0:
        raise ParseError("block has no transactions", offset=base_offset + HEADER_SIZE, where=where)
    if n_tx * _MIN_TX_SIZE > end - pos:
        raise ParseError(
            f"transaction count {n_tx} cannot fit in the {end - pos} bytes that follow",
            offset=base_offset + HEADER_SIZE,
            where=where,
        )
    counts_size = pos - HEADER_SIZE
    txs = []
    add = txs.append
    stripped_total = 0
    try:
        for _ in range(n_tx):
            tx, pos = _read_tx(buf, mv, pos)
            stripped_total += tx.stripped_size
            add(tx)
    except (IndexError, OverflowError, struct.error, _Malformed) as exc:
        raise _parse_error(
            exc, buf, pos, base_offset, where, f"transaction #{len(txs)} of block {header.hash}"
        ) from None
    if pos != end:
        raise ParseError(
            f"{end - pos} trailing bytes after the last of {n_tx} transactions of block "
            f"{header.hash}",
            offset=base_offset + pos,
            where=where,
        )
    stripped_size = HEADER_SIZE + counts_size + stripped_total
    return Block(header, end, stripped_size, 3 * stripped_size + end, txs)


def parse_tx(buf: bytes | memoryview, where: str | None = None, base_offset: int = 0) -> Tx:
    """Decode one serialized transaction that must fill ``buf`` exactly."""
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    try:
        tx, pos = _read_tx(buf, memoryview(buf), 0)
    except (IndexError, OverflowError, struct.error, _Malformed) as exc:
        raise _parse_error(exc, buf, 0, base_offset, where, "transaction") from None
    if pos != len(buf):
        raise ParseError(
            f"{len(buf) - pos} trailing bytes after transaction {tx.txid}",
            offset=base_offset + pos,
            where=where,
        )
    return tx


# --- merkle root ---------------------------------------------------------------------------


def merkle_root(txids_hex: list[str]) -> str:
    """Merkle root (display hex) of display-hex txids; an odd level repeats its last hash.

    An empty list gives the all-zero hash, as Bitcoin Core's ComputeMerkleRoot.
    """
    if not txids_hex:
        return "00" * 32
    level = b"".join(bytes.fromhex(t)[::-1] for t in txids_hex)
    count = len(txids_hex)
    while count > 1:
        if count & 1:
            level += level[-32:]
            count += 1
        level = b"".join([_dsha256(level[i : i + 64]) for i in range(0, 32 * count, 64)])
        count >>= 1
    return level[::-1].hex()


def check_merkle(block: Block, where: str | None = None, offset: int | None = None) -> None:
    """Raise MerkleError when the transactions do not hash to the header's merkle root."""
    computed = merkle_root([tx.txid for tx in block.txs])
    if computed != block.header.merkle_root:
        raise MerkleError(
            block.header.hash, block.header.merkle_root, computed, where=where, offset=offset
        )


_WITNESS_COMMITMENT = bytes.fromhex("6a24aa21a9ed")  # OP_RETURN, push 36, BIP141's header


def check_witness_commitment(
    block: Block, where: str | None = None, offset: int | None = None
) -> None:
    """Raise ChainError unless the witness data hash to the coinbase's commitment (BIP141).

    The merkle root covers transactions without their witnesses; the commitment (the last
    coinbase output starting ``6a24aa21a9ed``) covers the witnesses: SHA256d(merkle root of the
    wtxids, the coinbase's counting as zero ‖ the coinbase's 32-byte witness). A block whose
    transactions carry witness data must have one; a block without witness data is not
    checked (before segwit an output could match the pattern by chance).
    """
    coinbase = block.txs[0]
    has_witness = any(tx.size != tx.stripped_size for tx in block.txs)
    if not has_witness:
        return
    found = None
    for out in coinbase.outputs:
        script = out.script_pubkey
        if len(script) >= 38 and script[:6] == _WITNESS_COMMITMENT:
            found = script[6:38]
    prefix = "" if where is None else f"{where}: "
    at = "" if offset is None else f" at byte offset {offset}"
    if found is None:
        raise ChainError(
            f"{prefix}block {block.header.hash}{at}: transactions carry witness data but the "
            "coinbase has no witness commitment"
        )
    nonce = coinbase.inputs[0].witness if coinbase.inputs else []
    if len(nonce) != 1 or len(nonce[0]) != 32:
        raise ChainError(
            f"{prefix}block {block.header.hash}{at}: the coinbase's witness must be one 32-byte "
            f"reserved value beside a witness commitment, found {[len(w) for w in nonce]} bytes"
        )
    root = merkle_root(["00" * 32] + [tx.wtxid for tx in block.txs[1:]])
    computed = _dsha256(bytes.fromhex(root)[::-1] + nonce[0])
    if computed != found:
        raise ChainError(
            f"{prefix}witness commitment mismatch in block {block.header.hash}{at}: the coinbase "
            f"commits to {found.hex()}, the witnesses give {computed.hex()}"
        )


# --- proof of work -------------------------------------------------------------------------

_DIFFICULTY_1_TARGET = 0xFFFF << 208  # the target of bits 0x1d00ffff


def bits_to_target(bits: int) -> int:
    """Expand compact ``bits``: mantissa * 256**(exponent - 3), as Bitcoin Core's SetCompact.

    Raises PowError when the sign bit (0x00800000) is set with a non-zero mantissa: such a
    target is negative and no valid block has one.
    """
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    if bits & 0x00800000 and mantissa:
        raise PowError(f"bits {bits:08x} encode a negative target")
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def difficulty(bits: int) -> float:
    """Target of bits 0x1d00ffff divided by this target (0x1d00ffff -> 1.0)."""
    target = bits_to_target(bits)
    if target == 0:
        raise PowError(f"bits {bits:08x} encode a zero target")
    return _DIFFICULTY_1_TARGET / target


def block_work(bits: int) -> int:
    """Expected hashes to find a block at this target: 2**256 // (target + 1), as Bitcoin Core.

    Zero for targets that Bitcoin Core treats as invalid (zero, negative or >= 2**256).
    """
    try:
        target = bits_to_target(bits)
    except PowError:
        return 0
    if target == 0 or target >> 256:
        return 0
    return (1 << 256) // (target + 1)


def check_pow(header: Header, where: str | None = None, network: Network | None = None) -> None:
    """Raise PowError unless the header's hash is at or below the target its bits encode.

    With ``network`` the target must also not exceed that network's proof-of-work limit.
    """
    prefix = "" if where is None else f"{where}: "
    try:
        target = bits_to_target(header.bits)
    except PowError as exc:
        raise PowError(f"{prefix}block {header.hash}: {exc}") from None
    if target == 0 or target >> 256:
        raise PowError(f"{prefix}block {header.hash}: bits {header.bits:08x} encode no target")
    if network is not None and target > bits_to_target(network.pow_limit_bits):
        raise PowError(
            f"{prefix}block {header.hash}: bits {header.bits:08x} are easier than the "
            f"{network.name} limit {network.pow_limit_bits:08x}"
        )
    if int(header.hash, 16) > target:
        raise PowError(
            f"{prefix}block {header.hash}: hash above the target {target:064x} "
            f"of bits {header.bits:08x}"
        )


# --- coinbase ------------------------------------------------------------------------------


def bip34_height(coinbase_script: bytes) -> int | None:
    """The block height a coinbase script starts with (BIP34), or None.

    Pragmatic: the first operation read as a number, when it is OP_0, OP_1..OP_16 (heights
    1..16 on regtest) or a push of 1 to 5 bytes (little-endian, sign bit clear). Blocks from
    before BIP34 start with other data (the genesis coinbase pushes ``ffff001d``), so callers
    must only trust the value where BIP34 applies or where it matches another source.
    """
    if not coinbase_script:
        return None
    op = coinbase_script[0]
    if op == 0:
        return 0
    if 0x51 <= op <= 0x60:
        return op - 0x50
    if 1 <= op <= 5 and len(coinbase_script) > op:
        number = coinbase_script[1 : 1 + op]
        if number[-1] & 0x80:  # negative script number
            return None
        return int.from_bytes(number, "little")
    return None


_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{4,}")


def coinbase_tag(script: bytes) -> str:
    """Printable text in a coinbase script: runs of >= 4 ASCII characters 0x20-0x7e, joined
    by one space.

    Shorter runs are dropped because the height push, extranonces and commitments are random
    bytes that are printable by chance; pool tags such as ``/ViaBTC/`` or ``Mined by AntPool``
    survive intact. A push's length byte may be printable itself and then leads the run
    (the genesis coinbase gives ``EThe Times 03/Jan/2009 ...``, ``E`` being 69).
    """
    return " ".join(run.decode("ascii") for run in _PRINTABLE_RUN.findall(script))

"""Address encoders: Base58Check (P2PKH, P2SH) and Bech32/Bech32m (segwit, BIP173/BIP350).

Address encoding is where block parsers spend their time, so both encoders avoid per-byte
Python loops:

* Base58: the payload becomes one ``int``; each ``divmod`` by 58**2 emits two characters
  through a 3,364-entry table.
* Bech32: the program becomes one ``int`` whose 5-bit groups a few mask-and-shift stages
  spread into one byte each, and ``bytes.translate`` maps those bytes to characters. The
  checksum polynomial is affine over GF(2) in the data bits, so for each program length we
  precompute every byte position's contribution: the checksum is the XOR of one table entry
  per program byte.

>>> base58check_encode(0x00, bytes.fromhex("62e907b15cbf27d5425399ebf6f0fb50ebb88f18"))
'1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa'
>>> bech32_encode("bc", 0, bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6"))
'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'
"""

from __future__ import annotations

import hashlib

__all__ = [
    "CACHE_LIMIT",
    "base58check_encode",
    "bech32_encode",
    "clear_address_caches",
    "hash160",
    "ripemd160",
]

_sha256 = hashlib.sha256

# --- hashing -------------------------------------------------------------------------------


def _ripemd160_py(data: bytes) -> bytes:
    """RIPEMD-160 in pure Python, used only when OpenSSL does not offer it.

    Some OpenSSL 3 builds move RIPEMD-160 to the "legacy" provider, where ``hashlib.new``
    refuses it. This follows the algorithm's specification (Dobbertin, Bosselaers, Preneel).
    """
    msg = bytearray(data)
    bit_len = (8 * len(data)) & 0xFFFFFFFFFFFFFFFF
    msg.append(0x80)
    msg.extend(b"\x00" * ((56 - len(msg) % 64) % 64))
    msg.extend(bit_len.to_bytes(8, "little"))
    h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
    mask = 0xFFFFFFFF

    def rol(x: int, n: int) -> int:
        return ((x << n) | (x >> (32 - n))) & mask

    def f(j: int, x: int, y: int, z: int) -> int:
        if j < 16:
            return x ^ y ^ z
        if j < 32:
            return (x & y) | (~x & z)
        if j < 48:
            return (x | ~y) ^ z
        if j < 64:
            return (x & z) | (y & ~z)
        return x ^ (y | ~z)

    for chunk in range(0, len(msg), 64):
        x = [int.from_bytes(msg[chunk + 4 * i : chunk + 4 * i + 4], "little") for i in range(16)]
        al, bl, cl, dl, el = h0, h1, h2, h3, h4
        ar, br, cr, dr, er = h0, h1, h2, h3, h4
        for j in range(80):
            rnd = j >> 4
            t = rol((al + f(j, bl, cl, dl) + x[_RMD_R[j]] + _RMD_KL[rnd]) & mask, _RMD_S[j]) + el
            al, el, dl, cl, bl = el, dl, rol(cl, 10), bl, t & mask
            t = (
                rol((ar + f(79 - j, br, cr, dr) + x[_RMD_RR[j]] + _RMD_KR[rnd]) & mask, _RMD_SR[j])
                + er
            )
            ar, er, dr, cr, br = er, dr, rol(cr, 10), br, t & mask
        t = (h1 + cl + dr) & mask
        h1 = (h2 + dl + er) & mask
        h2 = (h3 + el + ar) & mask
        h3 = (h4 + al + br) & mask
        h4 = (h0 + bl + cr) & mask
        h0 = t
    return b"".join(v.to_bytes(4, "little") for v in (h0, h1, h2, h3, h4))


# RIPEMD-160 constants from its specification: message word order, rotation amounts and
# additive constants for the left and right lines.
_RMD_R = (
    *range(16),
    *(7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8),
    *(3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12),
    *(1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2),
    *(4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13),
)
_RMD_RR = (
    *(5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12),
    *(6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2),
    *(15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13),
    *(8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14),
    *(12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11),
)
_RMD_S = (
    *(11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8),
    *(7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12),
    *(11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5),
    *(11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12),
    *(9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6),
)
_RMD_SR = (
    *(8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6),
    *(9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11),
    *(9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5),
    *(15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8),
    *(8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11),
)
_RMD_KL = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
_RMD_KR = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)


def _ripemd160_openssl(data: bytes) -> bytes:
    return hashlib.new("ripemd160", data).digest()


try:
    hashlib.new("ripemd160", b"")
    ripemd160 = _ripemd160_openssl
except ValueError:  # pragma: no cover - depends on the OpenSSL build
    ripemd160 = _ripemd160_py


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: the 20-byte hash inside P2PKH, P2SH and P2WPKH scripts."""
    return ripemd160(_sha256(data).digest())


# --- caches ------------------------------------------------------------------------------

# Addresses repeat (exchanges, pools, change): within one block about a third of the outputs
# of block 574200 pay an address seen earlier in the block. Each encoder keeps a memo of its
# results; a full memo is emptied, which bounds memory (tens of MB at most) without the
# bookkeeping of an LRU. The memos hold pure results, so they never change an answer.
CACHE_LIMIT = 1 << 16
_b58_cache: dict[tuple[int, bytes], str] = {}
_bech32_cache: dict[tuple[str, int, bytes], str] = {}


def clear_address_caches() -> None:
    """Empty the encoders' memos (for benchmarks that must measure cold encoding)."""
    _b58_cache.clear()
    _bech32_cache.clear()


# --- Base58Check ---------------------------------------------------------------------------

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_PAIRS = [a + b for a in _B58 for b in _B58]  # index = 58 * hi + lo


def base58check_encode(version: int, payload: bytes) -> str:
    """Base58Check of one version byte, the payload and a 4-byte double-SHA256 checksum.

    Leading zero bytes become leading ``1`` characters (so version 0 gives addresses that
    start with ``1``).
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    key = (version, payload)
    text = _b58_cache.get(key)
    if text is not None:
        return text
    data = bytes((version,)) + payload
    data += _sha256(_sha256(data).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    pairs = _B58_PAIRS
    out = []
    append = out.append
    while n:
        n, r = divmod(n, 3364)
        append(pairs[r])
    out.reverse()
    text = "".join(out).lstrip("1")  # the top pair may start with a zero digit
    if not data[0]:
        text = "1" * (len(data) - len(data.lstrip(b"\x00"))) + text
    if len(_b58_cache) >= CACHE_LIMIT:
        _b58_cache.clear()
    _b58_cache[key] = text
    return text


# --- Bech32 / Bech32m ----------------------------------------------------------------------

_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # index = 32 * hi + lo
_B32_FROM_SYMBOLS = bytes.maketrans(bytes(range(32)), _B32.encode())
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3


def _polymod(values: list[int], chk: int = 1) -> int:
    """BIP173's checksum polynomial, one 5-bit value at a time (used to build the tables)."""
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


class _ProgramCodec:
    """Precomputed tables for witness programs of one length.

    ``stages`` spread the program's 5-bit groups into one byte each (so ``bytes.translate``
    maps them to characters): each stage moves the upper half of every block of groups left
    by 3 bits per group. ``tables[i][v]`` is the checksum contribution of value ``v`` at byte
    ``i``: the checksum is affine in the data bits, and a bit's contribution is the polymod,
    started from 0, of the symbols holding only that bit followed by six zero symbols.
    """

    __slots__ = ("groups", "pad_bits", "padded", "stages", "tables")

    def __init__(self, length: int):
        self.groups = groups = (8 * length + 4) // 5
        self.pad_bits = 5 * groups - 8 * length
        self.padded = padded = 1 << (groups - 1).bit_length()
        stages = []
        block = padded // 2
        while block:
            keep = move = 0
            for first in range(0, padded, 2 * block):
                keep |= ((1 << (5 * block)) - 1) << (8 * first)
                move |= ((1 << (5 * block)) - 1) << (8 * first + 5 * block)
            stages.append((keep, move, 3 * block))
            block //= 2
        self.stages = tuple(stages)
        bit_effect = []
        for bit in range(8 * length):  # bit 0 = most significant bit of byte 0
            symbols = [0] * (groups + 6)
            symbols[bit // 5] = 1 << (4 - bit % 5)
            bit_effect.append(_polymod(symbols, 0))
        tables = []
        for pos in range(length):
            effects = bit_effect[8 * pos : 8 * pos + 8]
            row = []
            for value in range(256):
                acc = 0
                for j in range(8):
                    if value & (0x80 >> j):
                        acc ^= effects[j]
                row.append(acc)
            tables.append(row)
        self.tables = tuple(tables)


_CODECS: dict[int, _ProgramCodec] = {}
# Per (hrp, witness version, program length): the checksum of an all-zero program.
_BASES: dict[tuple[str, int, int], int] = {}


def _codec(length: int) -> _ProgramCodec:
    codec = _CODECS.get(length)
    if codec is None:
        codec = _CODECS[length] = _ProgramCodec(length)
    return codec


def _base(hrp: str, witver: int, length: int, groups: int) -> int:
    key = (hrp, witver, length)
    base = _BASES.get(key)
    if base is None:
        expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
        base = _polymod(expanded + [witver] + [0] * (groups + 6))
        base ^= _BECH32_CONST if witver == 0 else _BECH32M_CONST
        _BASES[key] = base
    return base


def bech32_encode(hrp: str, witver: int, program: bytes) -> str:
    """Segwit address: Bech32 (BIP173) for witness version 0, Bech32m (BIP350) for 1..16.

    Only encodes; the caller decides whether the program is a standard one. ``hrp`` must be
    lowercase (``bc``, ``tb``, ``bcrt``).
    """
    if not 0 <= witver <= 16:
        raise ValueError(f"witness version must be 0..16, got {witver}")
    if not 2 <= len(program) <= 40:
        raise ValueError(f"witness program must be 2..40 bytes, got {len(program)}")
    if type(program) is not bytes:
        program = bytes(program)
    key = (hrp, witver, program)
    text = _bech32_cache.get(key)
    if text is not None:
        return text
    codec = _CODECS.get(len(program)) or _codec(len(program))
    chk = _BASES.get((hrp, witver, len(program))) or _base(hrp, witver, len(program), codec.groups)
    for row, value in zip(codec.tables, program, strict=True):
        chk ^= row[value]
    n = int.from_bytes(program, "big") << codec.pad_bits
    for keep, move, shift in codec.stages:
        n = (n & keep) | ((n & move) << shift)
    data = n.to_bytes(codec.padded, "big")[codec.padded - codec.groups :]
    pairs = _B32_PAIRS
    text = (
        f"{hrp}1{_B32[witver]}{data.translate(_B32_FROM_SYMBOLS).decode()}"
        f"{pairs[chk >> 20]}{pairs[(chk >> 10) & 1023]}{pairs[chk & 1023]}"
    )
    if len(_bech32_cache) >= CACHE_LIMIT:
        _bech32_cache.clear()
    _bech32_cache[key] = text
    return text

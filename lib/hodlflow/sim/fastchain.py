"""The simulator's fast path: hash-derived addresses, lean transaction and block serialization.

``ChainBuilder`` is the reference for hand-built test chains; it keeps every output and block it
ever built in memory and checks each spend against per-branch UTXO sets, which is right for
small chains and too heavy for millions of transactions. The simulator keeps its own wallets
(each coin lives in exactly one wallet until spent), so it only needs the bytes; this module
writes them with the builder's script helpers and the same serialization rules (BIP144 segwit,
BIP34 heights, BIP141 witness commitments, merkle roots).

Addresses cost no elliptic-curve math. An address is derived from a 32-byte seed:

- its public keys are *form-valid* compressed keys (``02`` or ``03`` then 32 hash bytes; not
  necessarily points on secp256k1 — no hodlflow reader checks that, as Bitcoin Core's
  ``Solver`` does not);
- its program is the real hash of what a spend reveals (hash160 of the key for P2PKH/P2WPKH,
  hash160 of the redeem script for P2SH, SHA-256 of the witness script for P2WSH), so a spend is
  consistent with its output script; only the signatures are dummies (72-byte DER-shaped ECDSA,
  64-byte Schnorr) derived from the outpoint they spend, and a P2TR output key is 32 hash bytes.

P2PK outputs need a key whose hash160 is an address, so they use real keys from
:class:`~hodlflow.sim.keys.KeyRing` (about a millisecond each: keep them few).

Everything is deterministic: the same seeds and calls give the same bytes.

>>> a = make_address("p2wpkh", b"\\x01" * 32)
>>> c = Coin(bytes(32), 0, 50_000, a)
>>> t = encode_tx([c], [(40_000, a.script)])
>>> t.segwit, len(t.txid)
(True, 32)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from hodlflow.chain.block import difficulty as bits_difficulty  # the reader's definition
from hodlflow.sim.builder import (
    WITNESS_COMMITMENT_HEADER,
    WITNESS_RESERVED_VALUE,
    compact_size,
    merkle_root,
    multisig,
    op_return,
    p2pk,
    p2pkh,
    p2sh,
    p2tr,
    p2wpkh,
    p2wsh,
    push_data,
    push_int,
    witness_program,
)
from hodlflow.sim.keys import KeyRing

COIN = 100_000_000
DUST = 546  # below this a change output is dropped into the fee (P2PKH dust limit)
MAX_BLOCK_WEIGHT = 4_000_000
DIFF1_TARGET = 0xFFFF << 208  # target of bits 0x1d00ffff (difficulty 1)

# Script kinds a wallet can receive to. ``multisig`` (bare 1-of-3 "stamp" dust) and
# ``witness_v2`` (a future witness version) are receive-only: the simulator never spends them.
SPENDABLE_KINDS = (
    "p2pk",
    "p2pkh",
    "p2sh_p2wpkh",
    "p2sh_multisig",
    "p2wpkh",
    "p2wsh",
    "p2tr",
)
KINDS = (*SPENDABLE_KINDS, "multisig", "witness_v2")

_sha256 = hashlib.sha256
_sha512 = hashlib.sha512
_pack_q = struct.Struct("<q").pack
_pack_i = struct.Struct("<I").pack


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", _sha256(data).digest()).digest()


try:  # OpenSSL 3 builds may keep RIPEMD-160 in the "legacy" provider
    _hash160(b"")
except ValueError:  # pragma: no cover - depends on the OpenSSL build
    from hodlflow.sim.keys import hash160 as _hash160  # noqa: F811


def dsha256(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


# Estimated virtual size an input of each kind adds (vbytes), used to pick fees before the
# transaction is serialized; the fee paid is whatever inputs minus outputs leave.
INPUT_VBYTES = {
    "p2pk": 114.0,
    "p2pkh": 148.0,
    "p2sh_p2wpkh": 91.0,
    "p2sh_multisig": 297.0,
    "p2wpkh": 68.0,
    "p2wsh": 105.0,
    "p2tr": 57.5,
    "multisig": 100.0,
    "witness_v2": 41.0,
}


class Address:
    """One receiving script. ``owner`` is the wallet coins paid to it land in.

    ``registered`` turns true once the address has been written to the ground truth (the first
    time an output pays it).
    """

    __slots__ = ("kind", "script", "out_tail", "_ss", "_wit", "owner", "registered", "role")

    def __init__(self, kind: str, script: bytes, ss: bytes, wit: tuple[bytes, ...] | None):
        self.kind = kind
        self.script = script
        self.out_tail = compact_size(len(script)) + script
        self._ss = ss  # scriptSig after the signature(s), or the whole scriptSig (P2SH-P2WPKH)
        self._wit = wit  # witness items after the signature(s)
        self.owner = None
        self.registered = False
        self.role = ""

    def unlock(self, sig_seed: bytes) -> tuple[bytes, tuple[bytes, ...] | None]:
        """(scriptSig, witness or None) spending this script; signatures from ``sig_seed``."""
        kind = self.kind
        if kind == "p2wpkh":
            return b"", (_der_sig(sig_seed), self._wit[0])
        if kind == "p2tr":
            return b"", (_sha512(sig_seed).digest(),)
        if kind == "p2pkh":
            return b"\x48" + _der_sig(sig_seed) + self._ss, None
        if kind == "p2sh_p2wpkh":
            return self._ss, (_der_sig(sig_seed), self._wit[0])
        if kind == "p2wsh":
            s1 = _der_sig(sig_seed)
            return b"", (b"", s1, _der_sig(s1), self._wit[0])
        if kind == "p2sh_multisig":
            s1 = _der_sig(sig_seed)
            return b"\x00\x48" + s1 + b"\x48" + _der_sig(s1) + self._ss, None
        if kind == "p2pk":
            return b"\x48" + _der_sig(sig_seed), None
        return b"", ()  # future witness versions: anyone can spend with an empty witness


def _der_sig(seed: bytes) -> bytes:
    """A 72-byte DER-shaped ECDSA signature + SIGHASH_ALL: high-bit r (padded), low s."""
    d = _sha512(seed).digest()
    return (
        b"\x30\x45\x02\x21\x00"
        + bytes((d[0] | 0x80,))
        + d[1:32]
        + b"\x02\x20"
        + bytes(((d[32] & 0x7F) | 0x01,))
        + d[33:64]
        + b"\x01"
    )


def _fake_pubkey(seed: bytes) -> bytes:
    d = _sha256(b"hodlflow-pk" + seed).digest()
    return bytes((2 + (d[0] & 1),)) + _sha256(d).digest()


def _multisig_keys(seed: bytes, n: int = 3) -> list[bytes]:
    return [_fake_pubkey(seed + bytes((i,))) for i in range(n)]


_REAL_KEYS = KeyRing(b"hodlflow-sim-p2pk")


def make_address(kind: str, seed: bytes) -> Address:
    """The address of script kind ``kind`` derived from ``seed`` (any bytes; 32 is usual)."""
    if kind == "p2wpkh":
        pk = _fake_pubkey(seed)
        return Address(kind, p2wpkh(_hash160(pk)), b"", (pk,))
    if kind == "p2tr":
        return Address(kind, p2tr(_sha256(b"hodlflow-tr" + seed).digest()), b"", None)
    if kind == "p2pkh":
        pk = _fake_pubkey(seed)
        return Address(kind, p2pkh(_hash160(pk)), b"\x21" + pk, None)
    if kind == "p2sh_p2wpkh":
        pk = _fake_pubkey(seed)
        redeem = p2wpkh(_hash160(pk))
        return Address(kind, p2sh(_hash160(redeem)), push_data(redeem), (pk,))
    if kind == "p2wsh":
        ws = multisig(2, _multisig_keys(seed))
        return Address(kind, p2wsh(_sha256(ws).digest()), b"", (ws,))
    if kind == "p2sh_multisig":
        redeem = multisig(2, _multisig_keys(seed))
        return Address(kind, p2sh(_hash160(redeem)), push_data(redeem), None)
    if kind == "p2pk":
        index = int.from_bytes(_sha256(seed).digest()[:6], "big")
        return Address(kind, p2pk(_REAL_KEYS[index].pubkey), b"", None)
    if kind == "multisig":  # 1-of-3 bare multisig carrying data in two of its keys
        return Address(kind, multisig(1, _multisig_keys(seed)), b"", None)
    if kind == "witness_v2":
        return Address(kind, witness_program(2, _sha256(b"hodlflow-v2" + seed).digest()), b"", None)
    raise ValueError(f"unknown address kind {kind!r}; known: {', '.join(KINDS)}")


def op_return_output(data: bytes) -> tuple[int, bytes]:
    """A zero-value OP_RETURN output (``data`` up to 80 bytes, the standard limit)."""
    if len(data) > 80:
        raise ValueError(f"OP_RETURN data over 80 bytes: {len(data)}")
    return 0, op_return(data)


class Coin:
    """An unspent output the simulator knows: where it is, what it holds, who can spend it.

    ``height`` matters for coinbase outputs only (maturity); ``day`` is the simulation day the
    creating transaction was made.
    """

    __slots__ = ("txid", "vout", "value", "addr", "height", "day")

    def __init__(
        self, txid: bytes, vout: int, value: int, addr: Address, height: int = -1, day: int = -1
    ):
        self.txid = txid  # internal byte order (as in outpoints)
        self.vout = vout
        self.value = value
        self.addr = addr
        self.height = height
        self.day = day


class EncodedTx:
    __slots__ = ("raw", "txid", "wtxid", "weight", "segwit")

    def __init__(self, raw: bytes, txid: bytes, wtxid: bytes, weight: int, segwit: bool):
        self.raw = raw
        self.txid = txid
        self.wtxid = wtxid
        self.weight = weight
        self.segwit = segwit


def estimate_vsize(inputs: Sequence[Coin], outputs: Sequence[tuple[int, bytes]]) -> int:
    v = 10.5
    for c in inputs:
        v += INPUT_VBYTES[c.addr.kind]
    for _, script in outputs:
        v += 9 + len(script)
    return int(v + 0.999)


def encode_tx(
    inputs: Sequence[Coin],
    outputs: Sequence[tuple[int, bytes]],
    sequence: int = 0xFFFFFFFD,
    locktime: int = 0,
    version: int = 2,
) -> EncodedTx:
    """Serialize a transaction spending ``inputs`` to ``outputs`` (value, script).

    Segwit serialization when any input has a witness; legacy inputs of a segwit transaction get
    an empty witness. Signatures are derived from each outpoint, so the same call gives the same
    bytes.
    """
    seq = _pack_i(sequence)
    ins = [compact_size(len(inputs))]
    wits: list[tuple[bytes, ...] | None] = []
    segwit = False
    for c in inputs:
        outpoint = c.txid + _pack_i(c.vout)
        ss, wit = c.addr.unlock(outpoint)
        ins.append(outpoint + compact_size(len(ss)) + ss + seq)
        if wit:
            segwit = True
        wits.append(wit)
    outs = [compact_size(len(outputs))]
    for value, script in outputs:
        outs.append(_pack_q(value) + compact_size(len(script)) + script)
    ver = _pack_i(version)
    body = b"".join(ins) + b"".join(outs)
    lock = _pack_i(locktime)
    stripped = ver + body + lock
    txid = dsha256(stripped)
    if not segwit:
        return EncodedTx(stripped, txid, txid, 4 * len(stripped), False)
    wparts = []
    for wit in wits:
        if not wit:
            wparts.append(b"\x00")
        else:
            wparts.append(compact_size(len(wit)) + b"".join(compact_size(len(i)) + i for i in wit))
    raw = ver + b"\x00\x01" + body + b"".join(wparts) + lock
    return EncodedTx(raw, txid, dsha256(raw), 3 * len(stripped) + len(raw), True)


def difficulty_to_bits(difficulty: float) -> int:
    """Compact ``nBits`` whose target is difficulty-1's target / ``difficulty``."""
    if difficulty < 1:
        raise ValueError(f"difficulty must be >= 1, got {difficulty}")
    return target_to_bits(int(DIFF1_TARGET / difficulty))


def target_to_bits(target: int) -> int:
    """Bitcoin Core's GetCompact: 3-byte mantissa, sign bit never set."""
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        mantissa = target << (8 * (3 - size))
    else:
        mantissa = target >> (8 * (size - 3))
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def bits_to_target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def difficulty_of_bits(bits: int) -> float:
    return bits_difficulty(bits)


def coinbase_script_sig(height: int, tag: bytes, extranonce: bytes) -> bytes:
    """BIP34 height push, the pool's tag, an extranonce push; at most 100 bytes."""
    script = push_int(height) + push_data(tag) + push_data(extranonce)
    if len(script) > 100:
        raise ValueError(f"coinbase scriptSig of {len(script)} bytes (max 100): shorten the tag")
    return script


def encode_block(
    *,
    version: int,
    prev_hash: bytes,
    time: int,
    bits: int,
    nonce: int,
    height: int,
    tag: bytes,
    extranonce: bytes,
    coinbase_outputs: Sequence[tuple[int, bytes]],
    txs: Sequence[EncodedTx],
) -> tuple[bytes, bytes, bytes]:
    """Serialize a block; return (raw, block hash, coinbase txid), hashes in internal order.

    The coinbase gets the BIP141 witness commitment (and its reserved-value witness) when any
    transaction has witness data. ``prev_hash`` is in internal order too.
    """
    outs = list(coinbase_outputs)
    segwit = any(t.segwit for t in txs)
    if segwit:
        wroot = merkle_root([bytes(32)] + [t.wtxid for t in txs])
        commitment = dsha256(wroot + WITNESS_RESERVED_VALUE)
        outs.append((0, b"\x6a\x24" + WITNESS_COMMITMENT_HEADER + commitment))
    ss = coinbase_script_sig(height, tag, extranonce)
    txin = bytes(32) + b"\xff\xff\xff\xff" + compact_size(len(ss)) + ss + b"\xff\xff\xff\xff"
    body = (
        b"\x01"
        + txin
        + compact_size(len(outs))
        + b"".join(_pack_q(v) + compact_size(len(s)) + s for v, s in outs)
    )
    ver, lock = _pack_i(2), _pack_i(0)
    stripped = ver + body + lock
    cb_txid = dsha256(stripped)
    cb_raw = (
        ver + b"\x00\x01" + body + b"\x01\x20" + WITNESS_RESERVED_VALUE + lock
        if segwit
        else stripped
    )
    root = merkle_root([cb_txid] + [t.txid for t in txs])
    header = struct.pack("<i", version) + prev_hash + root + struct.pack("<III", time, bits, nonce)
    raw = b"".join([header, compact_size(len(txs) + 1), cb_raw, *(t.raw for t in txs)])
    return raw, dsha256(header), cb_txid


def coinbase_weight(n_outputs: int, tag_len: int) -> int:
    """A generous bound on a coinbase's weight (so block filling leaves room for it)."""
    return 4 * (60 + tag_len + 12 + n_outputs * 45) + 40


__all__ = [
    "COIN",
    "DUST",
    "KINDS",
    "MAX_BLOCK_WEIGHT",
    "SPENDABLE_KINDS",
    "Address",
    "Coin",
    "EncodedTx",
    "bits_to_target",
    "coinbase_script_sig",
    "difficulty_of_bits",
    "difficulty_to_bits",
    "dsha256",
    "encode_block",
    "encode_tx",
    "estimate_vsize",
    "make_address",
    "op_return_output",
    "target_to_bits",
]

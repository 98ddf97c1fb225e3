"""Sign a P2PKH spend for real (legacy SIGHASH_ALL, ECDSA on secp256k1) so the test node checks
an actual signature. Test-only: the nonce is derived from the key and the digest (deterministic,
not RFC 6979), and there is no side-channel care.
"""

from __future__ import annotations

import struct

from hodlflow.sim.builder import compact_size, dsha256, push_data
from hodlflow.sim.keys import Key, N, point_from_secret, sha256

SIGHASH_ALL = 1


def _der_int(x: int) -> bytes:
    b = x.to_bytes((x.bit_length() + 7) // 8 or 1, "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + bytes([len(b)]) + b


def ecdsa_sign(key: Key, digest: bytes) -> bytes:
    """DER signature with low S (BIP62/BIP146), as nodes require for standard spends."""
    z = int.from_bytes(digest, "big")
    k = int.from_bytes(sha256(key.secret.to_bytes(32, "big") + digest), "big") % (N - 1) + 1
    r = point_from_secret(k)[0] % N
    s = pow(k, -1, N) * (z + r * key.secret) % N
    if s > N // 2:
        s = N - s
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body


def signed_p2pkh_spend(
    key: Key,
    prev_txid: str,
    prev_vout: int,
    prev_script: bytes,
    outputs: list[tuple[int, bytes]],
) -> tuple[bytes, str]:
    """A version-2 transaction with one input spending ``prev_txid:prev_vout`` (a P2PKH output of
    ``key``) to ``outputs``; returns (raw, txid)."""
    prev = bytes.fromhex(prev_txid)[::-1] + struct.pack("<I", prev_vout)
    seq = struct.pack("<I", 0xFFFFFFFF)
    outs = compact_size(len(outputs)) + b"".join(
        struct.pack("<q", v) + compact_size(len(s)) + s for v, s in outputs
    )
    version, locktime = struct.pack("<i", 2), struct.pack("<I", 0)

    def serialize(script_sig: bytes) -> bytes:
        return (version + b"\x01" + prev + compact_size(len(script_sig)) + script_sig + seq
                + outs + locktime)  # fmt: skip

    digest = dsha256(serialize(prev_script) + struct.pack("<I", SIGHASH_ALL))
    sig = ecdsa_sign(key, digest) + bytes([SIGHASH_ALL])
    raw = serialize(push_data(sig) + push_data(key.pubkey))
    return raw, dsha256(raw)[::-1].hex()

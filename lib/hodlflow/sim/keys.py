"""Deterministic secp256k1 keys for building test chains.

Nothing in a built chain is signed, but the public keys are real curve points, so any reader
that validates keys (an oracle parser, an address encoder) accepts them. Point multiplication
is plain Python: about a millisecond per key, cached per index.

>>> ring = KeyRing(7)
>>> len(ring[0].pubkey), len(ring[0].pubkey_uncompressed), len(ring[0].xonly)
(33, 65, 32)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# secp256k1 domain parameters (SEC 2).
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: the 20-byte hash in P2PKH, P2SH and P2WPKH scripts."""
    try:
        return hashlib.new("ripemd160", sha256(data)).digest()
    except ValueError:  # OpenSSL 3 builds that keep RIPEMD-160 in the "legacy" provider
        from hodlflow.chain.address import ripemd160

        return ripemd160(sha256(data))


# Jacobian coordinates (X, Y, Z) stand for the affine point (X/Z^2, Y/Z^3); Z == 0 is infinity.
_INFINITY = (0, 1, 0)


def _double(pt: tuple[int, int, int]) -> tuple[int, int, int]:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % P
    s = 4 * x * yy % P
    m = 3 * x * x % P  # curve a == 0
    nx = (m * m - 2 * s) % P
    ny = (m * (s - nx) - 8 * yy * yy) % P
    nz = 2 * y * z % P
    return nx, ny, nz


def _add(p1: tuple[int, int, int], p2: tuple[int, int, int]) -> tuple[int, int, int]:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else _INFINITY
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    nx = (r * r - hhh - 2 * v) % P
    ny = (r * (v - nx) - s1 * hhh) % P
    nz = h * z1 * z2 % P
    return nx, ny, nz


def point_from_secret(secret: int) -> tuple[int, int]:
    """Affine ``secret * G``."""
    if not 1 <= secret < N:
        raise ValueError(f"secret must be in [1, n-1], got {secret}")
    acc = _INFINITY
    addend = (GX, GY, 1)
    k = secret
    while k:
        if k & 1:
            acc = _add(acc, addend)
        addend = _double(addend)
        k >>= 1
    x, y, z = acc
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return x * zinv2 % P, y * zinv2 * zinv % P


@dataclass(frozen=True)
class Key:
    """One key pair; ``pubkey`` is the 33-byte compressed SEC encoding."""

    secret: int
    pubkey: bytes
    pubkey_uncompressed: bytes
    xonly: bytes  # BIP340 x-only key: the x coordinate; any curve x is a valid output key

    @classmethod
    def from_secret(cls, secret: int) -> Key:
        x, y = point_from_secret(secret)
        xb = x.to_bytes(32, "big")
        return cls(
            secret=secret,
            pubkey=bytes([2 + (y & 1)]) + xb,
            pubkey_uncompressed=b"\x04" + xb + y.to_bytes(32, "big"),
            xonly=xb,
        )

    @property
    def h160(self) -> bytes:
        """hash160 of the compressed key (P2PKH / P2WPKH program)."""
        return hash160(self.pubkey)

    @property
    def h160_uncompressed(self) -> bytes:
        return hash160(self.pubkey_uncompressed)


class KeyRing:
    """Keys derived from a seed: ``ring[i]`` is the same key for the same seed, always.

    secret_i = SHA-256("hodlflow-keyring" || seed || i) mod (n - 1) + 1. An int seed and a
    bytes seed never collide (each is tagged with its type).
    """

    def __init__(self, seed: int | bytes) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | bytes):
            raise TypeError(f"seed must be int or bytes, got {type(seed).__name__}")
        if isinstance(seed, int):
            if seed < 0:
                raise ValueError(f"int seed must be >= 0, got {seed}")
            self._seed = b"i" + seed.to_bytes(max(1, (seed.bit_length() + 7) // 8), "big")
        else:
            self._seed = b"b" + seed
        self._cache: dict[int, Key] = {}

    def secret(self, index: int) -> int:
        if index < 0:
            raise ValueError(f"key index must be >= 0, got {index}")
        digest = sha256(b"hodlflow-keyring" + self._seed + index.to_bytes(8, "big"))
        return int.from_bytes(digest, "big") % (N - 1) + 1

    def key(self, index: int) -> Key:
        found = self._cache.get(index)
        if found is None:
            found = self._cache[index] = Key.from_secret(self.secret(index))
        return found

    __getitem__ = key

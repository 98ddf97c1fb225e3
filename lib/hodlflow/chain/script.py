"""Output script classification: script type and the address it pays, if it has one.

``classify_script`` follows the templates of Bitcoin Core's ``Solver`` with these rules:

* ``p2pk``: ``<33-byte 02/03 key> OP_CHECKSIG`` or ``<65-byte 04 key> OP_CHECKSIG`` (the
  key's form is checked, not that it lies on the curve, as Bitcoin Core's ``Solver``). Its
  address is the Base58 P2PKH address of the key, as explorers show it. Hybrid (06/07) keys
  are ``nonstandard``.
* ``p2pkh``, ``p2sh``: the usual 25- and 23-byte templates, Base58Check addresses.
* ``p2wpkh``, ``p2wsh``: witness version 0 with a 20- or 32-byte program, Bech32 addresses.
  A version 0 program of any other length cannot be spent and is ``nonstandard``.
* ``p2tr``: witness version 1 with a 32-byte program, Bech32m address.
* ``anchor``: pay-to-anchor ``OP_1 <0x4e73>``; its Bech32m address (``bc1pfeessrawgf``).
* ``witness_unknown``: any other witness program (versions 1..16, 2..40 bytes); Bech32m
  address, since such outputs are valid and spendable by future soft forks.
* ``multisig``: bare ``OP_m <keys> OP_n OP_CHECKMULTISIG`` with 1 <= m <= n <= 16 and keys of
  a valid size for their first byte; no address.
* ``op_return``: any script starting with ``OP_RETURN``; no address.
* ``nonstandard``: everything else, including the empty script; no address.

No pseudo-addresses: when a script has no address form, the address is ``None``.

>>> from hodlflow.chain.network import MAIN
>>> classify_script(bytes.fromhex("a91474f209f6ea907e2ea48f74fae05782ae8a66525787"), MAIN)
('p2sh', '3CMNFxN1oHBc4R1EpboAL5yzHGgE611Xou')
"""

from __future__ import annotations

from hodlflow.chain.address import base58check_encode, bech32_encode, hash160
from hodlflow.chain.network import Network

__all__ = ["SCRIPT_TYPES", "classify_script", "is_valid_pubkey"]

SCRIPT_TYPES: tuple[str, ...] = (
    "p2pk",
    "p2pkh",
    "p2sh",
    "p2wpkh",
    "p2wsh",
    "p2tr",
    "witness_unknown",
    "anchor",
    "multisig",
    "op_return",
    "nonstandard",
)

_OP_0 = 0x00
_OP_1 = 0x51
_OP_16 = 0x60
_OP_RETURN = 0x6A
_OP_CHECKSIG = 0xAC
_OP_CHECKMULTISIG = 0xAE
_P2PKH_HEAD = b"\x76\xa9\x14"  # OP_DUP OP_HASH160 <20 bytes>
_P2PKH_TAIL = b"\x88\xac"  # OP_EQUALVERIFY OP_CHECKSIG
_ANCHOR = b"\x51\x02\x4e\x73"


def is_valid_pubkey(key: bytes) -> bool:
    """True for a 33-byte key starting 02/03 or a 65-byte key starting 04.

    The form only, as Bitcoin Core's ``Solver``: checking that the point lies on secp256k1
    would cost a modular square root per compressed key (~150 us in Python) for outputs that
    are almost always valid.
    """
    n = len(key)
    return (n == 33 and key[0] in (2, 3)) or (n == 65 and key[0] == 4)


def _is_multisig(script: bytes) -> bool:
    """``OP_m <key>... OP_n OP_CHECKMULTISIG`` with n keys of a size valid for their prefix."""
    n = len(script)
    if n < 37 or script[-1] != _OP_CHECKMULTISIG:
        return False
    m_op, n_op = script[0], script[-2]
    if not (_OP_1 <= m_op <= _OP_16 and _OP_1 <= n_op <= _OP_16 and m_op <= n_op):
        return False
    pos, keys, end = 1, 0, n - 2
    while pos < end:
        size = script[pos]
        if size == 33:
            ok = script[pos + 1] in (2, 3) if pos + 1 < end else False
        elif size == 65:
            ok = script[pos + 1] in (4, 6, 7) if pos + 1 < end else False
        else:
            return False
        if not ok:
            return False
        pos += 1 + size
        keys += 1
    return pos == end and keys == n_op - _OP_1 + 1


def classify_script(script: bytes, network: Network) -> tuple[str, str | None]:
    """Script type (one of ``SCRIPT_TYPES``) and the address it pays on ``network``, or None.

    The common templates are recognised by length first, so most outputs cost one length
    test, two byte comparisons and one address encoding.
    """
    n = len(script)
    # Fast paths: the standard templates by their fixed length.
    if n == 25:
        if script[:3] == _P2PKH_HEAD and script[23:] == _P2PKH_TAIL:
            return "p2pkh", base58check_encode(network.p2pkh_prefix, script[3:23])
    elif n == 22:
        if script[0] == _OP_0 and script[1] == 20:
            return "p2wpkh", bech32_encode(network.bech32_hrp, 0, script[2:])
    elif n == 23:
        if script[0] == 0xA9 and script[1] == 20 and script[22] == 0x87:  # OP_HASH160 .. OP_EQUAL
            return "p2sh", base58check_encode(network.p2sh_prefix, script[2:22])
    elif n == 34:
        if script[1] == 32:
            if script[0] == _OP_0:
                return "p2wsh", bech32_encode(network.bech32_hrp, 0, script[2:])
            if script[0] == _OP_1:
                return "p2tr", bech32_encode(network.bech32_hrp, 1, script[2:])
    if n == 0:
        return "nonstandard", None
    first = script[0]
    if first == _OP_RETURN:
        return "op_return", None
    # Witness programs: a version opcode then one direct push of 2..40 bytes.
    if 4 <= n <= 42 and script[1] == n - 2 and (first == _OP_0 or _OP_1 <= first <= _OP_16):
        if first == _OP_0:  # v0 lengths other than 20 and 32 are unspendable
            return "nonstandard", None
        if script == _ANCHOR:
            return "anchor", bech32_encode(network.bech32_hrp, 1, script[2:])
        return "witness_unknown", bech32_encode(network.bech32_hrp, first - _OP_1 + 1, script[2:])
    if (n == 35 and first == 33) or (n == 67 and first == 65):
        if script[-1] == _OP_CHECKSIG and is_valid_pubkey(script[1:-1]):
            return "p2pk", base58check_encode(network.p2pkh_prefix, hash160(script[1:-1]))
        return "nonstandard", None
    if _is_multisig(script):
        return "multisig", None
    return "nonstandard", None

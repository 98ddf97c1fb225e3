"""Build small Bitcoin chains byte by byte: the seed of the ground-truth simulator.

The builder serializes transactions and blocks exactly as the network does (legacy and BIP144
segwit transactions, BIP34 heights, BIP141 witness commitments, merkle roots, proof of work
for easy ``bits``), so every parser can be tested on blocks whose contents are known in
advance. Nothing is signed: scriptSigs and witnesses are dummies shaped like real ones
(72-byte DER-looking signatures, real public keys, 2-of-3 multisig redeem scripts), because
no reader in hodlflow verifies scripts.

Rules it keeps so that tests can trust fees and heights:
- it remembers every output it created (outpoint -> value, script), so fees are exact;
- it keeps the UTXO set per branch: a block may only spend outputs unspent on its own
  branch (spending on a sibling branch, twice, or from a later tx in the same block raises),
  unless the transaction was built with ``allow_unknown=True``;
- the same sequence of calls gives byte-identical blocks (no clocks, no randomness).

>>> from hodlflow.chain.network import REGTEST
>>> b = ChainBuilder(REGTEST)
>>> first = b.add_block()
>>> pay = b.tx([first.coinbase.outpoint(0)], [(10_000, op_return(b"hi")), (49 * 10**8, p2wsh(bytes(32)))])
>>> second = b.add_block([pay])
>>> second.height, second.txids[1] == pay.txid, second.fees
(1, True, 99990000)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hodlflow.chain.network import Network
from hodlflow.sim.keys import KeyRing, hash160, sha256

MAX_MONEY = 21_000_000 * 100_000_000

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_PUSHDATA4 = 0x4E
OP_1NEGATE = 0x4F
OP_1 = 0x51
OP_16 = 0x60
OP_RETURN = 0x6A
OP_DUP = 0x76
OP_EQUAL = 0x87
OP_EQUALVERIFY = 0x88
OP_HASH160 = 0xA9
OP_CHECKSIG = 0xAC
OP_CHECKMULTISIG = 0xAE

WITNESS_COMMITMENT_HEADER = bytes.fromhex("aa21a9ed")
WITNESS_RESERVED_VALUE = bytes(32)


# ---------------------------------------------------------------------------------------------
# Serialization helpers (deliberately few: the parser in hodlflow.chain is the reader).


def dsha256(data: bytes) -> bytes:
    return sha256(sha256(data))


def compact_size(n: int) -> bytes:
    """Bitcoin's variable-length integer ("CompactSize")."""
    if n < 0:
        raise ValueError(f"compact size must be >= 0, got {n}")
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFF_FFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def push_data(data: bytes) -> bytes:
    """The minimal script push of ``data`` (OP_0 for empty data)."""
    n = len(data)
    if n == 0:
        return bytes([OP_0])
    if n < OP_PUSHDATA1:
        return bytes([n]) + data
    if n <= 0xFF:
        return bytes([OP_PUSHDATA1, n]) + data
    if n <= 0xFFFF:
        return bytes([OP_PUSHDATA2]) + struct.pack("<H", n) + data
    return bytes([OP_PUSHDATA4]) + struct.pack("<I", n) + data


def script_num(n: int) -> bytes:
    """Minimal little-endian sign-magnitude encoding of a script number (CScriptNum)."""
    if n == 0:
        return b""
    neg, mag = n < 0, abs(n)
    out = bytearray()
    while mag:
        out.append(mag & 0xFF)
        mag >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0x00)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def push_int(n: int) -> bytes:
    """How Bitcoin Core's ``CScript() << n`` encodes an integer: OP_0, OP_1NEGATE,
    OP_1..OP_16, or a push of the script number. BIP34 heights use exactly this."""
    if n == 0:
        return bytes([OP_0])
    if n == -1:
        return bytes([OP_1NEGATE])
    if 1 <= n <= 16:
        return bytes([OP_1 - 1 + n])
    return push_data(script_num(n))


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """Merkle root over 32-byte hashes in internal (little-endian) byte order; an odd level
    pairs its last hash with itself."""
    if not hashes:
        raise ValueError("merkle root of no hashes")
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def bits_to_target(bits: int) -> int:
    """Expand compact ``nBits`` to the 256-bit target (sign bit ignored)."""
    exponent, mantissa = bits >> 24, bits & 0x007F_FFFF
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def _hex_id(digest: bytes) -> str:
    """Display hex (reversed byte order) of a txid/wtxid/block hash."""
    return digest[::-1].hex()


# ---------------------------------------------------------------------------------------------
# Output scripts.


def _require_len(name: str, data: bytes, *lengths: int) -> None:
    if not isinstance(data, bytes | bytearray) or len(data) not in lengths:
        shown = len(data) if isinstance(data, bytes | bytearray) else type(data).__name__
        raise ValueError(f"{name} must be {' or '.join(map(str, lengths))} bytes, got {shown}")


def p2pk(pubkey: bytes) -> bytes:
    """<pubkey> OP_CHECKSIG, with a 33-byte compressed or 65-byte uncompressed key."""
    _require_len("p2pk pubkey", pubkey, 33, 65)
    return push_data(pubkey) + bytes([OP_CHECKSIG])


def p2pkh(h160: bytes) -> bytes:
    _require_len("p2pkh hash", h160, 20)
    return bytes([OP_DUP, OP_HASH160, 20]) + h160 + bytes([OP_EQUALVERIFY, OP_CHECKSIG])


def p2sh(h160: bytes) -> bytes:
    _require_len("p2sh hash", h160, 20)
    return bytes([OP_HASH160, 20]) + h160 + bytes([OP_EQUAL])


def witness_program(version: int, program: bytes) -> bytes:
    """OP_version <program>: any witness output (BIP141), 2..40-byte program."""
    if not 0 <= version <= 16:
        raise ValueError(f"witness version must be 0..16, got {version}")
    if not 2 <= len(program) <= 40:
        raise ValueError(f"witness program must be 2..40 bytes, got {len(program)}")
    return bytes([OP_0 if version == 0 else OP_1 - 1 + version, len(program)]) + program


def p2wpkh(h160: bytes) -> bytes:
    _require_len("p2wpkh hash", h160, 20)
    return witness_program(0, h160)


def p2wsh(sha256_32: bytes) -> bytes:
    _require_len("p2wsh hash", sha256_32, 32)
    return witness_program(0, sha256_32)


def p2tr(xonly32: bytes) -> bytes:
    _require_len("p2tr key", xonly32, 32)
    return witness_program(1, xonly32)


def anchor() -> bytes:
    """Pay-to-anchor (OP_1 <0x4e73>): the keyless witness v1 output of package relay."""
    return witness_program(1, bytes.fromhex("4e73"))


def multisig(m: int, pubkeys: Sequence[bytes]) -> bytes:
    """Bare m-of-n OP_CHECKMULTISIG, 1 <= m <= n <= 16."""
    n = len(pubkeys)
    if not 1 <= m <= n <= 16:
        raise ValueError(f"multisig needs 1 <= m <= n <= 16, got m={m} n={n}")
    for pk in pubkeys:
        _require_len("multisig pubkey", pk, 33, 65)
    body = b"".join(push_data(pk) for pk in pubkeys)
    return push_int(m) + body + push_int(n) + bytes([OP_CHECKMULTISIG])


def op_return(data: bytes = b"") -> bytes:
    """OP_RETURN followed by one push of ``data`` (nothing after OP_RETURN when empty)."""
    return bytes([OP_RETURN]) + (push_data(data) if data else b"")


_NONSTANDARD = {
    "op_true": bytes([OP_1]),  # anyone can spend
    "checksig": bytes([OP_CHECKSIG]),  # OP_CHECKSIG alone: a key must come from the scriptSig
    "empty": b"",  # empty scriptPubKey
    "truncated_push": bytes([OP_PUSHDATA1, 5, 1, 2]),  # push runs past the end of the script
}


def nonstandard(kind: str = "op_true") -> bytes:
    """A script no standard template matches: ``op_true``, ``checksig``, ``empty`` or
    ``truncated_push``."""
    try:
        return _NONSTANDARD[kind]
    except KeyError:
        raise ValueError(
            f"unknown nonstandard kind {kind!r}; known: {sorted(_NONSTANDARD)}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Transactions and blocks.


@dataclass(frozen=True)
class Spend:
    """One input: the outpoint plus optional overrides of the dummy unlocking data.

    ``value`` is only needed for outpoints the builder did not create (``allow_unknown``); for a
    known outpoint it must match if given. ``pubkey`` replaces the builder's key in
    P2PKH/P2WPKH-shaped unlocks; ``redeem_script``/``witness_script`` choose what a P2SH or
    P2WSH input reveals (a witness-program redeem script makes a P2SH-wrapped segwit spend).
    """

    txid: str
    vout: int
    value: int | None = None
    script_sig: bytes | None = None
    witness: tuple[bytes, ...] | None = None
    sequence: int | None = None
    pubkey: bytes | None = None
    redeem_script: bytes | None = None
    witness_script: bytes | None = None


@dataclass(frozen=True)
class BuiltTx:
    raw: bytes
    txid: str
    wtxid: str
    outputs: tuple[tuple[int, bytes], ...]
    inputs: tuple[tuple[str, int], ...]  # empty for a coinbase
    fee: int  # 0 for a coinbase, and for spends of unknown outpoints given without a value
    stripped_size: int  # serialized size without witness data
    has_witness: bool
    checked: bool  # False when built with allow_unknown: its spends are not checked

    def outpoint(self, vout: int) -> tuple[str, int]:
        if not 0 <= vout < len(self.outputs):
            raise IndexError(f"tx {self.txid} has {len(self.outputs)} outputs, no vout {vout}")
        return (self.txid, vout)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def weight(self) -> int:
        return 3 * self.stripped_size + len(self.raw)

    @property
    def vsize(self) -> int:
        return (self.weight + 3) // 4


@dataclass(frozen=True)
class BuiltBlock:
    hash: str
    height: int
    raw: bytes
    version: int
    prev_hash: str
    merkle_root: str  # display hex, like hash
    time: int
    bits: int
    nonce: int
    txids: tuple[str, ...]  # coinbase first
    coinbase_txid: str
    txs: tuple[BuiltTx, ...]  # coinbase first
    fees: int

    @property
    def coinbase(self) -> BuiltTx:
        return self.txs[0]

    @property
    def header(self) -> bytes:
        return self.raw[:80]


def _serialize_tx(
    version: int,
    txins: Sequence[tuple[bytes, int, bytes, int]],
    outputs: Sequence[tuple[int, bytes]],
    locktime: int,
    witnesses: Sequence[Sequence[bytes]] | None,
) -> tuple[bytes, bytes]:
    """(full serialization, serialization without witness); ``witnesses`` None = legacy."""
    body_in = compact_size(len(txins)) + b"".join(
        prev + struct.pack("<I", vout) + compact_size(len(sig)) + sig + struct.pack("<I", seq)
        for prev, vout, sig, seq in txins
    )
    body_out = compact_size(len(outputs)) + b"".join(
        struct.pack("<q", value) + compact_size(len(script)) + script for value, script in outputs
    )
    ver = struct.pack("<i", version)
    lock = struct.pack("<I", locktime)
    stripped = ver + body_in + body_out + lock
    if witnesses is None:
        return stripped, stripped
    wit = b"".join(
        compact_size(len(stack)) + b"".join(compact_size(len(item)) + item for item in stack)
        for stack in witnesses
    )
    return ver + b"\x00\x01" + body_in + body_out + wit + lock, stripped


def _dummy_sig(seed: bytes, schnorr: bool = False) -> bytes:
    """A signature-shaped blob: 72-byte DER (high-bit r padded, low s) + SIGHASH_ALL, or a
    64-byte BIP340 signature."""
    digest = sha256(b"hodlflow-sig" + seed) + sha256(b"hodlflow-sig2" + seed)
    if schnorr:
        return digest
    r = b"\x00" + bytes([digest[0] | 0x80]) + digest[1:32]
    s = bytes([digest[32] & 0x7F | 0x01]) + digest[33:64]
    return b"\x30\x45\x02\x21" + r + b"\x02\x20" + s + b"\x01"


def _witness_version(script: bytes) -> int | None:
    if 4 <= len(script) <= 42 and script[1] == len(script) - 2:
        if script[0] == OP_0:
            return 0
        if OP_1 <= script[0] <= OP_16:
            return script[0] - OP_1 + 1
    return None


class ChainBuilder:
    """Build blocks on any branch of a tree rooted at ``prev_hash``.

    ``add_block()`` without ``parent`` extends the block added last. Time defaults to the
    parent's time + ``interval`` (``start_time`` for a child of the root). With ``mine=True``
    the nonce is ground until the header hash meets ``bits`` (regtest bits 0x207fffff: about
    two tries); bits needing more than ~16M tries are refused, use ``mine=False`` for them.
    """

    def __init__(
        self,
        network: Network,
        start_height: int = 0,
        start_time: int = 1_600_000_000,
        bits: int = 0x207FFFFF,
        interval: int = 600,
        mine: bool = True,
        version: int = 0x20000000,
        prev_hash: str = "00" * 32,
        payout_script: bytes | None = None,
    ) -> None:
        if start_height < 0:
            raise ValueError(f"start_height must be >= 0, got {start_height}")
        self.network = network
        self.start_height = start_height
        self.start_time = start_time
        self.bits = bits
        self.interval = interval
        self.mine = mine
        self.version = version
        self.root = bytes.fromhex(prev_hash).hex()  # validated, lower-case
        if len(self.root) != 64:
            raise ValueError(f"prev_hash must be 32 bytes of hex, got {prev_hash!r}")
        self._keys = KeyRing(b"hodlflow-builder")
        self.payout_script = (
            payout_script if payout_script is not None else p2wpkh(self._keys[0].h160)
        )
        self._outputs: dict[tuple[str, int], tuple[int, bytes]] = {}
        self._blocks: dict[str, BuiltBlock] = {}
        self._order: list[str] = []
        self._children: dict[str, int] = {}
        # UTXO set of one branch tip, moved between branches like a node's reorg.
        self._utxo: set[tuple[str, int]] = set()
        self._utxo_tip = self.root
        self._undo: dict[str, tuple[frozenset, frozenset]] = {}  # hash -> (added, removed)
        self.tip = self.root

    # -- lookups ------------------------------------------------------------------------------

    @property
    def blocks(self) -> tuple[BuiltBlock, ...]:
        """Every block built, in the order built (all branches)."""
        return tuple(self._blocks[h] for h in self._order)

    def block(self, block_hash: str) -> BuiltBlock:
        try:
            return self._blocks[block_hash]
        except KeyError:
            raise KeyError(f"no block {block_hash} was built") from None

    def branch(self, tip: str | None = None) -> list[BuiltBlock]:
        """Blocks from the first one after the root up to ``tip`` (default: last added)."""
        out = []
        h = self.tip if tip is None else tip
        while h != self.root:
            blk = self.block(h)
            out.append(blk)
            h = blk.prev_hash
        return out[::-1]

    def output(self, txid: str, vout: int) -> tuple[int, bytes]:
        """(value, script) of an output the builder created."""
        try:
            return self._outputs[(txid, vout)]
        except KeyError:
            raise KeyError(f"unknown outpoint {txid}:{vout}") from None

    # -- transactions -------------------------------------------------------------------------

    def tx(
        self,
        inputs: Sequence[tuple[str, int] | Spend],
        outputs: Sequence[tuple[int, bytes]],
        segwit: bool | None = None,
        version: int = 2,
        locktime: int = 0,
        sequence: int = 0xFFFFFFFE,
        allow_unknown: bool = False,
    ) -> BuiltTx:
        """Build a transaction spending outpoints the builder created.

        ``segwit=None`` serializes with witness data when any input has a witness (spends of
        P2WPKH, P2WSH, P2TR, P2SH-wrapped segwit); ``True`` requires one; ``False`` drops
        witnesses (a legacy serialization). ``allow_unknown=True`` accepts outpoints the
        builder never made (value from ``Spend.value``, else the fee counts as 0) and exempts
        the tx from branch UTXO checks, so tests can build invalid chains.
        """
        if not inputs:
            raise ValueError(
                "a transaction needs at least one input (coinbases come from add_block)"
            )
        if not outputs:
            raise ValueError("a transaction needs at least one output")
        outs = _check_outputs(outputs)
        spends = [s if isinstance(s, Spend) else Spend(*s) for s in inputs]
        in_value, value_known = 0, True
        txins, witnesses = [], []
        for n, spend in enumerate(spends):
            prev_raw = bytes.fromhex(spend.txid)[::-1]
            if len(prev_raw) != 32:
                raise ValueError(f"input {n}: txid must be 32 bytes of hex, got {spend.txid!r}")
            known = self._outputs.get((spend.txid, spend.vout))
            if known is None:
                if not allow_unknown:
                    raise ValueError(
                        f"input {n}: unknown outpoint {spend.txid}:{spend.vout} (not built here); "
                        "pass allow_unknown=True to spend it anyway"
                    )
                script = None
                if spend.value is None:
                    value_known = False
                else:
                    in_value += spend.value
            else:
                value, script = known
                if spend.value is not None and spend.value != value:
                    raise ValueError(
                        f"input {n}: Spend.value {spend.value} != {value} of {spend.txid}:{spend.vout}"
                    )
                in_value += value
            seed = prev_raw + struct.pack("<I", spend.vout)
            script_sig, witness = self._unlock(script, spend, seed)
            seq = sequence if spend.sequence is None else spend.sequence
            txins.append((prev_raw, spend.vout, script_sig, seq))
            witnesses.append(witness)

        has_witness = any(witnesses)
        if segwit is True and not has_witness:
            raise ValueError("segwit=True but no input has witness data (give Spend.witness)")
        use_witness = has_witness if segwit is None else segwit
        raw, stripped = _serialize_tx(
            version, txins, outs, locktime, witnesses if use_witness else None
        )
        fee = in_value - sum(v for v, _ in outs) if value_known else 0
        if fee < 0 and not allow_unknown:
            raise ValueError(f"outputs exceed inputs by {-fee} sat")
        built = BuiltTx(
            raw=raw,
            txid=_hex_id(dsha256(stripped)),
            wtxid=_hex_id(dsha256(raw)),
            outputs=outs,
            inputs=tuple((s.txid, s.vout) for s in spends),
            fee=fee,
            stripped_size=len(stripped),
            has_witness=use_witness,
            checked=not allow_unknown,
        )
        self._remember(built)
        return built

    def _unlock(
        self, script: bytes | None, spend: Spend, seed: bytes
    ) -> tuple[bytes, tuple[bytes, ...]]:
        """Dummy (scriptSig, witness) shaped like a real spend of ``script``."""
        script_sig, witness = self._default_unlock(script, spend, seed)
        if spend.script_sig is not None:
            script_sig = spend.script_sig
        if spend.witness is not None:
            witness = tuple(spend.witness)
        return script_sig, witness

    def _default_multisig(self) -> bytes:
        return multisig(2, [self._keys[i].pubkey for i in range(3)])

    def _default_unlock(
        self, script: bytes | None, spend: Spend, seed: bytes
    ) -> tuple[bytes, tuple[bytes, ...]]:
        pubkey = spend.pubkey if spend.pubkey is not None else self._keys[0].pubkey
        sig = _dummy_sig(seed)
        sig2 = _dummy_sig(seed + b"2")

        def multisig_sigs(redeem: bytes) -> list[bytes]:
            m = redeem[0] - OP_1 + 1 if OP_1 <= redeem[0] <= OP_16 else 1
            return [_dummy_sig(seed + bytes([i])) for i in range(m)]

        def segwit_unlock(program_script: bytes) -> tuple[bytes, ...]:
            ver = _witness_version(program_script)
            prog_len = len(program_script) - 2
            if ver == 0 and prog_len == 20:
                return (sig, pubkey)
            if ver == 0 and prog_len == 32:
                ws = spend.witness_script or self._default_multisig()
                if ws[-1:] == bytes([OP_CHECKMULTISIG]):
                    return (b"", *multisig_sigs(ws), ws)
                return (sig, ws)
            if ver == 1 and prog_len == 32:
                return (_dummy_sig(seed, schnorr=True),)
            return ()  # anchors and future versions: anyone can spend, empty witness

        if script is None:  # unknown outpoint: spend it like a P2PKH
            return push_data(sig) + push_data(pubkey), ()
        if len(script) == 25 and script[:3] == bytes([OP_DUP, OP_HASH160, 20]):
            return push_data(sig) + push_data(pubkey), ()
        if len(script) == 23 and script[:2] == bytes([OP_HASH160, 20]) and script[-1] == OP_EQUAL:
            redeem = spend.redeem_script or self._default_multisig()
            if _witness_version(redeem) is not None:
                return push_data(redeem), segwit_unlock(redeem)
            if redeem[-1:] == bytes([OP_CHECKMULTISIG]):
                sigs = b"".join(push_data(s) for s in multisig_sigs(redeem))
                return bytes([OP_0]) + sigs + push_data(redeem), ()
            return push_data(sig) + push_data(redeem), ()
        if _witness_version(script) is not None:
            return b"", segwit_unlock(script)
        if len(script) in (35, 67) and script[0] == len(script) - 2 and script[-1] == OP_CHECKSIG:
            return push_data(sig), ()  # P2PK
        if script[-1:] == bytes([OP_CHECKMULTISIG]) and script and OP_1 <= script[0] <= OP_16:
            return bytes([OP_0]) + b"".join(push_data(s) for s in multisig_sigs(script)), ()
        if script == bytes([OP_CHECKSIG]):
            return push_data(sig2) + push_data(pubkey), ()
        return b"", ()

    def _remember(self, built: BuiltTx) -> None:
        for vout, out in enumerate(built.outputs):
            self._outputs[(built.txid, vout)] = out

    # -- blocks -------------------------------------------------------------------------------

    def add_block(
        self,
        txs: Iterable[BuiltTx] = (),
        coinbase_outputs: Sequence[tuple[int, bytes]] | None = None,
        coinbase_tag: bytes = b"/hodlflow/",
        parent: str | None = None,
        time: int | None = None,
        bits: int | None = None,
        version: int | None = None,
        bip34: bool = True,
    ) -> BuiltBlock:
        """Add a block on ``parent`` (default: the block added last) holding ``txs``.

        The coinbase's scriptSig is the BIP34 height push (``bip34=False`` drops it, e.g. to
        reproduce pre-BIP34 duplicate coinbases), then a push of ``coinbase_tag``, then an
        extra-nonce push when the parent already has a child (so siblings differ). It pays
        subsidy + fees to ``payout_script`` unless ``coinbase_outputs`` is given, and carries
        the BIP141 witness commitment when any tx has witness data.
        """
        txs = tuple(txs)
        parent_hash = self.tip if parent is None else parent
        if parent_hash == self.root:
            height, parent_time = self.start_height, None
        else:
            parent_block = self.block(parent_hash)
            height, parent_time = parent_block.height + 1, parent_block.time
        if time is None:
            time = self.start_time if parent_time is None else parent_time + self.interval
        bits = self.bits if bits is None else bits
        version = self.version if version is None else version

        self._move_utxo_to(parent_hash)
        added, removed = self._spend_block_txs(txs, parent_hash)
        fees = sum(t.fee for t in txs)

        sibling = self._children.get(parent_hash, 0)
        coinbase = self._coinbase(height, txs, fees, coinbase_outputs, coinbase_tag, sibling, bip34)
        for vout, (_, script) in enumerate(coinbase.outputs):
            if script[:1] != bytes([OP_RETURN]):
                added.add((coinbase.txid, vout))
        all_txs = (coinbase, *txs)

        root = merkle_root([bytes.fromhex(t.txid)[::-1] for t in all_txs])
        prefix = (
            struct.pack("<i", version)
            + bytes.fromhex(parent_hash)[::-1]
            + root
            + struct.pack("<II", time, bits)
        )
        nonce, block_hash = self._grind(prefix, bits)
        body = compact_size(len(all_txs)) + b"".join(t.raw for t in all_txs)
        raw = prefix + struct.pack("<I", nonce) + body

        built = BuiltBlock(
            hash=block_hash,
            height=height,
            raw=raw,
            version=version,
            prev_hash=parent_hash,
            merkle_root=_hex_id(root),
            time=time,
            bits=bits,
            nonce=nonce,
            txids=tuple(t.txid for t in all_txs),
            coinbase_txid=coinbase.txid,
            txs=all_txs,
            fees=fees,
        )
        if block_hash in self._blocks:
            raise ValueError(f"block {block_hash} was already built (same parent and contents)")
        self._blocks[block_hash] = built
        self._order.append(block_hash)
        self._children[parent_hash] = sibling + 1
        self._undo[block_hash] = (frozenset(added), frozenset(removed))
        self._utxo -= removed
        self._utxo |= added
        self._utxo_tip = block_hash
        self.tip = block_hash
        return built

    def _spend_block_txs(
        self, txs: Sequence[BuiltTx], parent_hash: str
    ) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        """Check every spend against the parent's UTXO set plus earlier txs of the block;
        return (outpoints added, outpoints removed) without touching the set."""
        added: set[tuple[str, int]] = set()
        removed: set[tuple[str, int]] = set()
        for t in txs:
            for op in t.inputs:
                if op in added:
                    added.discard(op)
                elif op in self._utxo and op not in removed:
                    removed.add(op)
                elif t.checked:
                    raise ValueError(
                        f"tx {t.txid} spends {op[0]}:{op[1]}, which is not unspent on the branch "
                        f"ending at {parent_hash}: spent already, created by a later tx of this "
                        "block, or only on another branch"
                    )
            for vout, (_, script) in enumerate(t.outputs):
                if script[:1] != bytes([OP_RETURN]):
                    added.add((t.txid, vout))
        return added, removed

    def _coinbase(
        self,
        height: int,
        txs: Sequence[BuiltTx],
        fees: int,
        coinbase_outputs: Sequence[tuple[int, bytes]] | None,
        tag: bytes,
        sibling: int,
        bip34: bool,
    ) -> BuiltTx:
        script_sig = (push_int(height) if bip34 else b"") + push_data(tag)
        if sibling:
            script_sig += push_data(script_num(sibling))
        if len(script_sig) < 2:
            script_sig += bytes([OP_0])
        if len(script_sig) > 100:
            raise ValueError(
                f"coinbase scriptSig is {len(script_sig)} bytes, > 100: shorten the tag"
            )
        if coinbase_outputs is None:
            outs = [(self.network.subsidy(height) + fees, self.payout_script)]
        else:
            outs = list(_check_outputs(coinbase_outputs))
        witnesses = None
        if any(t.has_witness for t in txs):
            # BIP141: the coinbase's wtxid counts as zero; commit to the witness merkle root.
            wroot = merkle_root([bytes(32)] + [bytes.fromhex(t.wtxid)[::-1] for t in txs])
            commitment = dsha256(wroot + WITNESS_RESERVED_VALUE)
            outs.append((0, bytes([OP_RETURN, 36]) + WITNESS_COMMITMENT_HEADER + commitment))
            witnesses = [(WITNESS_RESERVED_VALUE,)]
        txin = (bytes(32), 0xFFFFFFFF, script_sig, 0xFFFFFFFF)
        raw, stripped = _serialize_tx(2, [txin], outs, 0, witnesses)
        built = BuiltTx(
            raw=raw,
            txid=_hex_id(dsha256(stripped)),
            wtxid=_hex_id(dsha256(raw)),
            outputs=tuple(outs),
            inputs=(),
            fee=0,
            stripped_size=len(stripped),
            has_witness=witnesses is not None,
            checked=True,
        )
        self._remember(built)
        return built

    def _grind(self, prefix: bytes, bits: int) -> tuple[int, str]:
        if not self.mine:
            return 0, _hex_id(dsha256(prefix + bytes(4)))
        target = bits_to_target(bits)
        if target < 2**256 >> 24:
            raise ValueError(
                f"bits {bits:#010x} would take over 16M hashes to mine in Python; use mine=False"
            )
        for nonce in range(2**32):
            digest = dsha256(prefix + struct.pack("<I", nonce))
            if int.from_bytes(digest, "little") <= target:
                return nonce, _hex_id(digest)
        raise ValueError(f"no nonce meets bits {bits:#010x}; change the time or the tag")

    def _move_utxo_to(self, target: str) -> None:
        """Rewind the UTXO set to the fork point with ``target``'s branch, then replay it."""
        a, b = self._utxo_tip, target
        undo_path, redo_path = [], []
        while a != b:
            ha, hb = self._height(a), self._height(b)
            if ha >= hb:
                undo_path.append(a)
                a = self._blocks[a].prev_hash
            else:
                redo_path.append(b)
                b = self._blocks[b].prev_hash
        for h in undo_path:
            added, removed = self._undo[h]
            self._utxo -= added
            self._utxo |= removed
        for h in reversed(redo_path):
            added, removed = self._undo[h]
            self._utxo -= removed
            self._utxo |= added
        self._utxo_tip = target

    def _height(self, block_hash: str) -> int:
        if block_hash == self.root:
            return self.start_height - 1
        return self._blocks[block_hash].height


def _check_outputs(outputs: Sequence[tuple[int, bytes]]) -> tuple[tuple[int, bytes], ...]:
    checked = []
    for n, out in enumerate(outputs):
        value, script = out
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MONEY:
            raise ValueError(f"output {n}: value must be an int in [0, 21e14] sat, got {value!r}")
        if not isinstance(script, bytes | bytearray):
            raise ValueError(f"output {n}: script must be bytes, got {type(script).__name__}")
        checked.append((value, bytes(script)))
    return tuple(checked)


__all__ = [
    "BuiltBlock",
    "BuiltTx",
    "ChainBuilder",
    "Spend",
    "anchor",
    "bits_to_target",
    "compact_size",
    "dsha256",
    "hash160",
    "merkle_root",
    "multisig",
    "nonstandard",
    "op_return",
    "p2pk",
    "p2pkh",
    "p2sh",
    "p2tr",
    "p2wpkh",
    "p2wsh",
    "push_data",
    "push_int",
    "script_num",
    "witness_program",
]

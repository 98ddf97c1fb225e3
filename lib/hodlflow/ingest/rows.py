"""Parsed blocks → plain row tuples for Spark (runs inside executor tasks).

Times travel as epoch seconds and days as days since 1970-01-01 (cheap to pickle); the
DataFrame layer turns them into timestamps and dates. Inputs leave here unresolved: the value
and address of the output they spend are joined in the warehouse, so no ``txindex`` is needed.
"""

from __future__ import annotations

from collections.abc import Iterator

from hodlflow.chain.block import (
    Block,
    bip34_height,
    check_merkle,
    check_witness_commitment,
    coinbase_tag,
    difficulty,
)
from hodlflow.chain.errors import PowError
from hodlflow.chain.network import Network
from hodlflow.chain.script import classify_script

# Positions of the tagged union row: (kind, block, tx, output, input).
KIND_BLOCK, KIND_TX, KIND_OUTPUT, KIND_INPUT = "b", "t", "o", "i"

BLOCK_FIELDS = (
    "height", "hash", "prev_hash", "time_s", "median_time_s", "day_n", "version", "merkle_root",
    "bits", "difficulty", "nonce", "size", "stripped_size", "weight", "tx_count", "output_sats",
    "subsidy_sats", "coinbase_sats", "coinbase_tag", "bip34_height",
)  # fmt: skip
TX_FIELDS = (
    "txid", "wtxid", "height", "day_n", "block_hash", "tx_index", "is_coinbase", "size",
    "vsize", "weight", "version", "locktime", "has_witness", "input_count", "output_count",
    "output_sats",
)  # fmt: skip
OUTPUT_FIELDS = (
    "txid", "vout", "height", "day_n", "tx_index", "is_coinbase", "value_sats", "script_type",
    "address", "spendable",
)  # fmt: skip
INPUT_FIELDS = ("txid", "vin", "height", "day_n", "tx_index", "prev_txid", "prev_vout", "sequence")

_MAX_SCRIPT_SIZE = 10_000


def is_unspendable(script: bytes) -> bool:
    """Provably unspendable, never in the unspent set: OP_RETURN first, or over 10,000 bytes."""
    return (len(script) > 0 and script[0] == 0x6A) or len(script) > _MAX_SCRIPT_SIZE


def block_rows(
    block: Block,
    height: int,
    median_time: int,
    network: Network,
    is_genesis: bool = False,
    where: str | None = None,
) -> Iterator[tuple]:
    """Yield the tagged rows of one block: one block row, then per transaction its tx row,
    its output rows and its input rows (coinbase inputs are not rows).

    Checks the merkle root (raises MerkleError naming ``where`` and the block hash) and the
    witness commitment (ChainError), so damaged witness bytes are never read as a wtxid.
    ``is_genesis`` marks the genesis coinbase output unspendable (it never entered the UTXO set).
    """
    check_merkle(block, where=where)
    check_witness_commitment(block, where=where)
    h = block.header
    try:
        diff = difficulty(h.bits)
    except PowError as exc:  # bits no target has (read without the proof-of-work check)
        raise PowError(f"{where or 'block'}: block {h.hash}: {exc}") from None
    day = h.time // 86400
    total_out = 0
    coinbase_sats = 0
    for tx_index, tx in enumerate(block.txs):
        tx_out = 0
        txid = tx.txid
        cb = tx.is_coinbase
        for vout, out in enumerate(tx.outputs):
            script = out.script_pubkey
            stype, address = classify_script(script, network)
            tx_out += out.value
            spendable = not (is_unspendable(script) or (is_genesis and cb))
            yield (KIND_OUTPUT, None, None,
                   (txid, vout, height, day, tx_index, cb, out.value, stype, address, spendable),
                   None)  # fmt: skip
        if not cb:
            for vin, txin in enumerate(tx.inputs):
                yield (KIND_INPUT, None, None, None,
                       (txid, vin, height, day, tx_index, txin.prev_txid, txin.prev_vout,
                        txin.sequence))  # fmt: skip
        else:
            coinbase_sats = tx_out
        total_out += tx_out
        yield (KIND_TX, None,
               (txid, tx.wtxid, height, day, h.hash, tx_index, cb, tx.size, tx.vsize, tx.weight,
                tx.version, tx.locktime, tx.size != tx.stripped_size, len(tx.inputs),
                len(tx.outputs), tx_out),
               None, None)  # fmt: skip
    cb_script = block.txs[0].inputs[0].script_sig
    yield (KIND_BLOCK,
           (height, h.hash, h.prev_hash, h.time, median_time, day, h.version, h.merkle_root,
            h.bits, diff, h.nonce, block.size, block.stripped_size, block.weight,
            len(block.txs), total_out, network.subsidy(height), coinbase_sats,
            coinbase_tag(cb_script) or None, bip34_height(cb_script)),
           None, None, None)  # fmt: skip

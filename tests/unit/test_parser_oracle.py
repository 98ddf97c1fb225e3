"""Our parser against an independent one: bitcoinlib 0.7.10 reads the same built blocks.

The chain holds every script type (P2PK with compressed and uncompressed keys, P2PKH, P2SH,
P2SH-wrapped P2WPKH and P2WSH, P2WPKH, P2WSH, P2TR, unknown witness versions, anchor, bare
multisig, OP_RETURN, nonstandard) and legacy, segwit and mixed transactions spending each other,
in the same block and across blocks.

Notes on the oracle (bitcoinlib 0.7.10):

* ``Block.parse_bytes(raw, parse_transactions=True, network=...)`` parses the transactions
  with the default (main) network whatever ``network`` says, so addresses come out mainnet.
  Parsing the header first and then calling ``Block.parse_transactions()`` honours it.
* Its ``regtest`` uses mainnet's Base58 version bytes (0x00/0x05) where Bitcoin Core's regtest
  uses testnet's (0x6f/0xc4): Base58 regtest addresses are checked against bitcoinlib's
  testnet ones, Bech32 regtest addresses against its regtest ones (``bcrt``).
* It gives bare multisig outputs a made-up P2WSH-style address; we give none. Those are the
  only outputs where it has an address and we do not compare.
* Script type names differ; ``BITCOINLIB_TYPE`` below is the mapping.
"""

import hashlib
import os
import tempfile
from dataclasses import dataclass

os.environ.setdefault("BCL_DATA_DIR", tempfile.mkdtemp(prefix="hodlflow-bcl-"))

import pytest  # noqa: E402
from bitcoinlib.blocks import Block as BitcoinlibBlock  # noqa: E402

from hodlflow.chain.block import parse_block  # noqa: E402
from hodlflow.chain.network import MAIN, REGTEST, TESTNET  # noqa: E402
from hodlflow.chain.script import classify_script  # noqa: E402
from hodlflow.sim.builder import (  # noqa: E402
    ChainBuilder,
    Spend,
    anchor,
    multisig,
    nonstandard,
    op_return,
    p2pk,
    p2pkh,
    p2sh,
    p2tr,
    p2wpkh,
    p2wsh,
    witness_program,
)
from hodlflow.sim.keys import KeyRing  # noqa: E402

NETWORKS = [MAIN, TESTNET, REGTEST]
BITCOINLIB_NETWORK = {"main": "bitcoin", "testnet": "testnet", "regtest": "regtest"}

# Our script type -> the names bitcoinlib gives the same outputs.
BITCOINLIB_TYPE = {
    "p2pk": {"p2pk"},
    "p2pkh": {"p2pkh"},
    "p2sh": {"p2sh"},
    "p2wpkh": {"p2wpkh"},
    "p2wsh": {"p2wsh"},
    "p2tr": {"p2tr"},
    # bitcoinlib calls a 32-byte witness v1+ program p2tr, other lengths unknown
    "witness_unknown": {"p2tr", "unknown"},
    "anchor": {"p2tr"},
    "multisig": {"multisig"},
    "op_return": {"nulldata", "nulldata_2"},  # nulldata_2: a bare OP_RETURN, no push
    # "unknown" when it can read the script; an empty or unreadable script falls back to its
    # default output type, p2wpkh, with no address.
    "nonstandard": {"unknown", "p2wpkh"},
}

V = 10_000_000


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", _sha256(data)).digest()


def build_oracle_chain(network) -> list[bytes]:
    """Four blocks: a coinbase, a fan-out to every script type, spends of each type (legacy,
    segwit, nested segwit, an in-block child), and a tx mixing legacy and segwit inputs."""
    k = KeyRing(2024).key
    builder = ChainBuilder(network, payout_script=p2pkh(k(0).h160))
    first = builder.add_block(coinbase_tag=b"/oracle/")

    wsh_script = multisig(2, [k(1).pubkey, k(2).pubkey, k(3).pubkey])
    p2sh_redeem = multisig(1, [k(4).pubkey, k(5).pubkey_uncompressed])
    nested_wpkh = p2wpkh(k(6).h160)
    nested_ws = multisig(1, [k(7).pubkey])
    nested_wsh = p2wsh(_sha256(nested_ws))
    fan = builder.tx(
        [first.coinbase.outpoint(0)],
        [
            (V, p2pk(k(8).pubkey)),  # 0
            (V, p2pk(k(9).pubkey_uncompressed)),  # 1
            (V, p2pkh(k(10).h160)),  # 2
            (V, p2sh(_hash160(p2sh_redeem))),  # 3
            (V, p2wpkh(k(11).h160)),  # 4
            (V, p2wsh(_sha256(wsh_script))),  # 5
            (V, p2tr(k(12).xonly)),  # 6
            (V, witness_program(2, bytes(range(32)))),  # 7
            (V, witness_program(16, bytes(range(40)))),  # 8
            (V, anchor()),  # 9
            (V, multisig(1, [k(13).pubkey, k(14).pubkey_uncompressed])),  # 10
            (0, op_return(b"hodlflow oracle")),  # 11
            (V, nonstandard("op_true")),  # 12
            (V, nonstandard("checksig")),  # 13
            (V, p2sh(_hash160(nested_wpkh))),  # 14
            (V, p2sh(_hash160(nested_wsh))),  # 15
            (V, nonstandard("empty")),  # 16
            (480 * V, p2pkh(k(0).h160)),  # 17: change
        ],
    )
    builder.add_block([fan])

    legacy = builder.tx(
        [fan.outpoint(i) for i in (0, 1, 2, 10, 12, 13, 16)]
        + [Spend(fan.txid, 3, redeem_script=p2sh_redeem)],
        [(4 * V, p2pkh(k(15).h160)), (4 * V - 5000, p2sh(_hash160(p2sh_redeem)))],
    )
    segwit = builder.tx(
        [fan.outpoint(i) for i in (4, 6, 7, 8, 9)]
        + [Spend(fan.txid, 5, witness_script=wsh_script)],
        [(3 * V, p2wpkh(k(16).h160)), (3 * V - 7000, p2tr(k(17).xonly))],
    )
    nested = builder.tx(
        [
            Spend(fan.txid, 14, redeem_script=nested_wpkh),
            Spend(fan.txid, 15, redeem_script=nested_wsh, witness_script=nested_ws),
        ],
        [(2 * V - 3000, p2sh(_hash160(nested_wpkh)))],
    )
    child = builder.tx(
        [segwit.outpoint(0)], [(V, p2wpkh(k(18).h160)), (2 * V - 900, p2pk(k(19).pubkey))]
    )
    builder.add_block([legacy, segwit, nested, child])

    mixed = builder.tx(
        [legacy.outpoint(0), child.outpoint(0), nested.outpoint(0), fan.outpoint(17)],
        [(0, op_return(b"")), (480 * V, p2wsh(_sha256(wsh_script))), (V, p2pkh(k(20).h160))],
        version=1,
        locktime=123,
    )
    builder.add_block([mixed])
    return [block.raw for block in builder.blocks]


@dataclass(frozen=True)
class Parsed:
    raw: bytes
    ours: object  # hodlflow.chain.block.Block
    theirs: BitcoinlibBlock


@pytest.fixture(scope="module", params=NETWORKS, ids=lambda n: n.name)
def chain(request) -> tuple:
    """(network, [Parsed per block]): each built block read by our parser and by bitcoinlib."""
    network = request.param
    parsed = [
        Parsed(raw, parse_block(raw), BitcoinlibBlock.parse_bytes(raw, parse_transactions=True))
        for raw in build_oracle_chain(network)
    ]
    return network, parsed


def _bitcoinlib_addresses(raw: bytes, network_name: str) -> list[list[str]]:
    """Output addresses per tx, parsed by bitcoinlib on ``network_name`` ('' = none)."""
    block = BitcoinlibBlock.parse_bytes(raw, network=network_name)
    block.parse_transactions()  # unlike parse_transactions=True, this honours the network
    return [[out.address for out in tx.outputs] for tx in block.transactions]


def test_block_hashes_agree(chain):
    _, blocks = chain
    assert [b.ours.hash for b in blocks] == [b.theirs.block_hash.hex() for b in blocks]


def test_tx_counts_agree(chain):
    _, blocks = chain
    assert [len(b.ours.txs) for b in blocks] == [len(b.theirs.transactions) for b in blocks]


def test_txids_agree(chain):
    _, blocks = chain
    ours = [[tx.txid for tx in b.ours.txs] for b in blocks]
    theirs = [[tx.txid for tx in b.theirs.transactions] for b in blocks]
    assert ours == theirs


def test_input_outpoints_agree(chain):
    _, blocks = chain
    ours = [[[(i.prev_txid, i.prev_vout) for i in tx.inputs] for tx in b.ours.txs] for b in blocks]
    theirs = [
        [[(i.prev_txid.hex(), i.output_n_int) for i in tx.inputs] for tx in b.theirs.transactions]
        for b in blocks
    ]
    assert ours == theirs


def test_output_values_agree(chain):
    _, blocks = chain
    ours = [[[o.value for o in tx.outputs] for tx in b.ours.txs] for b in blocks]
    theirs = [[[o.value for o in tx.outputs] for tx in b.theirs.transactions] for b in blocks]
    assert ours == theirs


def test_script_types_map_to_bitcoinlib_names(chain):
    network, blocks = chain
    mismatches = []
    for b in blocks:
        for tx, their_tx in zip(b.ours.txs, b.theirs.transactions, strict=True):
            for out, their_out in zip(tx.outputs, their_tx.outputs, strict=True):
                script_type, _ = classify_script(out.script_pubkey, network)
                if their_out.script_type not in BITCOINLIB_TYPE[script_type]:
                    mismatches.append((out.script_pubkey.hex(), script_type, their_out.script_type))
    assert mismatches == []


def test_chain_holds_every_script_type(chain):
    network, blocks = chain
    seen = {
        classify_script(out.script_pubkey, network)[0]
        for b in blocks
        for tx in b.ours.txs
        for out in tx.outputs
    }
    assert seen == set(BITCOINLIB_TYPE)


def test_addresses_agree_wherever_bitcoinlib_gives_one(chain):
    network, blocks = chain
    compared, mismatches = 0, []
    for b in blocks:
        bech32 = _bitcoinlib_addresses(b.raw, BITCOINLIB_NETWORK[network.name])
        # bitcoinlib's regtest Base58 prefixes are mainnet's; Bitcoin Core's are testnet's.
        base58 = _bitcoinlib_addresses(b.raw, "testnet") if network is REGTEST else bech32
        for t, tx in enumerate(b.ours.txs):
            for o, out in enumerate(tx.outputs):
                script_type, address = classify_script(out.script_pubkey, network)
                their = bech32[t][o]
                if their and not their.startswith(network.bech32_hrp + "1"):
                    their = base58[t][o]
                if not their or script_type == "multisig":
                    continue
                compared += 1
                if address != their:
                    mismatches.append((script_type, address, their))
    assert mismatches == []
    assert compared >= 20

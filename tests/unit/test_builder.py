"""ChainBuilder, KeyRing and write_blocks_dir: built bytes parse back to what was asked for.

Expected addresses are hand-typed published vectors (BIP173/BIP350, the key with secret 1) or
come from bitcoinlib's encoders, never from hodlflow's own encoders.
"""

import hashlib
import os
import struct
import tempfile

os.environ.setdefault("BCL_DATA_DIR", tempfile.mkdtemp(prefix="hodlflow-bcl-"))

import pytest  # noqa: E402
from bitcoinlib.encoding import pubkeyhash_to_addr_base58, pubkeyhash_to_addr_bech32  # noqa: E402
from bitcoinlib.keys import Key as BitcoinlibKey  # noqa: E402

from hodlflow.chain.block import parse_block  # noqa: E402
from hodlflow.chain.network import MAIN, REGTEST, TESTNET  # noqa: E402
from hodlflow.chain.script import classify_script  # noqa: E402
from hodlflow.sim.blocksdir import write_blocks_dir, xor_bytes  # noqa: E402
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
from hodlflow.sim.keys import Key, KeyRing  # noqa: E402

G = Key.from_secret(1)  # the generator point: the best-known test key
COIN = 100_000_000


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", _sha256(data)).digest()


def _funded(network=MAIN, **kwargs):
    """A builder with one block whose coinbase (50 BTC) the test can spend."""
    builder = ChainBuilder(network, **kwargs)
    first = builder.add_block()
    return builder, first.coinbase.outpoint(0)


def _classified(raw: bytes, network) -> list[tuple[str, str | None]]:
    block = parse_block(raw)
    return [classify_script(out.script_pubkey, network) for out in block.txs[1].outputs]


# --- scripts and keys ------------------------------------------------------------------------


def test_every_output_script_type_parses_back_with_its_type_and_address():
    builder, coin = _funded()
    scripts_and_expected = [
        (p2pk(G.pubkey), ("p2pk", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH")),
        (p2pk(G.pubkey_uncompressed), ("p2pk", "1EHNa6Q4Jz2uvNExL497mE43ikXhwF6kZm")),
        (p2pkh(G.h160), ("p2pkh", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH")),
        (
            p2sh(bytes.fromhex("74f209f6ea907e2ea48f74fae05782ae8a665257")),
            ("p2sh", "3CMNFxN1oHBc4R1EpboAL5yzHGgE611Xou"),
        ),
        (p2wpkh(G.h160), ("p2wpkh", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")),
        (
            p2wsh(_sha256(p2pk(G.pubkey))),
            ("p2wsh", "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"),
        ),
        (
            p2tr(G.xonly),
            ("p2tr", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"),
        ),
        (witness_program(16, bytes.fromhex("751e")), ("witness_unknown", "bc1sw50qgdz25j")),
        (
            witness_program(1, bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6") * 2),
            (
                "witness_unknown",
                "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
            ),
        ),
        (anchor(), ("anchor", "bc1pfeessrawgf")),
        (multisig(1, [G.pubkey, G.pubkey_uncompressed]), ("multisig", None)),
        (op_return(b"hodlflow"), ("op_return", None)),
        (nonstandard("op_true"), ("nonstandard", None)),
        (nonstandard("checksig"), ("nonstandard", None)),
        (nonstandard("empty"), ("nonstandard", None)),
        (nonstandard("truncated_push"), ("nonstandard", None)),
    ]
    fan = builder.tx([coin], [(1000, script) for script, _ in scripts_and_expected])
    block = builder.add_block([fan])

    assert _classified(block.raw, MAIN) == [expected for _, expected in scripts_and_expected]


def test_keyring_addresses_match_bitcoinlib_encoders_on_testnet():
    ring = KeyRing(42)
    builder, coin = _funded(TESTNET)
    fan = builder.tx(
        [coin],
        [
            (1000, p2pkh(ring[0].h160)),
            (1000, p2pk(ring[1].pubkey_uncompressed)),
            (1000, p2sh(_hash160(p2wpkh(ring[2].h160)))),
            (1000, p2wpkh(ring[3].h160)),
            (1000, p2tr(ring[4].xonly)),
        ],
    )
    block = builder.add_block([fan])

    expected = [
        pubkeyhash_to_addr_base58(_hash160(ring[0].pubkey), b"\x6f"),
        pubkeyhash_to_addr_base58(_hash160(ring[1].pubkey_uncompressed), b"\x6f"),
        pubkeyhash_to_addr_base58(_hash160(p2wpkh(_hash160(ring[2].pubkey))), b"\xc4"),
        pubkeyhash_to_addr_bech32(_hash160(ring[3].pubkey), "tb", 0),
        pubkeyhash_to_addr_bech32(ring[4].xonly, "tb", 1),
    ]
    assert [address for _, address in _classified(block.raw, TESTNET)] == expected


def test_keyring_keys_are_the_points_bitcoinlib_derives_from_their_secrets():
    ring = KeyRing(b"any seed")
    for i in range(3):
        theirs = BitcoinlibKey(ring[i].secret)
        assert (ring[i].pubkey, ring[i].pubkey_uncompressed) == (
            theirs.public_byte,
            theirs.public_uncompressed_byte,
        )


def test_keyring_same_seed_gives_same_keys_and_other_seed_other_keys():
    assert KeyRing(7)[3] == KeyRing(7)[3]
    assert KeyRing(7)[3].secret != KeyRing(8)[3].secret
    assert KeyRing(7)[3].secret != KeyRing(b"\x07")[3].secret


def test_dummy_unlocks_have_the_shapes_of_real_spends():
    builder, coin = _funded(payout_script=p2pkh(G.h160))
    fund = builder.tx([coin], [(COIN, p2wpkh(G.h160)), (COIN, p2tr(G.xonly))])
    builder.add_block([fund])
    spend = builder.tx([fund.outpoint(0), fund.outpoint(1)], [(COIN, p2pkh(G.h160))])
    block = builder.add_block([spend])

    tx = parse_block(block.raw).txs[1]
    # P2WPKH: empty scriptSig, witness = 72-byte DER signature + 33-byte compressed key.
    assert (tx.inputs[0].script_sig, [len(item) for item in tx.inputs[0].witness]) == (
        b"",
        [72, 33],
    )
    # P2TR key path: one 64-byte Schnorr signature.
    assert [len(item) for item in tx.inputs[1].witness] == [64]


# --- transactions, fees and the coinbase -----------------------------------------------------


def test_coinbase_pays_subsidy_plus_fees():
    builder, coin = _funded(REGTEST)
    spend = builder.tx([coin], [(50 * COIN - 1234, p2wpkh(G.h160))])
    block = builder.add_block([spend])

    coinbase = parse_block(block.raw).txs[0]
    assert coinbase.outputs[0].value == 50 * COIN + 1234


def test_regtest_subsidy_is_halved_at_height_150():
    builder = ChainBuilder(REGTEST, start_height=150)
    block = builder.add_block()

    assert parse_block(block.raw).txs[0].outputs[0].value == 25 * COIN


@pytest.mark.parametrize(
    ("height", "push"),
    [(0, "00"), (1, "51"), (16, "60"), (17, "0111"), (128, "028000"), (300, "022c01")],
)
def test_coinbase_script_sig_starts_with_the_bip34_height_push(height, push):
    builder = ChainBuilder(MAIN, start_height=height)
    block = builder.add_block()

    assert parse_block(block.raw).txs[0].inputs[0].script_sig.hex().startswith(push)


def test_segwit_block_commits_to_the_witness_merkle_root():
    builder, coin = _funded(payout_script=p2wpkh(G.h160))
    spend = builder.tx([coin], [(COIN, p2pkh(G.h160))])
    block = parse_block(builder.add_block([spend]).raw)

    wtxids = [bytes(32), bytes.fromhex(block.txs[1].wtxid)[::-1]]
    witness_root = _sha256(_sha256(wtxids[0] + wtxids[1]))
    commitment = _sha256(_sha256(witness_root + bytes(32)))
    coinbase = block.txs[0]
    assert coinbase.outputs[-1].script_pubkey == bytes.fromhex("6a24aa21a9ed") + commitment
    assert list(coinbase.inputs[0].witness) == [bytes(32)]


def test_block_without_witness_data_has_no_witness_commitment():
    builder, coin = _funded(payout_script=p2pkh(G.h160))
    spend = builder.tx([coin], [(COIN, p2pkh(G.h160))])
    block = parse_block(builder.add_block([spend]).raw)

    assert [len(out.script_pubkey) for out in block.txs[0].outputs] == [25]


def test_tx_sizes_match_the_parser():
    builder, coin = _funded()
    spend = builder.tx([coin], [(COIN, p2pkh(G.h160)), (COIN, p2wsh(bytes(32)))])
    parsed = parse_block(builder.add_block([spend]).raw).txs[1]

    assert (spend.size, spend.weight, spend.vsize) == (parsed.size, parsed.weight, parsed.vsize)


def test_unknown_outpoint_raises():
    builder, _ = _funded()
    with pytest.raises(ValueError, match="unknown outpoint"):
        builder.tx([("11" * 32, 0)], [(1000, p2pkh(G.h160))])


def test_allow_unknown_builds_a_block_spending_a_missing_output():
    builder, _ = _funded(REGTEST)
    bad = builder.tx([Spend("11" * 32, 3, value=5000)], [(4000, p2pkh(G.h160))], allow_unknown=True)
    block = parse_block(builder.add_block([bad]).raw)

    assert (block.txs[1].inputs[0].prev_txid, block.txs[1].inputs[0].prev_vout) == ("11" * 32, 3)
    assert block.txs[0].outputs[0].value == 50 * COIN + 1000


def test_outputs_exceeding_inputs_raise():
    builder, coin = _funded()
    with pytest.raises(ValueError, match="outputs exceed inputs by 1 sat"):
        builder.tx([coin], [(50 * COIN + 1, p2pkh(G.h160))])


# --- blocks, branches and the UTXO set -------------------------------------------------------


def test_same_calls_build_byte_identical_blocks():
    def build() -> list[bytes]:
        builder, coin = _funded()
        spend = builder.tx([coin], [(COIN, p2tr(G.xonly)), (COIN, p2pkh(G.h160))])
        builder.add_block([spend])
        builder.add_block(parent=builder.blocks[0].hash)
        return [b.raw for b in builder.blocks]

    assert build() == build()


def test_header_fields_parse_back():
    builder = ChainBuilder(MAIN, start_time=1_700_000_000, interval=60, version=0x20000004)
    first = builder.add_block()
    second = builder.add_block(bits=0x207FFFFE)

    header = parse_block(second.raw).header
    assert (header.prev_hash, header.time, header.bits, header.version) == (
        first.hash,
        1_700_000_060,
        0x207FFFFE,
        0x20000004,
    )


def test_header_merkle_root_commits_to_the_txids():
    builder, coin = _funded()
    spends = [builder.tx([coin], [(COIN, p2pkh(G.h160)), (COIN, p2wpkh(G.h160))])]
    spends.append(builder.tx([spends[0].outpoint(0)], [(COIN // 2, p2pkh(G.h160))]))
    block = parse_block(builder.add_block(spends).raw)

    leaves = [bytes.fromhex(tx.txid)[::-1] for tx in block.txs]
    leaves.append(leaves[-1])  # three txs: the last is paired with itself
    left = _sha256(_sha256(leaves[0] + leaves[1]))
    right = _sha256(_sha256(leaves[2] + leaves[3]))
    assert block.header.merkle_root == _sha256(_sha256(left + right))[::-1].hex()


def test_mined_blocks_meet_their_target():
    builder = ChainBuilder(REGTEST)
    hashes = [builder.add_block().hash for _ in range(5)]

    target = 0x7FFFFF << (8 * (0x20 - 3))  # bits 0x207fffff
    assert all(int(h, 16) <= target for h in hashes)


def test_unmined_blocks_keep_nonce_zero():
    builder = ChainBuilder(MAIN, bits=0x1D00FFFF, mine=False)

    assert parse_block(builder.add_block().raw).header.nonce == 0


def test_mining_refuses_bits_too_hard_for_python():
    builder = ChainBuilder(MAIN, bits=0x1D00FFFF)
    with pytest.raises(ValueError, match="use mine=False"):
        builder.add_block()


def test_stale_fork_heights_follow_the_parent():
    builder = ChainBuilder(REGTEST)
    main = [builder.add_block() for _ in range(4)]
    fork_a = builder.add_block(parent=main[1].hash)
    fork_b = builder.add_block()

    assert (fork_a.height, fork_b.height) == (2, 3)
    assert (fork_a.prev_hash, fork_b.prev_hash) == (main[1].hash, fork_a.hash)


def test_sibling_blocks_on_one_parent_differ():
    builder = ChainBuilder(REGTEST)
    parent = builder.add_block()
    first = builder.add_block(parent=parent.hash)
    second = builder.add_block(parent=parent.hash)

    assert first.hash != second.hash
    assert first.coinbase_txid != second.coinbase_txid


def test_spending_an_output_of_another_branch_raises():
    builder, coin = _funded()
    root_child = builder.blocks[0]
    branch_a = builder.add_block()
    paid = builder.tx([coin], [(COIN, p2pkh(G.h160))])
    builder.add_block([paid], parent=branch_a.hash)
    spend = builder.tx([paid.outpoint(0)], [(COIN // 2, p2pkh(G.h160))])

    with pytest.raises(ValueError, match="not unspent on the branch"):
        builder.add_block([spend], parent=root_child.hash)


def test_spending_an_output_twice_on_one_branch_raises():
    builder, coin = _funded()
    builder.add_block([builder.tx([coin], [(COIN, p2pkh(G.h160))])])
    again = builder.tx([coin], [(2 * COIN, p2pkh(G.h160))])

    with pytest.raises(ValueError, match="not unspent on the branch"):
        builder.add_block([again])


def test_the_same_output_may_be_spent_once_on_each_branch():
    builder, coin = _funded()
    fork_point = builder.blocks[0].hash
    first = builder.add_block([builder.tx([coin], [(COIN, p2pkh(G.h160))])])
    other = builder.add_block([builder.tx([coin], [(2 * COIN, p2pkh(G.h160))])], parent=fork_point)

    assert (first.height, other.height) == (1, 1)


def test_a_tx_may_spend_an_output_of_an_earlier_tx_in_its_block():
    builder, coin = _funded()
    parent = builder.tx([coin], [(COIN, p2pkh(G.h160))])
    child = builder.tx([parent.outpoint(0)], [(COIN - 500, p2pkh(G.h160))])
    block = builder.add_block([parent, child])

    assert block.txids[1:] == (parent.txid, child.txid)


def test_spending_an_output_of_a_later_tx_in_its_block_raises():
    builder, coin = _funded()
    parent = builder.tx([coin], [(COIN, p2pkh(G.h160))])
    child = builder.tx([parent.outpoint(0)], [(COIN - 500, p2pkh(G.h160))])

    with pytest.raises(ValueError, match="not unspent on the branch"):
        builder.add_block([child, parent])


# --- blocks directory ------------------------------------------------------------------------

KEY = bytes.fromhex("0102030405060708")


def _records(data: bytes, magic: bytes) -> list[bytes]:
    """Blocks of a plain blk file, skipping zero padding between records."""
    blocks, pos = [], 0
    while pos < len(data):
        if data[pos] == 0:
            pos += 1
            continue
        assert data[pos : pos + 4] == magic, f"no magic at {pos}"
        (size,) = struct.unpack_from("<I", data, pos + 4)
        blocks.append(data[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return blocks


@pytest.fixture(scope="module")
def raw_blocks() -> list[bytes]:
    builder = ChainBuilder(REGTEST)
    return [builder.add_block().raw for _ in range(5)]


def test_blocks_dir_xor_dat_holds_the_key(tmp_path, raw_blocks):
    write_blocks_dir(tmp_path, raw_blocks, REGTEST, xor_key=KEY)

    assert (tmp_path / "xor.dat").read_bytes() == KEY


def test_blocks_dir_obfuscated_file_differs_from_plain_records(tmp_path, raw_blocks):
    (path,) = write_blocks_dir(tmp_path, raw_blocks, REGTEST, xor_key=KEY)
    plain = b"".join(REGTEST.magic + struct.pack("<I", len(b)) + b for b in raw_blocks)

    stored = open(path, "rb").read()
    assert len(stored) == len(plain) and stored != plain


def test_blocks_dir_unxoring_with_the_rolling_key_restores_framed_records(tmp_path, raw_blocks):
    (path,) = write_blocks_dir(tmp_path, raw_blocks, REGTEST, xor_key=KEY)
    stored = open(path, "rb").read()

    plain = bytes(byte ^ KEY[offset % 8] for offset, byte in enumerate(stored))
    assert _records(plain, REGTEST.magic) == raw_blocks


def test_blocks_dir_without_key_writes_plain_records_and_no_xor_dat(tmp_path, raw_blocks):
    (path,) = write_blocks_dir(tmp_path, raw_blocks, REGTEST)

    assert not (tmp_path / "xor.dat").exists()
    assert _records(open(path, "rb").read(), REGTEST.magic) == raw_blocks


def test_blocks_dir_zero_key_writes_xor_dat_and_plain_records(tmp_path, raw_blocks):
    (path,) = write_blocks_dir(tmp_path, raw_blocks, REGTEST, xor_key=bytes(8))

    assert (tmp_path / "xor.dat").read_bytes() == bytes(8)
    assert _records(open(path, "rb").read(), REGTEST.magic) == raw_blocks


def test_blocks_dir_starts_a_new_file_when_the_next_record_would_exceed_the_limit(tmp_path):
    blocks = [bytes([i + 1]) * 100 for i in range(5)]  # records of 108 bytes
    paths = write_blocks_dir(tmp_path, blocks, MAIN, max_file_bytes=250)

    assert [os.path.basename(p) for p in paths] == ["blk00000.dat", "blk00001.dat", "blk00002.dat"]
    assert [os.path.getsize(p) for p in paths] == [216, 216, 108]
    assert [_records(open(p, "rb").read(), MAIN.magic) for p in paths] == [
        blocks[0:2],
        blocks[2:4],
        blocks[4:5],
    ]


def test_blocks_dir_shuffle_seed_stores_every_block_once_out_of_order(tmp_path, raw_blocks):
    paths = write_blocks_dir(tmp_path, raw_blocks, REGTEST, max_file_bytes=600, shuffle_seed=3)
    stored = [b for p in paths for b in _records(open(p, "rb").read(), REGTEST.magic)]

    assert len(paths) > 1
    assert sorted(stored) == sorted(raw_blocks) and stored != raw_blocks


def test_blocks_dir_shuffle_is_the_same_for_the_same_seed(tmp_path, raw_blocks):
    first = write_blocks_dir(tmp_path / "a", raw_blocks, REGTEST, shuffle_seed=3)
    second = write_blocks_dir(tmp_path / "b", raw_blocks, REGTEST, shuffle_seed=3)

    assert open(first[0], "rb").read() == open(second[0], "rb").read()


def test_blocks_dir_junk_between_puts_zero_runs_between_records(tmp_path, raw_blocks):
    (path,) = write_blocks_dir(tmp_path, raw_blocks, REGTEST, junk_between=True)
    data = open(path, "rb").read()

    framed = sum(8 + len(b) for b in raw_blocks)
    assert len(data) > framed
    assert _records(data, REGTEST.magic) == raw_blocks


def test_blocks_dir_refuses_a_directory_holding_blk_files(tmp_path, raw_blocks):
    write_blocks_dir(tmp_path, raw_blocks, REGTEST)
    with pytest.raises(FileExistsError, match="already holds blk files"):
        write_blocks_dir(tmp_path, raw_blocks, REGTEST)


def test_xor_bytes_rolls_the_key_with_the_file_offset():
    assert xor_bytes(bytes(4), KEY, 6).hex() == "07080102"
    assert xor_bytes(bytes(4), KEY, 14).hex() == "07080102"
    assert xor_bytes(bytes.fromhex("07080102"), KEY, 6) == bytes(4)

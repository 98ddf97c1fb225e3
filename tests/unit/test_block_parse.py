"""Block and transaction decoding, merkle and proof-of-work checks, and ``inspect_path``.

The genesis block is typed in from its published fields; expected hashes, sizes and
addresses are the well-known values (or counted by hand in the comments), never computed by
the code under test.
"""

from __future__ import annotations

import hashlib

import pytest

from hodlflow.chain.block import (
    bip34_height,
    bits_to_target,
    block_work,
    check_merkle,
    check_pow,
    coinbase_tag,
    difficulty,
    merkle_root,
    parse_block,
    parse_header,
    parse_tx,
)
from hodlflow.chain.errors import ChainError, MerkleError, ParseError, PowError
from hodlflow.chain.inspect import inspect_path
from hodlflow.chain.network import MAIN, REGTEST, TESTNET
from hodlflow.chain.network import MAIN_GENESIS_BLOCK as GENESIS_BLOCK  # 285 bytes
from hodlflow.chain.network import MAIN_GENESIS_COINBASE_SCRIPT as GENESIS_COINBASE_SCRIPT
from hodlflow.chain.network import MAIN_GENESIS_COINBASE_TEXT as GENESIS_COINBASE_TEXT
from hodlflow.chain.network import MAIN_GENESIS_HEADER as GENESIS_HEADER
from hodlflow.chain.network import MAIN_GENESIS_PUBKEY as GENESIS_PUBKEY
from hodlflow.chain.network import MAIN_GENESIS_TX as GENESIS_TX

GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_MERKLE = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"

# A hand-made segwit transaction: 1 input with a 2-item witness, 1 P2WPKH output.
SEGWIT_STRIPPED = bytes.fromhex(
    "".join(
        [
            "02000000",  # version 2
            "01",  # 1 input:
            bytes(range(32)).hex() + "01000000",  # outpoint
            "00",  # empty scriptSig
            "fdffffff",  # sequence
            "01",  # 1 output:
            "1027000000000000",  # 10,000 sat
            "16" + "0014" + "11" * 20,  # 22-byte P2WPKH script
            "00000000",  # locktime
        ]
    )
)
SEGWIT_TX = (
    SEGWIT_STRIPPED[:4]
    + b"\x00\x01"  # marker, flag
    + SEGWIT_STRIPPED[4:-4]
    + bytes.fromhex("02" + "03aabbcc" + "02ddee")  # witness: 2 items of 3 and 2 bytes
    + SEGWIT_STRIPPED[-4:]
)


def dsha256_hex(data: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()[::-1].hex()


def framed(block: bytes, magic: bytes = MAIN.magic) -> bytes:
    return magic + len(block).to_bytes(4, "little") + block


# --- headers and blocks ----------------------------------------------------------------------


def test_genesis_header_hashes_to_the_genesis_hash():
    assert parse_header(GENESIS_HEADER).hash == GENESIS_HASH


def test_header_fields_are_decoded_little_endian():
    header = parse_header(GENESIS_HEADER)
    assert (header.version, header.time, header.bits, header.nonce) == (
        1,
        1231006505,
        0x1D00FFFF,
        2083236893,
    )
    assert header.prev_hash == "00" * 32
    assert header.merkle_root == GENESIS_MERKLE


def test_genesis_block_sizes_are_285_bytes_and_weight_1140():
    block = parse_block(GENESIS_BLOCK)
    assert (block.size, block.stripped_size, block.weight) == (285, 285, 1140)
    assert block.hash == GENESIS_HASH


def test_genesis_coinbase_txid_is_the_merkle_root():
    tx = parse_block(GENESIS_BLOCK).txs[0]
    assert tx.txid == GENESIS_MERKLE
    assert tx.wtxid == GENESIS_MERKLE  # no witness: wtxid == txid


def test_coinbase_is_recognised_by_its_null_outpoint():
    tx = parse_block(GENESIS_BLOCK).txs[0]
    assert tx.is_coinbase
    assert (tx.inputs[0].prev_txid, tx.inputs[0].prev_vout) == ("00" * 32, 0xFFFFFFFF)


def test_genesis_coinbase_pays_50_btc_to_its_p2pk_script():
    out = parse_block(GENESIS_BLOCK).txs[0].outputs[0]
    assert out.value == 5_000_000_000
    assert out.script_pubkey == bytes.fromhex("41" + GENESIS_PUBKEY + "ac")


def test_parse_block_accepts_a_memoryview():
    assert parse_block(memoryview(GENESIS_BLOCK)).hash == GENESIS_HASH


# --- segwit ------------------------------------------------------------------------------------


def test_segwit_txid_hashes_the_serialization_without_witness():
    assert parse_tx(SEGWIT_TX).txid == dsha256_hex(SEGWIT_STRIPPED)


def test_segwit_wtxid_hashes_the_full_serialization():
    assert parse_tx(SEGWIT_TX).wtxid == dsha256_hex(SEGWIT_TX)


def test_segwit_sizes_follow_bip141():
    tx = parse_tx(SEGWIT_TX)
    # stripped 82 = 4 + (1 + 41) + (1 + 31) + 4; full 92 = 82 + marker/flag 2 + witness 8
    assert (tx.stripped_size, tx.size) == (82, 92)
    assert tx.weight == 82 * 3 + 92  # 338
    assert tx.vsize == 85  # ceil(338 / 4)


def test_segwit_witness_items_belong_to_their_input():
    tx = parse_tx(SEGWIT_TX)
    assert tx.inputs[0].witness == [bytes.fromhex("aabbcc"), bytes.fromhex("ddee")]
    assert not tx.is_coinbase


def test_legacy_input_has_an_empty_witness():
    assert parse_block(GENESIS_BLOCK).txs[0].inputs[0].witness == []


# --- decoding errors -------------------------------------------------------------------------


def test_truncated_block_names_the_file_and_the_absolute_offset_where_data_ends():
    with pytest.raises(ParseError) as info:
        parse_block(GENESIS_BLOCK[:-1], where="blk00000.dat", base_offset=1000)
    assert info.value.offset == 1000 + 284
    assert info.value.where == "blk00000.dat"
    assert "blk00000.dat" in str(info.value) and "1284" in str(info.value)
    assert "truncated" in str(info.value)


def test_trailing_bytes_after_a_block_name_the_offset_where_they_start():
    with pytest.raises(ParseError) as info:
        parse_block(GENESIS_BLOCK + b"\x00\x00", where="one.raw")
    assert info.value.offset == 285
    assert "2 trailing bytes" in str(info.value) and "285" in str(info.value)


def test_block_shorter_than_a_header_is_truncated():
    with pytest.raises(ParseError, match="truncated"):
        parse_block(GENESIS_HEADER[:50])


def test_block_without_transactions_is_rejected():
    with pytest.raises(ParseError, match="no transactions"):
        parse_block(GENESIS_HEADER + b"\x00")


def test_non_canonical_count_is_rejected_at_its_offset():
    # transaction count 1 written as 0xfd 0x0100 instead of 0x01
    with pytest.raises(ParseError, match="non-canonical") as info:
        parse_block(GENESIS_HEADER + b"\xfd\x01\x00" + GENESIS_TX)
    assert info.value.offset == 80


def test_unknown_segwit_flag_is_rejected():
    bad = SEGWIT_TX[:5] + b"\x02" + SEGWIT_TX[6:]
    with pytest.raises(ParseError, match="flag byte 0x02") as info:
        parse_tx(bad, base_offset=100)
    assert info.value.offset == 105


def test_a_huge_script_length_is_a_parse_error_not_a_crash():
    # the coinbase scriptSig length (at offset 122) rewritten as 0xff + 2**62
    huge = GENESIS_BLOCK[:122] + b"\xff" + (1 << 62).to_bytes(8, "little") + GENESIS_BLOCK[123:]
    with pytest.raises(ParseError, match="truncated"):
        parse_block(huge)


def test_trailing_bytes_after_a_transaction_are_rejected():
    with pytest.raises(ParseError, match="trailing") as info:
        parse_tx(SEGWIT_TX + b"\x00")
    assert info.value.offset == 92


def test_parse_errors_are_chain_errors_and_value_errors():
    assert issubclass(ParseError, ChainError) and issubclass(ChainError, ValueError)


# --- merkle root -------------------------------------------------------------------------------


def test_merkle_root_of_one_txid_is_that_txid():
    assert merkle_root([GENESIS_MERKLE]) == GENESIS_MERKLE


def test_merkle_root_of_block_100000():
    txids = [
        "8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87",
        "fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4",
        "6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4",
        "e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d",
    ]
    assert merkle_root(txids) == "f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766"


def test_merkle_root_of_an_odd_level_pairs_the_last_hash_with_itself():
    a, b, c = ("11" * 32, "22" * 32, "33" * 32)
    # three leaves: the third is paired with itself
    ab = hashlib.sha256(hashlib.sha256(bytes.fromhex(a + b)).digest()).digest()
    cc = hashlib.sha256(hashlib.sha256(bytes.fromhex(c + c)).digest()).digest()
    root = hashlib.sha256(hashlib.sha256(ab + cc).digest()).digest()
    assert merkle_root([a, b, c]) == root[::-1].hex()


def test_check_merkle_names_block_hash_expected_and_computed_roots():
    # the output value changed from 50 to 51 BTC: the header (and hash) stay, the txid moves
    tampered = GENESIS_BLOCK[:-80] + GENESIS_BLOCK[-80:].replace(
        bytes.fromhex("00f2052a01000000"), (5_100_000_000).to_bytes(8, "little")
    )
    block = parse_block(tampered)
    with pytest.raises(MerkleError) as info:
        check_merkle(block, where="genesis.raw")
    message = str(info.value)
    assert GENESIS_HASH in message and GENESIS_MERKLE in message and "genesis.raw" in message
    assert info.value.computed != GENESIS_MERKLE


# --- proof of work -----------------------------------------------------------------------------


def test_difficulty_of_bits_1d00ffff_is_one():
    assert difficulty(0x1D00FFFF) == 1.0


def test_difficulty_of_bits_1b0404cb_matches_the_wiki_example():
    assert difficulty(0x1B0404CB) == pytest.approx(16307.420938523983, rel=1e-12)


def test_bits_expand_to_mantissa_times_256_to_the_exponent_minus_3():
    assert bits_to_target(0x1D00FFFF) == 0xFFFF * 256 ** (0x1D - 3)


def test_bits_with_small_exponent_shift_the_mantissa_right():
    assert bits_to_target(0x02008000) == 0x80


def test_bits_with_sign_bit_set_are_a_pow_error():
    with pytest.raises(PowError, match="negative"):
        bits_to_target(0x1D80FFFF)


def test_block_work_of_difficulty_one_is_the_genesis_chainwork():
    assert block_work(0x1D00FFFF) == 0x100010001


def test_genesis_header_passes_proof_of_work():
    check_pow(parse_header(GENESIS_HEADER), network=MAIN)


def test_header_with_another_nonce_fails_proof_of_work_naming_file_and_hash():
    header = parse_header(GENESIS_HEADER[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(PowError) as info:
        check_pow(header, where="genesis.raw")
    assert "genesis.raw" in str(info.value) and header.hash in str(info.value)


def test_bits_easier_than_the_network_limit_fail_proof_of_work():
    header = parse_header(GENESIS_HEADER)
    header.bits = REGTEST.pow_limit_bits
    with pytest.raises(PowError, match="limit"):
        check_pow(header, network=MAIN)


# --- subsidy -----------------------------------------------------------------------------------


def test_mainnet_subsidy_is_50_btc_until_the_first_halving():
    assert MAIN.subsidy(0) == 5_000_000_000
    assert MAIN.subsidy(209_999) == 5_000_000_000


def test_mainnet_subsidy_halves_at_210000():
    assert MAIN.subsidy(210_000) == 2_500_000_000


def test_regtest_subsidy_halves_every_150_blocks():
    assert REGTEST.subsidy(150) == 2_500_000_000


def test_subsidy_is_zero_after_64_halvings():
    assert MAIN.subsidy(64 * 210_000) == 0


# --- coinbase ----------------------------------------------------------------------------------


def test_bip34_height_reads_the_first_push_little_endian():
    assert bip34_height(bytes.fromhex("03400d03") + b"/pool/") == 200_000


def test_bip34_height_reads_small_integer_opcodes():
    assert bip34_height(bytes.fromhex("5100")) == 1
    assert bip34_height(bytes.fromhex("6000")) == 16


def test_bip34_height_reads_op_0_as_zero():
    assert bip34_height(bytes.fromhex("0001")) == 0


def test_bip34_height_is_none_for_pushes_longer_than_5_bytes():
    assert bip34_height(bytes.fromhex("06010203040506")) is None


def test_bip34_height_is_none_for_a_negative_number():
    assert bip34_height(bytes.fromhex("0181")) is None


def test_bip34_height_is_none_for_an_empty_script():
    assert bip34_height(b"") is None


def test_coinbase_tag_keeps_a_pool_tag_intact():
    assert coinbase_tag(bytes.fromhex("03f8c208") + b"/ViaBTC/" + b"\xfa\xbemm") == "/ViaBTC/"


def test_coinbase_tag_joins_printable_runs_with_one_space_and_drops_short_runs():
    script = b"\x03\x01\x02\x03Mined by\x00\x01AntPool\xffab\x02"
    assert coinbase_tag(script) == "Mined by AntPool"


def test_coinbase_tag_of_genesis_keeps_the_printable_push_length_byte():
    assert coinbase_tag(GENESIS_COINBASE_SCRIPT) == "E" + GENESIS_COINBASE_TEXT.decode()


# --- inspect_path ------------------------------------------------------------------------------


def test_inspect_raw_block_yields_one_block_record(tmp_path):
    path = tmp_path / "genesis.raw"
    path.write_bytes(GENESIS_BLOCK)
    assert list(inspect_path(path, MAIN)) == [
        {
            "type": "block",
            "hash": GENESIS_HASH,
            "prev_hash": "00" * 32,
            "height": None,  # version 1: no BIP34 height
            "time": 1231006505,
            "bits": "1d00ffff",
            "difficulty": 1.0,
            "tx_count": 1,
            "total_output_sats": 5_000_000_000,
            "size": 285,
            "stripped_size": 285,
            "weight": 1140,
            "merkle_root": GENESIS_MERKLE,
            "file": str(path),
            "offset": 0,
        }
    ]


def test_inspect_with_txs_yields_inputs_and_classified_outputs(tmp_path):
    path = tmp_path / "genesis.raw"
    path.write_bytes(GENESIS_BLOCK)
    records = list(inspect_path(path, MAIN, with_txs=True))
    assert records[1] == {
        "type": "tx",
        "block_hash": GENESIS_HASH,
        "txid": GENESIS_MERKLE,
        "wtxid": GENESIS_MERKLE,
        "size": 204,
        "vsize": 204,
        "weight": 816,
        "is_coinbase": True,
        "inputs": [{"prev_txid": "00" * 32, "prev_vout": 4294967295}],
        "outputs": [
            {
                "vout": 0,
                "value": 5_000_000_000,
                "script_type": "p2pk",
                "address": "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            }
        ],
    }


def test_inspect_hex_text_file_decodes_the_block(tmp_path):
    path = tmp_path / "genesis.hex"
    path.write_text(GENESIS_BLOCK.hex() + "\n")
    [record] = inspect_path(path, MAIN)
    assert (record["hash"], record["offset"]) == (GENESIS_HASH, 0)


def test_inspect_framed_file_reports_each_block_offset_after_magic_and_length(tmp_path):
    path = tmp_path / "blk00000.dat"
    path.write_bytes(framed(GENESIS_BLOCK) + framed(GENESIS_BLOCK))
    assert [r["offset"] for r in inspect_path(path, MAIN)] == [8, 8 + 285 + 8]


def test_inspect_skips_junk_before_the_magic(tmp_path):
    path = tmp_path / "blk00001.dat"
    path.write_bytes(b"\x00\x01\xf9\xbe\xb4" + framed(GENESIS_BLOCK))
    [record] = inspect_path(path, MAIN)
    assert record["offset"] == 5 + 8


def test_inspect_skips_zero_padding_between_blocks(tmp_path):
    path = tmp_path / "blk00002.dat"
    path.write_bytes(framed(GENESIS_BLOCK) + bytes(100) + framed(GENESIS_BLOCK))
    assert [r["offset"] for r in inspect_path(path, MAIN)] == [8, 293 + 100 + 8]


def test_inspect_stops_quietly_at_a_trailing_partial_block(tmp_path):
    path = tmp_path / "blk00003.dat"
    path.write_bytes(framed(GENESIS_BLOCK) + framed(GENESIS_BLOCK)[:150])
    assert [r["offset"] for r in inspect_path(path, MAIN)] == [8]


def test_inspect_rejects_another_networks_magic_naming_file_offset_and_both_magics(tmp_path):
    path = tmp_path / "blk_testnet.dat"
    path.write_bytes(framed(GENESIS_BLOCK, TESTNET.magic))
    with pytest.raises(ParseError) as info:
        list(inspect_path(path, MAIN))
    message = str(info.value)
    assert str(path) in message and "0b110907" in message and "f9beb4d9" in message
    assert info.value.offset == 0


def test_inspect_rejects_another_networks_magic_between_blocks(tmp_path):
    path = tmp_path / "blk_mixed.dat"
    path.write_bytes(framed(GENESIS_BLOCK) + framed(GENESIS_BLOCK, TESTNET.magic))
    with pytest.raises(ParseError) as info:
        list(inspect_path(path, MAIN))
    assert info.value.offset == 293


def test_inspect_rejects_another_networks_magic_after_junk(tmp_path):
    path = tmp_path / "blk_testnet_padded.dat"
    path.write_bytes(b"\x00" * 6 + framed(GENESIS_BLOCK, TESTNET.magic))
    with pytest.raises(ParseError, match="testnet magic 0b110907") as info:
        list(inspect_path(path, MAIN))
    assert info.value.offset == 6


def test_inspect_reads_the_framed_file_of_the_matching_network(tmp_path):
    path = tmp_path / "blk_testnet.dat"
    path.write_bytes(framed(GENESIS_BLOCK, TESTNET.magic))
    assert len(list(inspect_path(path, TESTNET))) == 1


def test_inspect_merkle_mismatch_names_file_offset_and_hash(tmp_path):
    tampered = GENESIS_BLOCK[:-80] + GENESIS_BLOCK[-80:].replace(
        bytes.fromhex("00f2052a01000000"), (5_100_000_000).to_bytes(8, "little")
    )
    path = tmp_path / "blk00004.dat"
    path.write_bytes(framed(tampered))
    with pytest.raises(MerkleError) as info:
        list(inspect_path(path, MAIN))
    message = str(info.value)
    assert str(path) in message and "byte offset 8" in message and GENESIS_HASH in message


def test_inspect_without_check_yields_a_block_whose_merkle_root_is_wrong(tmp_path):
    tampered = GENESIS_BLOCK[:-80] + GENESIS_BLOCK[-80:].replace(
        bytes.fromhex("00f2052a01000000"), (5_100_000_000).to_bytes(8, "little")
    )
    path = tmp_path / "tampered.raw"
    path.write_bytes(tampered)
    [record] = inspect_path(path, MAIN, check=False)
    assert record["total_output_sats"] == 5_100_000_000


def test_inspect_block_shorter_than_its_length_field_says_names_file_and_end_offset(tmp_path):
    # the length field says 200 bytes, so the block's transaction runs past them
    path = tmp_path / "blk00005.dat"
    path.write_bytes(MAIN.magic + (200).to_bytes(4, "little") + GENESIS_BLOCK)
    with pytest.raises(ParseError, match="truncated") as info:
        list(inspect_path(path, MAIN))
    assert str(path) in str(info.value)
    assert info.value.offset == 8 + 200


def test_inspect_reads_the_bip34_height_of_a_version_2_block(tmp_path):
    coinbase_script = bytes.fromhex("03400d03") + b"/test/"
    tx = (
        bytes.fromhex("01000000" + "01" + "00" * 32 + "ffffffff")
        + bytes([len(coinbase_script)])
        + coinbase_script
        + bytes.fromhex("ffffffff" + "01" + "0000000000000000" + "01" + "51" + "00000000")
    )
    header = bytes.fromhex("02000000") + GENESIS_HEADER[4:]
    path = tmp_path / "v2.raw"
    path.write_bytes(header + b"\x01" + tx)
    [record] = inspect_path(path, REGTEST, check=False)
    assert record["height"] == 200_000


def test_inspect_rejects_an_empty_file(tmp_path):
    path = tmp_path / "empty.raw"
    path.write_bytes(b"")
    with pytest.raises(ParseError, match="empty"):
        list(inspect_path(path, MAIN))


def test_inspect_accepts_a_network_name(tmp_path):
    path = tmp_path / "genesis.raw"
    path.write_bytes(GENESIS_BLOCK)
    assert [r["hash"] for r in inspect_path(path, "main")] == [GENESIS_HASH]

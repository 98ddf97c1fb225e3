"""Address encoders against published vectors (BIP173, BIP350, Bitcoin Core's key_io tests,
well-known mainnet addresses). Every expected string is typed from those sources."""

from __future__ import annotations

import pytest

from hodlflow.chain import address
from hodlflow.chain.address import base58check_encode, bech32_encode, hash160

GENESIS_PUBKEY = bytes.fromhex(
    "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb6"
    "49f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
)


def test_hash160_of_the_genesis_key_is_the_hash_inside_its_address():
    assert hash160(GENESIS_PUBKEY).hex() == "62e907b15cbf27d5425399ebf6f0fb50ebb88f18"


def test_hash160_of_empty_input_is_ripemd160_of_sha256_of_nothing():
    assert hash160(b"").hex() == "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"


@pytest.mark.parametrize(
    ("message", "digest"),
    [
        (b"", "9c1185a5c5e9fc54612808977ee8f548b2258d31"),
        (b"abc", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"),
        (b"message digest", "5d0689ef49d2fae572b881b123a85ffa21595f36"),
    ],
)
def test_pure_python_ripemd160_matches_the_specification_vectors(message, digest):
    assert address._ripemd160_py(message).hex() == digest


def test_base58check_version_0_gives_the_genesis_address():
    payload = bytes.fromhex("62e907b15cbf27d5425399ebf6f0fb50ebb88f18")
    assert base58check_encode(0x00, payload) == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


def test_base58check_version_0_gives_a_known_p2pkh_address():
    payload = bytes.fromhex("65a16059864a2fdbc7c99a4723a8395bc6f188eb")
    assert base58check_encode(0x00, payload) == "1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i"


def test_base58check_version_5_gives_a_known_p2sh_address():
    payload = bytes.fromhex("74f209f6ea907e2ea48f74fae05782ae8a665257")
    assert base58check_encode(0x05, payload) == "3CMNFxN1oHBc4R1EpboAL5yzHGgE611Xou"


def test_base58check_writes_one_leading_1_per_leading_zero_byte():
    # version 0 + 20 zero bytes: 21 zero bytes, then the checksum
    assert base58check_encode(0x00, bytes(20)) == "1111111111111111111114oLvT2"


def test_base58check_version_0x6f_gives_a_testnet_address():
    assert base58check_encode(0x6F, bytes(20)) == "mfWxJ45yp2SFn7UciZyNpvDKrzbhyfKrY8"


def test_bech32_encodes_witness_v0_20_byte_program_bip173():
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert bech32_encode("bc", 0, program) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def test_bech32_encodes_witness_v0_32_byte_program_bip173():
    program = bytes.fromhex("1863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262")
    assert (
        bech32_encode("tb", 0, program)
        == "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"
    )


def test_bech32m_encodes_witness_v1_40_byte_program_bip350():
    program = bytes.fromhex(
        "751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"
    )
    assert (
        bech32_encode("bc", 1, program)
        == "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y"
    )


def test_bech32m_encodes_witness_v16_two_byte_program_bip350():
    assert bech32_encode("bc", 16, bytes.fromhex("751e")) == "bc1sw50qgdz25j"


def test_bech32m_encodes_a_taproot_program_bip350():
    program = bytes.fromhex("000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433")
    assert (
        bech32_encode("tb", 1, program)
        == "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c"
    )


def test_bech32_rejects_witness_version_above_16():
    with pytest.raises(ValueError, match="witness version"):
        bech32_encode("bc", 17, bytes(20))


def test_bech32_rejects_programs_longer_than_40_bytes():
    with pytest.raises(ValueError, match="2..40 bytes"):
        bech32_encode("bc", 1, bytes(41))


def test_encoder_memo_is_emptied_when_full(monkeypatch):
    monkeypatch.setattr(address, "CACHE_LIMIT", 2)
    address.clear_address_caches()
    for n in range(5):
        base58check_encode(0x00, bytes([n]) * 20)
    assert len(address._b58_cache) <= 2
    assert base58check_encode(0x00, bytes(20)) == "1111111111111111111114oLvT2"

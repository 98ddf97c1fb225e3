"""Output script classification: one template rule per test, hand-typed scripts and
addresses from published vectors (BIP173, BIP350, BIP86, Bitcoin Core's key_io tests)."""

from __future__ import annotations

import pytest

from hodlflow.chain.network import MAIN, REGTEST, TESTNET
from hodlflow.chain.script import SCRIPT_TYPES, classify_script

# The generator point G of secp256k1: the public key of private key 1.
G_X = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
G_Y = "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"


def script(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.replace(" ", ""))


def test_p2pkh_gives_its_base58_address():
    s = script("76 a9 14 65a16059864a2fdbc7c99a4723a8395bc6f188eb 88 ac")
    assert classify_script(s, MAIN) == ("p2pkh", "1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i")


def test_p2pkh_on_testnet_uses_the_testnet_prefix():
    s = script("76 a9 14 0000000000000000000000000000000000000000 88 ac")
    assert classify_script(s, TESTNET) == ("p2pkh", "mfWxJ45yp2SFn7UciZyNpvDKrzbhyfKrY8")


def test_p2sh_gives_its_base58_address():
    s = script("a9 14 74f209f6ea907e2ea48f74fae05782ae8a665257 87")
    assert classify_script(s, MAIN) == ("p2sh", "3CMNFxN1oHBc4R1EpboAL5yzHGgE611Xou")


def test_p2wpkh_gives_its_bech32_address():
    s = script("00 14 751e76e8199196d454941c45d1b3a323f1433bd6")
    assert classify_script(s, MAIN) == ("p2wpkh", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


def test_p2wsh_gives_its_bech32_address():
    s = script("00 20 1863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262")
    assert classify_script(s, MAIN) == (
        "p2wsh",
        "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
    )


def test_p2tr_gives_its_bech32m_address():
    # BIP86's first mainnet key
    s = script("51 20 a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c")
    assert classify_script(s, MAIN) == (
        "p2tr",
        "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
    )


def test_pay_to_anchor_is_anchor_with_its_bech32m_address():
    assert classify_script(script("51 02 4e73"), MAIN) == ("anchor", "bc1pfeessrawgf")


def test_pay_to_anchor_on_testnet_and_regtest_uses_their_hrp():
    assert classify_script(script("51 02 4e73"), TESTNET) == ("anchor", "tb1pfees9rn5nz")
    assert classify_script(script("51 02 4e73"), REGTEST) == ("anchor", "bcrt1pfeesnyr2tx")


def test_witness_v16_program_is_witness_unknown_with_a_bech32m_address():
    assert classify_script(script("60 02 751e"), MAIN) == ("witness_unknown", "bc1sw50qgdz25j")


def test_witness_v1_program_of_40_bytes_is_witness_unknown():
    s = script(
        "51 28 751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"
    )
    assert classify_script(s, MAIN) == (
        "witness_unknown",
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
    )


def test_witness_v0_program_of_other_length_than_20_or_32_is_nonstandard():
    assert classify_script(script("00 10 751e76e8199196d454941c45d1b3a323"), MAIN) == (
        "nonstandard",
        None,
    )


def test_witness_program_of_41_bytes_is_not_a_witness_program():
    assert classify_script(script("51 29" + "00" * 41), MAIN) == ("nonstandard", None)


def test_p2pk_with_uncompressed_key_gives_the_p2pkh_address_of_the_key():
    s = script(
        "41 04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb6"
        "49f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f ac"
    )
    assert classify_script(s, MAIN) == ("p2pk", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")


def test_p2pk_with_compressed_key_gives_the_p2pkh_address_of_the_key():
    s = script(f"21 02{G_X} ac")
    assert classify_script(s, MAIN) == ("p2pk", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH")


def test_p2pk_of_uncompressed_generator_key_gives_its_own_address():
    s = script(f"41 04{G_X}{G_Y} ac")
    assert classify_script(s, MAIN) == ("p2pk", "1EHNa6Q4Jz2uvNExL497mE43ikXhwF6kZm")


def test_p2pk_with_hybrid_06_key_is_nonstandard():
    s = script(f"41 06{G_X}{G_Y} ac")
    assert classify_script(s, MAIN) == ("nonstandard", None)


def test_p2pk_with_33_byte_key_starting_04_is_nonstandard():
    s = script(f"21 04{G_X} ac")
    assert classify_script(s, MAIN) == ("nonstandard", None)


def test_bare_multisig_is_multisig_without_address():
    s = script(f"51 21 02{G_X} 21 03{G_X} 52 ae")
    assert classify_script(s, MAIN) == ("multisig", None)


def test_multisig_whose_n_differs_from_its_key_count_is_nonstandard():
    s = script(f"51 21 02{G_X} 21 03{G_X} 53 ae")
    assert classify_script(s, MAIN) == ("nonstandard", None)


def test_multisig_with_a_data_push_instead_of_a_key_is_nonstandard():
    # counterparty-style: a 28-byte push where a key should be
    s = script(f"51 21 02{G_X} 1c {'43' * 28} 52 ae")
    assert classify_script(s, MAIN) == ("nonstandard", None)


def test_multisig_requiring_more_signatures_than_keys_is_nonstandard():
    s = script(f"52 21 02{G_X} 51 ae")
    assert classify_script(s, MAIN) == ("nonstandard", None)


def test_op_return_with_data_is_op_return_without_address():
    assert classify_script(script("6a 04 deadbeef"), MAIN) == ("op_return", None)


def test_bare_op_return_is_op_return():
    assert classify_script(script("6a"), MAIN) == ("op_return", None)


def test_empty_script_is_nonstandard():
    assert classify_script(b"", MAIN) == ("nonstandard", None)


def test_p2pkh_shape_with_wrong_final_opcode_is_nonstandard():
    s = script("76 a9 14 65a16059864a2fdbc7c99a4723a8395bc6f188eb 88 ad")
    assert classify_script(s, MAIN) == ("nonstandard", None)


@pytest.mark.parametrize(
    "hex_text",
    [
        "76a91465a16059864a2fdbc7c99a4723a8395bc6f188eb88ac",
        "a91474f209f6ea907e2ea48f74fae05782ae8a66525787",
        "0014751e76e8199196d454941c45d1b3a323f1433bd6",
        "51024e73",
        "6a",
        "",
        "ff",
    ],
)
def test_every_script_type_returned_is_listed_in_script_types(hex_text):
    assert classify_script(bytes.fromhex(hex_text), MAIN)[0] in SCRIPT_TYPES

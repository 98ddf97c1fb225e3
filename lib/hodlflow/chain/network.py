"""Network parameters: magic bytes, address prefixes, genesis, subsidy schedule."""

from __future__ import annotations

from dataclasses import dataclass

# Satoshis per bitcoin (Bitcoin Core's COIN): every amount in the tables is an integer of these.
COIN = 100_000_000


@dataclass(frozen=True)
class Network:
    name: str
    magic: bytes  # the 4 bytes before every block in blk*.dat files
    p2pkh_prefix: int  # base58check version byte of P2PKH (and P2PK) addresses
    p2sh_prefix: int
    bech32_hrp: str
    genesis_hash: str  # display (big-endian) hex
    halving_interval: int
    pow_limit_bits: int

    def subsidy(self, height: int) -> int:
        """Block subsidy in satoshis: 50 BTC halved every ``halving_interval`` blocks."""
        halvings = height // self.halving_interval
        if halvings >= 64:
            return 0
        return (50 * COIN) >> halvings


MAIN = Network(
    name="main",
    magic=bytes.fromhex("f9beb4d9"),
    p2pkh_prefix=0x00,
    p2sh_prefix=0x05,
    bech32_hrp="bc",
    genesis_hash="000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    halving_interval=210_000,
    pow_limit_bits=0x1D00FFFF,
)
# Mainnet's genesis block (height 0), typed in from its published fields: a real block for
# checks that need one without a node (the fuzz run's default proof-of-work-checked source).
MAIN_GENESIS_HEADER = bytes.fromhex(
    "01000000"  # version 1
    + "00" * 32  # previous block: none
    + "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a"  # merkle root (LE)
    + "29ab5f49"  # time 1231006505
    + "ffff001d"  # bits 0x1d00ffff
    + "1dac2b7c"  # nonce 2083236893
)
MAIN_GENESIS_COINBASE_TEXT = (
    b"The Times 03/Jan/2009 Chancellor on brink of second bailout for banks"
)
MAIN_GENESIS_PUBKEY = (
    "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb6"
    "49f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
)
MAIN_GENESIS_COINBASE_SCRIPT = (
    bytes.fromhex("04ffff001d0104") + bytes([69]) + MAIN_GENESIS_COINBASE_TEXT
)
MAIN_GENESIS_TX = (
    bytes.fromhex("01000000" + "01" + "00" * 32 + "ffffffff")
    + bytes([len(MAIN_GENESIS_COINBASE_SCRIPT)])
    + MAIN_GENESIS_COINBASE_SCRIPT
    + bytes.fromhex(
        "ffffffff" + "01" + "00f2052a01000000" + "43" + "41" + MAIN_GENESIS_PUBKEY + "ac"
    )
    + bytes.fromhex("00000000")
)
MAIN_GENESIS_BLOCK = MAIN_GENESIS_HEADER + b"\x01" + MAIN_GENESIS_TX  # 285 bytes
TESTNET = Network(
    name="testnet",
    magic=bytes.fromhex("0b110907"),
    p2pkh_prefix=0x6F,
    p2sh_prefix=0xC4,
    bech32_hrp="tb",
    genesis_hash="000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    halving_interval=210_000,
    pow_limit_bits=0x1D00FFFF,
)
TESTNET4 = Network(
    name="testnet4",
    magic=bytes.fromhex("1c163f28"),
    p2pkh_prefix=0x6F,
    p2sh_prefix=0xC4,
    bech32_hrp="tb",
    genesis_hash="00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    halving_interval=210_000,
    pow_limit_bits=0x1D00FFFF,
)
SIGNET = Network(
    name="signet",
    magic=bytes.fromhex("0a03cf40"),
    p2pkh_prefix=0x6F,
    p2sh_prefix=0xC4,
    bech32_hrp="tb",
    genesis_hash="00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    halving_interval=210_000,
    pow_limit_bits=0x1E0377AE,
)
REGTEST = Network(
    name="regtest",
    magic=bytes.fromhex("fabfb5da"),
    p2pkh_prefix=0x6F,
    p2sh_prefix=0xC4,
    bech32_hrp="bcrt",
    genesis_hash="0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
    halving_interval=150,
    pow_limit_bits=0x207FFFFF,
)

NETWORKS: dict[str, Network] = {n.name: n for n in (MAIN, TESTNET, TESTNET4, SIGNET, REGTEST)}


def get_network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {sorted(NETWORKS)}") from None

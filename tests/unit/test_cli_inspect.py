"""`hodlflow inspect`: a user decodes a block by hand. Expected values come from the chain
builder (which serializes, independently of the parser) and from bitcoinlib's encoders."""

from __future__ import annotations

import json
import subprocess
import sys

from bitcoinlib.encoding import pubkeyhash_to_addr_base58

from hodlflow.chain.network import MAIN
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sim.builder import ChainBuilder, op_return, p2pkh

H = bytes.fromhex("e5" * 20)


def run_inspect(*args: str) -> tuple[int, list[dict], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "hodlflow.cli", "inspect", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    return proc.returncode, lines, proc.stderr


def two_blocks():
    b = ChainBuilder(
        MAIN, start_height=800_000, mine=False, bits=0x17034219, payout_script=p2pkh(H)
    )
    first = b.add_block(coinbase_tag=b"/ViaBTC/")
    pay = b.tx([first.coinbase.outpoint(0)], [(6 * 10**8, p2pkh(H)), (0, op_return(b"x"))])
    second = b.add_block([pay])
    return first, second, pay


def test_inspect_decodes_a_raw_block_with_its_bip34_height_and_totals(tmp_path):
    first, _, _ = two_blocks()
    path = tmp_path / "block.raw"
    path.write_bytes(first.raw)
    code, lines, _ = run_inspect(str(path))
    assert code == 0
    (rec,) = lines
    assert rec["hash"] == first.hash and rec["prev_hash"] == "00" * 32
    assert rec["height"] == 800_000 and rec["bits"] == "17034219" and rec["tx_count"] == 1
    assert rec["total_output_sats"] == 625_000_000  # 6.25 BTC subsidy at 800,000, no fees
    assert rec["size"] == len(first.raw)


def test_inspect_reads_a_hex_text_block(tmp_path):
    first, _, _ = two_blocks()
    path = tmp_path / "block.hex"
    path.write_text(first.raw.hex() + "\n")
    code, lines, _ = run_inspect(str(path))
    assert code == 0 and lines[0]["hash"] == first.hash


def test_inspect_txs_lists_every_transaction_of_a_blk_file(tmp_path):
    first, second, pay = two_blocks()
    write_blocks_dir(tmp_path / "blocks", [first.raw, second.raw], MAIN)
    code, lines, _ = run_inspect(str(tmp_path / "blocks" / "blk00000.dat"), "--txs")
    assert code == 0
    blocks = [x for x in lines if x["type"] == "block"]
    txs = [x for x in lines if x["type"] == "tx"]
    assert [b["hash"] for b in blocks] == [first.hash, second.hash]
    assert [t["txid"] for t in txs] == [first.coinbase_txid, second.coinbase_txid, pay.txid]
    spend = txs[-1]
    assert spend["inputs"] == [{"prev_txid": first.coinbase_txid, "prev_vout": 0}]
    assert spend["outputs"][0]["address"] == pubkeyhash_to_addr_base58(H)
    assert spend["outputs"][0]["value"] == 6 * 10**8
    assert (
        spend["outputs"][1]["script_type"] == "op_return" and spend["outputs"][1]["address"] is None
    )


def test_inspect_of_a_corrupt_block_exits_1_naming_the_merkle_root(tmp_path):
    _, second, _ = two_blocks()
    bad = bytearray(second.raw)
    bad[-6] ^= 0x01
    path = tmp_path / "bad.raw"
    path.write_bytes(bytes(bad))
    code, lines, err = run_inspect(str(path))
    assert code == 1 and lines == []
    assert "merkle root mismatch" in err and second.hash in err

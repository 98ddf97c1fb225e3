"""Check hodlflow's block parser on real mainnet blocks (not part of the test suite).

    BCL_DATA_DIR=/tmp/bcl python bench/verify_mainnet.py /path/to/mainnet-blocks [--no-bitcoinlib]

The folder is the shared set of real blocks with a README.md table (file, what, hash prefix).
For every block file it runs ``inspect_path`` (merkle roots checked) and checks:

* block hashes against the README's prefixes, tx counts and heights against its text;
* proof of work (hash at or below the target of its bits);
* every txid, output value and address against bitcoinlib's decoding, for the blocks where
  bitcoinlib's own txids give the header's merkle root (it computes wrong txids for a few
  P2SH-wrapped segwit transactions: there it is no oracle);
* the corrupted block in ``negative/`` raises MerkleError; the testnet block decodes as
  testnet, and inside testnet blk framing it is rejected when read as mainnet;
* the raw transaction's txid equals its file name.

It ends with the parse + address speed on the large raw blocks and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hodlflow.chain.address import bech32_encode, clear_address_caches, hash160
from hodlflow.chain.block import bits_to_target, parse_block, parse_tx
from hodlflow.chain.errors import MerkleError, ParseError
from hodlflow.chain.inspect import inspect_path
from hodlflow.chain.network import MAIN, TESTNET, Network
from hodlflow.chain.script import classify_script

FAILURES: list[str] = []


def fail(message: str) -> None:
    FAILURES.append(message)
    print(f"  FAIL {message}")


# --- the README table ------------------------------------------------------------------------


def read_readme(folder: Path) -> list[tuple[list[Path], str, list[str]]]:
    """Rows of the README table: (matching files, the "what" text, hash prefixes in order)."""
    rows = []
    for line in (folder / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        pattern = cells[0].strip("`").replace("…", "*")
        files = [Path(p) for p in sorted(glob.glob(str(folder / pattern)))]
        rows.append((files, cells[1], re.findall(r"[0-9a-f]{16,}", cells[2])))
    return rows


def expected_tx_counts(what: str) -> list[int]:
    """Counts written "(615 tx)", "(2012, 109 tx)" or "(2191 and 2508 tx)"."""
    match = re.search(r"(\d+(?: and \d+)*) tx\b", what)
    if not match:
        return []
    return [int(n) for n in re.findall(r"\d+", match.group(1))]


def expected_heights(what: str) -> list[int]:
    """Heights named after the format ("raw: 400000", "blk framing: 482253 then 482202")."""
    text = what.split(":", 1)[-1]
    text = text.split("(")[0].split("—")[0]
    if ".." in text:
        return []
    return [int(n) for n in re.findall(r"\b\d{2,7}\b", text)]


# --- bitcoinlib as an oracle ---------------------------------------------------------------


def _dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def independent_merkle(txids: list[str]) -> str:
    """Merkle root written apart from hodlflow's, to judge bitcoinlib's txids."""
    level = [bytes.fromhex(t)[::-1] for t in txids]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [_dsha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0][::-1].hex()


def compare_with_bitcoinlib(
    raw: bytes, records: list[dict], network: Network, tally: Counter, label: str
) -> str:
    """Compare one block's tx records with bitcoinlib; return a one-word verdict."""
    from bitcoinlib.blocks import Block as BclBlock

    bcl = BclBlock.parse_bytes(raw, parse_transactions=True)
    block_rec = records[0]
    txs = records[1:]
    if bcl.block_hash.hex() != block_rec["hash"]:
        fail(f"{label}: block hash {block_rec['hash']} vs bitcoinlib {bcl.block_hash.hex()}")
    if len(bcl.transactions) != len(txs):
        fail(f"{label}: bitcoinlib has {len(bcl.transactions)} txs, we have {len(txs)}")
        return "failed"
    bcl_txids = [t.txid for t in bcl.transactions]
    trusted = independent_merkle(bcl_txids) == block_rec["merkle_root"]
    if not trusted:
        # bitcoinlib is no oracle for this block's txids; its outputs are still compared
        # for the transactions whose txid it gets right (reported apart).
        bad = sum(1 for a, b in zip(bcl_txids, (t["txid"] for t in txs), strict=True) if a != b)
        tally["blocks where bitcoinlib's merkle root disagrees"] += 1
        print(
            f"    {label}: bitcoinlib's merkle root disagrees ({bad} of its txids differ): "
            f"only the transactions whose txid it gets right are compared"
        )
    for btx, tx in zip(bcl.transactions, txs, strict=True):
        if btx.txid != tx["txid"]:
            if trusted:
                fail(f"{label}: txid {tx['txid']} vs bitcoinlib {btx.txid}")
            else:
                tally["txs not compared: bitcoinlib's txid wrong"] += 1
            continue
        tally["txs compared"] += 1
        if len(btx.outputs) != len(tx["outputs"]):
            fail(f"{label}: tx {tx['txid']} output count differs")
            continue
        for bout, out in zip(btx.outputs, tx["outputs"], strict=True):
            tally["outputs compared"] += 1
            tally[f"outputs compared of type {out['script_type']}"] += 1
            if bout.value != out["value"]:
                fail(f"{label}: {tx['txid']}:{out['vout']} value {out['value']} vs {bout.value}")
            ours, theirs = out["address"], bout.address or None
            if ours is not None and theirs is not None:
                if ours == theirs:
                    tally["addresses equal"] += 1
                else:
                    fail(f"{label}: {tx['txid']}:{out['vout']} address {ours} vs {theirs}")
            elif ours is None and theirs is None:
                tally["no address on either side"] += 1
            elif ours is None and theirs == bitcoinlib_pseudo_address(bout.lock_script, network):
                # a pseudo-address: we give None for scripts without an address form
                tally[
                    f"bitcoinlib pseudo-address (P2WPKH of the first key) for our "
                    f"{out['script_type']} / its {bout.script_type}"
                ] += 1
            else:
                side = "only hodlflow" if theirs is None else "only bitcoinlib"
                fail(f"{label}: {tx['txid']}:{out['vout']} address from {side}: {ours or theirs}")
    return "agrees" if trusted else "agrees where its txids are right"


def bitcoinlib_pseudo_address(script: bytes, network: Network) -> str | None:
    """What bitcoinlib names a bare multisig (or multisig-shaped) script by: the P2WPKH
    address of its first key, an address that script does not pay to."""
    if len(script) > 36 and 0x51 <= script[0] <= 0x60 and script[1] in (33, 65):
        return bech32_encode(network.bech32_hrp, 0, hash160(script[2 : 2 + script[1]]))
    return None


# --- checks --------------------------------------------------------------------------------


def block_raw_bytes(path: Path, offset: int, size: int) -> bytes:
    if path.suffix == ".hex":
        return bytes.fromhex(path.read_text())
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(size)


def check_files(folder: Path, use_bitcoinlib: bool) -> None:
    tally: Counter = Counter()
    for files, what, prefixes in read_readme(folder):
        for path in files:
            if path.parent.name == "negative" or path.name.startswith("tx_"):
                continue
            started = time.perf_counter()
            records = list(inspect_path(path, MAIN, with_txs=True, check=True))
            elapsed = time.perf_counter() - started
            blocks = [r for r in records if r["type"] == "block"]
            tally["blocks"] += len(blocks)
            tally["txs"] += sum(r["tx_count"] for r in blocks)
            first, last = blocks[0]["hash"], blocks[-1]["hash"]
            print(
                f"{path.name}: {len(blocks)} block(s), {sum(r['tx_count'] for r in blocks)} tx, "
                f"merkle ok, {first[:16]}..{last[:16]}, {elapsed:.2f} s"
            )
            if ".." in what.split("(")[0] or " .. " in " ".join(prefixes):
                wanted = [(blocks[0], prefixes[0]), (blocks[-1], prefixes[-1])]
            else:
                if len(prefixes) != len(blocks):
                    fail(
                        f"{path.name}: README lists {len(prefixes)} hashes, file has {len(blocks)}"
                    )
                wanted = list(zip(blocks, prefixes, strict=False))
            for rec, prefix in wanted:
                if rec["hash"].startswith(prefix):
                    continue
                if rec["hash"].lstrip("0").startswith(prefix.lstrip("0")):
                    tally["README prefixes with a wrong count of leading zeros"] += 1
                    print(
                        f"    NOTE README prefix {prefix} has other leading zeros than "
                        f"{rec['hash']} (same significant digits; merkle root, proof of work "
                        f"and bitcoinlib's hash vouch for the hash)"
                    )
                else:
                    fail(f"{path.name}: block {rec['hash']} does not start with {prefix}")
            named = re.search(r"_([0-9a-f]{64})\.", path.name)
            if named and named.group(1) != blocks[0]["hash"]:
                fail(f"{path.name}: hash {blocks[0]['hash']} differs from the file name")
            for rec in blocks:
                if int(rec["hash"], 16) > bits_to_target(int(rec["bits"], 16)):
                    fail(f"{path.name}: block {rec['hash']} fails proof of work")
            counts = expected_tx_counts(what)
            if counts and counts != [r["tx_count"] for r in blocks]:
                fail(
                    f"{path.name}: README tx counts {counts}, parsed {[r['tx_count'] for r in blocks]}"
                )
            heights = expected_heights(what)
            read = [r["height"] for r in blocks]
            if heights and len(heights) == len(blocks):
                for rec, height in zip(blocks, heights, strict=True):
                    if rec["height"] is not None and rec["height"] != height:
                        fail(f"{path.name}: BIP34 height {rec['height']} but README says {height}")
                print(f"    heights: README {heights}, BIP34 {read}")
            if use_bitcoinlib:
                verdicts = Counter()
                by_block: dict[str, list[dict]] = {}
                for rec in records:
                    key = rec["hash"] if rec["type"] == "block" else rec["block_hash"]
                    by_block.setdefault(key, []).append(rec)
                for rec in blocks:
                    raw = block_raw_bytes(path, rec["offset"], rec["size"])
                    label = f"{path.name}@{rec['offset']}"
                    verdicts[
                        compare_with_bitcoinlib(raw, by_block[rec["hash"]], MAIN, tally, label)
                    ] += 1
                print(f"    bitcoinlib: {dict(verdicts)}")
    print("\nTotals:")
    for key, value in sorted(tally.items()):
        print(f"  {key}: {value}")


def check_negative(folder: Path, use_bitcoinlib: bool) -> None:
    print("\nNegative cases:")
    corrupted = folder / "negative" / "block413567_cillocoin_CORRUPTED.raw"
    try:
        list(inspect_path(corrupted, MAIN))
        fail(f"{corrupted.name}: no MerkleError")
    except MerkleError as exc:
        named = str(corrupted) in str(exc) and exc.block_hash in str(exc)
        print(f"  {corrupted.name}: MerkleError as expected (names file and hash: {named})")
        print(f"    {exc}")
        if not named:
            fail(f"{corrupted.name}: MerkleError does not name the file and hash")
    unchecked = next(iter(inspect_path(corrupted, MAIN, check=False)))
    if int(unchecked["hash"], 16) > bits_to_target(int(unchecked["bits"], 16)):
        fail(f"{corrupted.name}: proof of work should still pass")

    for testnet_block in sorted((folder / "negative").glob("testnet3_*.raw")):
        raw = testnet_block.read_bytes()
        as_testnet = list(inspect_path(testnet_block, TESTNET, with_txs=True))
        block = as_testnet[0]
        addresses = [o["address"] for r in as_testnet[1:] for o in r["outputs"] if o["address"]]
        prefixes = sorted({a[:3] if a.startswith("tb1") else a[0] for a in addresses})
        print(
            f"  {testnet_block.name}: as testnet: block {block['hash'][:16]}, BIP34 height "
            f"{block['height']}, address prefixes {prefixes}"
        )
        if not block["hash"].startswith(testnet_block.stem.split("_")[-1]):
            fail(f"{testnet_block.name}: hash {block['hash']} does not match the file name")
        if any(not (a[0] in "mn2" or a.startswith("tb1")) for a in addresses):
            fail(f"{testnet_block.name}: a non-testnet address")
        as_main = next(iter(inspect_path(testnet_block, MAIN)))
        print(
            f"    as a raw mainnet file it decodes too (a raw block carries no network): "
            f"height {as_main['height']}"
        )
        with tempfile.TemporaryDirectory() as tmp:
            framed = Path(tmp) / "blk_testnet.dat"
            framed.write_bytes(TESTNET.magic + len(raw).to_bytes(4, "little") + raw)
            try:
                list(inspect_path(framed, MAIN))
                fail(f"{testnet_block.name}: testnet framing read as mainnet without error")
            except ParseError as exc:
                print(f"    in testnet blk framing, read as mainnet: ParseError: {exc}")
            if len(list(inspect_path(framed, TESTNET))) != 1:
                fail(f"{testnet_block.name}: testnet framing not read as testnet")
        if use_bitcoinlib:
            # bitcoinlib 0.7.10 renders output addresses with mainnet prefixes even when
            # parse_bytes gets network="testnet", so compare the mainnet rendering.
            tally: Counter = Counter()
            as_main = list(inspect_path(testnet_block, MAIN, with_txs=True))
            verdict = compare_with_bitcoinlib(raw, as_main, MAIN, tally, testnet_block.name)
            print(f"    bitcoinlib (addresses in mainnet form): {verdict}, {dict(tally)}")

    for tx_file in sorted(folder.glob("tx_*.bin")):
        tx = parse_tx(tx_file.read_bytes(), where=tx_file.name)
        expected = tx_file.stem.split("_", 1)[1]
        witness_items = sum(len(i.witness) for i in tx.inputs)
        print(
            f"  {tx_file.name[:16]}..: txid {'matches' if tx.txid == expected else 'DIFFERS'}, "
            f"{tx.size} bytes, vsize {tx.vsize}, {witness_items} witness items"
        )
        if tx.txid != expected:
            fail(f"{tx_file.name}: txid {tx.txid}")


def measure_speed(folder: Path) -> None:
    print("\nSpeed, one core, parse + txids + every output's type and address, memos cleared:")
    for path in sorted(folder.glob("block5*_*.raw")) + sorted(folder.glob("block7*_*.raw")):
        raw = path.read_bytes()
        best = float("inf")
        n_tx = 0
        for _ in range(9):
            clear_address_caches()
            started = time.perf_counter()
            block = parse_block(raw)
            for tx in block.txs:
                for out in tx.outputs:
                    classify_script(out.script_pubkey, MAIN)
            best = min(best, time.perf_counter() - started)
            n_tx = len(block.txs)
        print(f"  {path.name[:12]}: {n_tx} tx in {best * 1e3:.1f} ms = {n_tx / best:,.0f} tx/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--no-bitcoinlib", action="store_true")
    args = parser.parse_args()
    use_bitcoinlib = not args.no_bitcoinlib
    if use_bitcoinlib:
        os.environ.setdefault("BCL_DATA_DIR", tempfile.mkdtemp(prefix="bcl-"))
    check_files(args.folder, use_bitcoinlib)
    check_negative(args.folder, use_bitcoinlib)
    measure_speed(args.folder)
    print(
        f"\n{'FAILED: ' + str(len(FAILURES)) + ' problem(s)' if FAILURES else 'ALL CHECKS PASSED'}"
    )
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

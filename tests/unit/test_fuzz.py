"""The fuzz run of the blk-file reader and block parser (`make fuzz` runs 10^5 cases): a few
thousand seeded cases of the simulated tiny chain end as the same blocks, fewer blocks, or
hodlflow's own error naming file and offset; and the two holes the run found stay closed (a
witness byte damaged was read as a new wtxid; a header whose bits encode no target, read without
the proof-of-work check, raised an error naming neither file nor offset)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from hodlflow import fuzz
from hodlflow.chain.blkfile import list_blk_files, read_block, read_xor_key, scan_records
from hodlflow.chain.block import check_merkle, check_witness_commitment, parse_block
from hodlflow.chain.errors import ChainError, PowError
from hodlflow.chain.network import MAIN
from hodlflow.config import CONF_DIR
from hodlflow.ingest.rows import block_rows
from hodlflow.sim.simulator import run_simulation


@pytest.fixture(scope="module")
def tiny_blocks(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("fuzz-sim")
    manifest = run_simulation(str(CONF_DIR / "scenarios" / "tiny.yaml"), str(out))
    return str(out / manifest["files"]["blocks"])


def test_a_seeded_run_ends_every_case_as_same_fewer_blocks_or_a_located_error(tmp_path):
    out = tmp_path / "fuzz"
    done = subprocess.run(
        [sys.executable, "-m", "hodlflow.fuzz", "--cases", "3000", "--seed", "7", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (out / "report.txt").read_text()
    assert report.startswith("3000 cases")
    header, *rows = [line.split() for line in report.splitlines()[2:12]]
    assert header[0] == "damage"
    counts = {r[0]: [int(x) for x in r[1:]] for r in rows}
    assert sorted(counts) == sorted([*fuzz.KINDS, "all"])
    assert sum(counts["all"]) == 3000
    # Each kind of damage was tried, and most damage is refused with a located error.
    error_col = header[1:].index("error")
    for kind in fuzz.KINDS:
        assert sum(counts[kind]) > 200, kind
    assert counts["all"][error_col] > 1500
    assert "failures: 0" in report
    assert json.loads((out / "failures.json").read_text()) == []


def test_the_same_seed_gives_the_same_report(tmp_path):
    def once(d):
        done = subprocess.run(
            [sys.executable, "-m", "hodlflow.fuzz", "--cases", "500", "--seed", "3", "--out", str(d)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return re.sub(r"in \d+ s", "", (d / "report.txt").read_text())

    assert once(tmp_path / "a") == once(tmp_path / "b")


def test_an_exception_of_another_kind_is_a_failure(tiny_blocks, monkeypatch):
    # The run must not hide what it looks for: a parser raising IndexError on damaged bytes.
    sources = fuzz.load_sources([tiny_blocks], [])
    real = fuzz.read_blk
    calls = []

    def flaky(data, name, src):
        calls.append(name)
        if len(calls) > 1:
            raise IndexError("index out of range")
        return real(data, name, src)

    monkeypatch.setattr(fuzz, "read_blk", flaky)
    (result,) = fuzz.run(sources, 1, seed=1, timeout=10)
    assert result[2].outcome == "failed: IndexError"


def _block_with_witness(tiny_blocks) -> tuple[bytes, object]:
    key = read_xor_key(tiny_blocks)
    for path in list_blk_files(tiny_blocks):
        with open(path, "rb") as fh:
            for rec in scan_records(path, MAIN, key, fh):
                raw = read_block(path, rec, key, fh)
                block = parse_block(raw)
                if any(tx.size != tx.stripped_size for tx in block.txs[1:]):
                    return raw, block
    raise AssertionError("the tiny chain has no block with witness data")


def test_a_damaged_witness_byte_is_refused_by_the_witness_commitment(tiny_blocks):
    raw, block = _block_with_witness(tiny_blocks)
    tx = next(t for t in block.txs[1:] if t.size != t.stripped_size)
    item = next(w for i in tx.inputs for w in i.witness if len(w) >= 8)
    at = raw.find(item)
    assert at > 0 and raw.find(item, at + 1) < 0  # the item's bytes appear once
    damaged = raw[: at + 4] + bytes([raw[at + 4] ^ 0x01]) + raw[at + 5 :]
    bad = parse_block(damaged)
    check_merkle(bad)  # the merkle root does not cover witnesses: it still matches
    assert [t.wtxid for t in bad.txs] != [t.wtxid for t in block.txs]
    with pytest.raises(
        ChainError, match=r"^blk00003.dat offset 8: witness commitment mismatch in block "
    ):
        list(block_rows(bad, 0, 0, MAIN, where="blk00003.dat offset 8"))
    check_witness_commitment(block)  # the undamaged block passes


def test_witness_data_without_a_commitment_is_refused(tiny_blocks):
    raw, block = _block_with_witness(tiny_blocks)
    coinbase = block.txs[0]
    coinbase.outputs = [o for o in coinbase.outputs if not o.script_pubkey.startswith(b"\x6a\x24")]
    with pytest.raises(ChainError, match="carry witness data but the coinbase has no witness"):
        check_witness_commitment(block, where="blk00001.dat", offset=1234)


def test_bits_without_a_target_name_the_file_and_offset(tiny_blocks):
    raw, _ = _block_with_witness(tiny_blocks)
    # bits 0x17800000: the sign bit with a zero mantissa, a zero target (no proof-of-work
    # check on a simulated chain, so the block reaches its rows).
    damaged = raw[:72] + (0x17800000).to_bytes(4, "little") + raw[76:]
    block = parse_block(damaged)
    with pytest.raises(PowError, match=r"^blk00002.dat offset 77: block .* zero target"):
        list(block_rows(block, 0, 0, MAIN, where="blk00002.dat offset 77"))


def test_damage_to_a_real_block_never_passes_as_a_new_block():
    # Mainnet's genesis block, read with the proof-of-work check as real blocks are: a changed
    # header field is refused, so no case ends as "header accepted".
    results = fuzz.run([fuzz.genesis_source()], 400, seed=5, timeout=10)
    outcomes = Counter(o.outcome for _, _, o in results)
    assert set(outcomes) <= {"same", "dropped", "error"}, outcomes
    refused = Counter(o.detail for _, _, o in results if o.outcome == "error")
    assert refused["PowError"] > 0 and refused["MerkleError"] > 0, refused

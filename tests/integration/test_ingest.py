"""Ingest of a blocks directory into the chain tables, against hand-computed rows.

The tiny chain (see tiny_chain.py) is stored shuffled across several xor-obfuscated blk files
with zero padding between records and a stale block; expected values are worked out by hand
and addresses come from bitcoinlib's encoders (an independent oracle).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest
from bitcoinlib.encoding import pubkeyhash_to_addr_base58, pubkeyhash_to_addr_bech32
from pyspark.sql import Row

from hodlflow import tables
from hodlflow.chain.network import REGTEST, TESTNET
from hodlflow.ingest.check import run_check
from hodlflow.ingest.job import ALL_TABLES, IngestError, run_ingest
from hodlflow.sim.blocksdir import write_blocks_dir
from tests.support.tiny_chain import COIN, HA, HB, HC, K0, build_tiny_chain

XOR_KEY = bytes.fromhex("0123456789abcdef")
ADDR_K0 = pubkeyhash_to_addr_bech32(K0, prefix="bcrt")
ADDR_HA = pubkeyhash_to_addr_base58(HA, prefix=b"\x6f")
ADDR_HB = pubkeyhash_to_addr_bech32(HB, prefix="bcrt")
ADDR_HC = pubkeyhash_to_addr_bech32(HC, prefix="bcrt")
DAY = dt.date(2023, 11, 14)  # 1_700_000_000 + up to 2400 s is still 2023-11-14 UTC


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_chain()


def write_dir(path, raws, **kw):
    kw.setdefault("xor_key", XOR_KEY)
    kw.setdefault("shuffle_seed", 5)
    kw.setdefault("max_file_bytes", 700)
    kw.setdefault("junk_between", True)
    write_blocks_dir(path, raws, REGTEST, **kw)
    return str(path)


def settings_for(make_settings, blocks_dir, tiny, **kw):
    return make_settings(
        network="regtest",
        ingest__blocks_dir=blocks_dir,
        ingest__start_hash=tiny.g.hash,
        **kw,
    )


def snapshot(spark, settings):
    """Every row of every chain table, sorted: the whole content to compare runs by."""
    out = {}
    for key in ALL_TABLES:
        df = tables.read_table(spark, settings, key)
        out[key] = sorted(tuple(r) for r in df.collect())
    return out


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory, tiny):
    """The tiny chain ingested once; tests below only read it."""
    from hodlflow.config import load_settings

    base = tmp_path_factory.mktemp("tiny")
    blocks_dir = write_dir(base / "blocks", tiny.stored)
    assert len([n for n in os.listdir(blocks_dir) if n.startswith("blk")]) >= 3
    settings = load_settings(
        "test",
        {
            "warehouse.path": str(base / "warehouse"),
            "warehouse.db_prefix": "tiny_",
            "network": "regtest",
            "ingest.blocks_dir": blocks_dir,
            "ingest.start_hash": tiny.g.hash,
        },
    )
    result = run_ingest(spark, settings, log=lambda _m: None)
    return settings, result


def test_ingest_reports_the_best_chain_and_skips_the_stale_block(ingested):
    _settings, result = ingested
    assert (result.start_height, result.end_height, result.blocks, result.transactions) == (
        0,
        3,
        4,
        6,
    )
    assert result.stale_blocks == 1


def test_blocks_table_holds_the_best_chain_with_fees_and_coinbase_values(spark, ingested, tiny):
    settings, _ = ingested
    rows = spark.table("tiny_chain.blocks").orderBy("height").select(
        "height", "hash", "prev_hash", "day", "tx_count", "subsidy_sats", "fees_sats",
        "coinbase_sats", "coinbase_tag", "bip34_height", "bits", "difficulty",
    ).collect()  # fmt: skip
    easy = 0x207FFFFF
    diff = 4.6565423739069247e-10  # 0xffff·256^26 / (0x7fffff·256^29), by hand
    assert rows == [
        Row(height=0, hash=tiny.g.hash, prev_hash="00" * 32, day=DAY, tx_count=1,
            subsidy_sats=50 * COIN, fees_sats=0, coinbase_sats=50 * COIN,
            coinbase_tag="/hodlflow/", bip34_height=0, bits=easy, difficulty=pytest.approx(diff)),
        Row(height=1, hash=tiny.b1.hash, prev_hash=tiny.g.hash, day=DAY, tx_count=1,
            subsidy_sats=50 * COIN, fees_sats=0, coinbase_sats=50 * COIN,
            coinbase_tag="/hodlflow/", bip34_height=1, bits=easy, difficulty=pytest.approx(diff)),
        Row(height=2, hash=tiny.b2.hash, prev_hash=tiny.b1.hash, day=DAY, tx_count=2,
            subsidy_sats=50 * COIN, fees_sats=10_000, coinbase_sats=50 * COIN + 10_000,
            coinbase_tag="/hodlflow/", bip34_height=2, bits=easy, difficulty=pytest.approx(diff)),
        Row(height=3, hash=tiny.b3.hash, prev_hash=tiny.b2.hash, day=DAY, tx_count=2,
            subsidy_sats=50 * COIN, fees_sats=5_000, coinbase_sats=50 * COIN + 5_000,
            coinbase_tag="/hodlflow/", bip34_height=3, bits=easy, difficulty=pytest.approx(diff)),
    ]  # fmt: skip


def test_transactions_carry_input_and_output_sums_and_fees(spark, ingested, tiny):
    rows = spark.table("tiny_chain.transactions").orderBy("height", "tx_index").select(
        "txid", "height", "tx_index", "is_coinbase", "input_count", "output_count",
        "input_sats", "output_sats", "fee_sats", "has_witness",
    ).collect()  # fmt: skip
    a, c = tiny.a.txid, tiny.c.txid
    assert [tuple(r) for r in rows] == [
        (tiny.g.coinbase_txid, 0, 0, True, 1, 1, 0, 50 * COIN, 0, False),
        (tiny.b1.coinbase_txid, 1, 0, True, 1, 1, 0, 50 * COIN, 0, False),
        # B2 holds a segwit tx: its coinbase carries the witness reserved value.
        (tiny.b2.coinbase_txid, 2, 0, True, 1, 2, 0, 50 * COIN + 10_000, 0, True),
        (a, 2, 1, False, 1, 3, 50 * COIN, 50 * COIN - 10_000, 10_000, True),
        (tiny.b3.coinbase_txid, 3, 0, True, 1, 1, 0, 50 * COIN + 5_000, 0, False),
        (c, 3, 1, False, 1, 1, 10 * COIN, 10 * COIN - 5_000, 5_000, False),
    ]


def test_outputs_have_script_types_and_addresses(spark, ingested, tiny):
    rows = spark.table("tiny_chain.outputs").orderBy("height", "tx_index", "vout").select(
        "txid", "vout", "height", "value_sats", "script_type", "address"
    ).collect()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        (tiny.g.coinbase_txid, 0, 0, 50 * COIN, "p2wpkh", ADDR_K0),
        (tiny.b1.coinbase_txid, 0, 1, 50 * COIN, "p2wpkh", ADDR_K0),
        (tiny.b2.coinbase_txid, 0, 2, 50 * COIN + 10_000, "p2wpkh", ADDR_K0),
        (tiny.b2.coinbase_txid, 1, 2, 0, "op_return", None),  # the witness commitment
        (tiny.a.txid, 0, 2, 10 * COIN, "p2pkh", ADDR_HA),
        (tiny.a.txid, 1, 2, 0, "op_return", None),
        (tiny.a.txid, 2, 2, 40 * COIN - 10_000, "p2wpkh", ADDR_HB),
        (tiny.b3.coinbase_txid, 0, 3, 50 * COIN + 5_000, "p2wpkh", ADDR_K0),
        (tiny.c.txid, 0, 3, 10 * COIN - 5_000, "p2wsh", ADDR_HC),
    ]


def test_inputs_resolve_the_spent_output(spark, ingested, tiny):
    rows = spark.table("tiny_chain.inputs").orderBy("height").select(
        "txid", "vin", "height", "day", "prev_txid", "prev_vout", "value_sats", "script_type",
        "address", "created_height", "created_day", "created_is_coinbase",
    ).collect()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        (
            tiny.a.txid,
            0,
            2,
            DAY,
            tiny.g.coinbase_txid,
            0,
            50 * COIN,
            "p2wpkh",
            ADDR_K0,
            0,
            DAY,
            True,
        ),
        (tiny.c.txid, 0, 3, DAY, tiny.a.txid, 0, 10 * COIN, "p2pkh", ADDR_HA, 2, DAY, False),
    ]


def test_unspent_set_is_every_spendable_output_not_spent(spark, ingested, tiny):
    rows = spark.table("tiny_chain.unspent").select("txid", "vout", "value_sats").collect()
    assert sorted(tuple(r) for r in rows) == sorted([
        (tiny.b1.coinbase_txid, 0, 50 * COIN),
        (tiny.b2.coinbase_txid, 0, 50 * COIN + 10_000),
        (tiny.b3.coinbase_txid, 0, 50 * COIN + 5_000),
        (tiny.a.txid, 2, 40 * COIN - 10_000),
        (tiny.c.txid, 0, 10 * COIN - 5_000),
    ])  # fmt: skip
    assert sum(r.value_sats for r in rows) == 200 * COIN


def test_tables_are_in_the_catalog_with_day_partitions_and_column_comments(spark, ingested):
    detail = spark.sql("DESCRIBE DETAIL tiny_chain.outputs").first()
    assert detail.format == "delta" and detail.partitionColumns == ["day"]
    comments = {
        r.col_name: r.comment for r in spark.sql("DESCRIBE TABLE tiny_chain.inputs").collect()
    }
    assert "spent output" in comments["value_sats"]


def test_check_passes_on_a_correct_chain(spark, ingested):
    settings, _ = ingested
    report = run_check(spark, settings)
    assert report.ok, report.text()


def test_check_fails_naming_the_mismatch_when_an_unspent_output_goes_missing(spark, ingested, tiny):
    settings, _ = ingested
    loc = tables.table_location(settings, "chain.unspent")
    version = tables.table_version(spark, loc)
    spark.sql(f"DELETE FROM tiny_chain.unspent WHERE txid = '{tiny.c.txid}'")
    try:
        report = run_check(spark, settings)
        assert not report.ok
        assert "supply" in report.failures[0] and "off by -999,995,000 sat" in report.failures[0]
    finally:
        spark.sql(f"RESTORE TABLE tiny_chain.unspent TO VERSION AS OF {version}")


def test_reingesting_a_range_gives_identical_tables(spark, ingested):
    settings, _ = ingested
    before = snapshot(spark, settings)
    result = run_ingest(spark, settings, start_height=2, log=lambda _m: None)
    assert (result.start_height, result.end_height) == (2, 3)
    assert snapshot(spark, settings) == before


def test_ingest_resumes_after_the_last_height(spark, make_settings, tmp_path, tiny, ingested):
    full_settings, _ = ingested
    blocks_dir = write_dir(tmp_path / "blocks", tiny.stored)
    settings = settings_for(make_settings, blocks_dir, tiny)
    first = run_ingest(spark, settings, end_height=1, log=lambda _m: None)
    second = run_ingest(spark, settings, log=lambda _m: None)
    assert (first.end_height, second.start_height, second.end_height) == (1, 2, 3)
    assert snapshot(spark, settings) == snapshot(spark, full_settings)


def test_later_runs_scan_only_the_newest_and_changed_blk_files(
    spark, make_settings, tmp_path, tiny, ingested
):
    full_settings, _ = ingested
    best = [x.raw for x in tiny.best]  # heights 0..3
    plain = {"xor_key": None, "shuffle_seed": None, "junk_between": False}
    blocks_dir = write_dir(
        tmp_path / "blocks", best[:3], max_file_bytes=1, **plain
    )  # a block per file
    assert sorted(os.listdir(blocks_dir)) == ["blk00000.dat", "blk00001.dat", "blk00002.dat"]
    settings = settings_for(make_settings, blocks_dir, tiny)
    first = run_ingest(spark, settings, log=lambda _m: None)
    assert (first.files_scanned, first.end_height) == (3, 2)
    # Nothing new: only the newest file (the one the node appends to) is read again.
    assert run_ingest(spark, settings, log=lambda _m: None).files_scanned == 1
    # Block 3 lands in a new file, now the newest; blk00002's headers come from the cache.
    write_dir(tmp_path / "more", [best[3]], **plain)
    shutil.copy(tmp_path / "more" / "blk00000.dat", os.path.join(blocks_dir, "blk00003.dat"))
    third = run_ingest(spark, settings, log=lambda _m: None)
    assert (third.files_scanned, third.start_height, third.end_height) == (1, 3, 3)
    # A file that changed (a reindex; here the stale block appended to it) is scanned again.
    with open(os.path.join(blocks_dir, "blk00000.dat"), "ab") as fh:
        fh.write(REGTEST.magic + len(tiny.stale.raw).to_bytes(4, "little") + tiny.stale.raw)
    fourth = run_ingest(spark, settings, log=lambda _m: None)
    assert (fourth.files_scanned, fourth.blocks, fourth.stale_blocks) == (2, 0, 1)
    assert snapshot(spark, settings) == snapshot(spark, full_settings)


def test_a_reorg_in_the_blocks_dir_rolls_back_and_equals_a_fresh_ingest(
    spark, make_settings, tmp_path, tiny
):
    blocks_dir = write_dir(
        tmp_path / "blocks", tiny.stored, xor_key=None, shuffle_seed=None, junk_between=False
    )
    settings = settings_for(make_settings, blocks_dir, tiny)
    run_ingest(spark, settings, log=lambda _m: None)
    # A longer branch on the stale block: heights 3 and 4 beat B2/B3 — A and C vanish.
    b = tiny.builder
    s3 = b.add_block(parent=tiny.stale.hash, coinbase_tag=b"/fork/")
    s4 = b.add_block(parent=s3.hash, coinbase_tag=b"/fork/")
    extra = tmp_path / "extra"
    write_blocks_dir(extra, [s3.raw, s4.raw], REGTEST)
    shutil.copy(extra / "blk00000.dat", os.path.join(blocks_dir, "blk00009.dat"))
    result = run_ingest(spark, settings, log=lambda _m: None)
    assert (result.start_height, result.end_height) == (2, 4)
    fresh_dir = write_dir(
        tmp_path / "fresh", [tiny.g.raw, tiny.b1.raw, tiny.stale.raw, s3.raw, s4.raw]
    )
    fresh = settings_for(make_settings, fresh_dir, tiny)
    run_ingest(spark, fresh, log=lambda _m: None)
    assert snapshot(spark, settings) == snapshot(spark, fresh)
    unspent = {
        (r.txid, r.vout) for r in tables.read_table(spark, settings, "chain.unspent").collect()
    }
    assert (tiny.g.coinbase_txid, 0) in unspent  # spent by A on the old branch only


def test_a_block_still_being_written_ends_the_file_without_error(
    spark, make_settings, tmp_path, tiny
):
    blocks_dir = write_dir(tmp_path / "blocks", [x.raw for x in tiny.best], xor_key=None,
                           shuffle_seed=None, junk_between=False, max_file_bytes=10**6)  # fmt: skip
    with open(os.path.join(blocks_dir, "blk00000.dat"), "ab") as fh:
        fh.write(REGTEST.magic + (5000).to_bytes(4, "little") + tiny.stale.raw[:100])
    settings = settings_for(make_settings, blocks_dir, tiny)
    result = run_ingest(spark, settings, log=lambda _m: None)
    assert (result.end_height, result.blocks) == (3, 4)


# ------------------------------------------------------------------------------ bad input


def ingest_error(spark, settings) -> str:
    with pytest.raises((IngestError, ValueError)) as info:
        run_ingest(spark, settings, log=lambda _m: None)
    return str(info.value)


def test_wrong_network_magic_names_the_file_and_offset(spark, make_settings, tmp_path, tiny):
    path = tmp_path / "blocks"
    write_blocks_dir(path, [x.raw for x in tiny.best], TESTNET)
    settings = settings_for(make_settings, str(path), tiny)
    msg = ingest_error(spark, settings)
    assert "blk00000.dat" in msg and "offset 0" in msg and "0b110907" in msg and "testnet" in msg


def test_wrong_xor_key_names_the_file_and_the_key(spark, make_settings, tmp_path, tiny):
    blocks_dir = write_dir(tmp_path / "blocks", tiny.stored)
    with open(os.path.join(blocks_dir, "xor.dat"), "wb") as fh:
        fh.write(bytes.fromhex("ffeeddccbbaa9988"))
    msg = ingest_error(spark, make_settings(network="regtest", ingest__blocks_dir=blocks_dir))
    assert "blk00000.dat" in msg and "xor key" in msg


def test_missing_xor_key_names_the_file(spark, make_settings, tmp_path, tiny):
    blocks_dir = write_dir(tmp_path / "blocks", tiny.stored)
    os.remove(os.path.join(blocks_dir, "xor.dat"))
    msg = ingest_error(spark, make_settings(network="regtest", ingest__blocks_dir=blocks_dir))
    assert "blk00000.dat" in msg and "no xor key" in msg


def test_empty_blocks_directory_is_a_clear_error(spark, make_settings, tmp_path):
    (tmp_path / "blocks").mkdir()
    msg = ingest_error(spark, make_settings(ingest__blocks_dir=str(tmp_path / "blocks")))
    assert "holds no blk*.dat files" in msg


def test_unreadable_blk_file_is_a_clear_error(spark, make_settings, tmp_path, tiny):
    blocks_dir = write_dir(tmp_path / "blocks", tiny.stored, xor_key=None)
    os.mkdir(os.path.join(blocks_dir, "blk00042.dat"))  # a directory where a file should be
    msg = ingest_error(spark, settings_for(make_settings, blocks_dir, tiny))
    assert "blk00042.dat" in msg


def test_corrupt_block_fails_with_the_merkle_root_and_leaves_tables_as_they_were(
    spark, make_settings, tmp_path, tiny
):
    plain = [x.raw for x in tiny.best]
    blocks_dir = write_dir(
        tmp_path / "blocks", plain[:2], xor_key=None, shuffle_seed=None, junk_between=False
    )
    settings = settings_for(make_settings, blocks_dir, tiny)
    run_ingest(spark, settings, log=lambda _m: None)
    before = snapshot(spark, settings)
    bad = bytearray(tiny.b2.raw)
    bad[tiny.b2.raw.index(b"hodlflow")] ^= 0xFF  # inside A's OP_RETURN output: header intact
    extra = tmp_path / "extra"
    write_blocks_dir(extra, [bytes(bad), plain[3]], REGTEST)
    shutil.copy(extra / "blk00000.dat", os.path.join(blocks_dir, "blk00001.dat"))
    msg = ingest_error(spark, settings)
    assert "merkle root mismatch" in msg and tiny.b2.hash in msg and "blk00001.dat" in msg
    assert "height 2" in msg
    assert snapshot(spark, settings) == before


def test_input_spending_an_unknown_output_names_the_tx_and_leaves_tables_as_they_were(
    spark, make_settings, tmp_path
):
    from hodlflow.sim.builder import ChainBuilder, Spend, p2pkh

    b = ChainBuilder(REGTEST, start_time=1_700_000_000)
    g = b.add_block()
    b1 = b.add_block()
    ghost = b.tx([Spend("ab" * 32, 7, value=COIN)], [(COIN - 1000, p2pkh(HA))], allow_unknown=True)
    b2 = b.add_block([ghost])
    blocks_dir = write_dir(tmp_path / "blocks", [g.raw, b1.raw, b2.raw], xor_key=None)
    settings = make_settings(
        network="regtest", ingest__blocks_dir=blocks_dir, ingest__start_hash=g.hash
    )
    run_ingest(spark, settings, end_height=1, log=lambda _m: None)
    before = snapshot(spark, settings)
    msg = ingest_error(spark, settings)
    assert ghost.txid in msg and "height 2" in msg and ("ab" * 32 + ":7") in msg
    assert snapshot(spark, settings) == before


def test_a_step_that_dies_midway_is_rolled_back_by_the_next_run(
    spark, make_settings, tmp_path, tiny, monkeypatch
):
    blocks_dir = write_dir(tmp_path / "blocks", tiny.stored)
    settings = settings_for(make_settings, blocks_dir, tiny)
    run_ingest(spark, settings, end_height=1, log=lambda _m: None)
    before = snapshot(spark, settings)
    # The process "dies" after two of the five tables were written: the journal stays behind.
    calls = {"n": 0}
    real = tables.append

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(tables, "append", dying)
    # A dead process runs no clean-up: no restore, and its journal stays.
    monkeypatch.setattr(tables, "restore_versions", lambda *_a, **_k: None)
    monkeypatch.setattr(tables, "_drop_journal", lambda *_a, **_k: None)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(spark, settings, log=lambda _m: None)
    monkeypatch.undo()
    half = snapshot(spark, settings)
    assert half["chain.blocks"] != before["chain.blocks"]  # really half-written
    assert tables.recover(spark, settings) == ["ingest 2..3"]
    assert snapshot(spark, settings) == before

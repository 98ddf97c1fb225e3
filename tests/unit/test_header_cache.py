"""The header cache's entry format and identity (hodlflow.ingest.header_cache), by hand."""

from __future__ import annotations

from hodlflow.ingest.best_chain import HeaderLoc
from hodlflow.ingest.header_cache import cache_dir, decode, encode, entry_name

A = HeaderLoc("00" * 31 + "0a", "11" * 32, 0x1D00FFFF, 1_231_006_505, 3, 8, 285)
B = HeaderLoc("ab" * 32, "00" * 31 + "0a", 0x17034219, 1_700_000_000, 3, 301, 1_234_567)


def test_an_entry_reads_back_its_headers_under_the_file_index_of_this_run():
    raw = encode([A, B])
    # magic line, a 4-byte count, then 32 + 32 + 4 + 4 + 8 + 4 bytes per header
    assert len(raw) == len(b"hodlflow-blk-headers-1\n") + 4 + 2 * 84
    got = decode(raw, 7)
    assert got == [
        HeaderLoc(A.hash, A.prev_hash, A.bits, A.time, 7, 8, 285),
        HeaderLoc(B.hash, B.prev_hash, B.bits, B.time, 7, 301, 1_234_567),
    ]
    assert decode(encode([]), 0) == []


def test_a_cut_short_or_foreign_entry_is_not_an_entry():
    raw = encode([A, B])
    assert decode(raw[:-1], 0) is None
    assert decode(raw + b"\0", 0) is None
    assert decode(b"PK\x03\x04" + raw[4:], 0) is None
    assert decode(b"", 0) is None


def test_an_entry_is_named_by_the_file_its_length_and_its_time():
    assert entry_name("hdfs://nn/btc/blocks/blk00012.dat", 134_217_728, 1_700_000_000_123) == (
        "blk00012.dat.134217728.1700000000123.hdr"
    )
    assert entry_name("/data/blocks/blk00012.dat", 1, 2) == "blk00012.dat.1.2.hdr"


def test_the_cache_is_kept_apart_per_directory_network_key_and_proof_of_work_check():
    base = cache_dir("/wh/", "/data/blocks", "main", None, True)
    assert base.startswith("/wh/_hodlflow/blk_headers/") and len(base.rsplit("/", 1)[1]) == 16
    assert cache_dir("/wh", "/data/blocks/", "main", None, True) == base
    others = {
        cache_dir("/wh", "/data/other", "main", None, True),
        cache_dir("/wh", "/data/blocks", "testnet", None, True),
        cache_dir("/wh", "/data/blocks", "main", bytes(range(8)), True),
        cache_dir("/wh", "/data/blocks", "main", None, False),
    }
    assert len(others) == 4 and base not in others

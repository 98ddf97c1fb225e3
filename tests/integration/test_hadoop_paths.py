"""Settings paths on a Hadoop filesystem that Python cannot open: the blocks directory, the pool
list, the label seeds and the price file read through Hadoop.

The filesystem is Hadoop's own ViewFileSystem (``viewfs://``, in hadoop-common, on Spark's
classpath) mounted on a local directory: a real Hadoop ``FileSystem`` that Python's ``open``
does not understand, so a passing read went through Hadoop, exactly as ``hdfs://`` or
``s3a://`` would with their connectors. Expected values: the same files read from their local
paths, and the tiny chain's hand-checked ingest (test_ingest.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from pathlib import Path

import pytest

from hodlflow.entities.labels import LabelsError, load_label_seeds, load_pools
from hodlflow.ingest.job import IngestError, run_ingest
from hodlflow.metrics.prices import PricesError, read_prices
from hodlflow.paths import PathError
from tests.integration.test_ingest import settings_for, snapshot, write_dir
from tests.support.tiny_chain import build_tiny_chain

ROOT = Path(__file__).resolve().parents[2]
_mounts = itertools.count()


def viewfs(spark, target: Path) -> str:
    """``target`` (a local directory) as a ``viewfs://`` URI with a mount table of its own (the
    Hadoop FileSystem cache keys on the authority, so each mount is a new filesystem)."""
    name = f"hf{next(_mounts)}"
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    conf.set(f"fs.viewfs.mounttable.{name}.link./m", target.resolve().as_uri())
    return f"viewfs://{name}/m"


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_chain()


def test_ingest_of_a_blocks_dir_through_hadoop_equals_the_local_ingest(
    spark, make_settings, tmp_path, tiny
):
    # xor-obfuscated, shuffled over several files, zero padding between records, a stale block.
    blocks = Path(write_dir(tmp_path / "blocks", tiny.stored))
    (blocks / "index").mkdir()  # Bitcoin Core's LevelDB folder sits beside the blk files
    local = settings_for(make_settings, str(blocks), tiny)
    remote = settings_for(make_settings, viewfs(spark, blocks), tiny)
    assert not os.path.exists(remote.ingest.blocks_dir)  # Python cannot open it, Hadoop can
    a = run_ingest(spark, local, log=lambda _m: None)
    b = run_ingest(spark, remote, log=lambda _m: None)
    # By hand (test_ingest.py): heights 0..3, 4 blocks, 6 transactions, one stale block.
    assert (b.start_height, b.end_height, b.blocks, b.transactions, b.stale_blocks) == (
        0,
        3,
        4,
        6,
        1,
    )
    assert (a.blocks, a.transactions) == (b.blocks, b.transactions)
    assert snapshot(spark, remote) == snapshot(spark, local)
    # The next run reads back the headers of every file but the newest, instead of reading
    # every blk file whole again.
    n_files = len([n for n in os.listdir(blocks) if n.startswith("blk")])
    assert b.files_scanned == n_files
    again = run_ingest(spark, remote, log=lambda _m: None)
    assert (again.files_scanned, again.blocks) == (1, 0)
    assert snapshot(spark, remote) == snapshot(spark, local)


def test_a_wrong_xor_key_through_hadoop_names_the_file_uri(spark, make_settings, tmp_path, tiny):
    blocks = Path(write_dir(tmp_path / "blocks", tiny.stored))
    (blocks / "xor.dat").write_bytes(bytes.fromhex("ffeeddccbbaa9988"))
    uri = viewfs(spark, blocks)
    with pytest.raises((IngestError, ValueError)) as info:
        run_ingest(spark, settings_for(make_settings, uri, tiny), log=lambda _m: None)
    assert f"{uri}/blk00000.dat" in str(info.value) and "xor key" in str(info.value)


def test_a_missing_blocks_dir_through_hadoop_names_the_setting(
    spark, make_settings, tmp_path, tiny
):
    uri = viewfs(spark, tmp_path) + "/no-such-dir"
    with pytest.raises(
        PathError, match=r"ingest\.blocks_dir='viewfs://.*/no-such-dir': cannot list"
    ):
        run_ingest(spark, settings_for(make_settings, uri, tiny), log=lambda _m: None)


def test_a_scheme_without_its_connector_names_the_setting(spark, make_settings, tiny):
    # hadoop-aws is not on this classpath: s3a:// has no FileSystem here.
    settings = settings_for(make_settings, "s3a://bucket/blocks", tiny)
    with pytest.raises(
        PathError, match=r"ingest\.blocks_dir='s3a://bucket/blocks': Hadoop cannot open"
    ):
        run_ingest(spark, settings, log=lambda _m: None)
    with pytest.raises(PathError, match=r"price file='s3a://bucket/prices.csv'.*S3AFileSystem"):
        read_prices("s3a://bucket/prices.csv")


def test_pools_label_seeds_and_prices_through_hadoop_equal_the_local_files(spark, tmp_path):
    shutil.copy(ROOT / "conf" / "pools.json", tmp_path / "pools.json")
    shutil.copy(ROOT / "conf" / "labels" / "exchanges.csv", tmp_path / "exchanges.csv")
    (tmp_path / "prices.csv").write_text(
        "day,close_usd\n2024-04-20,64000.5\n2024-04-21,65010\n2024-04-22,66000\n"
    )
    uri = viewfs(spark, tmp_path)

    def pools(path):
        return [(p.id, p.name, p.addresses, [t.pattern for t in p.tags]) for p in load_pools(path)]

    assert len(pools(f"{uri}/pools.json")) > 10
    assert pools(f"{uri}/pools.json") == pools(str(tmp_path / "pools.json"))
    assert load_label_seeds(f"{uri}/exchanges.csv") == load_label_seeds(
        str(tmp_path / "exchanges.csv")
    )
    assert read_prices(f"{uri}/prices.csv") == [
        (dt.date(2024, 4, 20), 64000.5),
        (dt.date(2024, 4, 21), 65010.0),
        (dt.date(2024, 4, 22), 66000.0),
    ]


def test_bad_files_through_hadoop_name_the_uri_and_the_line(spark, tmp_path):
    (tmp_path / "prices.csv").write_text("day,close_usd\n2024-04-20,64000\n2024-04-20,65000\n")
    (tmp_path / "labels.csv").write_text("address,label\nbc1qexample,\n")
    uri = viewfs(spark, tmp_path)
    with pytest.raises(PricesError, match=rf"{uri}/prices.csv: line 3"):
        read_prices(f"{uri}/prices.csv")
    with pytest.raises(LabelsError, match=rf"{uri}/labels.csv.*line 2"):
        load_label_seeds(f"{uri}/labels.csv")
    with pytest.raises(LabelsError, match=rf"{uri}/missing.json: cannot read: .*FileNotFound"):
        load_pools(f"{uri}/missing.json")

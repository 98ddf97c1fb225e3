"""Path settings: plain paths and file:// URIs where Python opens files itself, a clear error
naming the setting for other schemes; Hadoop URIs left to Spark where Spark opens them."""

from __future__ import annotations

import pytest

from hodlflow.config import load_settings, read_overlay
from hodlflow.entities.labels import load_label_seeds
from hodlflow.metrics.prices import read_prices
from hodlflow.paths import PathError, local_path, scheme
from hodlflow.spark import metastore_dir


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("./warehouse", None),
        ("/data/blocks", None),
        ("file:///data/blocks", "file"),
        ("FILE:/data", "file"),
        ("s3a://bucket/wh", "s3a"),
        ("hdfs://nn:8020/wh", "hdfs"),
    ],
)
def test_scheme_of_a_plain_path_is_none_and_of_a_uri_its_lower_case_name(path, expected):
    assert scheme(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/data/blocks", "/data/blocks"),
        ("relative/blocks", "relative/blocks"),
        ("file:///data/blocks", "/data/blocks"),
        ("file:/data/blocks", "/data/blocks"),
        ("file://localhost/data/blocks", "/data/blocks"),
        ("file:///data/my%20blocks", "/data/my blocks"),
    ],
)
def test_local_path_turns_a_file_uri_into_its_path(path, expected):
    assert local_path(path, "ingest.blocks_dir") == expected


@pytest.mark.parametrize("path", ["s3a://bucket/blocks", "hdfs://nn:8020/blocks"])
def test_local_path_refuses_other_schemes_naming_the_setting(path):
    with pytest.raises(PathError, match=r"ingest\.blocks_dir=.*not supported here"):
        local_path(path, "ingest.blocks_dir")


def test_local_path_refuses_a_file_uri_with_a_host():
    with pytest.raises(PathError, match=r"names a path, not a host \('node1'\)"):
        local_path("file://node1/data/blocks", "ingest.blocks_dir")


def test_driver_read_files_accept_a_file_uri(tmp_path):
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("address,label\nbc1qexample,SomeExchange\n")
    prices = tmp_path / "prices.csv"
    prices.write_text("day,close_usd\n2025-03-01,96000\n2025-03-02,95000.5\n")

    overlay = tmp_path / "site.yaml"
    overlay.write_text("warehouse: {path: 's3a://bucket/wh'}\n")

    assert read_overlay(overlay.as_uri()) == {"warehouse.path": "s3a://bucket/wh"}
    assert load_label_seeds(seeds.as_uri()) == [("bc1qexample", "SomeExchange")]
    assert [(str(d), p) for d, p in read_prices(prices.as_uri())] == [
        ("2025-03-01", 96000.0),
        ("2025-03-02", 95000.5),
    ]


def test_the_metastore_of_a_file_uri_warehouse_is_a_local_folder_inside_it():
    settings = load_settings("test", {"warehouse.path": "file:///srv/hodlflow/wh"})
    assert metastore_dir(settings) == "/srv/hodlflow/wh/metastore_db"


def test_a_remote_warehouse_needs_its_own_metastore_setting():
    settings = load_settings("test", {"warehouse.path": "s3a://bucket/wh"})
    with pytest.raises(ValueError, match=r"warehouse\.path='s3a://bucket/wh' is not local"):
        metastore_dir(settings)
    local_ms = load_settings(
        "test", {"warehouse.path": "s3a://bucket/wh", "spark.metastore_dir": "/var/hodlflow/ms"}
    )
    assert metastore_dir(local_ms) == "/var/hodlflow/ms"

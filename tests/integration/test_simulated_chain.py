"""The simulator's chain through the real ingest: it passes `hodlflow check`, and its ground
truth agrees with the chain tables (every address has a true owner; true flows are chain
value)."""

from __future__ import annotations

import csv
import json
import os

import pytest
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.ingest.check import run_check
from hodlflow.ingest.job import run_ingest
from hodlflow.sim.simulator import run_simulation


@pytest.fixture(scope="module")
def simulated(spark, tmp_path_factory):
    from hodlflow.config import load_settings

    base = tmp_path_factory.mktemp("sim")
    manifest = run_simulation("tiny", str(base / "out"))
    settings = load_settings(
        "test",
        {
            "warehouse.path": str(base / "warehouse"),
            "warehouse.db_prefix": "sim_",
            "network": "main",
            "check_pow": False,
            "ingest.blocks_dir": str(base / "out" / "blocks"),
            "ingest.start_hash": manifest["start_hash"],
            "ingest.start_height": manifest["start_height"],
        },
    )
    result = run_ingest(spark, settings, log=lambda _m: None)
    return base / "out", manifest, settings, result


def test_the_simulated_chain_ingests_to_its_tip_and_drops_its_stale_block(simulated):
    _out, manifest, _settings, result = simulated
    assert result.start_height == manifest["start_height"]
    assert result.end_height == manifest["tip_height"]
    assert result.stale_blocks >= 1


def test_the_simulated_chain_passes_check(spark, simulated):
    _out, _manifest, settings, _ = simulated
    report = run_check(spark, settings)
    assert report.ok, report.text()


def test_every_address_on_the_chain_has_a_true_owner(spark, simulated):
    out, _manifest, settings, _ = simulated
    truth = spark.read.option("header", True).csv(str(out / "truth" / "addresses.csv"))
    chain_addresses = (
        tables.read_table(spark, settings, "chain.outputs")
        .filter(F.col("address").isNotNull())
        .select("address")
        .distinct()
    )
    orphans = chain_addresses.join(truth, "address", "left_anti").limit(5).collect()
    assert orphans == []


def test_the_manifest_is_what_ingest_needs(simulated):
    out, manifest, _settings, _ = simulated
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["start_hash"] == manifest["start_hash"]
    assert on_disk["check_pow"] is False and on_disk["network"] == "main"
    assert os.path.exists(out / "prices.csv")


def test_true_daily_miner_revenue_is_the_chain_coinbase_value(spark, simulated):
    out, _manifest, settings, _ = simulated
    with open(out / "truth" / "miner_daily.csv") as fh:
        truth = {r["day"]: int(r["subsidy_sats"]) + int(r["fees_sats"]) for r in csv.DictReader(fh)}
    chain = {
        str(r.day): int(r.revenue)
        for r in tables.read_table(spark, settings, "chain.blocks")
        .groupBy("day")
        .agg(F.sum(F.col("subsidy_sats") + F.col("fees_sats")).alias("revenue"))
        .collect()
    }
    assert chain == truth


@pytest.fixture(scope="module")
def entities(spark, simulated):
    """The simulated chain clustered with the simulator's published labels, and its scores
    against the ground truth (an oracle independent of the entities code)."""
    from hodlflow.entities.evaluate import evaluate_entities
    from hodlflow.entities.job import run_entities

    out, manifest, settings, _ = simulated
    files = manifest["files"]
    settings = settings.with_overrides(
        {
            "entities.pools": [str(out / files["pools"])],
            "entities.label_seeds": [str(out / files["exchange_labels"])],
        }
    )
    result = run_entities(spark, settings, log=lambda _m: None)
    return settings, result, evaluate_entities(spark, settings, str(out / files["addresses"]))


def test_clustering_never_merges_two_true_owners(entities):
    _settings, result, scores = entities
    c = scores["clustering"]
    assert c["addresses_missing"] == 0 and c["addresses"] > 300
    assert c["precision"] >= 0.99, c
    # Co-spends do link addresses: some true pairs are found.
    assert c["true_positive_pairs"] > 0 and result.edges > 0


def test_miners_are_found_and_pools_named_by_their_coinbase_tags(spark, entities):
    settings, _result, scores = entities
    m = scores["miners"]
    assert m["address_recall"] >= 0.9 and m["address_precision"] >= 0.9, m
    labels = {
        r.label
        for r in tables.read_table(spark, settings, "entities.entities")
        .filter("entity_type = 'miner' AND miner_hop = 0")
        .collect()
    }
    assert {"AlphaPool", "BetaPool"} <= labels


def test_seeded_exchanges_carry_their_labels(spark, entities):
    settings, _result, scores = entities
    labelled = {
        r.label: r.entity_type
        for r in tables.read_table(spark, settings, "entities.entities")
        .filter("label_source = 'seed'")
        .collect()
    }
    assert labelled == {"Bitvault": "exchange", "Coinhaus": "exchange"}
    assert scores["exchanges"]["address_precision"] == 1.0


def test_coinjoin_participants_stay_apart_and_are_typed_coinjoin(entities):
    _settings, _result, scores = entities
    cj = scores["coinjoins"]
    assert cj["address_precision"] >= 0.9 and cj["address_recall"] >= 0.7, cj

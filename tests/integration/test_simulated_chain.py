"""The simulator's chain through the real ingest: it passes `hodlflow check`, and its ground
truth agrees with the chain tables (every address has a true owner; true flows are chain
value)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os

import pytest
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.ingest.check import run_check
from hodlflow.ingest.job import run_ingest
from hodlflow.sim.simulator import run_simulation
from hodlflow.sim.truth import net_weak_to_strong


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


@pytest.fixture(scope="module")
def miner_metrics(spark, simulated, entities):
    """market.prices from the simulator's prices.csv, then metrics with the tiny scenario's cost
    model (30 J/TH, 0.05 $/kWh, PUE 1.1)."""
    from hodlflow.metrics.job import run_metrics
    from hodlflow.metrics.prices import load_prices

    out, _manifest, settings, _ = simulated
    settings = settings.with_overrides({"metrics.cost.efficiency_j_per_th": 30})
    load_prices(spark, settings, out / "prices.csv")
    result = run_metrics(spark, settings, log=lambda _m: None)
    rows = {
        str(r.day): r
        for r in tables.read_table(spark, settings, "metrics.miner_pressure").collect()
    }
    with open(out / "truth" / "miner_daily.csv") as fh:
        truth = {r["day"]: r for r in csv.DictReader(fh)}
    return settings, result, rows, truth


def test_miner_pressure_matches_the_simulators_books_every_day(miner_metrics):
    _settings, result, rows, truth = miner_metrics
    assert sorted(rows) == sorted(truth) and result.days == len(truth)
    for day, t in truth.items():
        r = rows[day]
        assert r.blocks == int(t["blocks"]), day
        assert r.subsidy_btc == int(t["subsidy_sats"]) / 1e8, day
        assert r.fees_btc == pytest.approx(int(t["fees_sats"]) / 1e8, abs=1e-9), day
        assert r.price_usd == pytest.approx(float(t["price_usd"]), abs=0.005), day
        assert r.difficulty == pytest.approx(float(t["difficulty"]), rel=1e-6), day
        assert r.hash_rate_ths * 1e12 == pytest.approx(float(t["hash_rate_hs"]), rel=1e-6), day
        cost = float(t["production_cost_usd_per_btc"])
        assert r.production_cost_usd_per_btc == pytest.approx(cost, abs=0.01), day
        # Six days: every 30/60/365-day window reaches before the first day.
        assert r.hash_rate_sma30_ths is None and r.puell_multiple is None


def test_the_tiny_story_ends_below_production_cost(miner_metrics):
    _settings, _result, rows, _truth = miner_metrics
    days = sorted(rows)
    assert rows[days[0]].below_cost is False and rows[days[-1]].below_cost is True


def test_rerunning_metrics_changes_nothing(spark, miner_metrics):
    from hodlflow.metrics.job import run_metrics

    settings, _result, rows, _truth = miner_metrics
    again = run_metrics(spark, settings, log=lambda _m: None)
    # No new block, entities run or price since: nothing is computed or written.
    assert again.up_to_date and again.days == 0
    now = {
        str(r.day): r
        for r in tables.read_table(spark, settings, "metrics.miner_pressure").collect()
    }
    assert now == rows


def test_miner_outflow_is_within_5_percent_of_the_simulators_books(miner_metrics):
    _settings, _result, rows, truth = miner_metrics

    def total(col_ours, col_truth):
        ours = sum(getattr(r, col_ours) for r in rows.values())
        return ours, sum(int(t[col_truth]) for t in truth.values()) / 1e8

    ours, true = total("miner_outflow_btc", "miner_outflow_sats")
    assert true > 0 and ours == pytest.approx(true, rel=0.05)
    ours, true = total("miner_to_miner_btc", "miner_to_miner_sats")
    assert true > 0 and ours == pytest.approx(true, rel=0.05)
    for day, t in truth.items():
        assert rows[day].miner_outflow_btc == pytest.approx(
            int(t["miner_outflow_sats"]) / 1e8, rel=0.05
        ), day


def test_evaluate_reports_the_miner_series_totals_and_errors(spark, simulated, miner_metrics):
    from hodlflow.metrics.evaluate import evaluate_miner_series

    out, _manifest, _s, _ = simulated
    settings, _result, rows, truth = miner_metrics
    report = evaluate_miner_series(spark, settings, str(out / "truth" / "miner_daily.csv"))
    outflow = report["miner_outflow_btc"]
    true = sum(int(t["miner_outflow_sats"]) for t in truth.values()) / 1e8
    ours = sum(r.miner_outflow_btc for r in rows.values())
    assert outflow["days"] == len(truth)
    assert outflow["true_btc"] == pytest.approx(true) and outflow["ours_btc"] == pytest.approx(ours)
    assert outflow["total_error"] == pytest.approx(abs(ours - true) / true)
    assert outflow["max_day_error"] < 0.05


def test_flow_tables_cover_every_processed_day_and_agree_with_the_class_flows(spark, miner_metrics):
    settings, _result, rows, _truth = miner_metrics
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    class_flows = {
        (str(r.day), r.from_class, r.to_class): r.value_sats
        for r in read("entities.class_flows").collect()
    }
    entity_flows = {
        (str(r.day), r.from_class, r.to_class): r.value_btc
        for r in read("metrics.entity_flows").collect()
    }
    assert entity_flows == {k: v / 1e8 for k, v in class_flows.items()}
    exchange = {str(r.day): r for r in read("metrics.exchange_flows").collect()}
    migration = {str(r.day): r for r in read("metrics.holder_migration").collect()}
    assert sorted(exchange) == sorted(migration) == sorted(rows)
    for day, r in exchange.items():
        inflow = sum(
            v
            for (d, f, t), v in class_flows.items()
            if d == day and t == "exchange" and f != "exchange"
        )
        assert r.inflow_btc == pytest.approx(inflow / 1e8), day
        w2s = class_flows.get((day, "weak", "strong"), 0) - class_flows.get(
            (day, "strong", "weak"), 0
        )
        assert migration[day].direct_net_weak_to_strong_btc == pytest.approx(w2s / 1e8), day
        pairs = {(f, t): v / 1e8 for (d, f, t), v in class_flows.items() if d == day}
        assert migration[day].net_weak_to_strong_btc == pytest.approx(net_weak_to_strong(pairs)), (
            day
        )
    days = sorted(exchange)
    assert exchange[days[-1]].flow_balance_btc == pytest.approx(
        sum(exchange[d].netflow_btc for d in days)
    )
    # The revised series: a row for every day the entities step covered, each revised as of
    # 155 days later or the last covered day (the tiny story is shorter: nothing settled).
    revised = {str(r.day): r for r in read("metrics.holder_migration_revised").collect()}
    covered = [d for d in days if migration[d].net_weak_to_strong_btc is not None]
    assert sorted(revised) == covered
    last = dt.date.fromisoformat(covered[-1])
    assert (last - dt.date.fromisoformat(covered[0])).days < 155
    assert {(r.as_of_day, r.settled) for r in revised.values()} == {(last, False)}


def test_evaluate_compares_migration_sign_and_exchange_flows_with_the_truth_per_day(
    spark, simulated, miner_metrics
):
    from hodlflow.metrics.evaluate import daily_flow_comparison, evaluate_flow_series

    out, *_ = simulated
    settings, *_ = miner_metrics
    truth: dict[str, dict] = {}
    with open(out / "truth" / "daily_flows.csv") as fh:
        for t in csv.DictReader(fh):
            d = truth.setdefault(t["day"], {"volume": 0.0, "pairs": {}, "in": 0.0})
            v = int(t["value_sats"]) / 1e8
            d["volume"] += v
            d["pairs"][(t["from_class"], t["to_class"])] = v
            d["in"] += v if t["to_class"] == "exchange" and t["from_class"] != "exchange" else 0.0
    for d in truth.values():
        d["net"] = net_weak_to_strong(d["pairs"])
    with open(out / "truth" / "daily_balances.csv") as fh:
        strong = {
            t["day"]: int(t["balance_sats"]) / 1e8
            for t in csv.DictReader(fh)
            if t["class"] == "strong"
        }
    ours = {
        str(r.day): r
        for r in tables.read_table(spark, settings, "metrics.holder_migration").collect()
    }
    sign = lambda x: (x > 0) - (x < 0)  # noqa: E731
    pos = [d for d, t in truth.items() if t["net"] > 0.01 * t["volume"] and d in ours]
    neg = [d for d, t in truth.items() if t["net"] < -0.01 * t["volume"] and d in ours]
    report = evaluate_flow_series(spark, settings, str(out / "truth"))
    mig = report["net_weak_to_strong_btc"]
    assert (mig["positive_days"], mig["positive_right"]) == (
        len(pos),
        sum(sign(ours[d].net_weak_to_strong_btc) > 0 for d in pos),
    )
    assert (mig["negative_days"], mig["negative_right"]) == (
        len(neg),
        sum(sign(ours[d].net_weak_to_strong_btc) < 0 for d in neg),
    )
    assert report["exchange_inflow_btc"]["true"] == pytest.approx(
        sum(t["in"] for d, t in truth.items() if d in ours)
    )
    per_day = {
        str(r.day): r for r in daily_flow_comparison(spark, settings, str(out / "truth")).collect()
    }
    assert sorted(per_day) == sorted(ours)
    assert all(
        per_day[d].true_net_weak_to_strong_btc == pytest.approx(truth[d]["net"])
        for d in truth
        if d in per_day
    )
    assert all(per_day[d].true_strong_balance_btc == pytest.approx(strong[d]) for d in per_day)
    assert all(per_day[d].strong_balance_btc == ours[d].strong_balance_btc for d in per_day)
    # The revised net is scored against the same true net, over the same days.
    assert report["revised_net_weak_to_strong_btc"]["days"] == len(ours)
    assert report["revised_net_weak_to_strong_btc"]["true"] == pytest.approx(
        report["net_weak_to_strong_btc"]["true"]
    )


def test_evaluate_compares_the_top100_share_per_phase_with_the_true_owners(
    spark, simulated, miner_metrics
):
    from hodlflow.metrics.evaluate import evaluate_concentration

    out, *_ = simulated
    settings, *_ = miner_metrics
    with open(out / "truth" / "addresses.csv") as fh:
        owner = {t["address"]: t["entity_id"] for t in csv.DictReader(fh)}
    with open(out / "truth" / "miner_daily.csv") as fh:
        phases: dict[str, list[str]] = {}
        for t in csv.DictReader(fh):
            phases.setdefault(t["phase"], []).append(t["day"])
    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    moves = [
        (str(r.day), r.address, r.value_sats)
        for r in read("chain.outputs").select("day", "address", "value_sats").collect()
    ]
    moves += [
        (str(r.day), r.address, -r.value_sats)
        for r in read("chain.inputs").select("day", "address", "value_sats").collect()
    ]

    def true_top100(day: str) -> float:
        held: dict[str, int] = {}
        for d, a, v in moves:
            if a is not None and d <= day:
                held[owner.get(a, a)] = held.get(owner.get(a, a), 0) + v
        balances = sorted((b for b in held.values() if b > 0), reverse=True)
        return sum(balances[:100]) / sum(balances)

    ours = {str(r.day): r.top100_share for r in read("metrics.holder_migration").collect()}
    report = evaluate_concentration(
        spark,
        settings,
        str(out / "truth" / "addresses.csv"),
        str(out / "truth" / "miner_daily.csv"),
    )
    assert sorted(report) == sorted(f"top100_share {p}" for p in phases)
    for phase, days in phases.items():
        row = report[f"top100_share {phase}"]
        first, last = days[0], days[-1]
        assert row["true"] == f"{true_top100(first):.3f} -> {true_top100(last):.3f}"
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        assert row["ours"] == f"{fmt(ours.get(first))} -> {fmt(ours.get(last))}"
        # The peak over the phase's days every 7 days from its first, and its last (the earliest
        # of equal peaks).
        sampled = [d for i, d in enumerate(days) if i % 7 == 0] + [last]
        true_at = {d: true_top100(d) for d in sampled}
        top = max(sampled, key=lambda d: (true_at[d], [-ord(c) for c in d]))
        assert row["true_peak_every_7d"] == f"{true_at[top]:.3f} on {top}"
        known = [d for d in sampled if ours.get(d) is not None]
        expect = "n/a"
        if known:
            top = max(known, key=lambda d: (ours[d], [-ord(c) for c in d]))
            expect = f"{ours[top]:.3f} on {top}"
        assert row["ours_peak_every_7d"] == expect


def test_supply_cohorts_on_the_simulated_chain_add_up_to_the_unspent_set(spark, miner_metrics):
    settings, *_ = miner_metrics
    cohorts = tables.read_table(spark, settings, "metrics.supply_cohorts")
    last = cohorts.agg(F.max("day")).first()[0]
    day_rows = {r.cohort: r for r in cohorts.filter(F.col("day") == last).collect()}
    unspent = (
        tables.read_table(spark, settings, "chain.unspent").agg(F.sum("value_sats")).first()[0]
    )
    assert day_rows["all"].supply_btc == pytest.approx(unspent / 1e8)
    assert day_rows["sth"].supply_btc + day_rows["lth"].supply_btc == pytest.approx(unspent / 1e8)
    bands = [r for r in day_rows.values() if r.cohort_kind == "band"]
    assert sum(r.supply_btc for r in bands) == pytest.approx(unspent / 1e8)
    assert day_rows["all"].realized_cap_usd > 0 and day_rows["all"].mvrv > 0

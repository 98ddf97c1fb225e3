"""The entities step on a hand-built chain whose answers are worked out by hand, with networkx
as the oracle of the clusters.

One block a day (regtest, subsidy 50 BTC), every fee 10,000 sat:

    h0 d0  coinbase 50 BTC → P (tag /TestPool/)
    h1 d1  coinbase → P;  T1: P(h0 coinbase, 50) → A1 20, A2 10, B1 10, B2 5, P 4.9999 (change)
    h2 d2  coinbase → P;  T2: B1 10 + B2 5 → D1 14.9999           (Bob deposits: B1~B2)
                          T3: A2 10 → D2 9.9999                   (Alice deposits)
    h3 d3  coinbase → P;  T4: D1 14.9999 + D2 9.9999 → X 24.9997  (the exchange sweeps: D1~D2)
                          T5: A1 20 → E 19.9999
    h4 d4  coinbase → P

D1 is a label seed of the exchange "TestEx"; the pools file names /TestPool/. The first run
stops at h2 (D1 and D2 apart), the second merges them.
"""

from __future__ import annotations

import datetime as dt
import json

import networkx as nx
import pytest
from bitcoinlib.encoding import pubkeyhash_to_addr_bech32
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.chain.network import REGTEST
from hodlflow.entities.job import EntitiesError, run_entities
from hodlflow.entities.labels import LabelsError
from hodlflow.ingest.job import run_ingest
from hodlflow.sim.blocksdir import write_blocks_dir
from tests.support.tiny_chain import FIVE_DAY_NAMES, five_day_chain

COIN = 100_000_000
FEE = 10_000
DAY0 = dt.date(2023, 11, 14)
NAMES = FIVE_DAY_NAMES
H = {n: bytes([0xA0 + i]) * 20 for i, n in enumerate(NAMES)}
ADDR = {n: pubkeyhash_to_addr_bech32(h, prefix="bcrt") for n, h in H.items()}
# The inputs of every non-coinbase transaction, by name: the co-spend graph's source.
SPENDS = {"T1": ["P"], "T2": ["B1", "B2"], "T3": ["A2"], "T4": ["D1", "D2"], "T5": ["A1"]}


@pytest.fixture(scope="module")
def chain(spark, tmp_path_factory):
    """The chain ingested once, the label files, and settings for it."""
    from hodlflow.config import load_settings

    base = tmp_path_factory.mktemp("entities")
    genesis, blocks = five_day_chain(H, start_time=1_699_950_000)
    write_blocks_dir(base / "blocks", blocks, REGTEST)
    blocks_dir = str(base / "blocks")
    pools = base / "pools.json"
    pools.write_text(json.dumps([{"id": 1, "name": "TestPool", "addresses": [],
                                  "tags": ["/testpool/"], "link": ""}]))  # fmt: skip
    seeds = base / "seeds.csv"
    seeds.write_text(f"address,label\n{ADDR['D1']},TestEx\n")

    def settings(prefix: str, **more):
        values = {
            "warehouse.path": str(base / "warehouse"),
            "warehouse.db_prefix": prefix,
            "network": "regtest",
            "ingest.blocks_dir": blocks_dir,
            "ingest.start_hash": genesis,
            "entities.pools": [str(pools)],
            "entities.label_seeds": [str(seeds)],
        }
        values.update(more)
        return load_settings("test", values)

    main = settings("ent_")
    run_ingest(spark, main, log=lambda _m: None)
    return main, settings


@pytest.fixture(scope="module")
def two_runs(spark, chain):
    """Entities in two runs: heights 0..2, then 3..4 (metrics after the first); snapshots of the
    tables after each."""
    from hodlflow.metrics.job import run_metrics

    settings, _ = chain
    first = run_entities(spark, settings, end_height=2, log=lambda _m: None)
    after_first = _tables(spark, settings)
    run_metrics(spark, settings, log=lambda _m: None)
    second = run_entities(spark, settings, log=lambda _m: None)
    return settings, first, second, after_first, _tables(spark, settings)


def _tables(spark, settings) -> dict[str, list[tuple]]:
    keys = ["entities.address_entity", "entities.entities", "entities.entity_daily",
            "entities.merges", "entities.transfers", "entities.class_flows"]  # fmt: skip
    return {
        k: sorted(tuple(r) for r in tables.read_table(spark, settings, k).collect()) for k in keys
    }


def _by_address(snapshot) -> dict[str, tuple[int, int]]:
    """address → (address_id, entity_id)."""
    return {r[0]: (r[1], r[2]) for r in snapshot["entities.address_entity"]}


def _oracle(upto: str) -> list[set[str]]:
    """networkx components of the co-spends of the transactions up to ``upto`` (names)."""
    g = nx.Graph()
    g.add_nodes_from(NAMES)
    for tx, inputs in SPENDS.items():
        if tx <= upto:
            g.add_edges_from(zip(inputs, inputs[1:], strict=False))
    return [set(c) for c in nx.connected_components(g)]


def _clusters(snapshot, names) -> list[set[str]]:
    ids = _by_address(snapshot)
    groups: dict[int, set[str]] = {}
    for n in names:
        groups.setdefault(ids[ADDR[n]][1], set()).add(n)
    return list(groups.values())


def _sorted(sets):
    return sorted(sorted(s) for s in sets)


def test_clusters_are_the_networkx_components_named_by_their_smallest_address_id(two_runs):
    _s, first, second, after_first, after_second = two_runs
    seen_first = ["P", "A1", "A2", "B1", "B2", "D1", "D2"]
    oracle_first = [c & set(seen_first) for c in _oracle("T3") if c & set(seen_first)]
    assert _sorted(_clusters(after_first, seen_first)) == _sorted(oracle_first)
    assert _sorted(_clusters(after_second, NAMES)) == _sorted(_oracle("T5"))
    ids = _by_address(after_second)
    for component in _oracle("T5"):
        smallest = min(ids[ADDR[n]][0] for n in component)
        assert {ids[ADDR[n]][1] for n in component} == {smallest}
    assert (first.start_height, first.end_height, second.start_height, second.end_height) == (
        0,
        2,
        3,
        4,
    )
    assert first.new_addresses == 7 and second.new_addresses == 2


def test_address_ids_are_dense_in_order_of_first_height_then_address(two_runs):
    *_, after = two_runs
    ids = _by_address(after)
    first_height = {"P": 0, "A1": 1, "A2": 1, "B1": 1, "B2": 1, "D1": 2, "D2": 2, "X": 3, "E": 3}
    expected = sorted(NAMES, key=lambda n: (first_height[n], ADDR[n]))
    assert [ids[ADDR[n]][0] for n in expected] == list(range(len(NAMES)))


def test_a_cospend_in_a_later_run_merges_entities_and_records_the_merge(two_runs):
    _s, _f, second, after_first, after_second = two_runs
    before, after = _by_address(after_first), _by_address(after_second)
    d1, d2 = before[ADDR["D1"]], before[ADDR["D2"]]
    assert d1[1] != d2[1]  # apart after the first run
    old, new = max(d1[0], d2[0]), min(d1[0], d2[0])
    assert after[ADDR["D1"]][1] == after[ADDR["D2"]][1] == new
    assert after_second["entities.merges"] == [(old, new, 4, DAY0 + dt.timedelta(days=4))]
    assert second.merges == 1
    entity_ids = {r[0] for r in after_second["entities.entities"]}
    assert old not in entity_ids and new in entity_ids
    # Every other address kept its entity id.
    assert {
        a: v for a, v in after.items() if a in before and a not in (ADDR["D1"], ADDR["D2"])
    } == {a: v for a, v in before.items() if a not in (ADDR["D1"], ADDR["D2"])}


def _entity_rows(spark, settings) -> dict[str, dict]:
    ents = {
        r.entity_id: r.asDict()
        for r in tables.read_table(spark, settings, "entities.entities").collect()
    }
    ids = {
        r.address: r.entity_id
        for r in tables.read_table(spark, settings, "entities.address_entity").collect()
    }
    return {n: ents[ids[ADDR[n]]] for n in NAMES}


def test_types_labels_and_balances(spark, two_runs):
    settings, *_ = two_runs
    e = _entity_rows(spark, settings)
    pool = e["P"]
    assert (pool["entity_type"], pool["label"], pool["label_source"], pool["miner_hop"]) == (
        "miner",
        "TestPool",
        "pool_tag",
        0,
    )
    # Five coinbases of 50 BTC plus the fees of h1 (1), h2 (2), h3 (2); the h0 coinbase spent,
    # its change back.
    assert pool["coinbase_sats"] == 250 * COIN + 5 * FEE
    assert pool["coinbase_blocks"] == 5
    assert pool["balance_sats"] == 250 * COIN + 5 * FEE - 50 * COIN + 5 * COIN - FEE
    assert pool["sent_sats"] == 45 * COIN
    # Paid by the pool only: 1-hop miners.
    for n in ("A1", "A2"):
        assert (e[n]["entity_type"], e[n]["miner_hop"], e[n]["from_miner_sats"]) == (
            "miner",
            1,
            e[n]["received_sats"],
        )
    bob = e["B1"]
    assert bob["entity_id"] == e["B2"]["entity_id"]
    assert (bob["received_sats"], bob["sent_sats"], bob["balance_sats"]) == (
        15 * COIN,
        15 * COIN - FEE,
        0,
    )
    ex = e["D1"]
    assert (ex["entity_type"], ex["label"], ex["label_source"]) == ("exchange", "TestEx", "seed")
    assert ex["address_count"] == 2 and ex["balance_sats"] == 0 and ex["sweep_count"] == 0
    assert (e["X"]["entity_type"], e["X"]["balance_sats"]) == ("unknown", 25 * COIN - 3 * FEE)
    assert (e["E"]["received_sats"], e["E"]["first_height"], e["E"]["last_height"]) == (
        20 * COIN - FEE,
        3,
        3,
    )


def test_entity_daily_has_the_days_moves_balance_and_entity_adjusted_coin_age(spark, two_runs):
    settings, *_ = two_runs
    daily = tables.read_table(spark, settings, "entities.entity_daily")
    ids = {
        r.address: r.entity_id
        for r in tables.read_table(spark, settings, "entities.address_entity").collect()
    }
    pool = {r.day: r for r in daily.filter(F.col("entity_id") == ids[ADDR["P"]]).collect()}
    assert sorted(pool) == [DAY0 + dt.timedelta(days=d) for d in range(5)]
    d1 = pool[DAY0 + dt.timedelta(days=1)]
    assert (d1.received_sats, d1.sent_sats, d1.fees_sats) == (50 * COIN + FEE, 45 * COIN, FEE)
    assert d1.balance_sats == 55 * COIN
    # The change (4.9999 BTC) keeps the age of the day-0 coinbase it came from: 1 day old on d1.
    assert d1.coin_age_days == pytest.approx((5 * COIN - FEE) * 1 / (55 * COIN))
    assert d1.entity_type == "miner" and d1.holder_class is None
    # E: received 20 BTC once on d3, never spent: a large holder (≥ 10 BTC,
    # entities.holder.large_holder_min_btc), strong from that day, age 0.
    e_rows = daily.filter(F.col("entity_id") == ids[ADDR["E"]]).collect()
    assert [(r.day, r.received_sats, r.holder_class, r.coin_age_days) for r in e_rows] == [
        (DAY0 + dt.timedelta(days=3), 20 * COIN - FEE, "strong", 0.0)
    ]


def _flows(spark, settings) -> list[tuple]:
    return sorted(
        (r.day, r.from_class, r.to_class, r.value_sats, r.transfers)
        for r in tables.read_table(spark, settings, "entities.class_flows").collect()
    )


def test_class_flows_pay_between_classes_by_hand(spark, two_runs):
    settings, _first, _second, after_first, _after = two_runs

    def d(n):
        return DAY0 + dt.timedelta(days=n)

    # After run 1, D2 is on its own: one receipt of under 10 BTC, never spent: neutral → other.
    assert [f for f in after_first["entities.class_flows"] if f[0] == d(2)] == [
        (d(2), "miner", "exchange", 15 * COIN - FEE, 1),
        (d(2), "miner", "other", 10 * COIN - FEE, 1),
    ]
    assert _flows(spark, settings) == [
        # T1: the pool pays A1, A2 and Bob's cluster (B1~B2 by the end of run 1): 1-hop miners.
        (d(1), "miner", "miner", 45 * COIN, 3),
        # T2: Bob → D1 (seeded exchange); T3: Alice's A2 → D2, which run 2 merges into the
        # exchange: run 2 re-classes d2, both are exchange inflow.
        (d(2), "miner", "exchange", 25 * COIN - 2 * FEE, 2),
        # T4: the exchange sweeps to X; T5: A1 → E: both never spent and hold ≥ 10 BTC at the
        # day's end (large holders: strong).
        (d(3), "exchange", "strong", 25 * COIN - 3 * FEE, 1),
        (d(3), "miner", "strong", 20 * COIN - FEE, 1),
    ]
    # Run 2 starts on d3 and re-classed from d2: metrics, run after run 1, recomputes from there.
    runs = sorted(
        tables.read_table(spark, settings, "entities.runs").collect(), key=lambda r: r.start_height
    )
    assert [(r.first_day, r.flows_from_day) for r in runs] == [(d(0), d(0)), (d(3), d(2))]
    from hodlflow.metrics.job import run_metrics

    assert run_metrics(spark, settings, log=lambda _m: None).first_day == d(2)
    gold = tables.read_table(spark, settings, "metrics.entity_flows").filter(F.col("day") == d(2))
    assert [(r.from_class, r.to_class, r.value_btc) for r in gold.collect()] == [
        ("miner", "exchange", (25 * COIN - 2 * FEE) / COIN)
    ]


def _gini(balances: list[int]) -> float:
    """Gini by its definition: mean absolute difference over twice the mean."""
    n, mean = len(balances), sum(balances) / len(balances)
    return sum(abs(a - b) for a in balances for b in balances) / (2 * n * n * mean)


def test_concentration_reserves_and_balance_cohorts_follow_the_merges(spark, two_runs):
    """Entity balances at each day's end, by hand (P pool; A1, A2, Bob 1-hop miners; D1 the
    exchange, D2 merged into it by run 2 on d3; X, E receivers):
    d0 P 50 · d1 P 55, A1 20, A2 10, Bob 15 · d2 P 105+2f, A1 20, D1 15−f, D2 10−f ·
    d3 P 155+4f, X 25−3f, E 20−f (D1~D2 empty; D2's run-1 row must stop counting) · d4 P 205+4f, X, E."""
    from hodlflow.metrics.job import run_metrics

    settings, *_ = two_runs
    run_metrics(spark, settings, log=lambda _m: None)
    f = FEE
    held = {
        0: [50 * COIN],
        1: [55 * COIN, 20 * COIN, 10 * COIN, 15 * COIN],
        2: [105 * COIN + 2 * f, 20 * COIN, 15 * COIN - f, 10 * COIN - f],
        3: [155 * COIN + 4 * f, 25 * COIN - 3 * f, 20 * COIN - f],
        4: [205 * COIN + 4 * f, 25 * COIN - 3 * f, 20 * COIN - f],
    }
    read = lambda key: {r.day: r for r in tables.read_table(spark, settings, key).collect()}  # noqa: E731
    migration, miner, exchange = (
        read("metrics.holder_migration"),
        read("metrics.miner_pressure"),
        read("metrics.exchange_flows"),
    )
    for d, bal in held.items():
        m = migration[DAY0 + dt.timedelta(days=d)]
        total = sum(bal)
        assert m.entities_holding == len(bal)
        assert m.top10_share == pytest.approx(1.0)
        assert m.gini == pytest.approx(_gini(bal))
        assert m.hhi == pytest.approx(sum((b / total) ** 2 for b in bal))
        assert m.accumulation_entities == 0  # nobody received twice without spending
    # Miner reserve: P (0-hop) plus the 1-hop members while they hold.
    reserve = [
        v
        for d in range(5)
        for v in (
            miner[DAY0 + dt.timedelta(days=d)].miner_reserve_btc,
            miner[DAY0 + dt.timedelta(days=d)].miner_reserve_0hop_btc,
        )
    ]
    assert reserve == pytest.approx([
        50, 50, 100, 55, (125 * COIN + 2 * f) / COIN, (105 * COIN + 2 * f) / COIN,
        *((155 * COIN + 4 * f) / COIN,) * 2, *((205 * COIN + 4 * f) / COIN,) * 2,
    ])  # fmt: skip
    # The exchange holds D1's deposit on d2 only (swept to X, not an exchange wallet, on d3).
    assert [exchange[DAY0 + dt.timedelta(days=d)].balance_btc for d in range(5)] == pytest.approx(
        [0, 0, (15 * COIN - f) / COIN, 0, 0]
    )
    cohorts = {
        (r.day, r.cohort): r
        for r in tables.read_table(spark, settings, "metrics.entity_balance_cohorts").collect()
    }
    d1 = DAY0 + dt.timedelta(days=1)
    assert (cohorts[(d1, "10_50")].entities, cohorts[(d1, "10_50")].balance_btc) == (3, 45.0)
    assert (cohorts[(d1, "50_100")].entities, cohorts[(d1, "50_100")].share) == (1, 0.55)
    assert cohorts[(d1, "lt_1")].entities == 0


def test_a_full_rebuild_equals_the_incremental_runs_and_a_rerun_changes_nothing(spark, two_runs):
    settings, _f, _s, _a, incremental = two_runs
    rerun = run_entities(spark, settings, from_height=3, log=lambda _m: None)
    assert rerun.rewound_from == 3
    assert _tables(spark, settings) == incremental
    rebuild = run_entities(spark, settings, from_height=0, log=lambda _m: None)
    assert (rebuild.start_height, rebuild.end_height) == (0, 4)
    full = _tables(spark, settings)
    assert full["entities.address_entity"] == incremental["entities.address_entity"]
    # as_of_height says which run last wrote a row: the only column allowed to differ.
    assert [r[:-1] for r in full["entities.entities"]] == [
        r[:-1] for r in incremental["entities.entities"]
    ]
    # Balances per entity and day agree too; only ids of rows written before a merge differ.
    assert len(full["entities.entity_daily"]) == len(incremental["entities.entity_daily"]) - 1
    # Entity-level transfers carry the current ids, and the flows the current types, in both.
    assert full["entities.transfers"] == incremental["entities.transfers"]
    assert full["entities.class_flows"] == incremental["entities.class_flows"]
    assert run_entities(spark, settings, log=lambda _m: None).start_height is None


def test_without_chain_tables_the_step_says_to_ingest_first(spark, chain):
    _settings, settings = chain
    with pytest.raises(EntitiesError, match="run `hodlflow ingest` first"):
        run_entities(spark, settings("none_"), log=lambda _m: None)


def test_a_bad_pools_file_names_the_file_and_changes_nothing(spark, chain, two_runs, tmp_path):
    main, settings = chain
    bad = tmp_path / "pools.json"
    bad.write_text('[{"id": 1, "name": "X", "addresses": [], "tags": ["("], "link": ""}]')
    broken = settings("ent_", **{"entities.pools": [str(bad)]})
    before = {
        k: tables.table_version(spark, tables.table_location(main, k))
        for k in ("entities.address_entity", "entities.entities")
    }
    with pytest.raises(LabelsError, match=str(bad)):
        run_entities(spark, broken, from_height=0, log=lambda _m: None)
    after = {k: tables.table_version(spark, tables.table_location(main, k)) for k in before}
    assert after == before


# --- deposit_change across runs ---------------------------------------------------------------
# A holder sells part of a coin into an exchange deposit address and keeps the rest; the
# exchange sweeps the deposit the next day, in the next run. One block a day:
#
#     h0 d0  coinbase 50 BTC → P
#     h1 d1  T1: P's coinbase → H 20, G 10, K 5, back to P 15 − fee
#     h2 d2  T2: H 20 → D 8, C 12 − fee      (H sells 8; C, a fresh p2wpkh, is its change)
#            T3: G 10 → F 10 − fee;  T4: K 5 → E 5 − fee   (other customers' deposits)
#     h3 d3  T5: D + F + E → X 23 − 4 fees    (the exchange sweeps three deposits: D~F~E)
#     h4 d4  coinbase only
#
# Nothing co-spends H with C, and T2's two outputs are both fresh and of its inputs' type, so
# only deposit_change can link C to H: in the second run, whose sweep T5 (entities.
# sweep_min_inputs = 3 addresses) spends D within entities.deposit_max_days, reading day 2 back
# from the first run's days.
DEPOSIT_NAMES = ["P", "H", "G", "K", "D", "C", "F", "E", "X"]


@pytest.fixture(scope="module")
def deposit_runs(spark, tmp_path_factory):
    from hodlflow.config import load_settings
    from hodlflow.sim.builder import ChainBuilder, p2wpkh

    h = {n: bytes([0xC0 + i]) * 20 for i, n in enumerate(DEPOSIT_NAMES)}
    s = {n: p2wpkh(v) for n, v in h.items()}
    b = ChainBuilder(REGTEST, start_time=1_699_950_000, interval=86_400, payout_script=s["P"])
    b0 = b.add_block(coinbase_tag=b"/TestPool/")
    t1 = b.tx([b0.coinbase.outpoint(0)], [(20 * COIN, s["H"]), (10 * COIN, s["G"]),
              (5 * COIN, s["K"]), (15 * COIN - FEE, s["P"])])  # fmt: skip
    b.add_block([t1])
    t2 = b.tx([t1.outpoint(0)], [(8 * COIN, s["D"]), (12 * COIN - FEE, s["C"])])
    t3 = b.tx([t1.outpoint(1)], [(10 * COIN - FEE, s["F"])])
    t4 = b.tx([t1.outpoint(2)], [(5 * COIN - FEE, s["E"])])
    b.add_block([t2, t3, t4])
    deposits = [t2.outpoint(0), t3.outpoint(0), t4.outpoint(0)]
    b.add_block([b.tx(deposits, [(23 * COIN - 4 * FEE, s["X"])])])
    b.add_block()
    base = tmp_path_factory.mktemp("deposit-change")
    write_blocks_dir(base / "blocks", [blk.raw for blk in b.blocks], REGTEST)
    settings = load_settings("test", {
        "warehouse.path": str(base / "warehouse"), "warehouse.db_prefix": "dep_",
        "network": "regtest", "ingest.blocks_dir": str(base / "blocks"),
        "ingest.start_hash": b0.hash, "entities.pools": [], "entities.label_seeds": [],
    })  # fmt: skip
    assert "deposit_change" in settings.entities.change_heuristics  # on by default
    run_ingest(spark, settings, log=lambda _m: None)
    run_entities(spark, settings, end_height=2, log=lambda _m: None)
    first = _entity_of(spark, settings, h)
    run_entities(spark, settings, log=lambda _m: None)
    return first, _entity_of(spark, settings, h)


def _entity_of(spark, settings, hashes) -> dict[str, int]:
    addr = {pubkeyhash_to_addr_bech32(v, prefix="bcrt"): n for n, v in hashes.items()}
    rows = tables.read_table(spark, settings, "entities.address_entity").collect()
    return {addr[r.address]: r.entity_id for r in rows if r.address in addr}


def test_deposit_change_links_the_sellers_change_once_a_later_run_sees_the_sweep(deposit_runs):
    first, second = deposit_runs
    # Before the sweep (first run, heights 0..2) nothing says D is a deposit: C stands alone.
    assert first["C"] != first["H"]
    # The second run sweeps D within deposit_max_days: C is H's change; the deposits are the
    # exchange's (co-spent by the sweep), apart from the seller.
    assert second["C"] == second["H"]
    assert second["D"] == second["F"] == second["E"]
    assert second["D"] != second["H"] and second["G"] != second["H"] and second["K"] != second["H"]

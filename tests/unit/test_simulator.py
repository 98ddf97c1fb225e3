"""The simulator: the written chain is valid, the ground truth agrees with it, runs repeat.

The chain is read back with hodlflow's own blk-file reader and block parser and checked here
rule by rule (spends, maturity, heights, merkle roots, witness commitments, times); the truth
files are recomputed from the parsed chain and the truth's own address map, never taken from
the simulator's memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import filecmp
import hashlib
import json
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from hodlflow.chain.blkfile import list_blk_files, read_block, read_xor_key, scan_records
from hodlflow.chain.block import bip34_height, check_merkle, coinbase_tag, difficulty, parse_block
from hodlflow.chain.network import MAIN
from hodlflow.chain.script import classify_script
from hodlflow.entities.labels import load_label_seeds, load_pools, match_pool
from hodlflow.sim import fastchain as fc
from hodlflow.sim import truth as truth_module
from hodlflow.sim.scenario import ScenarioError
from hodlflow.sim.simulator import SimulationError, run_simulation

ROOT = Path(__file__).resolve().parents[2]
COIN = 100_000_000


def _dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class Chain:
    """The best chain of a simulation's blocks directory, parsed, plus the stale blocks."""

    def __init__(self, out: Path):
        self.manifest = json.loads((out / "manifest.json").read_text())
        blocks_dir = str(out / "blocks")
        key = read_xor_key(blocks_dir)
        self.by_hash = {}
        self.raw_order = []
        for path in list_blk_files(blocks_dir):
            for rec in scan_records(path, MAIN, key):
                blk = parse_block(read_block(path, rec, key))
                self.by_hash[blk.hash] = blk
                self.raw_order.append(blk.hash)
        chain = []
        h = self.manifest["tip_hash"]
        while True:
            chain.append(self.by_hash[h])
            if h == self.manifest["start_hash"]:
                break
            h = self.by_hash[h].header.prev_hash
        chain.reverse()
        self.blocks = chain
        self.best = {b.hash for b in chain}
        self.stale = [b for b in self.by_hash.values() if b.hash not in self.best]
        self.start_height = self.manifest["start_height"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    run_simulation("tiny", str(out))
    return out


@pytest.fixture(scope="module")
def chain(tiny) -> Chain:
    return Chain(tiny)


def test_outputs_are_written_with_the_manifest_naming_them(tiny):
    m = json.loads((tiny / "manifest.json").read_text())
    for rel in m["files"].values():
        assert (tiny / rel).exists(), rel
    assert m["network"] == "main" and m["check_pow"] is False
    assert m["ingest_settings"]["ingest.start_hash"] == m["start_hash"]
    assert (tiny / "blocks" / "xor.dat").read_bytes() != bytes(8)
    assert m["blk_files"] == len(list_blk_files(str(tiny / "blocks"))) > 1


def test_truth_headers_match_their_schemas(tiny):
    for table, name in (
        ("truth.addresses", "addresses.csv"),
        ("truth.daily_flows", "daily_flows.csv"),
        ("truth.daily_balances", "daily_balances.csv"),
        ("truth.miner_daily", "miner_daily.csv"),
    ):
        schema = yaml.safe_load((ROOT / "schemas" / f"{table}.yaml").read_text())
        header = (tiny / "truth" / name).read_text().splitlines()[0].split(",")
        assert header == [c["name"] for c in schema["columns"]]
        assert schema["table"] == table and schema["partition_by"] == []
    assert (tiny / "prices.csv").read_text().splitlines()[0] == "day,close_usd"


def test_the_best_chain_runs_from_the_start_height_with_bip34_heights(chain):
    m = chain.manifest
    assert len(chain.blocks) == m["blocks"] == m["tip_height"] - m["start_height"] + 1
    for i, blk in enumerate(chain.blocks):
        assert bip34_height(blk.txs[0].inputs[0].script_sig) == chain.start_height + i
        check_merkle(blk)


def test_stale_blocks_fork_off_the_best_chain_and_some_blocks_are_stored_late(chain):
    assert len(chain.stale) == chain.manifest["stale_blocks"] >= 1
    heights = {b.hash: i for i, b in enumerate(chain.blocks)}
    for s in chain.stale:
        assert s.header.prev_hash in heights
    order = [heights[h] for h in chain.raw_order if h in heights]
    assert order != sorted(order)  # some child stored before its parent


def test_header_times_increase_and_fall_on_the_truth_days(chain, tiny):
    days = [r["day"] for r in _read_csv(tiny / "truth" / "miner_daily.csv")]
    times = [b.header.time for b in chain.blocks]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    first = dt.date.fromisoformat(chain.manifest["first_day"])
    seen = {(first + dt.timedelta(days=i)).isoformat() for i in range(len(days))}
    assert {dt.datetime.fromtimestamp(t, dt.UTC).date().isoformat() for t in times} == seen


def test_difficulty_is_mainnet_like_and_subsidy_is_todays(chain):
    for blk in chain.blocks:
        assert 5e13 < difficulty(blk.header.bits) < 5e14
    height = chain.start_height
    assert MAIN.subsidy(height) == 312_500_000


def test_every_spend_is_valid_mature_and_fees_are_paid(chain):
    utxo: dict[tuple[str, int], tuple[int, int, bool]] = {}  # -> (value, height, coinbase)
    for i, blk in enumerate(chain.blocks):
        height = chain.start_height + i
        fees = 0
        for tx in blk.txs[1:]:
            assert tx.locktime < height
            value_in = 0
            for txin in tx.inputs:
                key = (txin.prev_txid, txin.prev_vout)
                assert key in utxo, f"height {height}: {tx.txid} spends unknown/spent {key}"
                value, made, is_cb = utxo.pop(key)
                if is_cb:
                    assert height - made >= 100, "coinbase spent before maturity"
                value_in += value
            value_out = sum(o.value for o in tx.outputs)
            assert value_in >= value_out
            fees += value_in - value_out
            for n, o in enumerate(tx.outputs):
                if o.script_pubkey[:1] != b"\x6a":
                    utxo[(tx.txid, n)] = (o.value, height, False)
        cb = blk.txs[0]
        assert sum(o.value for o in cb.outputs) == MAIN.subsidy(height) + fees
        for n, o in enumerate(cb.outputs):
            if o.script_pubkey[:1] != b"\x6a":
                utxo[(cb.txid, n)] = (o.value, height, True)


def test_witness_commitments_match(chain):
    for blk in chain.blocks[:300]:
        if not any(tx.wtxid != tx.txid for tx in blk.txs[1:]):
            continue
        wtxids = [bytes(32)] + [bytes.fromhex(t.wtxid)[::-1] for t in blk.txs[1:]]
        root = fc.merkle_root(wtxids)
        commit = [
            o.script_pubkey
            for o in blk.txs[0].outputs
            if o.script_pubkey[:6] == bytes.fromhex("6a24aa21a9ed")
        ]
        assert commit == [bytes.fromhex("6a24aa21a9ed") + _dsha(root + bytes(32))]


def test_every_address_in_the_chain_has_exactly_one_true_owner(chain, tiny):
    rows = _read_csv(tiny / "truth" / "addresses.csv")
    owners = {}
    for r in rows:
        assert r["address"] not in owners, f"address listed twice: {r['address']}"
        owners[r["address"]] = r
    seen = set()
    for blk in chain.by_hash.values():
        for tx in blk.txs:
            for o in tx.outputs:
                stype, addr = classify_script(o.script_pubkey, MAIN)
                if addr is not None:
                    assert addr in owners, f"{addr} ({stype}) has no owner"
                    assert owners[addr]["script_type"] == stype
                    seen.add(addr)
    assert seen == set(owners)  # and the truth lists no address the chain lacks


def test_all_script_types_appear(chain):
    types = {
        classify_script(o.script_pubkey, MAIN)[0]
        for b in chain.blocks
        for t in b.txs
        for o in t.outputs
    }
    assert {
        "p2pk",
        "p2pkh",
        "p2sh",
        "p2wpkh",
        "p2wsh",
        "p2tr",
        "multisig",
        "op_return",
        "witness_unknown",
    } <= types


def _recompute(chain: Chain, owners: dict[str, dict[str, str]]):
    """Daily class flows and miner figures from the parsed chain and the truth's address map.

    The paying entity of a transaction is the owner of its inputs. Outputs without an address
    (bare multisig dust) stay with the payer. When inputs have several owners (coinjoins),
    they must share one class, and outputs to owners outside the inputs count from that class.
    """
    first = dt.date.fromisoformat(chain.manifest["first_day"])
    flows = defaultdict(int)
    miner = defaultdict(lambda: defaultdict(int))
    out_owner: dict[tuple[str, int], tuple[str, str]] = {}  # -> (entity_id, class)
    for i, blk in enumerate(chain.blocks):
        height = chain.start_height + i
        day = dt.datetime.fromtimestamp(blk.header.time, dt.UTC).date()
        assert (day - first).days >= 0
        cb = blk.txs[0]
        miner[day]["blocks"] += 1
        miner[day]["subsidy"] += MAIN.subsidy(height)
        miner[day]["fees"] += sum(o.value for o in cb.outputs) - MAIN.subsidy(height)
        for n, o in enumerate(cb.outputs):
            addr = classify_script(o.script_pubkey, MAIN)[1]
            if addr:
                r = owners[addr]
                assert r["entity_class"] == "miner", "coinbases pay miners"
                out_owner[(cb.txid, n)] = (r["entity_id"], "miner")
        for tx in blk.txs[1:]:
            senders = {out_owner.pop((t.prev_txid, t.prev_vout)) for t in tx.inputs}
            ids = {s[0] for s in senders}
            classes = {s[1] for s in senders}
            assert len(classes) == 1, f"{tx.txid}: inputs of several classes {classes}"
            src = classes.pop()
            payer = next(iter(senders)) if len(ids) == 1 else None
            for n, o in enumerate(tx.outputs):
                stype, addr = classify_script(o.script_pubkey, MAIN)
                if stype == "op_return":
                    continue
                if addr is None:
                    assert payer is not None
                    out_owner[(tx.txid, n)] = payer
                    continue
                r = owners[addr]
                dst = (r["entity_id"], r["entity_class"])
                out_owner[(tx.txid, n)] = dst
                if dst[0] not in ids:
                    flows[(day.isoformat(), src, dst[1])] += o.value
                    if src == "miner":
                        miner[day]["outflow"] += o.value
                        if dst[1] == "exchange":
                            miner[day]["to_exchange"] += o.value
                        if dst[1] == "miner":
                            miner[day]["to_miner"] += o.value
    return flows, miner


def test_true_flows_add_up_to_the_chain(chain, tiny):
    owners = {r["address"]: r for r in _read_csv(tiny / "truth" / "addresses.csv")}
    flows, miner = _recompute(chain, owners)
    truth = {
        (r["day"], r["from_class"], r["to_class"]): int(r["value_sats"])
        for r in _read_csv(tiny / "truth" / "daily_flows.csv")
    }
    assert truth == dict(flows)
    assert any(k[1] == "weak" and k[2] == "exchange" for k in truth)
    for r in _read_csv(tiny / "truth" / "miner_daily.csv"):
        got = miner[dt.date.fromisoformat(r["day"])]
        assert int(r["blocks"]) == got["blocks"]
        assert int(r["subsidy_sats"]) == got["subsidy"]
        assert int(r["fees_sats"]) == got["fees"]
        assert int(r["miner_outflow_sats"]) == got["outflow"]
        assert int(r["miner_to_exchange_sats"]) == got["to_exchange"]
        assert int(r["miner_to_miner_sats"]) == got["to_miner"]


def _unspent_by_day(chain: Chain, owners: dict[str, dict[str, str]]):
    """Per UTC day of the best chain: (unspent supply, {class: value}) at the day's end, from the
    parsed blocks and the truth's address map.

    Outputs with an address belong to the class the truth gives the address. Bare-multisig
    outputs have no address form and so no row in addresses.csv; the simulator makes them only
    as dust that stays with the entity that pays (schemas/truth.addresses.yaml), so here they
    belong to the class of the transaction's inputs, which must be one entity's. They are
    counted apart as well (``bare``), so a test can see the rule was needed. OP_RETURN outputs
    are no one's and not supply.
    """
    utxo: dict[tuple[str, int], tuple[int, str]] = {}  # -> (value, class)
    owner_of: dict[tuple[str, int], str] = {}  # -> entity_id
    days: dict[dt.date, tuple[int, dict[str, int]]] = {}
    bare = 0
    for blk in chain.blocks:
        day = dt.datetime.fromtimestamp(blk.header.time, dt.UTC).date()
        for k, tx in enumerate(blk.txs):
            payers = set()
            payer_class = None
            if k:
                for t in tx.inputs:
                    key = (t.prev_txid, t.prev_vout)
                    payer_class = utxo.pop(key)[1]
                    payers.add(owner_of.pop(key))
            for n, o in enumerate(tx.outputs):
                stype, addr = classify_script(o.script_pubkey, MAIN)
                if stype == "op_return":
                    continue
                if addr is None:
                    assert stype == "multisig" and len(payers) == 1, (tx.txid, stype)
                    utxo[(tx.txid, n)] = (o.value, payer_class)
                    owner_of[(tx.txid, n)] = next(iter(payers))
                    bare += 1
                    continue
                r = owners[addr]
                utxo[(tx.txid, n)] = (o.value, r["entity_class"])
                owner_of[(tx.txid, n)] = r["entity_id"]
        by_class: dict[str, int] = defaultdict(int)
        for value, cls in utxo.values():
            by_class[cls] += value
        days[day] = (sum(v for v, _ in utxo.values()), dict(by_class))
    return days, bare


def test_true_balances_add_up_to_the_chain(chain, tiny):
    """daily_balances.csv: every (day, class) has a row; each class holds what the parsed chain
    leaves unspent at its addresses (bare multisig with its payer) and the classes add up to
    the unspent supply of the day."""
    owners = {r["address"]: r for r in _read_csv(tiny / "truth" / "addresses.csv")}
    expected, bare = _unspent_by_day(chain, owners)
    assert bare > 0  # tiny makes bare-multisig dust: the rule for it is exercised
    rows = _read_csv(tiny / "truth" / "daily_balances.csv")
    classes = ("miner", "exchange", "strong", "weak", "coinjoin", "other")
    truth: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        assert r["class"] not in truth[r["day"]], r
        truth[r["day"]][r["class"]] = int(r["balance_sats"])
    days = [r["day"] for r in _read_csv(tiny / "truth" / "miner_daily.csv")]
    assert list(truth) == days and all(tuple(truth[d]) == classes for d in days)
    for day, (supply, by_class) in expected.items():
        got = truth[day.isoformat()]
        assert sum(got.values()) == supply, day
        assert got == {c: by_class.get(c, 0) for c in classes}, day
    assert all(truth[d]["strong"] > 0 and truth[d]["exchange"] > 0 for d in days[1:])


def test_net_weak_to_strong_follows_the_contract_from_the_true_flows(tiny):
    """The definition of schemas/truth.daily_flows.yaml, from tiny's true flows of a day: the
    mean of strong hands' net inflow and weak hands' net outflow."""
    by_day: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for r in _read_csv(tiny / "truth" / "daily_flows.csv"):
        by_day[r["day"]][(r["from_class"], r["to_class"])] = int(r["value_sats"])
    for flows in by_day.values():
        inflow = defaultdict(int)
        for (src, dst), v in flows.items():
            if src != dst:
                inflow[dst] += v
                inflow[src] -= v
        expected = (inflow["strong"] - inflow["weak"]) / 2
        assert truth_module.net_weak_to_strong(flows) == expected
    assert any(truth_module.net_weak_to_strong(f) != 0 for f in by_day.values())


def test_production_cost_follows_the_cost_model(tiny):
    m = json.loads((tiny / "manifest.json").read_text())
    cm = m["cost_model"]
    for r in _read_csv(tiny / "truth" / "miner_daily.csv"):
        th_s = float(r["hash_rate_hs"]) / 1e12
        kwh = th_s * cm["efficiency_j_per_th"] * 24 / 1000
        btc = (int(r["subsidy_sats"]) + int(r["fees_sats"])) / COIN
        expected = kwh * cm["power_usd_per_kwh"] * cm["pue"] / btc
        assert float(r["production_cost_usd_per_btc"]) == pytest.approx(expected, rel=1e-5)
        assert 40_000 < expected < 120_000


def test_price_falls_under_the_production_cost(tiny):
    rows = _read_csv(tiny / "truth" / "miner_daily.csv")
    ratio = [float(r["price_usd"]) / float(r["production_cost_usd_per_btc"]) for r in rows]
    assert ratio[0] > 1.2 and ratio[-1] < 1.0


def test_same_seed_gives_byte_identical_output(tiny, tmp_path):
    again = tmp_path / "again"
    run_simulation("tiny", str(again))
    cmp = filecmp.dircmp(tiny, again)
    names = []
    for root, _, files in os.walk(tiny):
        for f in files:
            rel = Path(root, f).relative_to(tiny)
            names.append(rel)
            assert (tiny / rel).read_bytes() == (again / rel).read_bytes(), rel
    assert len(names) >= 8 and not cmp.left_only and not cmp.right_only


def test_another_seed_gives_another_chain(tiny, tmp_path):
    other = tmp_path / "other"
    m = run_simulation("tiny", str(other), seed=8, xor=False)
    assert m["start_hash"] != json.loads((tiny / "manifest.json").read_text())["start_hash"]
    assert not (other / "blocks" / "xor.dat").exists()


def test_scale_multiplies_transactions(tmp_path):
    small = run_simulation("tiny", str(tmp_path / "a"), scale=0.5)
    big = run_simulation("tiny", str(tmp_path / "b"), scale=2.0)
    assert big["transactions"] - big["blocks"] > 2 * (small["transactions"] - small["blocks"])


def test_refuses_an_out_dir_that_already_holds_blocks(tiny):
    with pytest.raises(FileExistsError, match="already holds blk files"):
        run_simulation("tiny", str(tiny))


def test_a_bad_scenario_file_is_named_in_the_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "price: {start_usd: 1000}\nphases: [{name: a, days: 1, end_usd: 900}]\n"
        "agents:\n  pools: [{name: p, tag: /p/, hashrate_share: 1, payout_every_days: -1}]\n"
        "  exchanges: [{name: e, market_share: 1}]\n"
    )
    with pytest.raises(ScenarioError) as err:
        run_simulation(str(bad), str(tmp_path / "out"))
    assert str(err.value) == (
        f"{bad}: agents.pools[0].payout_every_days: must be a positive integer, got -1"
    )


def test_blocks_respect_the_weight_limit_and_the_rest_waits(tmp_path, monkeypatch):
    monkeypatch.setattr(fc, "MAX_BLOCK_WEIGHT", 120_000)
    run_simulation("tiny", str(tmp_path / "out"))
    chain = Chain(tmp_path / "out")
    weights = [b.weight for b in chain.blocks]
    assert max(weights) <= 120_000
    assert sum(w > 60_000 for w in weights) >= 2  # some blocks were filled up


def test_transactions_left_after_the_last_block_are_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fc, "MAX_BLOCK_WEIGHT", 20_000)  # under a big payout's weight
    with pytest.raises(SimulationError, match="did not fit in the blocks of the last day"):
        run_simulation("tiny", str(tmp_path / "out"))


def test_coinbase_tags_name_the_pools(chain):
    tags = {coinbase_tag(b.txs[0].inputs[0].script_sig) for b in chain.blocks}
    assert any("/AlphaPool/" in t for t in tags) and any("/Beta Mining/" in t for t in tags)


def test_the_pool_list_carries_the_scenario_tags_and_names_each_pool_block(chain, tiny):
    pools = load_pools(tiny / "labels" / "pools.json")
    assert [(p.id, p.name, p.addresses, p.link) for p in pools] == [
        (1, "AlphaPool", (), ""),
        (2, "BetaPool", (), ""),
    ]
    assert [[t.pattern for t in p.tags] for p in pools] == [
        [re.escape("/AlphaPool/")],
        [re.escape("/Beta Mining/")],
    ]
    owners = {r["address"]: r for r in _read_csv(tiny / "truth" / "addresses.csv")}
    named = defaultdict(int)
    for blk in chain.blocks:
        cb = blk.txs[0]
        payees = {classify_script(o.script_pubkey, MAIN)[1] for o in cb.outputs} - {None}
        (owner,) = {owners[a]["entity_label"] for a in payees}
        pool = match_pool(coinbase_tag(cb.inputs[0].script_sig), [], pools)
        # Pool blocks carry their pool's tag; solo miners' (tiny gives them none) match no pool.
        assert (f"pool:{pool.name}" if pool else None) == (
            owner if owner.startswith("pool:") else None
        )
        named[pool.name if pool else None] += 1
    assert named["AlphaPool"] > 0 and named["BetaPool"] > 0 and named[None] > 0


def test_exchange_seeds_are_cold_wallets_of_the_exchange_they_name(tiny):
    seeds = load_label_seeds(tiny / "labels" / "exchanges.csv")
    owners = {r["address"]: r for r in _read_csv(tiny / "truth" / "addresses.csv")}
    assert {label for _, label in seeds} == {"Bitvault", "Coinhaus"}
    for address, label in seeds:
        r = owners[address]
        assert (r["entity_class"], r["entity_label"], r["address_role"]) == (
            "exchange",
            f"exchange:{label}",
            "cold",
        )
    lines = (tiny / "labels" / "exchanges.csv").read_text().splitlines()
    assert lines[0] == "address,label,source"
    assert all(line.endswith(",simulator") for line in lines[1:])


def test_otc_sales_pay_long_term_holders_directly(tmp_path):
    """tiny.yaml with every trader's and forced seller's sale over the counter: the weak hands
    then pay long-term holders (truth class strong) and never an exchange, and the truth still
    adds up to the chain. (Without otc_share, tiny's weak hands sell only on exchanges.)"""
    scenario = yaml.safe_load((ROOT / "conf" / "scenarios" / "tiny.yaml").read_text())
    scenario["agents"]["weak_traders"]["otc_share"] = 1.0
    scenario["agents"]["forced_sellers"]["otc_share"] = 1.0
    path = tmp_path / "otc.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    run_simulation(str(path), str(out))
    owners = {r["address"]: r for r in _read_csv(out / "truth" / "addresses.csv")}
    chain = Chain(out)
    flows, _ = _recompute(chain, owners)
    truth = {
        (r["day"], r["from_class"], r["to_class"]): int(r["value_sats"])
        for r in _read_csv(out / "truth" / "daily_flows.csv")
    }
    assert truth == dict(flows)
    from_weak = {k[2] for k in truth if k[1] == "weak"}
    assert "strong" in from_weak and "exchange" not in from_weak


def test_whales_receive_on_one_cold_storage_address(tmp_path):
    """tiny.yaml with no address reuse but whale_address_reuse 1.0 and no consolidation: the
    largest strong holder (tiny has 8, so max(1, 8 // 20) = 1 whale) gets every receipt on one
    address, while every other strong holder gets a new address for each receipt."""
    scenario = yaml.safe_load((ROOT / "conf" / "scenarios" / "tiny.yaml").read_text())
    strong = scenario["agents"]["strong_holders"]
    strong.update(address_reuse=0.0, whale_address_reuse=1.0, spend_prob_per_year=0.0)
    path = tmp_path / "whales.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    run_simulation(str(path), str(out))
    owners = {r["address"]: r for r in _read_csv(out / "truth" / "addresses.csv")}
    receipts: dict[str, list[str]] = defaultdict(list)  # strong holder -> address per output
    for blk in Chain(out).blocks:
        for tx in blk.txs:
            for o in tx.outputs:
                addr = classify_script(o.script_pubkey, MAIN)[1]
                if addr and owners[addr]["entity_type"] == "long_term_holder":
                    receipts[owners[addr]["entity_label"]].append(addr)
    repeat = {label: addrs for label, addrs in receipts.items() if len(addrs) >= 2}
    one_address = [label for label, addrs in repeat.items() if len(set(addrs)) == 1]
    assert len(one_address) == 1, one_address
    for label, addrs in repeat.items():
        if label not in one_address:
            assert len(set(addrs)) == len(addrs), f"{label} reused an address"

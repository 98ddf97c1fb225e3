"""Ingest over JSON-RPC from a real btcd node (regtest, loopback), one node for the module.

The node mines the blocks (``generate``) and accepts real transactions (``sendrawtransaction``)
that spend its anyone-can-spend coinbases; a longer competing chain built with hodlflow's chain
builder and handed over with ``submitblock`` makes it reorg. Expected values come from the node
(hashes, txids) or are worked out by hand (fees, supply, what is unspent).

The tests run in file order on one node whose chain grows: mined → followed → reorged →
killed.
"""

from __future__ import annotations

import threading
import time

import pytest
from bitcoinlib.encoding import pubkeyhash_to_addr_base58

from hodlflow import tables
from hodlflow.chain.network import REGTEST
from hodlflow.chain.rpc import RpcAuthError, RpcChainError, RpcClient, RpcConfig, RpcConnectionError
from hodlflow.ingest.follow import run_rpc_ingest
from hodlflow.ingest.job import IngestError, run_ingest
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sim.builder import ChainBuilder, Spend, p2pkh
from hodlflow.sim.keys import KeyRing
from tests.support.btcd import (
    ANYONE_P2SH,
    ANYONE_SCRIPT_SIG,
    RPC_PASS,
    RPC_USER,
    cleanup,
    free_port,
    start_btcd,
)
from tests.support.signing import signed_p2pkh_spend

COIN = 100_000_000
SUBSIDY = 50 * COIN  # regtest heights below 150
HA = bytes.fromhex("a1" * 20)
FEE1, FEE2, FEE3, FEE4 = 10_000, 5_000, 7_000, 3_000
KEY = KeyRing(b"rpc-test")[0]  # the key of T1:1, which T4 spends with a real signature
T4_VALUE = SUBSIDY - 10 * COIN - FEE1 - FEE4
QUIET = {"log": lambda _m: None}
KEYS = ("chain.blocks", "chain.transactions", "chain.outputs", "chain.inputs", "chain.unspent")


def snapshot(spark, settings):
    """Every row of every chain table, sorted: the whole content to compare runs by."""
    return {
        key: sorted(tuple(r) for r in tables.read_table(spark, settings, key).collect())
        for key in KEYS
    }


def coinbase_txid(node, height):
    return node.call("getblock", node.call("getblockhash", height))["tx"][0]


def anyone_spend(txid, vout, value, outputs):
    """A real transaction spending an anyone-can-spend output: no signature needed."""
    spend = Spend(txid, vout, value=value, script_sig=ANYONE_SCRIPT_SIG)
    return ChainBuilder(REGTEST).tx([spend], outputs, allow_unknown=True)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = start_btcd(tmp_path_factory.mktemp("btcd"))
    yield n
    cleanup(n)


@pytest.fixture(scope="module")
def mined(node):
    """101 blocks, then T1 (spends block 1's coinbase) in block 102, T2 (spends T1:0) and T4
    (spends T1:1, signed) in block 103, then two empty blocks: tip 105."""
    node.generate(101)
    cb1 = coinbase_txid(node, 1)
    t1 = anyone_spend(cb1, 0, SUBSIDY,
                      [(10 * COIN, ANYONE_P2SH), (SUBSIDY - 10 * COIN - FEE1, p2pkh(KEY.h160))])  # fmt: skip
    assert node.call("sendrawtransaction", t1.raw.hex()) == t1.txid
    node.generate(1)
    t2 = anyone_spend(t1.txid, 0, 10 * COIN, [(10 * COIN - FEE2, ANYONE_P2SH)])
    assert node.call("sendrawtransaction", t2.raw.hex()) == t2.txid
    t4_raw, t4 = signed_p2pkh_spend(KEY, t1.txid, 1, p2pkh(KEY.h160), [(T4_VALUE, p2pkh(HA))])
    assert node.call("sendrawtransaction", t4_raw.hex()) == t4
    node.generate(3)
    assert node.call("getblock", node.call("getblockhash", 102))["tx"][1:] == [t1.txid]
    assert sorted(node.call("getblock", node.call("getblockhash", 103))["tx"][1:]) == sorted(
        [t2.txid, t4]
    )
    return {"cb1": cb1, "t1": t1, "t2": t2, "t4": t4}


@pytest.fixture(scope="module")
def followed(spark, node, mined, tmp_path_factory):
    """The chain ingested with 2 confirmations held back, then again with none."""
    from hodlflow.config import load_settings

    base = tmp_path_factory.mktemp("followed")
    over = {"warehouse.path": str(base / "wh"), "warehouse.db_prefix": "rpc_",
            "network": "regtest", "ingest.rpc.url": node.url, "ingest.rpc.user": RPC_USER,
            "ingest.rpc.password": RPC_PASS, "ingest.rpc.blocks_per_task": 40,
            "ingest.rpc.batch_blocks": 7, "ingest.rpc.confirmations": 2}  # fmt: skip
    settings = load_settings("test", over)
    first = run_rpc_ingest(spark, settings, **QUIET)
    at_103 = snapshot(spark, settings)
    settings = load_settings("test", {**over, "ingest.rpc.confirmations": 0})
    second = run_rpc_ingest(spark, settings, **QUIET)
    third = run_rpc_ingest(spark, settings, **QUIET)
    return {"settings": settings, "results": (first, second, third), "at_103": at_103,
            "hashes": node.best_chain()}  # fmt: skip


def test_ingest_stops_confirmations_below_the_tip_and_resumes_from_there(followed):
    first, second, third = followed["results"]
    assert (first.start_height, first.end_height, first.blocks) == (0, 103, 104)
    assert first.transactions == 104 + 3  # a coinbase per block, T1, T2, T4
    assert (second.start_height, second.end_height, second.blocks) == (104, 105, 2)
    assert third.blocks == 0 and third.summary() == "chain tables already up to date"


def test_blocks_are_the_nodes_best_chain(spark, followed):
    blocks = tables.read_table(spark, followed["settings"], "chain.blocks").collect()
    assert sorted((b.height, b.hash) for b in blocks) == list(enumerate(followed["hashes"]))
    by_height = {b.height: b for b in blocks}
    assert by_height[102].fees_sats == FEE1 and by_height[103].fees_sats == FEE2 + FEE4
    assert by_height[104].fees_sats == 0
    assert all(b.subsidy_sats == SUBSIDY for b in blocks)


def test_spends_resolve_and_the_unspent_set_holds_the_supply(spark, followed, mined):
    s = followed["settings"]
    t1, t2 = mined["t1"], mined["t2"]
    txs = {r.txid: r for r in tables.read_table(spark, s, "chain.transactions").collect()}
    assert (txs[t1.txid].input_sats, txs[t1.txid].fee_sats, txs[t1.txid].height) == (
        SUBSIDY,
        FEE1,
        102,
    )
    assert (txs[t2.txid].input_sats, txs[t2.txid].fee_sats, txs[t2.txid].height) == (
        10 * COIN,
        FEE2,
        103,
    )
    inputs = {(r.txid, r.vin): r for r in tables.read_table(spark, s, "chain.inputs").collect()}
    assert len(inputs) == 3
    t1_in = inputs[(t1.txid, 0)]
    assert (t1_in.prev_txid, t1_in.prev_vout, t1_in.value_sats, t1_in.created_height) == (
        mined["cb1"],
        0,
        SUBSIDY,
        1,
    )
    unspent = {
        (r.txid, r.vout): r.value_sats
        for r in tables.read_table(spark, s, "chain.unspent").collect()
    }
    # 105 spendable coinbases (not genesis') − block 1's + T4:0 + T2:0; fees only move coins.
    assert len(unspent) == 105 - 1 + 2
    assert sum(unspent.values()) == 105 * SUBSIDY
    assert {(mined["cb1"], 0), (t1.txid, 0), (t1.txid, 1)}.isdisjoint(unspent)
    assert unspent[(mined["t4"], 0)] == T4_VALUE
    assert unspent[(t2.txid, 0)] == 10 * COIN - FEE2


def test_a_signed_p2pkh_spend_resolves_to_its_address(spark, followed, mined):
    inputs = tables.read_table(spark, followed["settings"], "chain.inputs").collect()
    (t4_in,) = [r for r in inputs if r.txid == mined["t4"]]
    address = pubkeyhash_to_addr_base58(
        KEY.h160, prefix=b"\x6f"
    )  # bitcoinlib: an independent encoder
    assert (t4_in.prev_txid, t4_in.prev_vout, t4_in.value_sats, t4_in.script_type, t4_in.address) == (
        mined["t1"].txid, 1, SUBSIDY - 10 * COIN - FEE1, "p2pkh", address)  # fmt: skip


def test_no_secret_reaches_the_tables(followed):
    assert RPC_PASS not in repr(followed["at_103"])
    assert RPC_PASS not in repr(followed["settings"])


# ---------------------------------------------------------------------------- a real reorg


@pytest.fixture(scope="module")
def reorged(spark, node, mined, followed, make_settings_module):
    """A competing chain from height 102 (on block 101), one block longer than the node's:
    102' holds T3 (spends block 2's coinbase) instead of T1, and T2 vanishes with 103."""
    hashes = followed["hashes"]
    # A block's time must exceed the median of the 11 before it. The node mines its blocks
    # faster than one a second, stepping their times ahead of the clock: start after the
    # latest of them (a start at the clock alone was refused when it equalled that median).
    latest = max(node.call("getblockheader", hashes[h], True)["time"] for h in range(91, 102))
    b = ChainBuilder(REGTEST, start_height=102, start_time=max(int(time.time()), latest) + 1,
                     interval=1, prev_hash=hashes[101], payout_script=ANYONE_P2SH)  # fmt: skip
    cb2 = coinbase_txid(node, 2)
    t3 = anyone_spend(cb2, 0, SUBSIDY, [(SUBSIDY - FEE3, p2pkh(HA))])
    fork = [b.add_block([t3], coinbase_tag=b"/fork/")]
    fork += [b.add_block(coinbase_tag=b"/fork/") for _ in range(4)]
    for blk in fork:
        assert node.call("submitblock", blk.raw.hex()) is None
    assert node.call("getbestblockhash") == fork[-1].hash
    settings = followed["settings"]
    # 5 confirmations put the target (101) below the fork: the stored heights 102..105 are
    # still rewritten from the new branch, and the next run with none adds 106.
    held_back = run_rpc_ingest(
        spark, settings.with_overrides({"ingest.rpc.confirmations": 5}), **QUIET
    )
    result = run_rpc_ingest(spark, settings, **QUIET)
    fresh = make_settings_module("fresh_")
    run_rpc_ingest(spark, fresh, **QUIET)
    return {"held_back": held_back, "result": result, "fork": fork, "t3": t3, "cb2": cb2, "fresh": fresh,
            "snap": snapshot(spark, settings), "fresh_snap": snapshot(spark, fresh)}  # fmt: skip


@pytest.fixture(scope="module")
def make_settings_module(node, tmp_path_factory):
    from hodlflow.config import load_settings

    def make(prefix, **over):
        base = {"warehouse.path": str(tmp_path_factory.mktemp(prefix) / "wh"),
                "warehouse.db_prefix": prefix, "network": "regtest",
                "ingest.rpc.url": node.url, "ingest.rpc.user": RPC_USER,
                "ingest.rpc.password": RPC_PASS, "ingest.rpc.blocks_per_task": 40,
                "ingest.rpc.batch_blocks": 7, "ingest.rpc.confirmations": 0,
                "ingest.rpc.retries": 1}  # fmt: skip
        base.update(over)
        return load_settings("test", base)

    return make


def test_a_reorg_rewrites_from_the_fork_and_equals_a_fresh_ingest(reorged):
    assert (reorged["held_back"].start_height, reorged["held_back"].end_height) == (102, 105)
    assert (reorged["result"].start_height, reorged["result"].end_height) == (106, 106)
    assert reorged["snap"] == reorged["fresh_snap"]


def test_a_reorg_restores_what_orphaned_blocks_spent_and_drops_what_they_made(
    spark, reorged, mined, followed
):
    s = followed["settings"]
    blocks = {r.height: r.hash for r in tables.read_table(spark, s, "chain.blocks").collect()}
    assert [blocks[h] for h in range(102, 107)] == [b.hash for b in reorged["fork"]]
    assert [blocks[h] for h in range(102)] == followed["hashes"][:102]
    txids = {r.txid for r in tables.read_table(spark, s, "chain.transactions").collect()}
    assert {mined["t1"].txid, mined["t2"].txid, mined["t4"]}.isdisjoint(txids)
    assert reorged["t3"].txid in txids
    unspent = {(r.txid, r.vout) for r in tables.read_table(spark, s, "chain.unspent").collect()}
    assert (mined["cb1"], 0) in unspent  # spent by T1 on the orphaned branch only
    assert (reorged["cb2"], 0) not in unspent  # spent by T3 on the new branch
    assert not any(t in {mined["t1"].txid, mined["t2"].txid, mined["t4"]} for t, _ in unspent)
    values = [r.value_sats for r in tables.read_table(spark, s, "chain.unspent").collect()]
    assert sum(values) == 106 * SUBSIDY


def test_one_chain_two_roads_rpc_and_blk_files_give_identical_tables(
    spark, node, reorged, make_settings_module, tmp_path
):
    raws = []
    with RpcClient(node.config()) as c:
        raws = c.raw_blocks(node.best_chain())
    blocks_dir = tmp_path / "blocks"
    write_blocks_dir(blocks_dir, raws, REGTEST, xor_key=bytes.fromhex("0123456789abcdef"),
                     shuffle_seed=3, max_file_bytes=4000)  # fmt: skip
    settings = make_settings_module("blk_", **{"ingest.blocks_dir": str(blocks_dir)})
    run_ingest(spark, settings, **QUIET)
    assert snapshot(spark, settings) == reorged["fresh_snap"]


# ---------------------------------------------------------------------------- bad input


def test_a_wrong_password_is_a_clear_error_without_the_password(node, spark, make_settings_module):
    wrong = "Wr0ng-pa55word-zz"
    with pytest.raises(RpcAuthError) as info:
        RpcClient(node.config(password=wrong, retries=0)).call("getblockcount")
    assert "refused the RPC credentials" in str(info.value) and wrong not in str(info.value)
    settings = make_settings_module("pw_", **{"ingest.rpc.password": wrong})
    with pytest.raises(IngestError) as info:
        run_rpc_ingest(spark, settings, **QUIET)
    assert node.url in str(info.value) and "refused the RPC credentials" in str(info.value)
    assert wrong not in str(info.value) and wrong not in repr(settings)


def test_a_cookie_file_logs_in_and_a_missing_one_is_named(node, tmp_path):
    cookie = tmp_path / ".cookie"
    cookie.write_text(f"{RPC_USER}:{RPC_PASS}")
    cfg = RpcConfig(node.url, cookie_file=str(cookie), retries=0)
    assert RpcClient(cfg).call("getblockhash", 0) == REGTEST.genesis_hash
    missing = RpcConfig(node.url, cookie_file=str(tmp_path / "nope"), retries=0)
    with pytest.raises(RpcAuthError, match="cannot read the RPC cookie file .*nope"):
        RpcClient(missing).call("getblockcount")


def test_the_wrong_network_names_both(node, spark, make_settings_module):
    settings = make_settings_module("net_", network="testnet")
    with pytest.raises(IngestError) as info:
        run_rpc_ingest(spark, settings, **QUIET)
    assert "'regtest' chain" in str(info.value) and "'testnet'" in str(info.value)
    with pytest.raises(RpcChainError):
        RpcClient(node.config()).check_network("main", "00" * 32)


def test_no_node_listening_is_a_clear_error(spark, make_settings_module):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(RpcConnectionError, match=f"no answer from the node at {url}.*refused"):
        RpcClient(RpcConfig(url, user="u", password="p", retries=1, backoff_s=0.01)).call(
            "getblockcount"
        )
    settings = make_settings_module("gone_", **{"ingest.rpc.url": url})
    with pytest.raises(IngestError, match=f"no answer from the node at {url}"):
        run_rpc_ingest(spark, settings, **QUIET)


def test_credentials_in_the_url_are_refused_without_echoing_them():
    with pytest.raises(ValueError) as info:
        RpcConfig("http://me:hunter2@127.0.0.1:1", user="me", password="hunter2")
    assert "hunter2" not in str(info.value)


# ---------------------------------------------------------------------------- crashes


def test_the_node_killed_mid_ingest_leaves_tables_as_they_were_and_a_rerun_is_correct(
    spark, node, reorged, make_settings_module
):
    settings = make_settings_module("kill_")
    run_rpc_ingest(spark, settings, end_height=50, **QUIET)
    before = snapshot(spark, settings)
    with RpcClient(node.config()) as c:
        raws = c.raw_blocks(node.best_chain()[1:])

    def kill_when_planned(message: str) -> None:
        if message.startswith("reading heights"):  # the range is planned; no block fetched yet
            node.kill()

    with pytest.raises(IngestError, match=f"no answer from the node at {node.url}"):
        run_rpc_ingest(spark, settings, log=kill_when_planned)
    assert snapshot(spark, settings) == before

    # btcd wipes its regtest database at start: the restarted node holds only the genesis
    # block. Tables ahead of the node roll back to what it has.
    # A client retrying with backoff reaches the node once it is back.
    threading.Timer(1.0, node.start).start()
    waiting = RpcClient(node.config(retries=6, backoff_s=0.25))
    assert waiting.call("getblockcount") == 0
    while node.proc is None:  # start() returns once the node answers; wait for its handle
        time.sleep(0.1)
    shrunk = reorged["fresh"]
    result = run_rpc_ingest(spark, shrunk, **QUIET)
    assert result.blocks == 0 and result.summary().startswith("removed heights 1 and up")
    snap = snapshot(spark, shrunk)
    assert [r[0] for r in snap["chain.blocks"]] == [0]
    assert len(snap["chain.transactions"]) == 1 and snap["chain.unspent"] == []

    # The same blocks again: the interrupted run resumes after height 50.
    for raw in raws:
        assert node.call("submitblock", raw.hex()) is None
    result = run_rpc_ingest(spark, settings, **QUIET)
    assert (result.start_height, result.end_height) == (51, 106)
    assert snapshot(spark, settings) == reorged["fresh_snap"]
    run_rpc_ingest(spark, shrunk, **QUIET)
    assert snapshot(spark, shrunk) == reorged["fresh_snap"]

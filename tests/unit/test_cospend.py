"""Address ids, coinjoin flags and co-spend edges on tiny hand-built transactions.

Every expected frame is written out by hand from the transaction drawn in the test.
"""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from hodlflow.entities.cospend import (
    build_tx_summary,
    cospend_edges,
    guard_change_edges,
    with_address_ids,
    with_coinjoin_flag,
)
from hodlflow.tables import SchemaError

SEEN = "address string, height int"
ID_TABLE = "address string, address_id bigint, first_height int"
INPUTS = "txid string, height int, address string"
OUTPUTS = "txid string, height int, is_coinbase boolean, value_sats bigint"
SUMMARY = (
    "txid string, height int, is_coinbase boolean, input_count bigint, "
    "input_address_count bigint, output_count bigint, equal_output_count bigint, "
    "equal_output_value bigint"
)
FLAG = "txid string, is_coinjoin boolean"
TX_FLAGS = "txid string, is_coinbase boolean, is_coinjoin boolean"
IDS = "address string, address_id bigint"
EDGES = "src bigint, dst bigint"


# -- address ids --------------------------------------------------------------------------


def test_new_addresses_are_numbered_from_zero_by_first_height_then_address(spark):
    seen = spark.createDataFrame([("b", 5), ("a", 7), ("c", 5), ("a", 9), ("b", 6)], SEEN)
    actual = with_address_ids(seen, None)
    expected = spark.createDataFrame([("b", 0, 5), ("c", 1, 5), ("a", 2, 7)], ID_TABLE)
    assertDataFrameEqual(actual, expected)


def test_existing_ids_are_kept_and_new_ids_follow_their_maximum(spark):
    existing = spark.createDataFrame([("x", 0, 1), ("y", 4, 2)], ID_TABLE)
    seen = spark.createDataFrame([("y", 9), ("z", 3), ("w", 3), ("v", 8)], SEEN)
    actual = with_address_ids(seen, existing)
    expected = spark.createDataFrame(
        [("x", 0, 1), ("y", 4, 2), ("w", 5, 3), ("z", 6, 3), ("v", 7, 8)], ID_TABLE
    )
    assertDataFrameEqual(actual, expected)


def test_null_address_gets_no_id(spark):
    seen = spark.createDataFrame([(None, 1), ("a", 2)], SEEN)
    actual = with_address_ids(seen, None)
    assertDataFrameEqual(actual, spark.createDataFrame([("a", 0, 2)], ID_TABLE))


# -- transaction summary ------------------------------------------------------------------


def test_summary_counts_inputs_distinct_addresses_outputs_and_largest_equal_group(spark):
    # Inputs from a, a, b and one without address; outputs 100, 100, 50, 50, 70: two groups of
    # two, the tie goes to the larger value.
    inputs = spark.createDataFrame(
        [("t", 10, "a"), ("t", 10, "a"), ("t", 10, "b"), ("t", 10, None)], INPUTS
    )
    outputs = spark.createDataFrame([("t", 10, False, v) for v in (100, 100, 50, 50, 70)], OUTPUTS)
    actual = build_tx_summary(inputs, outputs)
    expected = spark.createDataFrame([("t", 10, False, 4, 2, 5, 2, 100)], SUMMARY)
    assertDataFrameEqual(actual, expected)


def test_summary_ignores_zero_value_outputs(spark):
    inputs = spark.createDataFrame([("t", 10, "a")], INPUTS)
    outputs = spark.createDataFrame([("t", 10, False, v) for v in (0, 0, 500)], OUTPUTS)
    actual = build_tx_summary(inputs, outputs)
    expected = spark.createDataFrame([("t", 10, False, 1, 1, 1, 1, None)], SUMMARY)
    assertDataFrameEqual(actual, expected)


def test_summary_of_coinbase_counts_no_inputs(spark):
    inputs = spark.createDataFrame([], INPUTS)
    outputs = spark.createDataFrame([("cb", 10, True, 625_000_000)], OUTPUTS)
    actual = build_tx_summary(inputs, outputs)
    expected = spark.createDataFrame([("cb", 10, True, 0, 0, 1, 1, None)], SUMMARY)
    assertDataFrameEqual(actual, expected)


# -- coinjoin flag ------------------------------------------------------------------------


def flags(spark, inputs, outputs, txid="t", coinbase=False):
    """is_coinjoin of one transaction from its input addresses and output values."""
    ins = spark.createDataFrame([(txid, 10, a) for a in inputs], INPUTS)
    outs = spark.createDataFrame([(txid, 10, coinbase, v) for v in outputs], OUTPUTS)
    return with_coinjoin_flag(build_tx_summary(ins, outs)).select("txid", "is_coinjoin")


def test_whirlpool_five_inputs_five_equal_outputs_is_coinjoin(spark):
    actual = flags(spark, ["a", "b", "c", "d", "e"], [1_000_000] * 5)
    assertDataFrameEqual(actual, spark.createDataFrame([("t", True)], FLAG))


def test_joinmarket_three_party_join_is_coinjoin(spark):
    # Taker (two inputs) and two makers; three equal outputs and three changes.
    actual = flags(
        spark,
        ["taker1", "taker2", "maker1", "maker2"],
        [12_345_678] * 3 + [4_100_000, 870_001, 2_000_123],
    )
    assertDataFrameEqual(actual, spark.createDataFrame([("t", True)], FLAG))


def test_wasabi2_ten_equal_outputs_at_standard_denomination_is_coinjoin(spark):
    # Fewer inputs than equal outputs (participants split), so only the Wasabi rule applies.
    actual = flags(spark, [f"in{i}" for i in range(6)], [6_561] * 10 + [50_000, 77_777])
    assertDataFrameEqual(actual, spark.createDataFrame([("t", True)], FLAG))


def test_wasabi1_ten_equal_outputs_near_a_tenth_of_a_bitcoin_is_coinjoin(spark):
    actual = flags(spark, [f"in{i}" for i in range(6)], [9_987_654] * 10 + [1_234_567])
    assertDataFrameEqual(actual, spark.createDataFrame([("t", True)], FLAG))


def test_ordinary_payment_with_change_is_not_coinjoin(spark):
    actual = flags(spark, ["a", "b"], [150_000, 2_349_000])
    assertDataFrameEqual(actual, spark.createDataFrame([("t", False)], FLAG))


def test_batch_payout_of_equal_odd_amounts_is_not_coinjoin(spark):
    actual = flags(spark, ["a", "b"], [123_457] * 10 + [9_000_000])
    assertDataFrameEqual(actual, spark.createDataFrame([("t", False)], FLAG))


def test_coinbase_is_never_coinjoin(spark):
    actual = flags(spark, [], [10_000_000] * 12, txid="cb", coinbase=True)
    assertDataFrameEqual(actual, spark.createDataFrame([("cb", False)], FLAG))


# -- co-spend edges -----------------------------------------------------------------------


def edges(spark, inputs, tx_flags=(), ids=None):
    """cospend_edges over (txid, address) inputs; ids default to a→1, b→2, ..."""
    ins = spark.createDataFrame([(t, 10, a) for t, a in inputs], INPUTS)
    fl = spark.createDataFrame(list(tx_flags), TX_FLAGS)
    if ids is None:
        ids = {chr(ord("a") + i): i + 1 for i in range(26)}
    id_frame = spark.createDataFrame(sorted(ids.items()), IDS)
    return cospend_edges(ins, fl, id_frame)


def test_inputs_link_to_the_smallest_input_address_id_of_their_tx(spark):
    actual = edges(spark, [("t", "g"), ("t", "c"), ("t", "i"), ("t", "e")])
    expected = spark.createDataFrame([(7, 3), (9, 3), (5, 3)], EDGES)
    assertDataFrameEqual(actual, expected)


def test_coinbase_tx_gives_no_edges(spark):
    actual = edges(spark, [("cb", "a"), ("cb", "b")], [("cb", True, False)])
    assertDataFrameEqual(actual, spark.createDataFrame([], EDGES))


def test_coinjoin_tx_gives_no_edges(spark):
    actual = edges(spark, [("cj", "a"), ("cj", "b")], [("cj", False, True)])
    assertDataFrameEqual(actual, spark.createDataFrame([], EDGES))


def test_missing_or_null_flags_count_as_not_coinjoin(spark):
    actual = edges(
        spark,
        [("unflagged", "a"), ("unflagged", "b"), ("nulls", "c"), ("nulls", "d")],
        [("nulls", None, None)],
    )
    assertDataFrameEqual(actual, spark.createDataFrame([(2, 1), (4, 3)], EDGES))


def test_single_input_tx_gives_no_edge(spark):
    actual = edges(spark, [("t", "a")])
    assertDataFrameEqual(actual, spark.createDataFrame([], EDGES))


def test_inputs_from_one_address_give_no_edge(spark):
    actual = edges(spark, [("t", "a"), ("t", "a")])
    assertDataFrameEqual(actual, spark.createDataFrame([], EDGES))


def test_input_without_address_is_skipped(spark):
    actual = edges(spark, [("t", "a"), ("t", None), ("u", "b"), ("u", None), ("u", "c")])
    assertDataFrameEqual(actual, spark.createDataFrame([(3, 2)], EDGES))


def test_input_whose_address_has_no_id_is_skipped(spark):
    actual = edges(spark, [("t", "a"), ("t", "z")], ids={"a": 1})
    assertDataFrameEqual(actual, spark.createDataFrame([], EDGES))


def test_edge_made_by_several_txs_appears_once(spark):
    actual = edges(spark, [("t", "a"), ("t", "b"), ("u", "b"), ("u", "a")])
    assertDataFrameEqual(actual, spark.createDataFrame([(2, 1)], EDGES))


def test_tx_flags_without_coinbase_column_are_rejected_naming_the_columns(spark):
    ins = spark.createDataFrame([], INPUTS)
    fl = spark.createDataFrame([], FLAG)
    ids = spark.createDataFrame([], IDS)
    with pytest.raises(
        SchemaError, match=r"tx_flags: missing column\(s\) \['is_coinbase'\]; .*'is_coinjoin'"
    ):
        cospend_edges(ins, fl, ids)


# -- change heuristics ----------------------------------------------------------------------

CH_INPUTS = "txid string, height int, address string, script_type string"
CH_OUTPUTS = "txid string, height int, address string, script_type string, value_sats bigint"
CH_FLAGS = "txid string, height int, is_coinbase boolean, is_coinjoin boolean"
NEW_IDS = "address string, first_height int"


def _change_case(spark, outputs, flags=None, inputs=None, new=None):
    """Tx t at height 10 spends a (id 1) and b (id 2), both p2wpkh; outputs as given."""
    inputs = inputs or [("t", 10, "a", "p2wpkh"), ("t", 10, "b", "p2wpkh")]
    ids = [("a", 1), ("b", 2), ("pay", 7), ("chg", 9), ("old", 3)]
    return (
        spark.createDataFrame(inputs, CH_INPUTS),
        spark.createDataFrame(outputs, CH_OUTPUTS),
        spark.createDataFrame(flags or [("t", 10, False, False)], CH_FLAGS),
        spark.createDataFrame(ids, IDS),
        spark.createDataFrame(new if new is not None else [("chg", 10), ("pay", 4)], NEW_IDS),
    )


def test_fresh_change_links_the_one_output_first_seen_in_its_tx_to_the_inputs(spark):
    from hodlflow.entities.cospend import change_edges

    frames = _change_case(spark, [("t", 10, "pay", "p2pkh", 500), ("t", 10, "chg", "p2wpkh", 300)])
    assert_edges(change_edges(*frames, ["fresh_change"]), [(9, 1)], spark)


def test_script_type_change_links_the_one_output_of_the_inputs_type(spark):
    from hodlflow.entities.cospend import change_edges

    # Both outputs new (fresh_change cannot tell), only chg has the inputs' type.
    frames = _change_case(
        spark,
        [("t", 10, "pay", "p2pkh", 500), ("t", 10, "chg", "p2wpkh", 300)],
        new=[("chg", 10), ("pay", 10)],
    )
    assert_edges(change_edges(*frames, ["fresh_change"]), [], spark)
    assert_edges(change_edges(*frames, ["script_type_change"]), [(9, 1)], spark)


def test_no_change_edge_when_ambiguous_coinjoin_or_paying_an_input_back(spark):
    from hodlflow.entities.cospend import change_edges

    same_type = [("t", 10, "pay", "p2wpkh", 500), ("t", 10, "chg", "p2wpkh", 300)]
    frames = _change_case(spark, same_type, new=[("chg", 10), ("pay", 10)])
    assert_edges(change_edges(*frames, ["fresh_change", "script_type_change"]), [], spark)
    fresh_one = [("t", 10, "pay", "p2pkh", 500), ("t", 10, "chg", "p2wpkh", 300)]
    frames = _change_case(spark, fresh_one, flags=[("t", 10, False, True)])
    assert_edges(change_edges(*frames, ["fresh_change", "script_type_change"]), [], spark)
    back = [("t", 10, "a", "p2wpkh", 500), ("t", 10, "chg", "p2wpkh", 300)]
    frames = _change_case(spark, back)
    assert_edges(change_edges(*frames, ["fresh_change", "script_type_change"]), [], spark)
    three = fresh_one + [("t", 10, "old", "p2pkh", 100)]
    frames = _change_case(spark, three)
    assert_edges(change_edges(*frames, ["fresh_change", "script_type_change"]), [], spark)


def assert_edges(actual, expected, spark):
    assertDataFrameEqual(actual, spark.createDataFrame(expected, EDGES))


def test_change_guard_keeps_untagged_change_and_never_joins_known_owners_that_differ(spark):
    """Addresses 1-2 untagged; 3 a seed of exchange A, 4 an address of exchange A's entity, 5 of
    exchange B, 6 a coinbase receiver (miner)."""
    edges = spark.createDataFrame(
        [(1, 3), (2, 1), (4, 3), (5, 3), (3, 1), (6, 4), (6, 6)], "src bigint, dst bigint"
    )
    tags = spark.createDataFrame(
        [(3, "exchange:A"), (4, "exchange:A"), (5, "exchange:B"), (6, "miner")],
        "address_id bigint, tag string",
    )
    kept = sorted(tuple(r) for r in guard_change_edges(edges, tags).collect())
    # (1,3): a fresh change of exchange A's wallet, kept; (2,1): two unknowns, kept; (4,3):
    # exchange A's own, kept; (5,3): exchange B as A's change, dropped; (3,1): A's seed as an
    # unknown payer's change, dropped; (6,4): a pool's address as A's change, dropped.
    assert kept == [(1, 3), (2, 1), (4, 3), (6, 6)]


def test_owner_tags_name_seeds_typed_entities_of_older_runs_and_coinbase_receivers(spark):
    """The guard's tags as the entities step builds them: a seed (exchange:A), an address of an
    exchange entity of an older run (exchange:B, by its label) and of a miner entity (miner), a
    coinbase's receiver in the run (miner); an address of an unknown entity and one seen only
    in an ordinary output get none."""
    from hodlflow.entities.transforms import owner_tags

    ids_range = spark.createDataFrame(
        [("seed", 1), ("exB", 2), ("pool", 3), ("cb", 4), ("user", 5), ("payee", 6)],
        "address string, address_id bigint",
    )
    old_ids = spark.createDataFrame(
        [("exB", 2, 20), ("pool", 3, 30), ("user", 5, 50)],
        "address string, address_id bigint, entity_id bigint",
    )
    old_state = spark.createDataFrame(
        [(20, "exchange", "B"), (30, "miner", "SomePool"), (50, "unknown", None)],
        "entity_id bigint, entity_type string, label string",
    )
    outs = spark.createDataFrame(
        [("c1", 10, "cb"), ("t1", 10, "payee")], "txid string, height int, address string"
    )
    flags = spark.createDataFrame(
        [("c1", 10, True), ("t1", 10, False)], "txid string, height int, is_coinbase boolean"
    )
    tags = owner_tags(spark, {"seed": "A"}, old_ids, old_state, outs, flags, ids_range)
    assert sorted(tuple(r) for r in tags.collect()) == [
        (1, "exchange:A"),
        (2, "exchange:B"),
        (3, "miner"),
        (4, "miner"),
    ]


# -- peeling chains -------------------------------------------------------------------------

PEEL_INPUTS = (
    "txid string, height int, day date, address string, script_type string, "
    "prev_txid string, prev_vout int"
)
PEEL_OUTPUTS = (
    "txid string, vout int, height int, day date, address string, script_type string, "
    "value_sats bigint"
)
PEEL_IDS = "address string, address_id bigint, first_height int"


def _frames(spark, txs, ids):
    """``txs``: (txid, height, day offset, [(address, type, prev_txid, prev_vout)],
    [(address, type, value)]) — outputs numbered in order; days from 2024-01-01. Returns the
    inputs, outputs, flags and address ids frames the window rules take."""
    import datetime as dt

    d0 = dt.date(2024, 1, 1)
    ins, outs = [], []
    for txid, height, day, tx_in, tx_out in txs:
        when = d0 + dt.timedelta(days=day)
        ins += [(txid, height, when, a, t, pt, pv) for a, t, pt, pv in tx_in]
        outs += [(txid, i, height, when, a, t, v) for i, (a, t, v) in enumerate(tx_out)]
    flags = [(t[0], False, False) for t in txs]
    return (
        spark.createDataFrame(ins, PEEL_INPUTS),
        spark.createDataFrame(outs, PEEL_OUTPUTS),
        spark.createDataFrame(flags, TX_FLAGS),
        spark.createDataFrame(ids, PEEL_IDS),
    )


def _peel(spark, txs, ids, spent_from_height=0, min_ratio=2.0, max_days=7):
    """:func:`hodlflow.entities.cospend.peel_edges` over ``txs`` (as :func:`_frames`)."""
    from hodlflow.entities.cospend import peel_edges

    return peel_edges(*_frames(spark, txs, ids), min_ratio, max_days, spent_from_height)


# A hot wallet h (id 1, p2wpkh) pays withdrawals out of one coin three times, each change to a
# fresh p2wpkh address spent alone by the next withdrawal; a customer pays most of a coin into
# an exchange deposit address that is then swept (one output: no peel step follows).
HOT_CHAIN = [
    ("t1", 10, 0, [("h", "p2wpkh", "t0", 0)],
     [("w1", "p2pkh", 100), ("c1", "p2wpkh", 1000), ("w2", "p2wpkh", 50)]),
    ("t2", 11, 1, [("c1", "p2wpkh", "t1", 1)], [("c2", "p2wpkh", 800), ("w3", "p2wpkh", 190)]),
    ("t3", 12, 2, [("c2", "p2wpkh", "t2", 0)], [("w4", "p2tr", 50), ("c3", "p2wpkh", 740)]),
    ("u1", 12, 2, [("u", "p2wpkh", "t9", 0)], [("dep", "p2wpkh", 900), ("uc", "p2wpkh", 90)]),
    ("s1", 13, 3, [("dep", "p2wpkh", "u1", 0), ("dep2", "p2wpkh", "t8", 0)],
     [("sweep", "p2wpkh", 1200)]),
]  # fmt: skip
HOT_IDS = [
    ("h", 1, 1), ("w1", 2, 10), ("c1", 3, 10), ("w2", 4, 10), ("c2", 5, 11), ("w3", 6, 11),
    ("w4", 7, 12), ("c3", 8, 12), ("u", 9, 2), ("dep", 10, 12), ("uc", 11, 12),
    ("dep2", 12, 5), ("sweep", 13, 13),
]  # fmt: skip


def test_peel_change_links_each_change_its_next_withdrawal_spends(spark):
    # c1 → h (t2 continues the chain), c2 → c1 (t3 does); c3 is not spent yet; the deposit
    # address is the customer's largest output but is swept, not peeled: no edge.
    assert_edges(_peel(spark, HOT_CHAIN, HOT_IDS), [(3, 1), (5, 3)], spark)


def test_peel_change_only_for_spends_in_the_run_within_max_days_and_a_clear_largest(spark):
    # Only spends at height ≥ 12 (the run) count: t3 spends c2, so only c2 → c1.
    assert_edges(_peel(spark, HOT_CHAIN, HOT_IDS, spent_from_height=12), [(5, 3)], spark)
    # c1 spent 1 day later, c2 1 day later: max_days 0 keeps neither.
    assert_edges(_peel(spark, HOT_CHAIN, HOT_IDS, max_days=0), [], spark)
    # Largest over second: t1 1000/100 = 10×, t2 800/190 = 4.2×, t3 740/50 = 14.8×. At 4.5×
    # t2 is no step: it neither continues t1's chain nor starts one for t3.
    assert_edges(_peel(spark, HOT_CHAIN, HOT_IDS, min_ratio=4.5), [], spark)
    assert_edges(_peel(spark, HOT_CHAIN, HOT_IDS, min_ratio=4.0), [(3, 1), (5, 3)], spark)


def test_peel_change_needs_a_fresh_change_of_the_inputs_type(spark):
    # c1 already seen before t1 (first height 5): not fresh, t1 is no step; and t2's change of
    # another script type than its input: t2 is no step, so nothing continues from t1 either.
    ids = [r if r[0] != "c1" else ("c1", 3, 5) for r in HOT_IDS]
    assert_edges(_peel(spark, HOT_CHAIN, ids), [(5, 3)], spark)
    chain = [t if t[0] != "t2" else
             ("t2", 11, 1, [("c1", "p2wpkh", "t1", 1)], [("c2", "p2tr", 800), ("w3", "p2wpkh", 190)])
             for t in HOT_CHAIN]  # fmt: skip
    assert_edges(_peel(spark, chain, HOT_IDS), [], spark)


# -- payments into a swept deposit address ---------------------------------------------------


def _deposit(spark, txs, ids, spent_from_height=0, sweep_min_inputs=2, max_days=7):
    """:func:`hodlflow.entities.cospend.deposit_edges` over ``txs`` (as :func:`_frames`)."""
    from hodlflow.entities.cospend import deposit_edges

    return deposit_edges(*_frames(spark, txs, ids), sweep_min_inputs, max_days, spent_from_height)


# In HOT_CHAIN, customer u (id 9) pays 900 into deposit address dep and keeps 90 as change uc
# (id 11, first seen there, p2wpkh like u); a day later the exchange sweeps dep with dep2 into
# one output (s1). The hot wallet's withdrawals are never swept.


def test_deposit_change_links_the_other_output_of_a_payment_into_a_swept_address(spark):
    assert_edges(_deposit(spark, HOT_CHAIN, HOT_IDS), [(11, 9)], spark)


def test_deposit_change_needs_a_sweep_in_the_run_within_max_days(spark):
    # s1 spends two addresses: no sweep when three are needed.
    assert_edges(_deposit(spark, HOT_CHAIN, HOT_IDS, sweep_min_inputs=3), [], spark)
    # Swept a day after the payment: not within 0 days.
    assert_edges(_deposit(spark, HOT_CHAIN, HOT_IDS, max_days=0), [], spark)
    # The sweep (height 13) before the run (from 14): the run that held it made the edge.
    assert_edges(_deposit(spark, HOT_CHAIN, HOT_IDS, spent_from_height=13), [(11, 9)], spark)
    assert_edges(_deposit(spark, HOT_CHAIN, HOT_IDS, spent_from_height=14), [], spark)


def test_deposit_change_needs_a_fresh_change_of_the_inputs_type_and_one_deposit(spark):
    # uc seen before (first height 5): a payee's known address, not change.
    ids = [r if r[0] != "uc" else ("uc", 11, 5) for r in HOT_IDS]
    assert_edges(_deposit(spark, HOT_CHAIN, ids), [], spark)
    # uc of another script type than u's.
    other = [t if t[0] != "u1" else
             ("u1", 12, 2, [("u", "p2wpkh", "t9", 0)], [("dep", "p2wpkh", 900), ("uc", "p2tr", 90)])
             for t in HOT_CHAIN]  # fmt: skip
    assert_edges(_deposit(spark, other, HOT_IDS), [], spark)
    # uc swept too, in the same sweep: two deposits, no change.
    both = [t if t[0] != "s1" else
            ("s1", 13, 3, [("dep", "p2wpkh", "u1", 0), ("dep2", "p2wpkh", "t8", 0),
                           ("uc", "p2wpkh", "u1", 1)], [("sweep", "p2wpkh", 1290)])
            for t in HOT_CHAIN]  # fmt: skip
    assert_edges(_deposit(spark, both, HOT_IDS), [], spark)
    # A third output (a second payee): no edge.
    three = [t if t[0] != "u1" else
             ("u1", 12, 2, [("u", "p2wpkh", "t9", 0)],
              [("dep", "p2wpkh", 900), ("uc", "p2wpkh", 90), ("w4", "p2wpkh", 5)])
             for t in HOT_CHAIN]  # fmt: skip
    assert_edges(_deposit(spark, three, HOT_IDS), [], spark)


def test_exchange_feeds_count_sweeps_and_the_change_of_exchange_payments(spark):
    """``from_exchange_sats`` (the hot-wallet typing rule's numerator) on hand-made per-tx rows:
    exchange 1 (sweeping deposits) sweeps s into entity 3, which thereby is a hot wallet (49 of
    the 69 it ever received came from sweeps: ≥ half); the hot wallet pays withdrawal w, 60 to
    entity 7 as the step's change and 30 to customer 8; user 2 pays u, its change-shaped output
    to entity 10."""
    import datetime as dt

    from hodlflow.config import load_settings
    from hodlflow.entities.transforms import with_exchange_feeds

    d = dt.date(2024, 1, 1)
    per_tx = spark.createDataFrame(
        [
            ("s", 5, d, 1, 50, 1, 1, 0), ("s", 5, d, 3, 0, 0, 0, 49),
            ("w", 6, d, 3, 100, 1, 0, 0), ("w", 6, d, 7, 0, 0, 0, 60), ("w", 6, d, 8, 0, 0, 0, 30),
            ("u", 6, d, 2, 40, 1, 0, 0), ("u", 6, d, 10, 0, 0, 0, 35),
        ],
        "txid string, height int, day date, entity_id bigint, in_sats bigint, send_count int, "
        "sweep_count int, received_sats bigint",
    )  # fmt: skip
    got_today = {1: 0, 2: 0, 3: 49, 7: 60, 8: 30, 10: 35}
    daily = spark.createDataFrame(
        [(d, e, r) for e, r in got_today.items()],
        "day date, entity_id bigint, received_sats bigint",
    )
    exchanges = spark.createDataFrame([(1,)], "entity_id bigint")
    changes = spark.createDataFrame(
        [("w", 6, 7), ("u", 6, 10)], "txid string, height int, entity_id bigint"
    )
    state = (
        "entity_id bigint, received_sats bigint, from_exchange_sats bigint, swept_in_sats bigint"
    )

    def feeds(changes, received_before):
        start = spark.createDataFrame([(3, received_before, 0, 0)], state)
        ent = load_settings("test", {"entities.exchange_flow_min_share": 0.5}).entities
        out = with_exchange_feeds(daily, per_tx, exchanges, changes, start, ent)
        return {r.entity_id: r.from_exchange_sats for r in out.collect()}

    assert feeds(changes, 20) == {1: 0, 2: 0, 3: 49, 7: 60, 8: 0, 10: 0}
    # Had 3 received 200 before from elsewhere, the sweep (49 of 249) does not make it a hot
    # wallet, and its change feeds nobody.
    assert feeds(changes, 200) == {1: 0, 2: 0, 3: 49, 7: 0, 8: 0, 10: 0}
    # Without the change rows only the sweep feeds.
    none = spark.createDataFrame([], "txid string, height int, entity_id bigint")
    assert feeds(none, 20) == {1: 0, 2: 0, 3: 49, 7: 0, 8: 0, 10: 0}


def test_once_an_exchange_sweeps_into_a_wallet_its_other_payments_there_are_its_own_moves(spark):
    """A hot wallet that exchanges sweep single deposits into (no sweep by the ≥ 2-address rule)
    and the cold wallet refills: entity 3 receives the sweep s (10) from exchange 1 on day 2,
    then refills r (30) from exchange 1 (its cold wallet) on days 2 and 3, and a customer's
    payment c (30) on day 1. Without the rule it is fed 10 of the 100 it received (not a hot
    wallet); with it 50 of 100, and 70 had an earlier run seen a sweep into it. A refill on day 1, before any sweep, does not count, and customer 8, paid by the
    exchange (a withdrawal) but never swept into, is not fed."""
    import datetime as dt

    from hodlflow.config import load_settings
    from hodlflow.entities.transforms import with_exchange_feeds

    d1, d2, d3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
    rows = [
        ("e0", 4, d1, 1, 40, 1, 0, 0), ("e0", 4, d1, 3, 0, 0, 0, 20),  # refill before a sweep
        ("c", 4, d1, 9, 31, 1, 0, 0), ("c", 4, d1, 3, 0, 0, 0, 30),  # a customer pays 3
        ("s", 5, d2, 1, 11, 1, 1, 0), ("s", 5, d2, 3, 0, 0, 0, 10),  # the sweep
        ("r1", 6, d2, 1, 31, 1, 0, 0), ("r1", 6, d2, 3, 0, 0, 0, 15),
        ("r2", 7, d3, 1, 31, 1, 0, 0), ("r2", 7, d3, 3, 0, 0, 0, 25),
        ("w", 7, d3, 1, 50, 1, 0, 0), ("w", 7, d3, 8, 0, 0, 0, 49),  # a withdrawal to 8
    ]  # fmt: skip
    per_tx = spark.createDataFrame(
        rows,
        "txid string, height int, day date, entity_id bigint, in_sats bigint, send_count int, "
        "sweep_count int, received_sats bigint",
    )
    got = {}
    for _t, _h, day, e, _i, _s, _w, r in rows:
        got[day, e] = got.get((day, e), 0) + r
    daily = spark.createDataFrame(
        [(day, e, r) for (day, e), r in got.items()], "day date, entity_id bigint, received_sats bigint"
    )  # fmt: skip
    exchanges = spark.createDataFrame([(1,)], "entity_id bigint")
    none = spark.createDataFrame([], "txid string, height int, entity_id bigint")
    state = (
        "entity_id bigint, received_sats bigint, from_exchange_sats bigint, swept_in_sats bigint"
    )
    ent = load_settings("test").entities

    def feeds(start_rows):
        start = spark.createDataFrame(start_rows, state)
        out = with_exchange_feeds(daily, per_tx, exchanges, none, start, ent)
        return {
            (r.day.day, r.entity_id): (r.from_exchange_sats, r.swept_in_sats)
            for r in out.collect() if r.entity_id in (3, 8)
        }  # fmt: skip

    # Day 1: 20 refill + 30 customer, nothing fed yet; day 2: sweep 10 + refill 15; day 3: 25.
    assert feeds([]) == {(1, 3): (0, 0), (2, 3): (25, 10), (3, 3): (25, 0), (3, 8): (0, 0)}
    # Swept into by an earlier run: the refill of day 1 is the exchange's own move too.
    assert feeds([(3, 100, 10, 10)]) == {
        (1, 3): (20, 0),
        (2, 3): (25, 10),
        (3, 3): (25, 0),
        (3, 8): (0, 0),
    }
    # Fed 50 of the 100 it received: half, the hot-wallet share (sweeps alone: 10 of 100).
    assert ent.exchange_flow_min_share == 0.5


def test_peel_bursts_mark_the_days_an_entity_pays_at_a_hot_wallets_pace(spark):
    """Busy days (≥ 10 peel steps within 7 days, the defaults): hot wallet 1 pays 4 withdrawals
    a day on days 0–2 (4, 8, 12 in the trailing week: busy on day 2 only); payment user 2 pays
    once a day for 14 days (never more than 7 in a week); shop 3 pays 6 on day 0 and 6 on day 7
    (a week apart: 6 in each window)."""
    import datetime as dt

    from hodlflow.config import load_settings
    from hodlflow.entities.cospend import peel_bursts

    d0 = dt.date(2024, 1, 1)
    rows = [(0, 1)] * 4 + [(1, 1)] * 4 + [(2, 1)] * 4
    rows += [(day, 2) for day in range(14)] + [(0, 3)] * 6 + [(7, 3)] * 6
    steps = spark.createDataFrame(
        [(d0 + dt.timedelta(days=day), e) for day, e in rows], "day date, entity_id bigint"
    )
    ent = load_settings("test").entities
    assert (ent.exchange_min_peel_steps, ent.exchange_peel_days) == (10, 7)

    def busy(first_day, min_steps=10, days=7):
        out = peel_bursts(steps, d0 + dt.timedelta(days=first_day), min_steps, days)
        return sorted(((r.day - d0).days, r.entity_id, r.busy_peel_days) for r in out.collect())

    assert busy(0) == [(2, 1, 1)]
    # A run from day 2 counts the steps of the days before it (the caller reads them): the same.
    assert busy(2) == [(2, 1, 1)]
    assert busy(3) == []  # day 2 belongs to an earlier run
    # An 8-day window joins the shop's two paydays (12); the user's 8 in 8 days stays under.
    assert busy(0, days=8) == [(2, 1, 1), (7, 3, 1)]
    assert busy(0, min_steps=0) == []  # the rule off


def test_type_change_outputs_pick_the_one_fresh_output_of_the_inputs_script_type(spark):
    """An exchange's hot wallet (p2wpkh) pays a withdrawal larger than its change (no peel
    step: 600 to the customer, 390 back), the customer's address a p2tr: the p2wpkh output is
    the change whatever its size. No pick when the customer's address is p2wpkh too (two of
    the inputs' type), when the change address was seen before, when an output pays an input
    address back, or for a one-output sweep."""
    from hodlflow.entities.cospend import type_change_outputs

    txs = [
        ("w1", 10, 0, [("h", "p2wpkh", "t0", 0)], [("cust", "p2tr", 600), ("c1", "p2wpkh", 390)]),
        ("w2", 11, 1, [("c1", "p2wpkh", "w1", 1)], [("c2", "p2wpkh", 200), ("cust2", "p2wpkh", 180)]),
        ("w3", 12, 2, [("c2", "p2wpkh", "w2", 0)], [("old", "p2wpkh", 100), ("cust3", "p2pkh", 90)]),
        ("w4", 12, 2, [("k", "p2wpkh", "t5", 0)], [("k", "p2wpkh", 50), ("cust4", "p2tr", 40)]),
        ("s1", 13, 3, [("d1", "p2wpkh", "t6", 0), ("d2", "p2wpkh", "t7", 0)], [("hot", "p2wpkh", 900)]),
        ("w5", 13, 3, [("c9", "p2sh", "t8", 0)],
         [("a", "p2tr", 10), ("b", "p2pkh", 20), ("c10", "p2sh", 5), ("e", "p2wpkh", 30)]),
    ]  # fmt: skip
    ids = [
        ("h", 1, 1), ("cust", 2, 10), ("c1", 3, 10), ("c2", 4, 11), ("cust2", 5, 11),
        ("old", 6, 3), ("cust3", 7, 12), ("k", 8, 2), ("cust4", 9, 12), ("d1", 10, 5),
        ("d2", 11, 6), ("hot", 12, 13), ("c9", 13, 4), ("a", 14, 13), ("b", 15, 13),
        ("c10", 16, 13), ("e", 17, 13),
    ]  # fmt: skip
    ins, outs, flags, id_frame = _frames(spark, txs, ids)
    got = sorted(
        (r.txid, r.height, r.address)
        for r in type_change_outputs(ins, outs, flags, id_frame).collect()
    )
    # w1: c1 (p2wpkh among p2tr); w5: c10, the one p2sh among four outputs (a batch).
    assert got == [("w1", 10, "c1"), ("w5", 13, "c10")]


# -- the wallet that pays on: fingerprint_change ---------------------------------------------

FINAL, RBF = 0xFFFFFFFF, 0xFFFFFFFD


def _fingerprint(spark, txs, ids, spent_from_height=0, max_days=1):
    """:func:`hodlflow.entities.cospend.fingerprint_edges` over ``txs``: (txid, height, day
    offset, nVersion, nLockTime, nSequence of every input, [(address, type, prev_txid,
    prev_vout)], [(address, type, value)]), as :func:`_frames` otherwise."""
    from hodlflow.entities.cospend import fingerprint_edges

    plain = [(t, h, d, i, o) for t, h, d, _v, _l, _s, i, o in txs]
    ins, outs, flags, id_frame = _frames(spark, plain, ids)
    seq = {t[0]: t[5] for t in txs}
    ins = spark.createDataFrame(
        [(*r, seq[r.txid]) for r in ins.collect()], PEEL_INPUTS + ", sequence bigint"
    )
    txf = spark.createDataFrame(
        [(t, v, lock) for t, _h, _d, v, lock, _s, _i, _o in txs],
        "txid string, version bigint, locktime bigint",
    )
    return fingerprint_edges(ins, outs, flags, txf, id_frame, max_days, spent_from_height)


# An exchange's hot wallet h (id 1, p2sh; nVersion 1, final nSequence, nLockTime 0) pays a
# withdrawal of 900 out of a coin of 1,300: the customer's address w1 is a fresh p2sh too, and
# larger than the change c1 (no peel step; two outputs of the inputs' type). A day later the
# hot wallet pays the next withdrawal from c1 with its own fingerprint; two days later the
# customer pays from w1 with theirs (nVersion 2, replace-by-fee, nLockTime at the height, as
# Bitcoin Core).
BREAK = [
    ("f1", 20, 0, 1, 0, FINAL, [("h", "p2sh", "t0", 0)], [("w1", "p2sh", 900), ("c1", "p2sh", 400)]),
    ("f2", 21, 1, 1, 0, FINAL, [("c1", "p2sh", "f1", 1)], [("w2", "p2wpkh", 100), ("c2", "p2sh", 290)]),
    ("g1", 22, 2, 2, 22, RBF, [("w1", "p2sh", "f1", 0)], [("m", "p2sh", 500), ("wc", "p2sh", 390)]),
]  # fmt: skip
BREAK_IDS = [
    ("h", 1, 1), ("w1", 2, 20), ("c1", 3, 20), ("w2", 4, 21), ("c2", 5, 21), ("m", 6, 22),
    ("wc", 7, 22),
]  # fmt: skip


def _with(txs, txid, **change):
    """``txs`` with the transaction ``txid``'s fields replaced (names as in :func:`_fingerprint`)."""
    names = ("txid", "height", "day", "version", "locktime", "sequence", "ins", "outs")
    return [
        tuple(change.get(n, v) for n, v in zip(names, t, strict=True)) if t[0] == txid else t
        for t in txs
    ]


def test_fingerprint_change_links_the_output_its_payers_wallet_pays_on_from(spark):
    # c1 → h: c1 moves first with f1's fingerprint, in f2, which pays on. f2's and g1's outputs
    # are not spent yet: no more edges. A customer whose wallet writes the same marks and
    # pays on later the same day changes nothing (c1 was first).
    assert_edges(_fingerprint(spark, BREAK, BREAK_IDS), [(3, 1)], spark)
    same = _with(BREAK, "g1", version=1, locktime=0, sequence=FINAL, height=22, day=1)
    assert_edges(_fingerprint(spark, same, BREAK_IDS), [(3, 1)], spark)
    # The customer, with its own marks, moving first: c1 is still the first the wallet moves.
    early = _with(_with(BREAK, "g1", height=21, day=1), "f2", height=22, day=1)
    assert_edges(_fingerprint(spark, early, BREAK_IDS), [(3, 1)], spark)


def test_fingerprint_change_needs_the_first_move_of_the_payers_wallet_to_pay_on(spark):
    # Any part of the fingerprint differing in the next payment: not the same wallet.
    for diff in ({"locktime": 21}, {"version": 2}, {"sequence": RBF}):
        assert_edges(_fingerprint(spark, _with(BREAK, "f2", **diff), BREAK_IDS), [], spark)
    # A customer running the same software and paying on first is taken for the wallet (the
    # reason the window is short: a hot wallet pays on within hours).
    early = _with(_with(BREAK, "g1", height=21, day=1), "f2", height=22, day=1)
    same = _with(early, "g1", version=1, locktime=0, sequence=FINAL)
    assert_edges(_fingerprint(spark, same, BREAK_IDS), [(2, 1)], spark)
    # Both moved with the marks in one block: neither is first.
    both = _with(same, "g1", height=21, day=1, version=1)
    assert_edges(_fingerprint(spark, _with(both, "f2", height=21), BREAK_IDS), [], spark)
    # The wallet's first move spends c1 into one output (a sweep, not paying on): no link,
    # and the customer's payment with the same marks after it is no sign either.
    swept = _with(BREAK, "f2", outs=[("c2", "p2sh", 390)])
    later = _with(swept, "g1", version=1, locktime=0, sequence=FINAL, height=22, day=1)
    assert_edges(_fingerprint(spark, later, BREAK_IDS), [], spark)
    # c1 seen before f1 (not fresh) or of another script type than h: not a candidate.
    seen = [r if r[0] != "c1" else ("c1", 3, 5) for r in BREAK_IDS]
    assert_edges(_fingerprint(spark, BREAK, seen), [], spark)
    typed = _with(BREAK, "f1", outs=[("w1", "p2sh", 900), ("c1", "p2wpkh", 400)])
    assert_edges(_fingerprint(spark, typed, BREAK_IDS), [], spark)


def test_fingerprint_change_only_for_spends_in_the_run_within_max_days(spark):
    # f2 (height 21) before the run (from 22): the run that held it made the edge.
    assert_edges(_fingerprint(spark, BREAK, BREAK_IDS, spent_from_height=21), [(3, 1)], spark)
    assert_edges(_fingerprint(spark, BREAK, BREAK_IDS, spent_from_height=22), [], spark)
    # Paid on a day later: not within 0 days; two days later: not within 1.
    assert_edges(_fingerprint(spark, BREAK, BREAK_IDS, max_days=0), [], spark)
    late = _with(BREAK, "f2", day=2)
    assert_edges(_fingerprint(spark, late, BREAK_IDS), [], spark)
    assert_edges(_fingerprint(spark, late, BREAK_IDS, max_days=2), [(3, 1)], spark)

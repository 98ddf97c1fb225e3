"""Scores against the ground truth: hand-worked cases, and the clustering scores against
sklearn's adjusted_rand_score and a brute-force pair count over seeded random labelings."""

from __future__ import annotations

import itertools
import random

import pytest
from pyspark.testing import assertDataFrameEqual
from sklearn.metrics import adjusted_rand_score

from hodlflow.entities.evaluate import (
    clustering_scores,
    format_scores,
    holder_scores,
    read_truth_addresses,
    type_scores,
)
from hodlflow.tables import SchemaError

CLUSTERS = "address string, entity_id bigint"
TYPED_TRUTH = "address string, entity_id bigint, entity_class string"
TYPED = "address string, entity_id bigint, entity_type string"
HOLDERS = "address string, holder_class string"
TRUTH_HEADER = "address,entity_id,entity_label,entity_type,entity_class,address_role,script_type"

# Truth entities {a1, a2, a3}, {b1, b2}, {c1}: 3 + 1 = 4 true pairs among 6 addresses.
TRUTH = [("a1", 1), ("a2", 1), ("a3", 1), ("b1", 2), ("b2", 2), ("c1", 3)]


def frame(spark, rows, schema):
    return spark.createDataFrame(rows, schema)


# ---------------------------------------------------------------------------- read_truth_addresses


def test_read_truth_addresses_types_the_columns_by_the_contract(spark, tmp_path):
    path = tmp_path / "addresses.csv"
    path.write_text(
        f"{TRUTH_HEADER}\n"
        "1Miner,0,pool:AlphaPool,pool,miner,coinbase,p2pkh\n"
        'bc1qx,12,"exchange:Bit,vault",exchange,exchange,deposit,p2wpkh\n'
    )
    actual = read_truth_addresses(spark, str(path))
    expected = spark.createDataFrame(
        [
            ("1Miner", 0, "pool:AlphaPool", "pool", "miner", "coinbase", "p2pkh"),
            ("bc1qx", 12, "exchange:Bit,vault", "exchange", "exchange", "deposit", "p2wpkh"),
        ],
        "address string, entity_id bigint, entity_label string, entity_type string, "
        "entity_class string, address_role string, script_type string",
    )
    assertDataFrameEqual(actual, expected)


def test_read_truth_addresses_missing_file_is_named(spark, tmp_path):
    path = str(tmp_path / "nowhere.csv")
    with pytest.raises(FileNotFoundError, match="nowhere.csv does not exist"):
        read_truth_addresses(spark, path)


def test_read_truth_addresses_wrong_header_names_file_and_columns(spark, tmp_path):
    path = tmp_path / "addresses.csv"
    path.write_text(
        "address,entity,entity_label,entity_type,entity_class,address_role,script_type\n"
        "1Miner,0,pool:AlphaPool,pool,miner,coinbase,p2pkh\n"
    )
    with pytest.raises(SchemaError) as err:
        read_truth_addresses(spark, str(path))
    message = str(err.value)
    assert str(path) in message
    assert "missing ['entity_id'], unexpected ['entity']" in message


# ---------------------------------------------------------------------------- clustering


def test_clustering_perfect_scores_one(spark):
    # Same partition as TRUTH under other ids.
    predicted = [("a1", 70), ("a2", 70), ("a3", 70), ("b1", 9), ("b2", 9), ("c1", 5)]
    scores = clustering_scores(frame(spark, predicted, CLUSTERS), frame(spark, TRUTH, CLUSTERS))
    assert scores == {
        "addresses": 6,
        "addresses_missing": 0,
        "addresses_not_in_truth": 0,
        "true_entities": 3,
        "predicted_entities": 3,
        "largest_true_entity": 3,
        "largest_predicted_entity": 3,
        "true_pairs": 4,
        "predicted_pairs": 4,
        "true_positive_pairs": 4,
        "precision": 1.0,
        "recall": 1.0,
        "adjusted_rand_index": 1.0,
    }


def test_clustering_one_predicted_entity_loses_precision(spark):
    predicted = [(address, 1) for address, _ in TRUTH]
    scores = clustering_scores(frame(spark, predicted, CLUSTERS), frame(spark, TRUTH, CLUSTERS))
    # 15 predicted pairs, 4 of them true; ARI = (2·15·4 − 2·4·15) / (15·19 − 2·4·15) = 0.
    assert scores["predicted_pairs"] == 15
    assert scores["true_positive_pairs"] == 4
    assert scores["precision"] == pytest.approx(4 / 15)
    assert scores["recall"] == 1.0
    assert scores["adjusted_rand_index"] == 0.0
    assert scores["predicted_entities"] == 1
    assert (scores["largest_predicted_entity"], scores["largest_true_entity"]) == (6, 3)


def test_clustering_all_singletons_has_zero_recall(spark):
    predicted = [(address, i) for i, (address, _) in enumerate(TRUTH)]
    scores = clustering_scores(frame(spark, predicted, CLUSTERS), frame(spark, TRUTH, CLUSTERS))
    assert scores["predicted_pairs"] == 0
    assert scores["precision"] == 1.0  # no predicted pair, so no wrong one
    assert scores["recall"] == 0.0
    assert scores["adjusted_rand_index"] == 0.0
    assert scores["predicted_entities"] == 6
    assert (scores["largest_predicted_entity"], scores["largest_true_entity"]) == (1, 3)


def test_clustering_split_and_merge_worked_by_hand(spark):
    # Truth {a,b,c} {d,e,f}; predicted {a,b} {c,d} {e,f}: cells 2,1,1,2 → 2 true positive pairs
    # of 3 predicted and 6 true; ARI = (2·15·2 − 2·6·3) / (15·9 − 2·6·3) = 24/99.
    truth = [("a", 0), ("b", 0), ("c", 0), ("d", 1), ("e", 1), ("f", 1)]
    predicted = [("a", 0), ("b", 0), ("c", 1), ("d", 1), ("e", 2), ("f", 2)]
    scores = clustering_scores(frame(spark, predicted, CLUSTERS), frame(spark, truth, CLUSTERS))
    assert (scores["true_positive_pairs"], scores["predicted_pairs"], scores["true_pairs"]) == (
        2,
        3,
        6,
    )
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["adjusted_rand_index"] == pytest.approx(24 / 99)


def test_clustering_counts_missing_and_unknown_addresses_outside_the_scores(spark):
    # b2 has no row and c1 a NULL entity: both missing. zz is not in the truth.
    predicted = [("a1", 1), ("a2", 1), ("a3", 1), ("b1", 2), ("c1", None), ("zz", 1)]
    scores = clustering_scores(frame(spark, predicted, CLUSTERS), frame(spark, TRUTH, CLUSTERS))
    assert scores["addresses"] == 4
    assert scores["addresses_missing"] == 2
    assert scores["addresses_not_in_truth"] == 1
    assert scores["true_entities"] == 2
    assert scores["predicted_entities"] == 2
    # Among a1 a2 a3 b1 the partitions agree.
    assert (scores["precision"], scores["recall"], scores["adjusted_rand_index"]) == (1.0, 1.0, 1.0)


def test_clustering_with_no_common_address_is_vacuously_perfect(spark):
    scores = clustering_scores(frame(spark, [("zz", 1)], CLUSTERS), frame(spark, TRUTH, CLUSTERS))
    assert scores["addresses"] == 0
    assert scores["addresses_missing"] == 6
    assert (scores["precision"], scores["recall"], scores["adjusted_rand_index"]) == (1.0, 1.0, 1.0)


def brute_force_pairs(true: list[int], pred: list[int]) -> tuple[int, int, int]:
    """(true positive, true, predicted) pairs by looking at every pair of addresses."""
    tp = same_true = same_pred = 0
    for i, j in itertools.combinations(range(len(true)), 2):
        t, p = true[i] == true[j], pred[i] == pred[j]
        tp += t and p
        same_true += t
        same_pred += p
    return tp, same_true, same_pred


def random_labelings(seed: int):
    """A few hundred addresses with truth ids and predictions: a noisy copy of the truth (odd
    seeds: entities merged, addresses moved) or an unrelated labeling (even seeds); some truth
    addresses without a prediction and some predicted ones outside the truth. Ids are scattered
    over the bigint range."""
    rng = random.Random(seed)
    n = rng.randrange(200, 400)
    k = rng.randrange(1, 60)
    ids = rng.sample(range(-(2**61), 2**61), 200)
    true = [rng.randrange(k) for _ in range(n)]
    if seed % 2:
        merged = {e: rng.randrange(k) if rng.random() < 0.3 else e for e in range(k)}
        pred = [merged[t] if rng.random() < 0.8 else rng.randrange(60, 200) for t in true]
    else:
        pred = [rng.randrange(rng.randrange(1, 200)) for _ in range(n)]
    present = [rng.random() < 0.9 for _ in range(n)]
    truth_rows = [(f"a{i}", ids[t]) for i, t in enumerate(true)]
    pred_rows = [(f"a{i}", ids[p]) for i, p in enumerate(pred) if present[i]]
    pred_rows += [(f"x{i}", ids[0]) for i in range(rng.randrange(5))]
    kept = [i for i in range(n) if present[i]]
    return truth_rows, pred_rows, [true[i] for i in kept], [pred[i] for i in kept]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_clustering_matches_sklearn_and_brute_force(spark, seed):
    truth_rows, pred_rows, true, pred = random_labelings(seed)
    scores = clustering_scores(
        frame(spark, pred_rows, CLUSTERS), frame(spark, truth_rows, CLUSTERS)
    )
    tp, true_pairs, pred_pairs = brute_force_pairs(true, pred)
    assert scores["addresses"] == len(true)
    assert scores["addresses_missing"] == len(truth_rows) - len(true)
    assert scores["addresses_not_in_truth"] == len(pred_rows) - len(true)
    assert scores["true_entities"] == len(set(true))
    assert scores["predicted_entities"] == len(set(pred))
    assert (scores["true_positive_pairs"], scores["true_pairs"], scores["predicted_pairs"]) == (
        tp,
        true_pairs,
        pred_pairs,
    )
    assert scores["precision"] == pytest.approx(tp / pred_pairs if pred_pairs else 1.0)
    assert scores["recall"] == pytest.approx(tp / true_pairs if true_pairs else 1.0)
    assert scores["adjusted_rand_index"] == pytest.approx(
        adjusted_rand_score(true, pred), abs=1e-12
    )


# ---------------------------------------------------------------------------- typing


def test_type_scores_address_and_entity_level_worked_by_hand(spark):
    truth = [
        ("m1a", 1, "miner"), ("m1b", 1, "miner"), ("m1c", 1, "miner"),
        ("m2a", 2, "miner"), ("m2b", 2, "miner"),
        ("x1", 3, "exchange"), ("x2", 3, "exchange"),
        ("o1", 4, "other"),
    ]  # fmt: skip
    predicted = [
        ("m1a", 10, "miner"), ("m1b", 10, "miner"), ("m1c", 10, "miner"), ("x1", 10, "miner"),
        ("m2a", 11, "miner"), ("x2", 11, "miner"),
        ("m2b", 12, "unknown"),
        ("zz", 13, "miner"),
    ]  # fmt: skip
    scores = type_scores(
        frame(spark, predicted, TYPED), frame(spark, truth, TYPED_TRUTH), "miner", "miner"
    )
    assert scores == {
        "predicted_type": "miner",
        "truth_class": "miner",
        # m1a m1b m1c m2a of the 5 true miner addresses are predicted miner
        "address_recall": 4 / 5,
        # of the 6 predicted miner addresses in the truth, x1 and x2 are exchange ones
        "address_precision": 4 / 6,
        # entity 1: 3 of 3 predicted miner; entity 2: 1 of 2 is no majority
        "entity_recall": 1 / 2,
        # entity 10: 3 of 4 true miners; entity 11: 1 of 2 is no majority; 13 not judged
        "entity_precision": 1 / 2,
        "truth_addresses": 5,
        "truth_addresses_found": 4,
        "predicted_addresses": 6,
        "predicted_addresses_right": 4,
        "predicted_addresses_not_in_truth": 1,
        "truth_entities": 2,
        "truth_entities_found": 1,
        "predicted_entities": 2,
        "predicted_entities_right": 1,
    }


def test_type_scores_null_entity_and_null_type_are_not_predictions_of_the_type(spark):
    truth = [("m1", 1, "miner"), ("m2", 1, "miner")]
    predicted = [("m1", None, "miner"), ("m2", 7, None)]
    scores = type_scores(
        frame(spark, predicted, TYPED), frame(spark, truth, TYPED_TRUTH), "miner", "miner"
    )
    assert (scores["truth_addresses"], scores["truth_addresses_found"]) == (2, 0)
    assert (scores["truth_entities"], scores["truth_entities_found"]) == (1, 0)
    assert scores["predicted_addresses"] == 0
    assert scores["address_precision"] == 1.0  # nothing claimed, nothing wrong
    assert scores["address_recall"] == 0.0


def test_type_scores_rejects_an_unknown_truth_class(spark):
    empty = frame(spark, [], TYPED)
    with pytest.raises(ValueError, match="unknown truth class 'miners'"):
        type_scores(empty, frame(spark, [], TYPED_TRUTH), "miner", "miners")


# ---------------------------------------------------------------------------- holders


def test_holder_scores_worked_by_hand(spark):
    truth = [
        ("s1", 1, "strong"), ("s2", 2, "strong"), ("s3", 3, "strong"), ("s4", 4, "strong"),
        ("w1", 5, "weak"), ("w2", 6, "weak"),
        ("m1", 7, "miner"),
    ]  # fmt: skip
    # s3 has a NULL class and s4 no row: not classified. m1 is not a holder: ignored.
    predicted = [
        ("s1", "strong"), ("s2", "weak"), ("s3", None),
        ("w1", "weak"), ("w2", "neutral"),
        ("m1", "strong"),
    ]  # fmt: skip
    scores = holder_scores(frame(spark, predicted, HOLDERS), frame(spark, truth, TYPED_TRUTH))
    assert scores == {
        "addresses": 6,
        "classified": 4,
        "correct": 2,
        "accuracy": 0.5,
        "coverage": 4 / 6,
        "confusion": {
            "strong": {"strong": 1, "weak": 1, "neutral": 0},
            "weak": {"strong": 0, "weak": 1, "neutral": 1},
        },
    }


def test_holder_scores_needs_a_holder_class_column(spark):
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['holder_class'\]"):
        holder_scores(frame(spark, [], CLUSTERS), frame(spark, [], TYPED_TRUTH))


# ---------------------------------------------------------------------------- report


def test_format_scores_aligns_values_and_indents_nested_dicts():
    text = format_scores(
        {
            "clustering": {"precision": 0.25, "addresses": 1234567},
            "holders": {"accuracy": None, "confusion": {"strong": {"weak": 3}}},
            "type": "miner",
        }
    )
    assert text == (
        "clustering\n"
        "  precision  0.2500\n"
        "  addresses  1,234,567\n"
        "holders\n"
        "  accuracy  n/a\n"
        "  confusion\n"
        "    strong\n"
        "      weak  3\n"
        "type  miner"
    )


# ---------------------------------------------------------------------------- holders over days


def test_holder_decisions_over_sampled_days_worked_by_hand(spark):
    """True strong owner s1 (entity 100: spent once, 58.5 days old on d0, so weak until its
    coins pass entities.holder.held_days, 60, on d2), s2 (entity 200: one fresh receipt, neutral; gone by d3), weak
    owner w1 (entity 300: neutral until it spends on d2), a miner m1 (not a holder owner)."""
    import datetime as dt

    from hodlflow.config import load_settings
    from hodlflow.entities.evaluate import holder_decision_scores, holder_decisions

    d = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(4)]
    days = spark.createDataFrame([(d[0], "a"), (d[2], "a"), (d[3], "b")], "day date, phase string")
    truth = frame(spark, [("s1", "strong"), ("s2", "strong"), ("w1", "weak"), ("m1", "miner")],
                  "address string, entity_class string")  # fmt: skip
    moves = frame(spark, [(d[0], "s1", 10), (d[1], "s2", 5), (d[3], "s2", -5), (d[0], "w1", 3),
                          (d[2], "w1", -1), (d[0], "m1", 50)],
                  "day date, address string, value_sats bigint")  # fmt: skip
    address_entity = frame(spark, [("s1", 100), ("s2", 200), ("w1", 300), ("m1", 400)], CLUSTERS)
    daily = frame(
        spark,
        [(d[0], 100, "unknown", 10, 58.5, 1, 1), (d[1], 200, "unknown", 5, 0.0, 1, 0),
         (d[0], 300, "unknown", 3, 0.0, 1, 0), (d[2], 300, "unknown", 2, 2.0, 1, 1),
         (d[0], 400, "miner", 50, 0.0, 1, 0)],
        "day date, entity_id bigint, entity_type string, balance_sats bigint, "
        "coin_age_days double, receive_count bigint, send_count bigint",
    )  # fmt: skip
    rows = holder_decisions(days, truth, moves, address_entity, daily, None,
                            load_settings("test").entities).collect()  # fmt: skip
    got = {r.day: (r.phase, r.holders, r.decided, r.right) for r in rows}
    assert got == {d[0]: ("a", 2, 1, 0), d[2]: ("a", 3, 2, 2), d[3]: ("b", 2, 2, 2)}
    by_class = {
        r.day: (r.strong_holders, r.strong_decided, r.weak_holders, r.weak_decided) for r in rows
    }
    assert by_class[d[2]] == (2, 1, 1, 1)
    scores = holder_decision_scores([r.asDict() for r in rows])
    a = scores["phases"]["a"]
    assert (a["holders"], a["decided"], a["right"], a["days"]) == (5, 3, 2, 2)
    assert a["decided_share"] == pytest.approx(0.6) and a["right_share"] == pytest.approx(2 / 3)
    assert (a["worst_decided"], a["worst_right"]) == ("0.500 on 2025-01-01", "0.000 on 2025-01-01")
    assert scores["all"]["decided_share"] == pytest.approx(5 / 7)
    assert scores["all"]["right_share"] == pytest.approx(4 / 5)
    assert list(scores["phases"]) == ["a", "b"]


def test_sample_days_every_seventh_day_of_each_phase_and_its_last():
    import datetime as dt

    from hodlflow.entities.evaluate import sample_days

    d = dt.date(2025, 1, 1)
    got = sample_days([("b", d + dt.timedelta(days=10), d + dt.timedelta(days=10)),
                       ("a", d, d + dt.timedelta(days=9))])  # fmt: skip
    assert [(x.day, p) for x, p in got] == [(1, "a"), (8, "a"), (10, "a"), (11, "b")]

"""Scores of address clustering and entity typing against the simulator's ground truth.

The truth is ``truth/addresses.csv`` of a simulation run (contract
``schemas/truth.addresses.yaml``), read with :func:`read_truth_addresses`. The prediction is a
DataFrame with one row per address:

* ``address`` string, ``entity_id`` bigint — the clustering (a NULL ``entity_id`` counts as no
  prediction for that address);
* ``entity_type`` string (``miner``, ``exchange``, ``coinjoin``, ``unknown``, ...) — for
  :func:`type_scores`;
* ``holder_class`` string (``strong``, ``weak``, ``neutral`` or NULL) — for
  :func:`holder_scores`.

Both inputs must hold one row per address (the truth contract does; a duplicated address would
be counted twice). Every scoring function runs one Spark job and collects only aggregates (a
few rows), so it runs unchanged on the whole chain; it returns a small dict of Python numbers,
which :func:`format_scores` prints.

Empty denominators: a precision with nothing claimed and a recall with nothing to find are 1.0
(no wrong claim, nothing missed); an accuracy or coverage over nothing is ``None``.

Example::

    truth = read_truth_addresses(spark, "sim/truth/addresses.csv")
    print(format_scores({
        "clustering": clustering_scores(predicted, truth),
        "miners": type_scores(predicted, truth, "miner", "miner"),
    }))
"""

from __future__ import annotations

import csv
import os
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow.entities.components import require_columns
from hodlflow.sim.truth import CLASSES
from hodlflow.tables import SchemaError, load_schema

TRUTH_KEY = "truth.addresses"
HOLDER_CLASSES = ("strong", "weak")


def read_truth_addresses(spark: SparkSession, path: str) -> DataFrame:
    """The simulator's ``truth/addresses.csv`` at ``path`` with the contract's column types.

    The first line must be the header naming the columns of ``schemas/truth.addresses.yaml`` in
    order. Raises :class:`FileNotFoundError` naming ``path`` when it does not exist, and
    :class:`~hodlflow.tables.SchemaError` naming ``path``, the missing and the unexpected
    columns when the header differs (an empty file has no header). A row whose ``entity_id`` is
    not an integer fails the first action on the DataFrame (FAILFAST).
    """
    schema = load_schema(TRUTH_KEY)
    try:
        first = spark.read.text(path).limit(1).collect()
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_NOT_FOUND":
            raise FileNotFoundError(f"truth addresses file {path} does not exist") from None
        raise
    expected = schema.names
    if not first:
        raise SchemaError(f"{path}: empty file; expected the header {','.join(expected)}")
    header = next(csv.reader([first[0].value.lstrip("\ufeff")]))
    if header != expected:
        missing = [c for c in expected if c not in header]
        unexpected = [c for c in header if c not in expected]
        raise SchemaError(
            f"{path}: header {header} is not the {TRUTH_KEY} contract's {expected} "
            f"(schemas/{TRUTH_KEY}.yaml); missing {missing}, unexpected {unexpected}"
        )
    return spark.read.csv(
        path, header=True, schema=schema.struct(), mode="FAILFAST", enforceSchema=True
    )


# ---------------------------------------------------------------------------- clustering


def _pairs_twice(n: Column) -> Column:
    """n·(n−1) = 2·C(n, 2) as an exact decimal; the sums are halved in Python (each term is even)."""
    d = n.cast("decimal(20,0)")
    return d * (d - 1)


def clustering_scores(predicted: DataFrame, truth: DataFrame) -> dict[str, Any]:
    """Pairwise precision/recall and adjusted Rand index of a clustering against the truth.

    Input: ``predicted`` (``address``, ``entity_id``) and ``truth`` (``address``,
    ``entity_id``), one row per address; other columns are ignored.

    Rules:

    * The scores are over the addresses in both (``addresses``, n). A truth address with no
      predicted row or a NULL predicted ``entity_id`` is counted in ``addresses_missing``; a
      predicted address absent from the truth in ``addresses_not_in_truth``; neither enters the
      scores.
    * With n_ij the addresses of true entity i put in predicted entity j, a_i = Σ_j n_ij and
      b_j = Σ_i n_ij: ``true_positive_pairs`` = Σ_ij C(n_ij, 2), ``true_pairs`` = Σ_i C(a_i, 2),
      ``predicted_pairs`` = Σ_j C(b_j, 2), all exact Python ints.
    * ``precision`` = true_positive_pairs / predicted_pairs (1.0 with no predicted pairs),
      ``recall`` = true_positive_pairs / true_pairs (1.0 with no true pairs).
    * ``adjusted_rand_index``: Hubert and Arabie's (index − expected) / (max − expected) with
      index = Σ_ij C(n_ij, 2), expected = Σ_i C(a_i, 2)·Σ_j C(b_j, 2) / C(n, 2) and
      max = (Σ_i C(a_i, 2) + Σ_j C(b_j, 2)) / 2; 1.0 when the denominator is 0 (n < 2, or both
      sides all singletons, or both one entity).
    * ``true_entities`` and ``predicted_entities`` count the entities among the n addresses;
      ``largest_true_entity`` and ``largest_predicted_entity`` are the most addresses one of
      them holds (a change heuristic gone wrong shows as one predicted entity swallowing many).

    Example: truth entities {a, b, c}, {d, e, f}, predicted {a, b}, {c, d}, {e, f}: 2 of the 3
    predicted pairs are true, 2 of the 6 true pairs found, ARI = 24/99.
    """
    require_columns(predicted, ["address", "entity_id"], "predicted")
    require_columns(truth, ["address", "entity_id"], "truth")
    true = truth.select("address", F.col("entity_id").alias("true_entity"))
    pred = predicted.where(F.col("entity_id").isNotNull()).select(
        "address", F.col("entity_id").alias("predicted_entity")
    )
    side = (
        F.when(F.col("predicted_entity").isNull(), "truth_only")
        .when(F.col("true_entity").isNull(), "predicted_only")
        .otherwise("both")
    )
    # The contingency table first (one row per cell, far fewer than addresses), then the entity
    # sizes and the totals from it in one pass of grouping sets; grouping_id tells the levels
    # apart: 0 cell n_ij, 1 true entity a_i, 2 predicted entity b_j, 3 total.
    cells = (
        true.join(pred, "address", "full_outer")
        .select(side.alias("side"), "true_entity", "predicted_entity")
        .groupBy("side", "true_entity", "predicted_entity")
        .count()
    )
    levels = cells.groupingSets(
        [
            ["side", "true_entity", "predicted_entity"],
            ["side", "true_entity"],
            ["side", "predicted_entity"],
            ["side"],
        ],
        "side",
        "true_entity",
        "predicted_entity",
    ).agg(F.grouping_id().alias("level"), F.sum("count").alias("n"))
    rows = (
        levels.groupBy("side", "level")
        .agg(
            F.count("*").alias("groups"),
            F.sum(_pairs_twice(F.col("n"))).alias("pairs_twice"),
            F.sum("n").alias("addresses"),
            F.max("n").alias("largest"),
        )
        .collect()
    )
    got = {(r["side"], r["level"]): r for r in rows}

    def value(side: str, level: int, field: str) -> int:
        row = got.get((side, level))
        return int(row[field]) if row is not None and row[field] is not None else 0

    n = value("both", 3, "addresses")
    tp = value("both", 0, "pairs_twice") // 2
    true_pairs = value("both", 1, "pairs_twice") // 2
    predicted_pairs = value("both", 2, "pairs_twice") // 2
    return {
        "addresses": n,
        "addresses_missing": value("truth_only", 3, "addresses"),
        "addresses_not_in_truth": value("predicted_only", 3, "addresses"),
        "true_entities": value("both", 1, "groups"),
        "predicted_entities": value("both", 2, "groups"),
        "largest_true_entity": value("both", 1, "largest"),
        "largest_predicted_entity": value("both", 2, "largest"),
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "true_positive_pairs": tp,
        "precision": tp / predicted_pairs if predicted_pairs else 1.0,
        "recall": tp / true_pairs if true_pairs else 1.0,
        "adjusted_rand_index": adjusted_rand_index(n, tp, true_pairs, predicted_pairs),
    }


def adjusted_rand_index(n: int, tp_pairs: int, true_pairs: int, predicted_pairs: int) -> float:
    """Hubert–Arabie ARI from the pair sums (see :func:`clustering_scores`); 1.0 when undefined.

    Multiplied through by 2·C(n, 2) so the ratio is of exact ints (one rounding, in the division).
    """
    all_pairs = n * (n - 1) // 2
    numerator = 2 * (all_pairs * tp_pairs - true_pairs * predicted_pairs)
    denominator = all_pairs * (true_pairs + predicted_pairs) - 2 * true_pairs * predicted_pairs
    return numerator / denominator if denominator else 1.0


# ---------------------------------------------------------------------------- typing


def type_scores(
    predicted: DataFrame, truth: DataFrame, predicted_type: str, truth_class: str
) -> dict[str, Any]:
    """How well the addresses and entities predicted ``predicted_type`` match ``truth_class``.

    Input: ``predicted`` (``address``, ``entity_id``, ``entity_type``) and ``truth``
    (``address``, ``entity_id``, ``entity_class``), one row per address; e.g.
    ``predicted_type="miner", truth_class="miner"``. ``truth_class`` must be one of the truth
    classes (miner, exchange, strong, weak, coinjoin, other). A predicted row with a NULL
    ``entity_id`` counts as no prediction; a NULL ``entity_type`` is not ``predicted_type``.

    Address level:

    * ``address_recall`` = ``truth_addresses_found`` / ``truth_addresses``: of the truth
      addresses of the class, the share predicted ``predicted_type`` (one with no prediction is
      not found);
    * ``address_precision`` = ``predicted_addresses_right`` / ``predicted_addresses``: of the
      predicted addresses of the type that are in the truth, the share of the class. Those not
      in the truth cannot be judged and are counted in ``predicted_addresses_not_in_truth``.

    Entity level (a strict majority: more than half, a tie is not a majority):

    * ``entity_recall`` = ``truth_entities_found`` / ``truth_entities``: a true entity of the
      class is found when most of its truth addresses are predicted the type;
    * ``entity_precision`` = ``predicted_entities_right`` / ``predicted_entities``: a predicted
      entity of the type (judged on its rows of that type that are in the truth; one with none
      is not counted) is right when most of those addresses are of the class.

    Example: a true miner of 3 addresses of which 2 are predicted ``miner`` is found; a
    predicted miner entity of 2 addresses, one a true miner and one a true exchange, is wrong.
    """
    if truth_class not in CLASSES:
        raise ValueError(f"unknown truth class {truth_class!r}; the classes are {list(CLASSES)}")
    require_columns(predicted, ["address", "entity_id", "entity_type"], "predicted")
    require_columns(truth, ["address", "entity_id", "entity_class"], "truth")
    true = truth.select(
        "address",
        F.col("entity_id").alias("true_entity"),
        (F.col("entity_class") == truth_class).alias("is_class"),
    )
    pred = predicted.where(F.col("entity_id").isNotNull()).select(
        "address",
        F.col("entity_id").alias("predicted_entity"),
        F.coalesce(F.col("entity_type") == predicted_type, F.lit(False)).alias("is_type"),
    )
    joined = true.join(pred, "address", "full_outer")
    # is_class is NULL exactly for addresses absent from the truth, is_type for those with no
    # prediction.
    of_class = joined.where(F.col("is_class"))
    of_type = joined.where(F.col("is_type") & F.col("is_class").isNotNull())
    found = F.coalesce(F.col("is_type"), F.lit(False))
    right = F.col("is_class")

    def addresses(rows: DataFrame, name: str, hit: Column) -> DataFrame:
        return rows.agg(
            F.lit(name).alias("measure"),
            F.count("*").alias("total"),
            F.count_if(hit).alias("hits"),
        )

    def entities(rows: DataFrame, name: str, key: str, hit: Column) -> DataFrame:
        per_entity = rows.groupBy(key).agg(F.count("*").alias("n"), F.count_if(hit).alias("k"))
        return per_entity.agg(
            F.lit(name).alias("measure"),
            F.count("*").alias("total"),
            F.count_if(2 * F.col("k") > F.col("n")).alias("hits"),
        )

    unjudged = joined.where(F.col("is_type") & F.col("is_class").isNull())
    rows = (
        addresses(of_class, "truth_addresses", found)
        .unionByName(addresses(of_type, "predicted_addresses", right))
        .unionByName(entities(of_class, "truth_entities", "true_entity", found))
        .unionByName(entities(of_type, "predicted_entities", "predicted_entity", right))
        .unionByName(addresses(unjudged, "not_in_truth", F.lit(True)))
        .collect()
    )
    got = {r["measure"]: (int(r["total"]), int(r["hits"])) for r in rows}

    def ratio(measure: str) -> float:
        total, hits = got[measure]
        return hits / total if total else 1.0

    return {
        "predicted_type": predicted_type,
        "truth_class": truth_class,
        "address_recall": ratio("truth_addresses"),
        "address_precision": ratio("predicted_addresses"),
        "entity_recall": ratio("truth_entities"),
        "entity_precision": ratio("predicted_entities"),
        "truth_addresses": got["truth_addresses"][0],
        "truth_addresses_found": got["truth_addresses"][1],
        "predicted_addresses": got["predicted_addresses"][0],
        "predicted_addresses_right": got["predicted_addresses"][1],
        "predicted_addresses_not_in_truth": got["not_in_truth"][0],
        "truth_entities": got["truth_entities"][0],
        "truth_entities_found": got["truth_entities"][1],
        "predicted_entities": got["predicted_entities"][0],
        "predicted_entities_right": got["predicted_entities"][1],
    }


# ---------------------------------------------------------------------------- holders


def holder_scores(predicted: DataFrame, truth: DataFrame) -> dict[str, Any]:
    """Strong/weak holder classification of addresses against the truth classes.

    Input: ``predicted`` (``address``, ``holder_class``: strong, weak, neutral or NULL) and
    ``truth`` (``address``, ``entity_class``), one row per address.

    Rules: only addresses whose truth class is strong or weak count (``addresses``). One with a
    non-NULL predicted ``holder_class`` is ``classified``; one with a NULL class or no predicted
    row is not.

    * ``accuracy`` = ``correct`` / ``classified``, correct when the predicted class equals the
      truth class (neutral is never correct); ``None`` when nothing is classified;
    * ``coverage`` = ``classified`` / ``addresses``; ``None`` when there are no such addresses;
    * ``confusion[truth_class][predicted_class]``: address counts, truth class strong and weak,
      predicted class strong, weak, neutral (zeros included) and any other value met.
    """
    require_columns(predicted, ["address", "holder_class"], "predicted")
    require_columns(truth, ["address", "entity_class"], "truth")
    true = truth.where(F.col("entity_class").isin(*HOLDER_CLASSES)).select(
        "address", F.col("entity_class").alias("truth_class")
    )
    rows = (
        true.join(predicted.select("address", "holder_class"), "address", "left")
        .groupBy("truth_class", "holder_class")
        .count()
        .collect()
    )
    predicted_classes = [*HOLDER_CLASSES, "neutral"]
    predicted_classes += sorted(
        {r["holder_class"] for r in rows if r["holder_class"] is not None} - set(predicted_classes)
    )
    confusion = {t: dict.fromkeys(predicted_classes, 0) for t in HOLDER_CLASSES}
    addresses = 0
    for r in rows:
        addresses += r["count"]
        if r["holder_class"] is not None:
            confusion[r["truth_class"]][r["holder_class"]] += r["count"]
    classified = sum(sum(row.values()) for row in confusion.values())
    correct = sum(confusion[c][c] for c in HOLDER_CLASSES)
    return {
        "addresses": addresses,
        "classified": classified,
        "correct": correct,
        "accuracy": correct / classified if classified else None,
        "coverage": classified / addresses if addresses else None,
        "confusion": confusion,
    }


# ---------------------------------------------------------------------------- report


def format_scores(scores: dict[str, Any]) -> str:
    """The scores as aligned ``name  value`` lines, nested dicts indented under their name.

    Floats print with 4 decimals, ints with thousands separators, ``None`` as ``n/a``.

    >>> print(format_scores({"precision": 0.5, "pairs": 1234, "coverage": None}))
    precision  0.5000
    pairs      1,234
    coverage   n/a
    """
    return "\n".join(_format_lines(scores, ""))


def _format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _format_lines(scores: dict[str, Any], indent: str) -> list[str]:
    width = max((len(str(k)) for k, v in scores.items() if not isinstance(v, dict)), default=0)
    lines = []
    for key, value in scores.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}")
            lines += _format_lines(value, indent + "  ")
        else:
            lines.append(f"{indent}{str(key).ljust(width)}  {_format_value(value)}")
    return lines


def predicted_addresses(spark: SparkSession, settings, as_of_day=None) -> DataFrame:
    """The entities tables as a prediction: ``address``, ``entity_id``, ``entity_type``,
    ``label``, ``holder_class`` (as of ``as_of_day``, default the last processed day, from each
    entity's running totals)."""
    from hodlflow import tables
    from hodlflow.entities import classify

    if as_of_day is None:
        as_of_day = (
            tables.read_table(spark, settings, "entities.runs").agg(F.max("last_day")).first()[0]
        )
    ents = classify.with_holder_class(
        tables.read_table(spark, settings, "entities.entities"),
        F.lit(as_of_day).cast("date"),
        settings.entities,
    )
    return (
        tables.read_table(spark, settings, "entities.address_entity")
        .select("address", "entity_id")
        .join(ents.select("entity_id", "entity_type", "label", "holder_class"), "entity_id", "left")
    )


def evaluate_entities(spark: SparkSession, settings, truth_path: str) -> dict[str, Any]:
    """Every score of this module for the entities tables of ``settings`` against the truth
    file ``truth_path`` (a simulation's ``truth/addresses.csv``)."""
    truth = read_truth_addresses(spark, truth_path)
    predicted = predicted_addresses(spark, settings).persist()
    try:
        return {
            "clustering": clustering_scores(predicted, truth),
            "miners": type_scores(predicted, truth, "miner", "miner"),
            "exchanges": type_scores(predicted, truth, "exchange", "exchange"),
            "coinjoins": type_scores(predicted, truth, "coinjoin", "coinjoin"),
            "holder_classes": holder_scores(predicted, truth),
        }
    finally:
        predicted.unpersist()


# ---------------------------------------------------------------------------- holders over days


def sample_days(phases: list[tuple[str, Any, Any]], every_days: int = 7) -> list[tuple[Any, str]]:
    """(day, phase) pairs: each phase's first day and every ``every_days``-th day after it, and
    its last day; ``phases`` is (name, first day, last day). Sorted by day.

    >>> import datetime as dt
    >>> d = dt.date(2025, 1, 1)
    >>> [(str(x), p) for x, p in sample_days([("a", d, d + dt.timedelta(days=15))])]
    [('2025-01-01', 'a'), ('2025-01-08', 'a'), ('2025-01-15', 'a'), ('2025-01-16', 'a')]
    """
    import datetime as dt

    out = set()
    for name, first, last in phases:
        for i in range(0, (last - first).days + 1, every_days):
            out.add((first + dt.timedelta(days=i), name))
        out.add((last, name))
    return sorted(out)


def holder_decisions(
    days: DataFrame,
    truth: DataFrame,
    moves: DataFrame,
    address_entity: DataFrame,
    entity_daily: DataFrame,
    types: DataFrame | None,
    entities_settings,
) -> DataFrame:
    """Per sampled day (``days``: day, phase): how the true strong and weak owners that hold
    coins at the day's end are classed by our entities as of that day.

    Inputs: ``truth`` (address, entity_class: the true owners' classes, truth/addresses.csv);
    ``moves`` (day, address, value_sats: outputs received > 0, inputs spent < 0, from
    chain.outputs and chain.inputs) — an address holds at D when Σ value_sats of its moves up
    to D is > 0; ``address_entity`` (address, entity_id): the clustering is the final one
    (entities.address_entity), so an address counts under the entity it ends in, on every day;
    ``entity_daily`` (entities.entity_daily rows); ``types`` (entity_id, entity_type: the
    latest types, or None for each row's own).

    The entity's holder class as of D is decided from its last entity_daily row on or before D
    with its coins aged to D (:func:`hodlflow.metrics.concentration.with_holder_class_on`, the
    rule of the metrics' strong and weak balances); a row of an id that a later run merged away
    is not under the final id, so such an entity counts from its survivor's first row on.

    Returns one row per sampled day with holders at its end: day, phase, ``holders`` (true
    strong or weak addresses holding), ``decided`` (of them, whose entity is strong or weak that
    day; neutral, typed or no row is undecided), ``right`` (of the decided, the class equals the
    truth's), and the same three for each truth class (``strong_holders`` ...)."""
    from hodlflow.metrics.concentration import with_holder_class_on

    owners = truth.where(F.col("entity_class").isin(*HOLDER_CLASSES)).select(
        "address", F.col("entity_class").alias("truth_class")
    )
    own_moves = moves.join(owners.select("address"), "address")
    held = (
        days.select(F.col("day").alias("_d"), "phase")
        .join(own_moves, F.col("day") <= F.col("_d"))
        .groupBy("_d", "phase", "address")
        .agg(F.sum("value_sats").alias("_bal"))
        .filter(F.col("_bal") > 0)
        .select(F.col("_d").alias("day"), "phase", "address")
        .join(owners, "address")
        .join(address_entity.select("address", "entity_id"), "address", "left")
    )
    wanted = held.select("day", "entity_id").where(F.col("entity_id").isNotNull()).distinct()
    rows = entity_daily.select(
        F.col("day").alias("row_day"), "entity_id", "entity_type", "balance_sats",
        "receive_count", "send_count", "coin_age_days",
    )  # fmt: skip
    last = (
        wanted.join(rows, "entity_id")
        .filter(F.col("row_day") <= F.col("day"))
        .groupBy("day", "entity_id")
        .agg(
            F.max_by(F.struct(*(c for c in rows.columns if c != "entity_id")), "row_day").alias(
                "_r"
            )
        )
        .select("day", "entity_id", "_r.*")
    )
    classed = with_holder_class_on(last, types, entities_settings).select(
        "day", "entity_id", "holder_class"
    )
    judged = held.join(classed, ["day", "entity_id"], "left")
    decided = F.col("holder_class").isin(*HOLDER_CLASSES)
    right = decided & (F.col("holder_class") == F.col("truth_class"))

    def counts(prefix: str, cond: Column) -> list[Column]:
        return [
            F.count(F.when(cond, 1)).alias(f"{prefix}holders"),
            F.count(F.when(cond & decided, 1)).alias(f"{prefix}decided"),
            F.count(F.when(cond & right, 1)).alias(f"{prefix}right"),
        ]

    return judged.groupBy("day", "phase").agg(
        *counts("", F.lit(True)),
        *(c for cls in HOLDER_CLASSES for c in counts(f"{cls}_", F.col("truth_class") == cls)),
    )


def holder_decision_scores(per_day: list[dict[str, Any]]) -> dict[str, Any]:
    """Shares from the rows of :func:`holder_decisions` (as dicts): per day and per phase
    (address-days summed over its sampled days) ``decided_share`` = decided / holders and
    ``right_share`` = right / decided (None over nothing), with the counts; overall the same
    over every sampled day and the worst day of each share (the lowest; the earliest of equal).

    >>> s = holder_decision_scores([
    ...     {"day": "d1", "phase": "p", "holders": 4, "decided": 2, "right": 1},
    ...     {"day": "d2", "phase": "p", "holders": 2, "decided": 2, "right": 2}])
    >>> s["all"]["decided_share"], s["all"]["right_share"], s["all"]["worst_decided"]
    (0.6666666666666666, 0.75, '0.500 on d1')
    """

    def shares(h: int, d: int, r: int) -> dict[str, Any]:
        return {
            "holders": h, "decided": d, "right": r,
            "decided_share": d / h if h else None, "right_share": r / d if d else None,
        }  # fmt: skip

    def worst(rows: list[dict[str, Any]], key: str) -> tuple[Any, Any]:
        known = [r for r in rows if r[key] is not None]
        if not known:
            return None, None
        w = min(known, key=lambda r: (r[key], str(r["day"])))
        return w[key], w["day"]

    days = sorted(
        ({"day": r["day"], "phase": r["phase"], **shares(r["holders"], r["decided"], r["right"])}
         for r in per_day), key=lambda r: str(r["day"]),
    )  # fmt: skip

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        out = shares(*(sum(r[k] for r in rows) for k in ("holders", "decided", "right")))
        out["days"] = len(rows)
        for key in ("decided_share", "right_share"):
            value, day = worst(rows, key)
            out[f"worst_{key.removesuffix('_share')}"] = (
                "n/a" if value is None else f"{value:.3f} on {day}"
            )
            out[f"worst_{key}"] = value
        return out

    phases: dict[str, list[dict[str, Any]]] = {}
    for r in days:
        phases.setdefault(r["phase"], []).append(r)
    first = {p: min(str(r["day"]) for r in rs) for p, rs in phases.items()}
    return {
        "all": summary(days),
        "phases": {p: summary(phases[p]) for p in sorted(phases, key=first.get)},
        "days": days,
    }


def evaluate_holder_decisions(
    spark: SparkSession, settings, sim_dir: str, every_days: int = 7
) -> dict[str, Any]:
    """:func:`holder_decision_scores` over the days of :func:`sample_days` of the simulation's
    phases (``truth/miner_daily.csv``), only those the entities step covered (from the first
    entities.entity_daily day to the last run's last day), with the truth owners of
    ``truth/addresses.csv`` and the chain and entities tables of ``settings``."""
    from hodlflow import tables

    read = lambda key: tables.read_table(spark, settings, key)  # noqa: E731
    phase_rows = (
        spark.read.option("header", True).csv(os.path.join(sim_dir, "truth", "miner_daily.csv"))
        .groupBy("phase")
        .agg(F.min(F.col("day").cast("date")).alias("first"),
             F.max(F.col("day").cast("date")).alias("last"))
        .collect()
    )  # fmt: skip
    lo = read("entities.entity_daily").agg(F.min("day")).first()[0]
    hi = read("entities.runs").agg(F.max("last_day")).first()[0]
    sampled = [
        (d, p)
        for d, p in sample_days([(r.phase, r.first, r.last) for r in phase_rows], every_days)
        if lo is not None and hi is not None and lo <= d <= hi
    ]
    if not sampled:
        return holder_decision_scores([])
    days = spark.createDataFrame(sampled, "day date, phase string")
    truth = read_truth_addresses(spark, os.path.join(sim_dir, "truth", "addresses.csv"))
    moves = (
        read("chain.outputs").select("day", "address", "value_sats")
        .unionByName(read("chain.inputs").select(
            "day", "address", (-F.col("value_sats")).alias("value_sats")))
        .filter(F.col("address").isNotNull())
    )  # fmt: skip
    rows = holder_decisions(
        days, truth, moves, read("entities.address_entity"), read("entities.entity_daily"),
        read("entities.entities").select("entity_id", "entity_type"), settings.entities,
    ).collect()  # fmt: skip
    return holder_decision_scores([r.asDict() for r in rows])


def format_holder_decisions(scores: dict[str, Any]) -> str:
    """The per-day and per-phase lines of :func:`holder_decision_scores`."""

    def pct(v) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    width = max([16, *(len(p) for p in scores["phases"])])
    lines = [f"{'day':<11} {'phase':<{width}}  holders  decided (share)     right (share)"]
    for r in scores["days"]:
        lines.append(
            f"{str(r['day']):<11} {r['phase']:<{width}} {r['holders']:>8,} {r['decided']:>8,} "
            f"({pct(r['decided_share'])}) {r['right']:>8,} ({pct(r['right_share'])})"
        )
    for name, s in [("all", scores["all"]), *scores["phases"].items()]:
        lines.append(
            f"{name:<{width + 12}} {s['holders']:>8,} {s['decided']:>8,} ({pct(s['decided_share'])}) "
            f"{s['right']:>8,} ({pct(s['right_share'])})  worst day: decided "
            f"{s['worst_decided']}, right {s['worst_right']}"
        )
    return "\n".join(lines)

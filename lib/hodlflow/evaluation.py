"""``hodlflow evaluate``: every score of a simulated chain's tables against its ground truth,
computed apart from printing so ``hodlflow evaluate-suite`` reads the same numbers.

Entities (clustering, types, holder classes on the last day and over the sampled days of each
phase), then, once the metrics ran, the miner series, the flow and balance series per day
(written one row per day to ``<sim>/evaluation/daily_flows.csv``) and the top-100 share per
phase."""

from __future__ import annotations

import os
from typing import Any

from pyspark.sql import SparkSession

from hodlflow.config import Settings


def evaluate_simulation(spark: SparkSession, settings: Settings, sim_dir: str) -> dict[str, Any]:
    """Every score for the tables of ``settings`` against the simulation in ``sim_dir``:
    keys ``entities`` (:func:`hodlflow.entities.evaluate.evaluate_entities`), ``holders_over_days``
    (:func:`~hodlflow.entities.evaluate.evaluate_holder_decisions`) and, when the metrics tables
    exist, ``miner_series``, ``flow_series``
    (:func:`hodlflow.metrics.evaluate.evaluate_flow_series`), ``concentration`` and
    ``daily_csv``, the path of the per-day comparison it wrote."""
    from hodlflow import tables
    from hodlflow.entities.evaluate import evaluate_entities, evaluate_holder_decisions
    from hodlflow.metrics import evaluate as me

    truth_dir = os.path.join(sim_dir, "truth")
    out: dict[str, Any] = {
        "entities": evaluate_entities(spark, settings, os.path.join(truth_dir, "addresses.csv")),
        "holders_over_days": evaluate_holder_decisions(spark, settings, sim_dir),
    }
    miner_truth = os.path.join(truth_dir, "miner_daily.csv")
    if tables.exists(spark, settings, "metrics.miner_pressure"):
        out["miner_series"] = me.evaluate_miner_series(spark, settings, miner_truth)
    if tables.exists(spark, settings, "metrics.holder_migration"):
        daily = me.daily_flow_comparison(spark, settings, truth_dir).localCheckpoint()
        out["flow_series"] = me.series_stats(daily)
        out["concentration"] = me.evaluate_concentration(
            spark, settings, os.path.join(truth_dir, "addresses.csv"), miner_truth
        )
        per_day = os.path.join(sim_dir, "evaluation", "daily_flows.csv")
        os.makedirs(os.path.dirname(per_day), exist_ok=True)
        with open(per_day, "w") as fh:  # one row per day: small
            fh.write(",".join(daily.columns) + "\n")
            for r in daily.toLocalIterator():
                fh.write(",".join("" if v is None else str(v) for v in r) + "\n")
        out["daily_csv"] = per_day
    return out


def format_evaluation(result: dict[str, Any]) -> str:
    """The scores of :func:`evaluate_simulation` as text, section by section."""
    from hodlflow.entities.evaluate import format_holder_decisions, format_scores
    from hodlflow.metrics.evaluate import CLASS_PAIRS, MAIN_SERIES, format_series_table

    parts = [format_scores(result["entities"])]
    parts += [
        "holder classes over the sampled days (every 7th day of each phase and its last; true "
        "strong and weak owners holding coins that day; final clustering)",
        format_holder_decisions(result["holders_over_days"]),
    ]
    if "miner_series" in result:
        parts += ["miner series against truth/miner_daily.csv",
                  format_scores(result["miner_series"])]  # fmt: skip
    if "flow_series" in result:
        pairs = [f"{a}_to_{b}_btc" for a, b in CLASS_PAIRS]
        parts += [
            "flows and holder balances per day against truth/daily_flows.csv and "
            "truth/daily_balances.csv (of: sum or mean over the days; sign ±: of the days whose "
            "true value is over +1 % / under −1 % of the day's true transferred volume, the "
            "share where ours has that sign)",
            format_series_table(result["flow_series"], MAIN_SERIES),
            "class pairs (from_to_to; pairs that are 0 on both sides left out)",
            format_series_table(result["flow_series"], pairs),
            "concentration against the true entities' balances",
            format_scores(result["concentration"]),
            f"per-day comparison (ours vs truth): {result['daily_csv']}",
        ]
    return "\n".join(parts)

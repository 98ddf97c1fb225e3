"""``hodlflow evaluate-suite``: the issue's measures over several simulated markets.

Runs, one after another in one Spark session, each scenario of the suite — by default
``capitulation``, ``distribution`` and N scenarios drawn from a seed
(:func:`hodlflow.sim.random_scenario.random_scenario`) — through simulate → ingest → entities →
prices and metrics → evaluate, each into its own folder ``OUT/<scenario>/`` (``scenario.yaml``,
the simulation ``sim/``, the tables ``warehouse/``, the full ``evaluation.txt`` and
``sim/evaluation/daily_flows.csv``, ``measures.json``), then prints one table of the measures
(:data:`MEASURES`), scenario by scenario, with the worst value of each and whether its goal is
met. The same seed gives the same scenarios and so the same table.

Computing (:func:`run_suite`, :func:`scenario_measures`) is apart from printing
(:func:`format_suite_table`, :func:`format_times`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from hodlflow.config import Settings


@dataclass(frozen=True)
class Measure:
    key: str
    header: str
    goal: float | None  # the threshold, None: shown, not judged
    higher_is_better: bool = True  # False: an error, judged on its absolute value
    percent: bool = False


MEASURES: tuple[Measure, ...] = (
    Measure("precision", "precision", 0.99),
    Measure("ari", "ARI", 0.7),
    Measure("largest", "largest", None),
    Measure("exchange_recall", "exch recall", 0.9),
    Measure("miner_recall", "miner recall", 0.95),
    Measure("decided", "decided", 0.8),
    Measure("decided_worst_day", "decided worst", 0.8),
    Measure("right", "right", 0.85),
    Measure("right_worst_day", "right worst", 0.85),
    Measure("net_ours", "net ours", None),
    Measure("net_true", "net true", None),
    Measure("net_error", "net err", 0.20, False, True),
    Measure("net_correlation", "net corr", 0.8),
    Measure("net_sign_positive", "sign +", 0.9),
    Measure("net_sign_negative", "sign -", 0.9),
    # The revised (retroactive) series: shown beside the point-in-time one, not judged.
    Measure("revised_net_error", "rev net err", None, False, True),
    Measure("revised_net_correlation", "rev corr", None),
    Measure("revised_net_sign_negative", "rev sign -", None),
    Measure("exchange_inflow_error", "exch in err", 0.05, False, True),
    Measure("exchange_outflow_error", "exch out err", 0.05, False, True),
    Measure("miner_outflow_error", "miner out err", 0.05, False, True),
    Measure("miner_to_exchange_error", "miner>exch err", 0.05, False, True),
)


def _signed_error(stats: dict[str, Any]) -> float | None:
    ours, true = stats.get("ours", stats.get("ours_btc")), stats.get("true", stats.get("true_btc"))
    if ours is None or not true:
        return None
    return (ours - true) / abs(true)


def scenario_measures(result: dict[str, Any]) -> dict[str, Any]:
    """The measures of :data:`MEASURES` from one :func:`hodlflow.evaluation.evaluate_simulation`
    result; errors are signed ((ours − true) / |true|), the sign agreements carry their counts
    (``*_days``, ``*_right``)."""
    ent = result["entities"]
    holders = result["holders_over_days"]["all"]
    flows = result.get("flow_series", {})
    miner = result.get("miner_series", {})
    net = flows.get("net_weak_to_strong_btc", {})
    out: dict[str, Any] = {
        "precision": ent["clustering"]["precision"],
        "ari": ent["clustering"]["adjusted_rand_index"],
        # the addresses of our largest entity: a change heuristic gone wrong swallows many
        "largest": ent["clustering"].get("largest_predicted_entity"),
        "exchange_recall": ent["exchanges"]["address_recall"],
        "miner_recall": ent["miners"]["address_recall"],
        "decided": holders["decided_share"],
        "decided_worst_day": holders["worst_decided_share"],
        "decided_worst": holders["worst_decided"],
        "right": holders["right_share"],
        "right_worst_day": holders["worst_right_share"],
        "right_worst": holders["worst_right"],
        "holders": holders["holders"],
        "net_ours": net.get("ours"),
        "net_true": net.get("true"),
        "net_error": _signed_error(net) if net else None,
        "net_correlation": net.get("correlation"),
        "net_sign_positive": net.get("positive_share"),
        "net_sign_positive_days": net.get("positive_days"),
        "net_sign_positive_right": net.get("positive_right"),
        "net_sign_negative": net.get("negative_share"),
        "net_sign_negative_days": net.get("negative_days"),
        "net_sign_negative_right": net.get("negative_right"),
    }
    rev = flows.get("revised_net_weak_to_strong_btc", {})
    out["revised_net_error"] = _signed_error(rev) if rev else None
    out["revised_net_correlation"] = rev.get("correlation")
    out["revised_net_sign_negative"] = rev.get("negative_share")
    out["revised_net_sign_negative_days"] = rev.get("negative_days")
    out["revised_net_sign_negative_right"] = rev.get("negative_right")
    for key, stats in (
        ("exchange_inflow_error", flows.get("exchange_inflow_btc")),
        ("exchange_outflow_error", flows.get("exchange_outflow_btc")),
        ("miner_outflow_error", miner.get("miner_outflow_btc")),
        ("miner_to_exchange_error", miner.get("miner_to_exchange_btc")),
    ):
        out[key] = _signed_error(stats) if stats else None
    return out


def met(measure: Measure, value: float | None) -> bool | None:
    """Whether ``value`` meets the measure's goal (None: not judged)."""
    if measure.goal is None or value is None:
        return None
    if measure.higher_is_better:
        return value >= measure.goal
    return abs(value) <= measure.goal


def worst(measure: Measure, values: list[float | None]) -> float | None:
    """The worst of ``values`` for the measure (the lowest share, the largest absolute
    error); None when none is known or the measure has no goal."""
    known = [v for v in values if v is not None]
    if measure.goal is None or not known:
        return None
    return min(known) if measure.higher_is_better else max(known, key=abs)


def _cell(measure: Measure, m: dict[str, Any]) -> str:
    v = m.get(measure.key)
    if v is None:
        return "n/a"
    if measure.key in ("net_ours", "net_true", "largest"):
        return f"{v:,.0f}"
    if "net_sign_" in measure.key:
        return f"{v:.2f} ({m[measure.key + '_right']}/{m[measure.key + '_days']})"
    if measure.percent:
        return f"{v:+.1%}"
    return f"{v:.3f}"


def format_suite_table(rows: list[tuple[str, dict[str, Any]]], markdown: bool = False) -> str:
    """The suite's table: one line per (scenario name, :func:`scenario_measures`), then the
    worst value of each measure, each goal, and whether the worst meets it (so whether every
    scenario does). With ``markdown``, a Markdown table."""
    head = ["scenario", *(m.header for m in MEASURES)]
    lines = [head]
    for name, m in rows:
        lines.append([name, *(_cell(x, m) for x in MEASURES)])
    worst_row, goal_row, met_row = ["worst"], ["goal"], ["goal met"]
    for x in MEASURES:
        w = worst(x, [m.get(x.key) for _, m in rows])
        worst_row.append("" if x.goal is None else _cell(x, {x.key: w, **_counts_of(x, rows, w)}))
        if x.goal is None:
            goal_row.append("")
            met_row.append("")
            continue
        goal_row.append(f"≥ {x.goal:g}" if x.higher_is_better else f"within {x.goal:.0%}")
        ok = met(x, w)
        met_row.append("n/a" if ok is None else "yes" if ok else "NO")
    lines += [worst_row, goal_row, met_row]
    if markdown:
        out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in lines[1:]]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                  enumerate(zip(r, widths, strict=True))).rstrip()
        for r in lines
    )  # fmt: skip


def _counts_of(x: Measure, rows, w) -> dict[str, Any]:
    """The day counts of the scenario whose sign agreement is the worst (for its cell)."""
    if not x.key.startswith("net_sign_") or w is None:
        return {}
    for _, m in rows:
        if m.get(x.key) == w:
            return {f"{x.key}_right": m[f"{x.key}_right"], f"{x.key}_days": m[f"{x.key}_days"]}
    return {}


def format_times(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Per scenario: days, transactions and the wall seconds of each step."""
    steps = ("simulate", "ingest", "entities", "metrics", "evaluate", "total")
    lines = [["scenario", "days", "transactions", *(f"{s} s" for s in steps)]]
    for name, info in rows:
        secs = info["seconds"]
        lines.append([name, str(info["days"]), f"{info['transactions']:,}",
                      *(f"{secs.get(s, 0):.0f}" for s in steps)])  # fmt: skip
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                  enumerate(zip(r, widths, strict=True))).rstrip()
        for r in lines
    )  # fmt: skip


@dataclass
class SuiteScenario:
    name: str
    data: dict[str, Any]  # the scenario as parsed YAML (validated by parse_scenario)


@dataclass
class SuiteResult:
    scenarios: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # measures
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # days, tx, seconds


def suite_scenarios(
    seed: int, random_count: int, named: tuple[str, ...] = ("capitulation", "distribution"),
    quick: bool = False,
) -> list[SuiteScenario]:  # fmt: skip
    """The suite's scenarios: the ``named`` ones of ``conf/scenarios/`` (none when ``quick``),
    then ``random_count`` drawn from ``seed`` (tiny-sized when ``quick``). Each is validated."""
    from hodlflow.sim.random_scenario import random_scenario
    from hodlflow.sim.scenario import parse_scenario, resolve_scenario_path

    out = []
    for name in () if quick else named:
        data = yaml.safe_load(resolve_scenario_path(name).read_text(encoding="utf-8"))
        parse_scenario(data, name)
        out.append(SuiteScenario(str(data.get("name", name)), data))
    for i in range(random_count):
        data = random_scenario(seed, i, quick=quick)
        parse_scenario(data, data["name"])
        out.append(SuiteScenario(data["name"], data))
    return out


def run_scenario(spark, settings: Settings, scenario: SuiteScenario, folder: str,
                 log: Callable[[str], None] = print) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Simulate, ingest, cluster, compute the metrics and evaluate one scenario in ``folder``
    (emptied first); returns (measures, run info: days, transactions, seconds per step)."""
    from hodlflow.demo import drop_tables, simulated_chain_settings
    from hodlflow.entities.job import run_entities
    from hodlflow.evaluation import evaluate_simulation, format_evaluation
    from hodlflow.ingest.job import run_ingest
    from hodlflow.metrics.job import run_metrics
    from hodlflow.metrics.prices import load_prices
    from hodlflow.sim.simulator import run_simulation

    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    path = os.path.join(folder, "scenario.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(scenario.data, fh, sort_keys=False, allow_unicode=True)
    sim = os.path.join(folder, "sim")
    seconds: dict[str, float] = {}
    t0 = t = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[step] = now - t
        log(f"  {scenario.name}: {step} {seconds[step]:.0f}s")
        t = now

    quiet = lambda _m: None  # noqa: E731
    manifest = run_simulation(path, sim)
    lap("simulate")
    prefix = "".join(c if c.isalnum() else "_" for c in scenario.name.lower())
    s = simulated_chain_settings(
        settings.with_overrides(
            {"warehouse.path": os.path.join(folder, "warehouse"), "warehouse.db_prefix": f"{prefix}_"}
        ),
        sim, manifest,
    )  # fmt: skip
    drop_tables(spark, s)
    run_ingest(spark, s, log=quiet)
    lap("ingest")
    run_entities(spark, s, log=quiet)
    lap("entities")
    load_prices(spark, s, os.path.join(sim, "prices.csv"))
    run_metrics(spark, s, log=quiet)
    lap("metrics")
    result = evaluate_simulation(spark, s, sim)
    with open(os.path.join(folder, "evaluation.txt"), "w", encoding="utf-8") as fh:
        fh.write(format_evaluation(result) + "\n")
    lap("evaluate")
    seconds["total"] = time.perf_counter() - t0
    measures = scenario_measures(result)
    info = {"days": manifest["days"], "transactions": manifest["transactions"], "seconds": seconds}
    with open(os.path.join(folder, "measures.json"), "w", encoding="utf-8") as fh:
        json.dump({"measures": measures, "run": info}, fh, indent=1, default=str)
    return measures, info


def measured_before(scenario: SuiteScenario, folder: str) -> dict[str, Any] | None:
    """The ``measures.json`` of an earlier run of the same scenario in ``folder`` (its
    ``scenario.yaml`` equal to ``scenario``'s), else None."""
    try:
        with open(os.path.join(folder, "scenario.yaml"), encoding="utf-8") as fh:
            same = yaml.safe_load(fh) == yaml.safe_load(yaml.safe_dump(scenario.data))
        with open(os.path.join(folder, "measures.json"), encoding="utf-8") as fh:
            return json.load(fh) if same else None
    except (OSError, ValueError):
        return None


def run_suite(
    settings: Settings, out: str, seed: int = 1, random_count: int = 3, quick: bool = False,
    named: tuple[str, ...] = ("capitulation", "distribution"), log: Callable[[str], None] = print,
    resume: bool = False,
) -> SuiteResult:  # fmt: skip
    """Run every scenario of :func:`suite_scenarios` in one Spark session (its catalog under
    ``OUT/_session``), one after another, each with its own warehouse and table prefix. With
    ``resume``, a scenario already measured in its folder (:func:`measured_before`) is taken
    from there, not run again (a suite stopped half-way goes on)."""
    scenarios = suite_scenarios(seed, random_count, named, quick)
    os.makedirs(out, exist_ok=True)
    spark = None
    result = SuiteResult()
    for sc in scenarios:
        folder = os.path.join(out, sc.name)
        before = measured_before(sc, folder) if resume else None
        if before is not None:
            log(f"scenario {sc.name}: measured before, kept ({folder}/measures.json)")
            measures, info = before["measures"], before["run"]
        else:
            if spark is None:
                from hodlflow.spark import build_session

                spark = build_session(
                    settings.with_overrides({"warehouse.path": os.path.join(out, "_session")})
                )
                spark.sparkContext.setLogLevel("ERROR")
            log(f"scenario {sc.name} ...")
            measures, info = run_scenario(spark, settings, sc, folder, log)
        result.scenarios.append((sc.name, measures))
        result.runs.append((sc.name, info))
    return result


def write_suite_report(result: SuiteResult, out: str) -> str:
    """Write ``OUT/suite.txt`` (the table of :func:`format_suite_table`, the wall time of each
    step, a Markdown copy of the table) and return what to show: the table, the times and where
    the files are."""
    table = format_suite_table(result.scenarios)
    times = format_times(result.runs)
    with open(os.path.join(out, "suite.txt"), "w", encoding="utf-8") as fh:
        fh.write(f"{table}\n\n{times}\n\n{format_suite_table(result.scenarios, markdown=True)}\n")
    return (
        f"\n{table}\n\nwall seconds per step:\n{times}\n"
        f"\nper scenario: {out}/<scenario>/evaluation.txt; this table: {out}/suite.txt"
    )

"""The simulator's agents do what their real counterparts do, seen in the written chain and its
truth files: long-term holders distribute into a rally when their profit is large, late buyers
enter after a rally and stop out under their cost. Each scenario is tiny.yaml with another price
path, written to tmp_path; each test fails when its behaviour is taken out."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import yaml

from hodlflow.sim.simulator import run_simulation
from tests.unit.test_simulator import ROOT, _read_csv


def _simulate(tmp_path: Path, name: str, edit) -> Path:
    """Run tiny.yaml as changed by ``edit(scenario)``; return the output folder."""
    scenario = yaml.safe_load((ROOT / "conf" / "scenarios" / "tiny.yaml").read_text())
    edit(scenario)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / name
    run_simulation(str(path), str(out))
    return out


def _prices(out: Path) -> list[tuple[str, float]]:
    return [(r["day"], float(r["close_usd"])) for r in _read_csv(out / "prices.csv")]


def _class_balance(out: Path, cls: str) -> list[int]:
    rows = _read_csv(out / "truth" / "daily_balances.csv")
    return [int(r["balance_sats"]) for r in rows if r["class"] == cls]


def _flows_from(out: Path, cls: str) -> dict[tuple[str, str], int]:
    """(day, to_class) -> value paid by ``cls`` that day, from truth/daily_flows.csv."""
    flows: dict[tuple[str, str], int] = defaultdict(int)
    for r in _read_csv(out / "truth" / "daily_flows.csv"):
        if r["from_class"] == cls and r["to_class"] != cls:
            flows[(r["day"], r["to_class"])] += int(r["value_sats"])
    return flows


def _rally(take_profit_above: float | None):
    """Three days at ~$60k (long-term holders buy), then a rally to ~$150k in five days. The
    holders never spend otherwise (spend_prob_per_year 0), so every sale is profit-taking."""

    def edit(s: dict) -> None:
        s["price"] = {"start_usd": 60_000, "daily_volatility": 0.01}
        s["phases"] = [
            {"name": "base", "days": 3, "end_usd": 60_000},
            {"name": "rally", "days": 5, "end_usd": 150_000},
        ]
        strong = s["agents"]["strong_holders"]
        strong["spend_prob_per_year"] = 0.0
        if take_profit_above is not None:
            strong.update(take_profit_above=take_profit_above, take_profit_fraction=0.2)

    return edit


def test_long_term_holders_distribute_into_a_rally_only_with_take_profit(tmp_path):
    """Off, the holders' balance only grows through the rally and they pay exchanges nothing.
    With take_profit_above 1.5 they sell to exchanges once the price is at least 1.5 × what
    they paid (never before the price is 1.5 × the lowest price so far: no average cost is
    under it), and the strong class's balance falls from its peak."""
    off = _simulate(tmp_path, "off", _rally(None))
    on = _simulate(tmp_path, "on", _rally(1.5))
    balance_off = _class_balance(off, "strong")
    assert all(a <= b for a, b in zip(balance_off, balance_off[1:], strict=False))
    assert not _flows_from(off, "strong")

    prices = _prices(on)
    sold = {day: v for (day, to), v in _flows_from(on, "strong").items() if to == "exchange"}
    assert sum(sold.values()) > 10 * 100_000_000  # over 10 BTC (they hold ~600)
    lowest = float("inf")
    for day, price in prices:
        lowest = min(lowest, price)
        if day in sold:
            assert price >= 1.5 * lowest, (day, price, lowest)
    balance_on = _class_balance(on, "strong")
    assert balance_on[-1] < max(balance_on) * 0.9
    assert balance_on[:3] == balance_off[:3]  # the same chain until anyone takes profit

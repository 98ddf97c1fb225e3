"""The simulator's agents do what their real counterparts do, seen in the written chain and its
truth files: long-term holders distribute into a rally when their profit is large, late buyers
enter after a rally and stop out under their cost. Each scenario is tiny.yaml with another price
path, written to tmp_path; each test fails when its behaviour is taken out."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import yaml

from hodlflow.chain.network import MAIN
from hodlflow.chain.script import classify_script
from hodlflow.sim.simulator import run_simulation
from tests.unit.test_simulator import ROOT, Chain, _read_csv


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


def _late_buyers(flip_share: float):
    """Flat at ~$80k for four days, a rally of ~50% in three, then a fall back to ~$80k; 30
    late buyers who enter at a 3-day momentum of 1.2 and stop out 15% under their cost."""

    def edit(s: dict) -> None:
        s["price"] = {"start_usd": 80_000, "daily_volatility": 0.01}
        s["phases"] = [
            {"name": "flat", "days": 4, "end_usd": 80_000},
            {"name": "rally", "days": 3, "end_usd": 120_000},
            {"name": "fall", "days": 5, "end_usd": 80_000},
        ]
        s["agents"]["late_buyers"] = {
            "count": 30,
            "position_usd": 20_000,
            "momentum_days": 3,
            "enter_above_momentum": 1.2,
            "watch_every_days": 1,
            "purchases": [1, 3],
            "purchase_gap_days": [1, 2],
            "stop_loss": 0.15,
            "max_hold_days": 100,
            "flip_share": flip_share,
            "flip_hold_days": [2, 3],
        }

    return edit


def _late_positions(out: Path) -> list[dict]:
    """Each late buyer's positions, from the parsed chain and the truth's address map: the
    receipts from other entities (day, value) until the transaction that spends its coins
    (day and the classes it pays). A late buyer's addresses must each receive once."""
    owners = {r["address"]: r for r in _read_csv(out / "truth" / "addresses.csv")}
    late = {a: r["entity_label"] for a, r in owners.items() if r["entity_type"] == "late_buyer"}
    assert late and all(owners[a]["entity_class"] == "weak" for a in late)
    open_pos: dict[str, dict] = {}
    done: list[dict] = []
    holder_of: dict[tuple[str, int], str] = {}  # late buyers' unspent outputs -> label
    received: set[str] = set()
    for blk in Chain(out).blocks:
        day = dt.datetime.fromtimestamp(blk.header.time, dt.UTC).date().isoformat()
        for tx in blk.txs[1:]:
            spenders = {holder_of.pop((t.prev_txid, t.prev_vout), None) for t in tx.inputs}
            assert len(spenders) == 1, f"{tx.txid}: a late buyer spends with others"
            spender = spenders.pop()
            paid = set()
            for n, o in enumerate(tx.outputs):
                addr = classify_script(o.script_pubkey, MAIN)[1]
                if addr in late and late[addr] != spender:
                    assert addr not in received, f"{addr} received twice"
                    received.add(addr)
                    pos = open_pos.setdefault(late[addr], {"label": late[addr], "receipts": []})
                    pos["receipts"].append((day, o.value))
                    holder_of[(tx.txid, n)] = late[addr]
                elif addr is not None:
                    paid.add(owners[addr]["entity_class"])
            if spender is not None:
                pos = open_pos.pop(spender)
                pos.update(sale_day=day, paid=paid)
                done.append(pos)
    return done + list(open_pos.values())


def _average_cost(pos: dict, price: dict[str, float]) -> float:
    held = sum(v for _, v in pos["receipts"])
    return sum(v * price[d] for d, v in pos["receipts"]) / held


def test_late_buyers_enter_after_the_rally_and_stop_out_under_their_cost(tmp_path):
    """Their first receipt comes no earlier than the first day the 3-day momentum (from
    prices.csv) reaches 1.2, each purchase lands on a fresh address, and without flippers or a
    hold limit every position is sold whole to an exchange at a price at least 15% under its
    average cost (the receipts' values at their days' prices)."""
    out = _simulate(tmp_path, "late", _late_buyers(0.0))
    prices = _prices(out)
    price = dict(prices)
    crossed = next(
        day for d, (day, p) in enumerate(prices) if d >= 3 and p / prices[d - 3][1] >= 1.2
    )
    positions = _late_positions(out)
    first = min(day for pos in positions for day, _ in pos["receipts"])
    assert first >= crossed
    assert len(positions) >= 10
    sold = [pos for pos in positions if "sale_day" in pos]
    assert len(sold) >= 5
    for pos in sold:
        assert pos["paid"] == {"exchange"}, pos
        cost = _average_cost(pos, price)
        assert price[pos["sale_day"]] <= cost * 0.85 * (1 + 1e-9), pos
    assert any(len(pos["receipts"]) > 1 for pos in positions)  # positions in several buys


def test_flippers_sell_in_profit_days_after_they_buy(tmp_path):
    """With flip_share 1 each late buyer buys once and sells back to an exchange in profit at
    least flip_hold_days[0] = 2 days later (unless the stop-loss came first)."""
    out = _simulate(tmp_path, "flip", _late_buyers(1.0))
    price = dict(_prices(out))
    positions = _late_positions(out)
    profits = 0
    for pos in positions:
        assert len(pos["receipts"]) == 1
        if "sale_day" not in pos:
            continue
        assert pos["paid"] == {"exchange"}
        bought, cost = pos["receipts"][0][0], _average_cost(pos, price)
        sale = price[pos["sale_day"]]
        if sale > cost:
            held = dt.date.fromisoformat(pos["sale_day"]) - dt.date.fromisoformat(bought)
            assert held.days >= 2, pos
            profits += 1
        else:
            assert sale <= cost * 0.85 * (1 + 1e-9), pos
    assert profits >= 3

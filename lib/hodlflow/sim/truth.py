"""Ground truth of a simulation run: who owns each address, what moved between classes, what each
class holds, and the miners' day. One writer per file of ``<out>/truth/``; the columns and their meaning are the
contracts in ``schemas/truth.*.yaml`` (a CSV header line with those names, amounts in integer
satoshis, days as ISO dates from the block times).

The writers only record what the simulator tells them; the simulator calls them when a block of
the best chain is placed, so every number belongs to the day of its block.

>>> flows = FlowTruth()
>>> flows.add(0, [(0, 1, 5_000)])  # day 0: a miner paid an exchange 5,000 sat
>>> flows.total(0, "miner", "exchange")
5000
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml

from hodlflow.config import PROJECT_ROOT

SCHEMA_DIR = PROJECT_ROOT / "schemas"

# Entity classes, in the order their integer codes use.
CLASSES: tuple[str, ...] = ("miner", "exchange", "strong", "weak", "coinjoin", "other")
MINER, EXCHANGE, STRONG, WEAK, COINJOIN, OTHER = range(len(CLASSES))

# Entity type (behaviour) -> class.
TYPE_CLASS: dict[str, int] = {
    "pool": MINER,
    "solo_miner": MINER,
    "pool_member": MINER,
    "exchange": EXCHANGE,
    "long_term_holder": STRONG,
    "short_term_trader": WEAK,
    "forced_seller": WEAK,
    "late_buyer": WEAK,
    "coinjoin_user": COINJOIN,
    "coinjoin_coordinator": COINJOIN,
    "merchant": OTHER,
    "user": OTHER,
}

TRUTH_FILES = {
    "truth.addresses": "addresses.csv",
    "truth.daily_flows": "daily_flows.csv",
    "truth.daily_balances": "daily_balances.csv",
    "truth.miner_daily": "miner_daily.csv",
}


def truth_columns(key: str) -> list[str]:
    """Column names of a truth table, from its contract in ``schemas/``."""
    raw = yaml.safe_load((SCHEMA_DIR / f"{key}.yaml").read_text(encoding="utf-8"))
    return [c["name"] for c in raw["columns"]]


def _csv_line(values: Sequence[object]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


class AddressTruth:
    """Streams ``addresses.csv``: one row per address, written when it first receives."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8", newline="")
        self._fh.write(_csv_line(truth_columns("truth.addresses")))
        self._buf: list[str] = []
        self.count = 0

    def add(
        self,
        address: str,
        entity_id: int,
        label: str,
        entity_type: str,
        role: str,
        script_type: str,
    ) -> None:
        if any(ch in label for ch in ',"\r\n'):  # names come from the scenario: quote them
            label = _csv_line([label]).rstrip("\n")
        self._buf.append(
            f"{address},{entity_id},{label},{entity_type},{CLASSES[TYPE_CLASS[entity_type]]},"
            f"{role},{script_type}\n"
        )
        self.count += 1
        if len(self._buf) >= 10_000:
            self.flush()

    def flush(self) -> None:
        self._fh.write("".join(self._buf))
        self._buf.clear()

    def close(self) -> None:
        self.flush()
        self._fh.close()


class FlowTruth:
    """Daily transfers between classes: ``add(day, [(from_class, to_class, value), ...])``."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int, int], list[int]] = {}

    def add(self, day: int, transfers: Iterable[tuple[int, int, int]]) -> None:
        cells = self._cells
        for src, dst, value in transfers:
            key = (day, src, dst)
            cell = cells.get(key)
            if cell is None:
                cells[key] = [value, 1]
            else:
                cell[0] += value
                cell[1] += 1

    def total(self, day: int, from_class: str, to_class: str) -> int:
        cell = self._cells.get((day, CLASSES.index(from_class), CLASSES.index(to_class)))
        return cell[0] if cell else 0

    def write(self, path: str | Path, first_day: dt.date) -> int:
        rows = sorted(self._cells.items())
        with open(path, "w", encoding="ascii", newline="") as fh:
            fh.write(_csv_line(truth_columns("truth.daily_flows")))
            for (day, src, dst), (value, count) in rows:
                date = (first_day + dt.timedelta(days=day)).isoformat()
                fh.write(f"{date},{CLASSES[src]},{CLASSES[dst]},{value},{count}\n")
        return len(rows)


def net_weak_to_strong(flows_by_pair: Mapping[tuple[str, str], float]) -> float:
    """Net weak→strong migration of one day (or any span), in the unit of the flows: the mean of
    the strong hands' net inflow and the weak hands' net outflow, ½(strong net inflow − weak net
    inflow), as ``schemas/truth.daily_flows.yaml`` defines it. ``flows_by_pair`` maps
    (from_class, to_class) to the value transferred (class names of :data:`CLASSES`); a class's
    net inflow is what it received from other classes less what it paid to other classes, so
    rows within a class (exchange to exchange) do not count. A direct weak→strong payment
    counts fully; a path through an exchange (weak deposits, strong withdraws) or another class
    counts half on each side. Positive: strong hands accumulate; negative: they distribute.

    >>> net_weak_to_strong({
    ...     ("weak", "strong"): 10,       # an OTC sale: counts fully
    ...     ("weak", "exchange"): 40,     # weak hands sell: half of it
    ...     ("exchange", "strong"): 30,   # strong hands withdraw what they bought: half
    ...     ("strong", "exchange"): 6,    # strong hands take a little profit: minus half
    ...     ("exchange", "exchange"): 99, # within a class: not counted
    ... })
    42.0
    >>> net_weak_to_strong({("strong", "exchange"): 50, ("exchange", "weak"): 30})
    -40.0
    """

    def net_inflow(cls: str) -> float:
        got = sum(v for (src, dst), v in flows_by_pair.items() if dst == cls and src != cls)
        paid = sum(v for (src, dst), v in flows_by_pair.items() if src == cls and dst != cls)
        return got - paid

    return 0.5 * (net_inflow("strong") - net_inflow("weak"))


class BalanceTruth:
    """Value held by each class at the end of each day, booked from the transactions of the
    day's blocks: ``add(day, deltas)`` with one signed change per class (outputs to the class's
    owners less the inputs they spent), ``add_coinbase(day, value)`` for a block's reward."""

    def __init__(self, days: int) -> None:
        self._deltas = [[0] * len(CLASSES) for _ in range(days)]

    def add(self, day: int, deltas: Sequence[int]) -> None:
        row = self._deltas[day]
        for cls, delta in enumerate(deltas):
            row[cls] += delta

    def add_coinbase(self, day: int, value: int) -> None:
        self._deltas[day][MINER] += value

    def write(self, path: str | Path, first_day: dt.date) -> int:
        """One row per (day, class), zeros included; returns the number of rows."""
        balance = [0] * len(CLASSES)
        with open(path, "w", encoding="ascii", newline="") as fh:
            fh.write(_csv_line(truth_columns("truth.daily_balances")))
            for day, row in enumerate(self._deltas):
                date = (first_day + dt.timedelta(days=day)).isoformat()
                for cls, delta in enumerate(row):
                    balance[cls] += delta
                    fh.write(f"{date},{CLASSES[cls]},{balance[cls]}\n")
        return len(self._deltas) * len(CLASSES)


class MinerDay:
    __slots__ = (
        "phase",
        "blocks",
        "subsidy",
        "fees",
        "outflow",
        "to_exchange",
        "to_miner",
        "reserve",
        "difficulty_sum",
        "price",
    )

    def __init__(self, phase: str, price: float):
        self.phase = phase
        self.price = price
        self.blocks = 0
        self.subsidy = 0
        self.fees = 0
        self.outflow = 0
        self.to_exchange = 0
        self.to_miner = 0
        self.reserve = 0
        self.difficulty_sum = 0.0


class MinerTruth:
    """The miners' day: blocks, income, outflow, reserve, price and production cost."""

    def __init__(
        self,
        phases: Sequence[str],
        prices: Sequence[float],
        efficiency_j_per_th: float,
        power_usd_per_kwh: float,
        pue: float,
    ):
        self.days = [MinerDay(ph, p) for ph, p in zip(phases, prices, strict=True)]
        self.efficiency = efficiency_j_per_th
        self.power = power_usd_per_kwh
        self.pue = pue

    def add_block(self, day: int, subsidy: int, fees: int, difficulty: float) -> None:
        d = self.days[day]
        d.blocks += 1
        d.subsidy += subsidy
        d.fees += fees
        d.difficulty_sum += difficulty

    def add_transfers(self, day: int, transfers: Iterable[tuple[int, int, int]]) -> None:
        d = self.days[day]
        for src, dst, value in transfers:
            if src == MINER:
                d.outflow += value
                if dst == EXCHANGE:
                    d.to_exchange += value
                elif dst == MINER:
                    d.to_miner += value

    def set_reserve(self, day: int, reserve: int) -> None:
        self.days[day].reserve = reserve

    @staticmethod
    def hash_rate(difficulty_sum: float) -> float:
        """Σ over the day's blocks of difficulty·2^32/600, over 144 blocks (docs/metrics.md)."""
        return difficulty_sum * 2**32 / 600 / 144

    def production_cost(self, day: int) -> float:
        """USD per BTC mined that day (subsidy + fees); 0.0 on a day without blocks."""
        d = self.days[day]
        mined_btc = (d.subsidy + d.fees) / 1e8
        if not mined_btc:
            return 0.0
        kwh = self.hash_rate(d.difficulty_sum) / 1e12 * self.efficiency * 24 / 1000
        return kwh * self.power * self.pue / mined_btc

    def write(self, path: str | Path, first_day: dt.date) -> int:
        with open(path, "w", encoding="ascii", newline="") as fh:
            fh.write(_csv_line(truth_columns("truth.miner_daily")))
            for i, d in enumerate(self.days):
                date = (first_day + dt.timedelta(days=i)).isoformat()
                diff = d.difficulty_sum / d.blocks if d.blocks else 0.0
                fh.write(
                    f"{date},{d.phase},{d.blocks},{d.subsidy},{d.fees},{d.outflow},"
                    f"{d.to_exchange},{d.to_miner},{d.reserve},{diff:.6e},"
                    f"{self.hash_rate(d.difficulty_sum):.6e},{d.price:.2f},"
                    f"{self.production_cost(i):.2f}\n"
                )
        return len(self.days)


def write_prices(path: str | Path, first_day: dt.date, prices: Sequence[float]) -> None:
    """``prices.csv``: day, close_usd (the price table hodlflow's metrics read)."""
    with open(path, "w", encoding="ascii", newline="") as fh:
        fh.write("day,close_usd\n")
        for i, p in enumerate(prices):
            fh.write(f"{(first_day + dt.timedelta(days=i)).isoformat()},{p:.2f}\n")


__all__ = [
    "CLASSES",
    "COINJOIN",
    "EXCHANGE",
    "MINER",
    "OTHER",
    "STRONG",
    "TRUTH_FILES",
    "TYPE_CLASS",
    "WEAK",
    "AddressTruth",
    "BalanceTruth",
    "FlowTruth",
    "MinerTruth",
    "net_weak_to_strong",
    "truth_columns",
    "write_prices",
]

"""Simulator scenarios: YAML files in ``conf/scenarios/`` read into typed, validated dataclasses.

A scenario says how long the chain runs (``phases``: days, blocks per day, how busy, where the
price goes), what mining costs (``cost_model``), how the chain looks (``chain``: start height,
difficulty, stale blocks, blk file size) and who acts on it (``agents``: mining pools and solo
miners, exchanges, long-term holders, short-term traders, forced sellers, late buyers,
coinjoin users, payment users and merchants). The dataclasses below are the reference: every
key is optional and takes the default shown, except the fields without one (``price.start_usd``;
``phases[*].name``, ``days``, ``end_usd``; ``agents.pools[*].name``, ``tag``,
``hashrate_share``; ``agents.exchanges[*].name``, ``market_share``). Leaving ``agents`` out
gives one pool and one exchange. Unknown keys are errors, so a typo never silently falls back
to a default.

Errors name the file and the path to the bad value::

    conf/scenarios/x.yaml: agents.pools[2].payout_every_days: must be a positive integer, got -1

Numbers: integers are YAML integers (``880_000`` works); floats accept integers and, because
YAML 1.1 reads ``1.1e14`` as text, numeric strings too.

``scale`` multiplies the number of agents (pool members, holders, traders, forced sellers,
late buyers, coinjoin users, payment users, merchants) and so the transactions. The story's
money does not grow with it: ``strong_holders.daily_usd`` is shared by all holders, pool
members share their pool's hash rate, and ``trade_usd`` and the ``position_usd`` of forced
sellers and late buyers (given at scale 1) are divided by the scale, so the BTC that moves between classes stays about the same at any scale. Payment and
coinjoin amounts are per payment and stay as given.

>>> s = parse_scenario({"phases": [{"name": "p", "days": 2, "end_usd": 60000}],
...                     "price": {"start_usd": 65000}}, "inline")
>>> s.days, s.phases[0].blocks_per_day
(2, 144)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hodlflow.config import CONF_DIR
from hodlflow.sim.fastchain import SPENDABLE_KINDS

SCENARIO_DIR = CONF_DIR / "scenarios"

# The script kinds a scenario may give a wallet: the ones the chain writer can also spend.
SCRIPT_KINDS = SPENDABLE_KINDS


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid; the message names the file and key."""


# ---------------------------------------------------------------------------------------------
# The typed scenario.


@dataclass(frozen=True)
class ChainSpec:
    start_height: int = 880_000  # height of the first block (subsidy 3.125 BTC there)
    start_date: dt.date = dt.date(2024, 1, 1)  # UTC day of the first block
    difficulty: float = 1.1e14  # difficulty of the first block
    retarget: bool = True  # Bitcoin's 2016-block difficulty adjustment from the block times
    block_version: int = 0x20000000
    stale_blocks: int = 2  # blocks off the best chain, stored in the blk files too
    blk_file_mb: float = 16.0  # a new blk file starts past this size (Bitcoin Core: 128)
    out_of_order: float = 0.02  # share of blocks stored after their child (parallel download)


@dataclass(frozen=True)
class CostModel:
    efficiency_j_per_th: float = 25.0  # fleet efficiency
    power_usd_per_kwh: float = 0.05
    pue: float = 1.1  # power usage effectiveness: facility power / miner power


@dataclass(frozen=True)
class PriceSpec:
    start_usd: float  # close of the day before the first day
    daily_volatility: float = 0.02  # standard deviation of the daily log return around the path


@dataclass(frozen=True)
class Phase:
    name: str
    days: int
    end_usd: float  # the price path goes log-linearly from the previous phase's end to this
    blocks_per_day: int = 144
    activity: float = 1.0  # how often agents act (1 = the story's busy days)
    fee_rate_sat_vb: tuple[float, float] = (2.0, 20.0)  # daily fee rate drawn from this range


@dataclass(frozen=True)
class PoolSpec:
    name: str
    tag: str  # coinbase tag, e.g. "/AlphaPool/"
    hashrate_share: float  # relative weight among pools and solo miners
    members: int = 20  # individual miners paid by the pool (1-hop), at scale 1
    payout_every_days: int = 1
    fee: float = 0.02  # share of the pool's coinbase income it keeps
    min_payout_btc: float = 0.005
    coinbase_script: str = "p2wpkh"
    coinbase_addresses: int = 1  # reused coinbase addresses, used in turn
    wallet_script: str = "p2wpkh"  # the pool's own wallet (change of payouts, kept fees)
    sell_fraction: float = 0.5  # share of its kept fees the pool sells at each payout
    member_scripts: dict[str, float] = field(
        default_factory=lambda: {"p2wpkh": 4.0, "p2pkh": 1.0, "p2sh_p2wpkh": 2.0, "p2tr": 1.0}
    )


@dataclass(frozen=True)
class SoloMinersSpec:
    count: int = 0
    hashrate_share: float = 0.0  # relative weight, split evenly among them
    tag: str = ""  # empty: no tag, the coinbase carries only the height and an extranonce
    scripts: dict[str, float] = field(
        default_factory=lambda: {"p2pk": 1.0, "p2pkh": 1.0, "p2wpkh": 2.0}
    )


@dataclass(frozen=True)
class MinerHabits:
    """How pool members and solo miners sell. Each sale covers the electricity spent since the
    last one (hash share × the day's production cost, in USD, sold at the day's price) plus a
    share of what is left of the income; under the production cost a further share of the
    reserve goes, scaled by how far under."""

    sell_every_days: float = 7.0
    profit_sell_fraction: float = 0.3
    stress_reserve_sell: float = 0.6  # × (1 − price/cost) of the reserve per sale under cost
    otc_share: float = 0.1  # share of sales paid straight to a large long-term holder
    address_reuse: float = 0.9  # chance a payout goes to the member's usual address


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    market_share: float  # relative weight: which exchange customers use
    deposit_script: str = "p2wpkh"
    hot_script: str = "p2wpkh"
    cold_script: str = "p2wsh"
    hot_addresses: int = 2
    cold_addresses: int = 1
    hot_fraction: float = 0.2  # target share of the reserve in the hot wallet
    sweep_every_days: int = 1
    withdrawal_batch: int = 1  # outputs per withdrawal transaction (1 = no batching)
    max_sweep_inputs: int = 100
    change_to_hot_address: bool = True  # change back to the hot address (reuse) or fresh


@dataclass(frozen=True)
class InterExchangeSpec:
    daily_prob: float = 0.2  # chance per exchange per day of a transfer to another exchange
    fraction: float = 0.02  # of its hot wallet


@dataclass(frozen=True)
class StrongHoldersSpec:
    count: int = 0
    daily_usd: float = 0.0  # everyone's buying together on a normal day
    concentration: float = 1.5  # sigma of the log-normal weights: larger = a few whales
    buy_every_days: float = 14.0
    dip_multiplier: float = 3.0  # buying × this while the price is under the production cost
    expensive_ratio: float = 1.6  # over this price/cost ratio they buy less ...
    expensive_multiplier: float = 0.5  # ... this much
    spend_prob_per_year: float = 0.1  # chance per year of moving coins (consolidate or sell)
    address_reuse: float = 0.3
    # The largest 5% of holders by budget (the whales, who also buy over the counter): the
    # chance a purchase goes to their first (cold-storage) address; None = address_reuse.
    whale_address_reuse: float | None = None
    # Profit-taking into rallies: at or above this price / the holder's average cost (USD paid
    # for what it withdrew from exchanges and bought over the counter) it sells
    # take_profit_fraction of its balance a turn, more the higher the multiple (× multiple /
    # take_profit_above, at most × 3 and at most 0.6 of the balance a turn), and buys nothing
    # while it does. None = off: only the rare small sales of spend_prob_per_year.
    take_profit_above: float | None = None
    take_profit_fraction: float = 0.1
    scripts: dict[str, float] = field(
        default_factory=lambda: {"p2wpkh": 3.0, "p2tr": 2.0, "p2wsh": 1.0, "p2pkh": 0.5}
    )


@dataclass(frozen=True)
class WeakTradersSpec:
    count: int = 0
    trade_usd: float = 5_000.0  # median position (log-normal, sigma 1)
    entry_every_days: float = 10.0  # mean wait between positions
    hold_days: tuple[int, int] = (2, 30)
    panic_hold_factor: float = 0.3  # hold time × this under the production cost
    fear_entry_factor: float = 0.5  # entry rate × this under the production cost
    otc_share: float = 0.0  # share of sales paid straight to a large long-term holder (OTC)
    address_reuse: float = 0.2
    scripts: dict[str, float] = field(
        default_factory=lambda: {"p2wpkh": 4.0, "p2sh_p2wpkh": 1.0, "p2pkh": 1.0, "p2tr": 1.0}
    )


@dataclass(frozen=True)
class ForcedSellersSpec:
    count: int = 0
    position_usd: float = 20_000.0  # median of what each one buys in total (log-normal)
    buy_above_ratio: float = 1.2  # they buy while price/cost is over this (late, on leverage)
    buy_every_days: float = 20.0
    sell_below_ratio: float = 1.0  # under this price/cost ratio they must sell everything
    sell_daily_prob: float = 0.2
    otc_share: float = 0.0  # share of the forced sales paid straight to a large long-term holder
    scripts: dict[str, float] = field(
        default_factory=lambda: {"p2wpkh": 3.0, "p2sh_p2wpkh": 1.0, "p2pkh": 1.0}
    )


@dataclass(frozen=True)
class LateBuyersSpec:
    """Retail buyers who come in late in a rally and leave at a loss (or flip at a profit)."""

    count: int = 0
    position_usd: float = 10_000.0  # median position (log-normal, sigma 1), at scale 1
    momentum_days: int = 30  # the rally they see: price today / price this many days ago ...
    enter_above_momentum: float = 1.2  # ... at least this, and they buy
    watch_every_days: float = 3.0  # mean wait between looks at the price while out
    purchases: tuple[int, int] = (1, 3)  # a position is bought in this many purchases ...
    purchase_gap_days: tuple[int, int] = (2, 6)  # ... this many days apart
    stop_loss: float = 0.15  # sell everything when the price is this share under their cost
    max_hold_days: int = 120  # or when they have held this long
    flip_share: float = 0.2  # flippers buy once and sell once in profit after flip_hold_days
    flip_hold_days: tuple[int, int] = (2, 10)
    scripts: dict[str, float] = field(
        default_factory=lambda: {"p2wpkh": 5.0, "p2tr": 1.0, "p2sh_p2wpkh": 1.0, "p2pkh": 1.0}
    )


@dataclass(frozen=True)
class CoinjoinSpec:
    users: int = 0
    every_days: float = 1.0
    participants: tuple[int, int] = (5, 20)
    denominations_btc: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1)
    coordinator_fee: float = 0.003  # share of each denomination paid to the coordinator
    buy_usd: float = 3_000.0  # median top-up bought on an exchange
    postmix_spend_every_days: float = 10.0
    scripts: dict[str, float] = field(default_factory=lambda: {"p2wpkh": 3.0, "p2tr": 1.0})


@dataclass(frozen=True)
class PaymentsSpec:
    users: int = 0
    merchants: int = 0
    payments_per_user_day: float = 0.1
    payment_usd: float = 150.0  # median (log-normal, sigma 1)
    topup_usd: float = 1_000.0  # what a user buys when the wallet runs low
    p2p_share: float = 0.2  # share of payments to another user instead of a merchant
    op_return_share: float = 0.02  # payments carrying an OP_RETURN output
    stamp_share: float = 0.002  # payments also leaving 1-of-3 bare-multisig dust (own, unspent)
    witness_v2_share: float = 0.001  # payments also leaving dust at an own future-version address
    address_reuse: float = 0.1  # change back to the spent address instead of a fresh one
    merchant_address_reuse: float = 0.05  # payment to the merchant's static address
    merchant_sell_every_days: float = 7.0
    user_scripts: dict[str, float] = field(
        default_factory=lambda: {
            "p2wpkh": 5.0,
            "p2pkh": 2.0,
            "p2sh_p2wpkh": 2.0,
            "p2tr": 1.0,
            "p2wsh": 0.3,
            "p2sh_multisig": 0.3,
        }
    )
    merchant_scripts: dict[str, float] = field(
        default_factory=lambda: {"p2wpkh": 3.0, "p2sh_p2wpkh": 1.0, "p2tr": 1.0}
    )


@dataclass(frozen=True)
class AgentsSpec:
    pools: tuple[PoolSpec, ...]
    exchanges: tuple[ExchangeSpec, ...]
    solo_miners: SoloMinersSpec = SoloMinersSpec()
    miners: MinerHabits = MinerHabits()
    inter_exchange: InterExchangeSpec = InterExchangeSpec()
    strong_holders: StrongHoldersSpec = StrongHoldersSpec()
    weak_traders: WeakTradersSpec = WeakTradersSpec()
    forced_sellers: ForcedSellersSpec = ForcedSellersSpec()
    late_buyers: LateBuyersSpec = LateBuyersSpec()
    coinjoin: CoinjoinSpec = CoinjoinSpec()
    payments: PaymentsSpec = PaymentsSpec()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    scale: float
    chain: ChainSpec
    cost_model: CostModel
    price: PriceSpec
    phases: tuple[Phase, ...]
    agents: AgentsSpec
    source: str = "<inline>"

    @property
    def days(self) -> int:
        return sum(p.days for p in self.phases)

    @property
    def first_day(self) -> dt.date:
        return self.chain.start_date

    def phase_of_day(self) -> list[Phase]:
        """The phase of each day, day 0 first."""
        return [p for p in self.phases for _ in range(p.days)]

    def with_overrides(self, seed: int | None = None, scale: float | None = None) -> Scenario:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ScenarioError(f"seed must be a non-negative integer, got {seed!r}")
        if scale is not None and (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not math.isfinite(scale)
            or scale <= 0
        ):
            raise ScenarioError(f"scale must be a positive number, got {scale!r}")
        return dataclasses.replace(
            self,
            seed=self.seed if seed is None else seed,
            scale=self.scale if scale is None else float(scale),
        )


# ---------------------------------------------------------------------------------------------
# Reading and validation.


class _Bad(Exception):
    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


_MISSING = object()


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict | list):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value)


class _Node:
    """A mapping being read: remembers which keys were used, so leftovers are reported."""

    def __init__(self, data: Any, path: str):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _Bad(path or "(top level)", f"must be a mapping, got {_show(data)}")
        for key in data:
            if not isinstance(key, str):
                raise _Bad(path or "(top level)", f"keys must be text, got {_show(key)}")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key, _MISSING)

    def read(self, key: str, conv: Callable[[Any, str], Any], default: Any = _MISSING) -> Any:
        value = self.raw(key)
        if value is _MISSING:
            if default is _MISSING:
                raise _Bad(self.sub(key), "is required")
            return default
        return conv(value, self.sub(key))

    def done(self, known: list[str] | tuple[str, ...] | None = None) -> None:
        known = sorted(known if known is not None else self.used)
        for key in self.data:
            if key not in self.used and key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise _Bad(self.sub(key), f"unknown key{hint}; known keys: {', '.join(known)}")


def _int(lo: int | None = None, hi: int | None = None, what: str = "an integer"):
    def conv(v: Any, path: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(path, f"must be {what}, got {_show(v)}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise _Bad(path, f"must be {what}, got {v}")
        return v

    return conv


_POS_INT = _int(1, what="a positive integer")
_NONNEG_INT = _int(0, what="a non-negative integer")


def _float(lo: float | None = None, hi: float | None = None, what: str = "a number", open_lo=False):
    def conv(v: Any, path: str) -> float:
        if isinstance(v, str):
            try:
                v = float(v.replace("_", ""))
            except ValueError:
                raise _Bad(path, f"must be {what}, got {_show(v)}") from None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _Bad(path, f"must be {what}, got {_show(v)}")
        v = float(v)
        if lo is not None and (v < lo or (open_lo and v == lo)):
            raise _Bad(path, f"must be {what}, got {v:g}")
        if hi is not None and v > hi:
            raise _Bad(path, f"must be {what}, got {v:g}")
        return v

    return conv


_POS = _float(0.0, open_lo=True, what="a positive number")
_NONNEG = _float(0.0, what="a non-negative number")
_FRACTION = _float(0.0, 1.0, what="a number from 0 to 1")


def _bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise _Bad(path, f"must be true or false, got {_show(v)}")
    return v


def _text(max_len: int = 200, allow_empty: bool = False):
    def conv(v: Any, path: str) -> str:
        if not isinstance(v, str) or (not v and not allow_empty):
            raise _Bad(path, f"must be {'' if allow_empty else 'non-empty '}text, got {_show(v)}")
        if len(v) > max_len:
            raise _Bad(path, f"must be at most {max_len} characters, got {len(v)}")
        return v

    return conv


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\- ]*")


def _name(v: Any, path: str) -> str:
    """A name that goes into the truth files: letters, digits, space, ``_ . -``."""
    v = _text(40)(v, path)
    if not _NAME.fullmatch(v):
        raise _Bad(path, f"must be letters, digits, spaces, '_', '.' or '-', got {_show(v)}")
    return v


def _tag(v: Any, path: str) -> str:
    v = _text(60, allow_empty=True)(v, path)
    if any(not 0x20 <= ord(c) <= 0x7E for c in v):
        raise _Bad(path, f"must be printable ASCII (coinbase tag), got {_show(v)}")
    return v


def _date(v: Any, path: str) -> dt.date:
    if isinstance(v, dt.datetime):
        v = v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    raise _Bad(path, f"must be a date like 2024-01-31, got {_show(v)}")


def _script(v: Any, path: str) -> str:
    if v not in SCRIPT_KINDS:
        raise _Bad(path, f"must be one of {', '.join(SCRIPT_KINDS)}, got {_show(v)}")
    return v


def _weights(v: Any, path: str) -> dict[str, float]:
    """{script kind: relative weight}, at least one weight > 0."""
    node = _Node(v, path)
    out = {}
    for key in node.data:
        _script(key, node.sub(key))
        out[key] = node.read(key, _NONNEG)
    if not any(out.values()):
        raise _Bad(path, "needs at least one script kind with a weight > 0")
    return out


def _pair(conv, what: str, ints: bool = False):
    def read(v: Any, path: str) -> tuple:
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise _Bad(path, f"must be a pair [low, high] of {what}, got {_show(v)}")
        lo, hi = conv(v[0], f"{path}[0]"), conv(v[1], f"{path}[1]")
        if lo > hi:
            raise _Bad(path, f"low must not exceed high, got [{lo}, {hi}]")
        return (lo, hi)

    return read


def _list(item: Callable[[Any, str], Any], min_len: int = 0):
    def read(v: Any, path: str) -> tuple:
        if not isinstance(v, list):
            raise _Bad(path, f"must be a list, got {_show(v)}")
        if len(v) < min_len:
            raise _Bad(path, f"must have at least {min_len} item(s), got {len(v)}")
        return tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))

    return read


def _optional(conv: Callable[[Any, str], Any]):
    """``conv``, or None for a YAML null (the setting is off)."""

    def read(v: Any, path: str) -> Any:
        return None if v is None else conv(v, path)

    return read


def _dataclass_reader(cls, convs: dict[str, Callable[[Any, str], Any]]):
    """Read a mapping into ``cls``: each field through its converter, missing fields from the
    dataclass defaults (required when it has none), unknown keys rejected."""
    fields = {f.name: f for f in dataclasses.fields(cls)}

    def read(v: Any, path: str):
        node = _Node(v, path)
        kwargs = {}
        for name, conv in convs.items():
            f = fields[name]
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = _MISSING
            kwargs[name] = node.read(name, conv, default)
        node.done(list(convs))
        return cls(**kwargs)

    return read


_read_chain = _dataclass_reader(
    ChainSpec,
    {
        "start_height": _int(0, 209_999 * 32, "a height from 0 to 6719968"),
        "start_date": _date,
        "difficulty": _float(1.0, 1e20, "a difficulty from 1 to 1e20"),
        "retarget": _bool,
        "block_version": _int(0, 0x7FFFFFFF, "a positive 32-bit integer"),
        "stale_blocks": _int(0, 1000, "an integer from 0 to 1000"),
        "blk_file_mb": _float(0.01, 4096, "a size in MB from 0.01 to 4096"),
        "out_of_order": _FRACTION,
    },
)

_read_cost = _dataclass_reader(
    CostModel,
    {
        "efficiency_j_per_th": _POS,
        "power_usd_per_kwh": _POS,
        "pue": _float(1.0, 5.0, "a number from 1 to 5"),
    },
)

_read_price = _dataclass_reader(
    PriceSpec,
    {"start_usd": _POS, "daily_volatility": _float(0.0, 0.5, "a number from 0 to 0.5")},
)

_read_phase = _dataclass_reader(
    Phase,
    {
        "name": _name,
        "days": _POS_INT,
        "end_usd": _POS,
        "blocks_per_day": _int(1, 1000, "an integer from 1 to 1000"),
        "activity": _float(0.0, 100.0, "a number from 0 to 100"),
        "fee_rate_sat_vb": _pair(_float(1.0, 10_000.0, "a rate from 1 to 10000"), "sat/vB"),
    },
)

_read_pool = _dataclass_reader(
    PoolSpec,
    {
        "name": _name,
        "tag": _tag,
        "hashrate_share": _POS,
        "members": _POS_INT,
        "payout_every_days": _POS_INT,
        "fee": _FRACTION,
        "min_payout_btc": _NONNEG,
        "coinbase_script": _script,
        "coinbase_addresses": _int(1, 100, "an integer from 1 to 100"),
        "wallet_script": _script,
        "sell_fraction": _FRACTION,
        "member_scripts": _weights,
    },
)

_read_solo = _dataclass_reader(
    SoloMinersSpec,
    {"count": _NONNEG_INT, "hashrate_share": _NONNEG, "tag": _tag, "scripts": _weights},
)

_read_miners = _dataclass_reader(
    MinerHabits,
    {
        "sell_every_days": _POS,
        "profit_sell_fraction": _FRACTION,
        "stress_reserve_sell": _FRACTION,
        "otc_share": _FRACTION,
        "address_reuse": _FRACTION,
    },
)

_read_exchange = _dataclass_reader(
    ExchangeSpec,
    {
        "name": _name,
        "market_share": _POS,
        "deposit_script": _script,
        "hot_script": _script,
        "cold_script": _script,
        "hot_addresses": _int(1, 100, "an integer from 1 to 100"),
        "cold_addresses": _int(1, 100, "an integer from 1 to 100"),
        "hot_fraction": _float(0.01, 1.0, "a number from 0.01 to 1"),
        "sweep_every_days": _POS_INT,
        "withdrawal_batch": _int(1, 2000, "an integer from 1 to 2000"),
        "max_sweep_inputs": _int(1, 2000, "an integer from 1 to 2000"),
        "change_to_hot_address": _bool,
    },
)

_read_inter = _dataclass_reader(InterExchangeSpec, {"daily_prob": _FRACTION, "fraction": _FRACTION})

_read_strong = _dataclass_reader(
    StrongHoldersSpec,
    {
        "count": _NONNEG_INT,
        "daily_usd": _NONNEG,
        "concentration": _float(0.0, 5.0, "a number from 0 to 5"),
        "buy_every_days": _POS,
        "dip_multiplier": _NONNEG,
        "expensive_ratio": _POS,
        "expensive_multiplier": _NONNEG,
        "spend_prob_per_year": _FRACTION,
        "address_reuse": _FRACTION,
        "whale_address_reuse": _FRACTION,
        "take_profit_above": _optional(_float(1.0, 100.0, "a number over 1 up to 100", True)),
        "take_profit_fraction": _float(0.0, 0.6, "a number over 0 up to 0.6", open_lo=True),
        "scripts": _weights,
    },
)

_read_weak = _dataclass_reader(
    WeakTradersSpec,
    {
        "count": _NONNEG_INT,
        "trade_usd": _POS,
        "entry_every_days": _POS,
        "hold_days": _pair(_POS_INT, "positive integers (days)"),
        "panic_hold_factor": _POS,
        "fear_entry_factor": _NONNEG,
        "otc_share": _FRACTION,
        "address_reuse": _FRACTION,
        "scripts": _weights,
    },
)

_read_forced = _dataclass_reader(
    ForcedSellersSpec,
    {
        "count": _NONNEG_INT,
        "position_usd": _POS,
        "buy_above_ratio": _POS,
        "buy_every_days": _POS,
        "sell_below_ratio": _POS,
        "sell_daily_prob": _FRACTION,
        "otc_share": _FRACTION,
        "scripts": _weights,
    },
)


_read_late = _dataclass_reader(
    LateBuyersSpec,
    {
        "count": _NONNEG_INT,
        "position_usd": _POS,
        "momentum_days": _int(1, 365, "an integer from 1 to 365"),
        "enter_above_momentum": _float(1.0, 10.0, "a number over 1 up to 10", open_lo=True),
        "watch_every_days": _POS,
        "purchases": _pair(_int(1, 10, "an integer from 1 to 10"), "integers from 1 to 10"),
        "purchase_gap_days": _pair(_POS_INT, "positive integers (days)"),
        "stop_loss": _float(0.0, 0.95, "a number from 0 to 0.95"),
        "max_hold_days": _POS_INT,
        "flip_share": _FRACTION,
        "flip_hold_days": _pair(_POS_INT, "positive integers (days)"),
        "scripts": _weights,
    },
)


def _participants(v: Any, path: str) -> tuple[int, int]:
    lo, hi = _pair(_int(2, 500, "an integer from 2 to 500"), "integers from 2 to 500")(v, path)
    return lo, hi


_read_coinjoin = _dataclass_reader(
    CoinjoinSpec,
    {
        "users": _NONNEG_INT,
        "every_days": _POS,
        "participants": _participants,
        "denominations_btc": _list(_float(0.0001, 100.0, "a BTC amount from 0.0001 to 100"), 1),
        "coordinator_fee": _float(0.0, 0.1, "a number from 0 to 0.1"),
        "buy_usd": _POS,
        "postmix_spend_every_days": _POS,
        "scripts": _weights,
    },
)

_read_payments = _dataclass_reader(
    PaymentsSpec,
    {
        "users": _NONNEG_INT,
        "merchants": _NONNEG_INT,
        "payments_per_user_day": _NONNEG,
        "payment_usd": _POS,
        "topup_usd": _POS,
        "p2p_share": _FRACTION,
        "op_return_share": _FRACTION,
        "stamp_share": _FRACTION,
        "witness_v2_share": _FRACTION,
        "address_reuse": _FRACTION,
        "merchant_address_reuse": _FRACTION,
        "merchant_sell_every_days": _POS,
        "user_scripts": _weights,
        "merchant_scripts": _weights,
    },
)


def _unique_names(items: tuple, path: str, attr: str = "name") -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = getattr(item, attr)
        if name in seen:
            raise _Bad(f"{path}[{i}].{attr}", f"duplicates {path}[{seen[name]}]: {name!r}")
        seen[name] = i


_read_agents = _dataclass_reader(
    AgentsSpec,
    {
        "pools": _list(_read_pool, 1),
        "exchanges": _list(_read_exchange, 1),
        "solo_miners": _read_solo,
        "miners": _read_miners,
        "inter_exchange": _read_inter,
        "strong_holders": _read_strong,
        "weak_traders": _read_weak,
        "forced_sellers": _read_forced,
        "late_buyers": _read_late,
        "coinjoin": _read_coinjoin,
        "payments": _read_payments,
    },
)

_DEFAULT_AGENTS = {
    "pools": [{"name": "pool", "tag": "/hodlflow-pool/", "hashrate_share": 1.0}],
    "exchanges": [{"name": "exchange", "market_share": 1.0}],
}


def parse_scenario(data: Any, source: str = "<inline>") -> Scenario:
    """Validate a scenario given as parsed YAML; raise :class:`ScenarioError` naming ``source``
    and the path of the first bad value."""
    try:
        return _parse(data, source)
    except _Bad as bad:
        raise ScenarioError(f"{source}: {bad.path}: {bad.problem}") from None


def _parse(data: Any, source: str) -> Scenario:
    top = _Node(data, "")
    name = top.read("name", _text(80), Path(source).stem if source != "<inline>" else "scenario")
    description = top.read("description", _text(10_000, allow_empty=True), "")
    seed = top.read("seed", _NONNEG_INT, 0)
    scale = top.read("scale", _float(0.0, 10_000.0, "a positive number up to 10000", True), 1.0)
    chain = top.read("chain", _read_chain, ChainSpec())
    cost = top.read("cost_model", _read_cost, CostModel())
    price = top.read("price", _read_price)
    phases = top.read("phases", _list(_read_phase, 1))
    agents = top.read("agents", _read_agents, _MISSING if "agents" in top.data else None)
    if agents is None:
        agents = _read_agents(_DEFAULT_AGENTS, "agents")
    top.done()
    _unique_names(phases, "phases")
    _unique_names(agents.pools, "agents.pools")
    _unique_names(agents.pools, "agents.pools", "tag")
    _unique_names(agents.exchanges, "agents.exchanges")
    if agents.solo_miners.count and agents.solo_miners.hashrate_share <= 0:
        raise _Bad("agents.solo_miners.hashrate_share", "must be > 0 when count > 0")
    if agents.solo_miners.hashrate_share > 0 and not agents.solo_miners.count:
        raise _Bad("agents.solo_miners.count", "must be > 0 when hashrate_share > 0")
    if agents.strong_holders.daily_usd > 0 and not agents.strong_holders.count:
        raise _Bad("agents.strong_holders.count", "must be > 0 when daily_usd > 0")
    cj = agents.coinjoin
    if cj.users and cj.users < cj.participants[0]:
        raise _Bad(
            "agents.coinjoin.users",
            f"must be at least participants[0] = {cj.participants[0]} (or 0), got {cj.users}",
        )
    pay = agents.payments
    if pay.users and not pay.merchants and pay.p2p_share < 1.0:
        raise _Bad("agents.payments.merchants", "must be > 0 when users pay merchants")
    if chain.start_height + sum(p.days * p.blocks_per_day for p in phases) > 209_999 * 32:
        raise _Bad("phases", "the chain would run past the last block with a subsidy")
    return Scenario(
        name=name,
        description=description,
        seed=seed,
        scale=scale,
        chain=chain,
        cost_model=cost,
        price=price,
        phases=phases,
        agents=agents,
        source=source,
    )


def resolve_scenario_path(name_or_path: str) -> Path:
    """A path as given, or the name of a file in ``conf/scenarios/`` (``capitulation``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for candidate in (SCENARIO_DIR / name_or_path, SCENARIO_DIR / f"{name_or_path}.yaml"):
        if candidate.exists():
            return candidate
    known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    raise ScenarioError(
        f"{name_or_path}: no such scenario file (scenarios in {SCENARIO_DIR}: {', '.join(known)})"
    )


def load_scenario(name_or_path: str) -> Scenario:
    """Read and validate a scenario file (a path, or a name in ``conf/scenarios/``).

    Example::

        s = load_scenario("capitulation")
        s.days, s.agents.pools[0].tag
    """
    path = resolve_scenario_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(data, str(path))


__all__ = [
    "SCENARIO_DIR",
    "SCRIPT_KINDS",
    "AgentsSpec",
    "ChainSpec",
    "CoinjoinSpec",
    "CostModel",
    "ExchangeSpec",
    "ForcedSellersSpec",
    "InterExchangeSpec",
    "LateBuyersSpec",
    "MinerHabits",
    "PaymentsSpec",
    "Phase",
    "PoolSpec",
    "PriceSpec",
    "Scenario",
    "ScenarioError",
    "SoloMinersSpec",
    "StrongHoldersSpec",
    "WeakTradersSpec",
    "load_scenario",
    "parse_scenario",
    "resolve_scenario_path",
]

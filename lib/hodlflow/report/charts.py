"""What the report draws: one :class:`ChartSpec` per chart, each series naming the gold table and
column it comes from. The HTML page and the PNGs are both drawn from these specs and from the
same collected series (``series.ReportData``), so they show the same thing."""

from __future__ import annotations

from dataclasses import dataclass

from hodlflow.metrics.supply import BANDS


@dataclass(frozen=True)
class SeriesSpec:
    key: str  # column of the report frame (series.py)
    label: str  # legend text
    table: str  # gold table it is read from
    column: str  # column of that table
    color: str
    axis: str = "left"  # or "right" (the chart's second y axis)


@dataclass(frozen=True)
class ChartSpec:
    id: str  # also the PNG's file name
    title: str
    y_label: str
    caption: str
    series: tuple[SeriesSpec, ...]
    y2_label: str | None = None
    stacked: bool = False  # series stacked on each other (HODL waves): lines at the running sum
    # A daily flow: by day, each left-axis series is drawn faint with its trailing 7-day mean
    # (series.trailing_mean) over it, and the days the price closed below the production cost
    # are shaded (by week: the weeks most of whose days were).
    flow: bool = False
    percent: bool = False  # values are shares 0..1, ticks show percent
    # Marks the hash-ribbon crossings (ReportData.markers: the days the 30-day mean of the hash
    # rate fell under the 60-day one, and crossed back) with a vertical line each.
    markers: bool = False


# Young bands warm, old bands cool: the usual reading of HODL waves.
_BAND_COLORS = ("#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b",
                "#a6d96a", "#66bd63", "#1a9850", "#3288bd", "#5e4fa2", "#2d004b")  # fmt: skip

CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec(
        id="price_cost",
        title="Price vs miners' production cost",
        y_label="USD per BTC",
        caption="Daily close price (market.prices.close_usd) against the cost of producing one "
        "BTC (metrics.miner_pressure.production_cost_usd_per_btc: hash rate × fleet efficiency × "
        "power price ÷ miner revenue, settings metrics.cost). Below the cost line miners mine at "
        "a loss.",
        series=(
            SeriesSpec("price_usd", "price (close)", "market.prices", "close_usd", "#1f77b4"),
            SeriesSpec(
                "production_cost_usd_per_btc",
                "production cost",
                "metrics.miner_pressure",
                "production_cost_usd_per_btc",
                "#d62728",
            ),
        ),  # fmt: skip
    ),
    ChartSpec(
        id="miner_outflow",
        flow=True,
        title="Miner outflow and Miners' Position Index",
        y_label="BTC per day",
        y2_label="MPI (ratio, z-score)",
        caption="Coins miner entities paid out (metrics.miner_pressure.miner_outflow_btc), the "
        "part received by exchanges (miner_to_exchange_btc), and on the right axis the Miners' "
        "Position Index: mpi_ratio (outflow in USD / its 365-day mean; needs 365 days) and mpi "
        "(its 365-day z-score; needs 729 days). Gaps: days without enough history, or past the "
        "entities step's last day.",
        series=(
            SeriesSpec(
                "miner_outflow_btc",
                "miner outflow",
                "metrics.miner_pressure",
                "miner_outflow_btc",
                "#ff7f0e",
            ),
            SeriesSpec(
                "miner_to_exchange_btc",
                "miner → exchange",
                "metrics.miner_pressure",
                "miner_to_exchange_btc",
                "#8c564b",
            ),
            SeriesSpec(
                "mpi_ratio",
                "MPI ratio",
                "metrics.miner_pressure",
                "mpi_ratio",
                "#9467bd",
                axis="right",
            ),
            SeriesSpec(
                "mpi", "MPI z-score", "metrics.miner_pressure", "mpi", "#7f7f7f", axis="right"
            ),
        ),  # fmt: skip
    ),
    ChartSpec(
        id="hash_ribbon",
        markers=True,
        title="Hash ribbon",
        y_label="TH/s",
        caption="The hash rate implied by the day's blocks (metrics.miner_pressure.hash_rate_ths) "
        "and its 30- and 60-day means (hash_rate_sma30_ths, hash_rate_sma60_ths). A vertical "
        "line marks each crossing (hash_ribbon_signal): capitulation on the day the 30-day mean "
        "falls under the 60-day one (miners switching off), recovery on the day it crosses back "
        "(the classic buy signal). Gaps: the means' first 29 and 59 days.",
        series=(
            SeriesSpec(
                "hash_rate_ths", "hash rate", "metrics.miner_pressure", "hash_rate_ths", "#bbbbbb"
            ),
            SeriesSpec(
                "hash_rate_sma30_ths",
                "30-day mean",
                "metrics.miner_pressure",
                "hash_rate_sma30_ths",
                "#ff7f0e",
            ),
            SeriesSpec(
                "hash_rate_sma60_ths",
                "60-day mean",
                "metrics.miner_pressure",
                "hash_rate_sma60_ths",
                "#1f77b4",
            ),
        ),  # fmt: skip
    ),
    ChartSpec(
        id="migration",
        flow=True,
        title="Weak → strong hands",
        y_label="BTC per day",
        caption="Net weak → strong migration (metrics.holder_migration.net_weak_to_strong_btc:"
        " half of what strong hands took in from every other class less what they paid out, "
        "plus half of what weak hands paid out less what they took in; a direct weak → strong "
        "payment counts in full, one through an exchange half on each side), weak hands "
        "selling to exchanges (weak_to_exchange_btc) and "
        "strong hands buying from them (exchange_to_strong_btc). Holder classes are decided per "
        "day without look-ahead. The light green line is the revised net "
        "(metrics.holder_migration_revised.net_weak_to_strong_btc): each day's buyers and "
        "sellers classed again by what they did in the following entities.holder.revision_days "
        "(155) days, so a new buyer who kept its coins counts as strong and one who sold them "
        "as weak; its last 155 days are revised by every run. Gaps: days past the entities "
        "step's last day.",
        series=(
            SeriesSpec(
                "net_weak_to_strong_btc",
                "net weak → strong",
                "metrics.holder_migration",
                "net_weak_to_strong_btc",
                "#2ca02c",
            ),
            SeriesSpec(
                "revised_net_weak_to_strong_btc",
                "net, revised",
                "metrics.holder_migration_revised",
                "net_weak_to_strong_btc",
                "#98df8a",
            ),
            SeriesSpec(
                "weak_to_exchange_btc",
                "weak → exchange",
                "metrics.holder_migration",
                "weak_to_exchange_btc",
                "#d62728",
            ),
            SeriesSpec(
                "exchange_to_strong_btc",
                "exchange → strong",
                "metrics.holder_migration",
                "exchange_to_strong_btc",
                "#1f77b4",
            ),
        ),  # fmt: skip
    ),
    ChartSpec(
        id="holder_balances",
        title="What strong and weak hands hold",
        y_label="BTC",
        caption="Coins held at each day's end by the entities whose holder class that day is "
        "strong (metrics.holder_migration.strong_balance_btc) and weak (weak_balance_btc), "
        "decided per day without look-ahead; exchanges, miners and coinjoins hold none. "
        "Accumulation shows as strong hands' holdings rising, distribution as them falling "
        "while weak hands' rise. Gaps: days past the entities step's last day.",
        series=(
            SeriesSpec(
                "strong_balance_btc",
                "strong hands",
                "metrics.holder_migration",
                "strong_balance_btc",
                "#1f77b4",
            ),
            SeriesSpec(
                "weak_balance_btc",
                "weak hands",
                "metrics.holder_migration",
                "weak_balance_btc",
                "#ff7f0e",
            ),
        ),  # fmt: skip
    ),
    ChartSpec(
        id="holder_supply",
        title="Long- and short-term holder supply",
        y_label="BTC",
        caption="Unspent coins at least entities.holder.lth_days (155 by default) days old "
        "(long-term holders, metrics.supply_cohorts.supply_btc where cohort = 'lth') and younger "
        "(cohort = 'sth'), at each day's end.",
        series=(
            SeriesSpec(
                "lth_supply_btc",
                "long-term holders",
                "metrics.supply_cohorts",
                "supply_btc[cohort='lth']",
                "#1f77b4",
            ),
            SeriesSpec(
                "sth_supply_btc",
                "short-term holders",
                "metrics.supply_cohorts",
                "supply_btc[cohort='sth']",
                "#ff7f0e",
            ),
        ),  # fmt: skip
    ),
    ChartSpec(
        id="hodl_waves",
        title="HODL waves",
        y_label="share of supply (%)",
        caption="Share of the unspent supply in each coin-age band (metrics.supply_cohorts."
        "supply_share where cohort_kind = 'band'), stacked from the youngest band at the bottom.",
        series=tuple(
            SeriesSpec(
                f"band_{name}",
                name.replace("_", "–"),
                "metrics.supply_cohorts",
                f"supply_share[cohort='{name}']",
                color,
            )
            for (name, _lo, _hi), color in zip(BANDS, _BAND_COLORS, strict=True)
        ),  # fmt: skip
        stacked=True,
        percent=True,
    ),
    ChartSpec(
        id="exchange_balance",
        title="Exchange balance and net flow",
        y_label="BTC",
        y2_label="BTC per day",
        caption="Coins held by exchange entities at each day's end (metrics.exchange_flows."
        "balance_btc, a lower bound: exchanges are found from label seeds and behaviour) and "
        "their daily net inflow (netflow_btc, right axis). Gaps: days the entities step has not "
        "processed.",
        series=(
            SeriesSpec(
                "exchange_balance_btc",
                "exchange balance",
                "metrics.exchange_flows",
                "balance_btc",
                "#9467bd",
            ),
            SeriesSpec(
                "exchange_netflow_btc",
                "net inflow",
                "metrics.exchange_flows",
                "netflow_btc",
                "#17becf",
                axis="right",
            ),
        ),  # fmt: skip
    ),
)

BAND_NAMES = tuple(name for name, _lo, _hi in BANDS)

"""The same charts as PNG files, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import datetime as dt
import math
import os

from hodlflow.report.charts import CHARTS, ChartSpec
from hodlflow.report.series import BELOW_COST_KEY, MEAN_DAYS, ReportData, trailing_mean


def _nan(values: list[float | None]) -> list[float]:
    # matplotlib leaves a gap at NaN, which is what a missing value is.
    return [math.nan if v is None else v for v in values]


def _draw(chart: ChartSpec, data: ReportData, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    days = [dt.date.fromisoformat(d) for d in data.days]
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    ax2 = ax.twinx() if chart.y2_label else None
    handles = []
    if chart.stacked:
        base = [0.0] * len(days)
        for s in chart.series:
            top = [b + (v or 0.0) for b, v in zip(base, data.values[s.key], strict=True)]
            handles.append(ax.fill_between(days, base, top, color=s.color, alpha=0.8, lw=0,
                                           label=s.label))  # fmt: skip
            base = top
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(bottom=0)
    else:
        smooth = chart.flow and data.bucket == "day"
        if chart.flow:
            # The days (weeks) the price closed below the production cost, shaded.
            half = (days[1] - days[0]) / 2 if len(days) > 1 else dt.timedelta(days=0.5)
            shaded, start = None, None
            flags = [s is not None and s >= 0.5 for s in data.values[BELOW_COST_KEY]]
            for i, below in enumerate([*flags, False]):  # one span per run of shaded days
                if below and start is None:
                    start = i
                elif not below and start is not None:
                    shaded = ax.axvspan(days[start] - half, days[i - 1] + half, color="#d62728",
                                        alpha=0.15, lw=0, zorder=0)  # fmt: skip
                    start = None
            if shaded is not None:
                shaded.set_label(
                    "price below the production cost"
                    + (" (most days of the week)" if data.bucket == "week" else "")
                )
                handles.append(shaded)
        for s in chart.series:
            target = ax2 if s.axis == "right" and ax2 is not None else ax
            label = s.label + (" (right axis)" if target is ax2 else "")
            if all(v is None for v in data.values[s.key]):
                label += " — no data in this range"
            # Right-axis series are context (flows, an index): thinner, under the main lines; a
            # flow's daily values faint under their trailing mean.
            thin = target is ax2
            faint = smooth and not thin
            (line,) = target.plot(days, _nan(data.values[s.key]), color=s.color,
                                  lw=1.0 if thin or faint else 1.8,
                                  alpha=0.3 if faint else 0.7 if thin else 1.0,
                                  marker="o" if len(days) < 40 else None, ms=3,
                                  label=None if faint else label)  # fmt: skip
            if faint:
                (line,) = target.plot(days, _nan(trailing_mean(data.values[s.key], MEAN_DAYS)),
                                      color=s.color, lw=1.8,
                                      label=f"{label} ({MEAN_DAYS}-day mean over faint daily values)")  # fmt: skip
            handles.append(line)
        if chart.markers:
            # Hash-ribbon crossings: a dashed vertical line on the point of each.
            labelled = set()
            for _day, point, signal in data.markers:
                color = "#d62728" if signal == "capitulation" else "#2ca02c"
                line = ax.axvline(dt.date.fromisoformat(point), color=color, lw=1.2, ls="--",
                                  label=None if signal in labelled else signal)  # fmt: skip
                if signal not in labelled:
                    handles.append(line)
                    labelled.add(signal)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.6g}"))
    ax.set_title(chart.title, loc="left", fontsize=13)
    ax.set_ylabel(chart.y_label)
    if ax2 is not None:
        ax.set_zorder(ax2.get_zorder() + 1)  # the left axis' lines over the right's
        ax.patch.set_visible(False)
        ax2.set_ylabel(chart.y2_label)
        right = [s.key for s in chart.series if s.axis == "right"]
        if all(v is None for k in right for v in data.values[k]):
            ax2.set_yticks([])  # nothing drawn there: no made-up scale
    ax.set_xlabel("week (UTC, weekly means)" if data.bucket == "week" else "day (UTC)")
    ax.grid(True, color="#eeeeee")
    ax.legend(handles=handles, loc="upper left", fontsize=8, ncol=4 if chart.stacked else 1,
              framealpha=0.85)  # fmt: skip
    from matplotlib.dates import DateFormatter

    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    if len(days) <= 14:
        ax.set_xticks(days)  # whole days only: the automatic locator would pick hours
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_pngs(data: ReportData, out_dir: str) -> list[str]:
    """Write ``<out_dir>/<chart id>.png`` for every chart; return the paths."""
    paths = []
    for chart in CHARTS:
        path = os.path.join(out_dir, f"{chart.id}.png")
        _draw(chart, data, path)
        paths.append(path)
    return paths

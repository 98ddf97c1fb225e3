"""``hodlflow report``: read the gold tables, write ``<out>/report.html`` and a PNG per chart."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass

from pyspark.sql import SparkSession

from hodlflow.config import Settings
from hodlflow.report.html import render_html
from hodlflow.report.png import write_pngs
from hodlflow.report.series import ReportError, read_report_data

__all__ = ["ReportError", "ReportResult", "run_report"]


@dataclass(frozen=True)
class ReportResult:
    html_path: str
    png_paths: list[str]
    first_day: dt.date
    last_day: dt.date
    points: int
    bucket: str
    seconds: float

    def summary(self) -> str:
        unit = "week(s), weekly means" if self.bucket == "week" else "day(s)"
        return (
            f"report for {self.first_day}..{self.last_day} ({self.points} {unit}): "
            f"{self.html_path} and {len(self.png_paths)} PNG(s) beside it; {self.seconds:.1f}s"
        )


def run_report(
    spark: SparkSession,
    settings: Settings,
    out_dir: str,
    from_day: dt.date | None = None,
    to_day: dt.date | None = None,
) -> ReportResult:
    """Write the report of ``from_day``..``to_day`` (default: all days) into ``out_dir``.
    Example::

        run_report(spark, load_settings("local"), "report")
    """
    t0 = time.time()
    if from_day and to_day and from_day > to_day:
        raise ReportError(f"--from {from_day} is after --to {to_day}")
    data = read_report_data(spark, settings, from_day, to_day)
    os.makedirs(out_dir, exist_ok=True)
    html_path = os.path.join(out_dir, "report.html")
    pngs = write_pngs(data, out_dir)
    tmp = html_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(render_html(data))
    os.replace(tmp, html_path)  # a reader never sees half a page
    return ReportResult(
        os.path.abspath(html_path), pngs, data.first, data.last, len(data.days), data.bucket,
        time.time() - t0,
    )  # fmt: skip

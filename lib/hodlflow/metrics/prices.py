"""The user's daily close prices → ``market.prices``, checked first.

A price file is a CSV with the header ``day,close_usd`` (extra columns ignored), one line per
UTC day (ISO dates), as ``hodlflow simulate`` writes in ``prices.csv``. It is small (one line a
day: ~6,000 lines for the whole history), so it is read and checked in the driver, then written
in one Delta commit that replaces the days it covers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.config import Settings
from hodlflow.lease import leased
from hodlflow.paths import located, read_bytes


class PricesError(ValueError):
    """A price file is malformed; the message names the file, the line and what is wrong."""


def read_prices(path: str | Path) -> list[tuple[dt.date, float]]:
    """The (day, close_usd) rows of a price file, sorted by day, after every check:

    header with ``day`` and ``close_usd``; every day an ISO date and every close a finite
    positive number; no day twice; no day missing between the first and the last.
    """
    path = located(str(path), "price file")
    try:
        text = read_bytes(path, "price file").decode("utf-8")
    except OSError as exc:
        raise PricesError(f"{path}: cannot read the price file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PricesError(f"{path}: the price file is not UTF-8 text: {exc}") from None
    with io.StringIO(text, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or "day" not in header or "close_usd" not in header:
            raise PricesError(
                f"{path}: line 1: the header must name day and close_usd, got {header}"
            )
        i_day, i_close = header.index("day"), header.index("close_usd")
        seen: dict[dt.date, int] = {}
        rows = []
        for line_no, fields in enumerate(reader, start=2):
            if not fields or not any(f.strip() for f in fields):
                continue
            if len(fields) <= max(i_day, i_close):
                raise PricesError(
                    f"{path}: line {line_no}: expected day and close_usd, got {fields}"
                )
            try:
                day = dt.date.fromisoformat(fields[i_day].strip())
            except ValueError:
                raise PricesError(
                    f"{path}: line {line_no}: day {fields[i_day]!r} is not an ISO date (YYYY-MM-DD)"
                ) from None
            try:
                close = float(fields[i_close])
            except ValueError:
                close = math.nan
            if not math.isfinite(close) or close <= 0:
                raise PricesError(
                    f"{path}: line {line_no}: close_usd {fields[i_close]!r} on {day} is not a "
                    "positive number"
                )
            if day in seen:
                raise PricesError(
                    f"{path}: line {line_no}: {day} is given twice (first on line {seen[day]})"
                )
            seen[day] = line_no
            rows.append((day, close))
    if not rows:
        raise PricesError(f"{path}: no prices")
    rows.sort()
    for (a, _), (b, _) in zip(rows, rows[1:], strict=False):
        if (b - a).days != 1:
            raise PricesError(
                f"{path}: no price for {a + dt.timedelta(days=1)} (gap from {a} to {b}); give "
                "every day between the first and the last"
            )
    return rows


@leased("metrics (prices)")
def load_prices(
    spark: SparkSession, settings: Settings, path: str | Path
) -> tuple[dt.date, dt.date]:
    """Check ``path`` and replace the days it covers in ``market.prices`` (one commit), unless
    the table already holds exactly those rows (a daily run loading the same file again writes
    nothing: no commit, no new table version).

    Returns the first and last day loaded. A bad file raises :class:`PricesError` and leaves the
    table as it was.
    """
    rows = read_prices(path)
    first, last = rows[0][0], rows[-1][0]
    tables.ensure_table(spark, settings, "market.prices")
    # As many rows as the file (one a day): the file itself is already in the driver's memory.
    stored = (
        tables.read_table(spark, settings, "market.prices")
        .where(F.col("day").between(first, last))
        .select("day", "close_usd")
        .collect()
    )
    if sorted((r.day, r.close_usd) for r in stored) == rows:
        return first, last
    df: DataFrame = spark.createDataFrame(rows, "day date, close_usd double")
    tables.replace_where(df, settings, "market.prices", f"day >= '{first}' AND day <= '{last}'")
    return first, last

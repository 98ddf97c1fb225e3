"""`hodlflow maintain`: compacts a table that has many files, leaves its rows as they were."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from hodlflow import tables
from hodlflow.maintain import fragmented_partitions, run_maintenance

pytestmark = pytest.mark.spark

PRICES = [("2025-03-01", 96000.0), ("2025-03-02", 95000.0), ("2025-03-03", 94000.5)]


def test_maintain_compacts_a_table_with_many_files_and_keeps_its_rows(spark, make_settings):
    settings = make_settings(maintenance__optimize_min_files=2)
    tables.ensure_table(spark, settings, "market.prices")
    for day, price in PRICES:  # one commit, one file per day
        df = spark.createDataFrame([(day, price)], "day STRING, close_usd DOUBLE")
        tables.append(
            df.selectExpr("CAST(day AS DATE) AS day", "close_usd"), settings, "market.prices"
        )
    path = tables.table_location(settings, "market.prices")
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first().numFiles == 3

    result = run_maintenance(spark, settings, log=lambda _m: None)

    assert result.tables == [tables.qualified_name(settings, "market.prices")]
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first().numFiles == 1
    expected = spark.createDataFrame(PRICES, "day STRING, close_usd DOUBLE").selectExpr(
        "CAST(day AS DATE) AS day", "close_usd"
    )
    assertDataFrameEqual(tables.read_table(spark, settings, "market.prices"), expected)


# --- file counts across many daily runs ----------------------------------------------------

RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


@pytest.fixture
def no_retention_floor(spark):
    """VACUUM RETAIN 0 HOURS, so the files on disk are the live ones right after maintenance
    (Delta refuses retention under 7 days unless its check is off)."""
    spark.conf.set(RETENTION_CHECK, "false")
    yield {"maintenance.vacuum_retention_hours": 0, f"spark.conf.{RETENTION_CHECK}": "false"}
    spark.conf.unset(RETENTION_CHECK)


def data_files_on_disk(location: str) -> int:
    root = Path(location)
    return sum(1 for p in root.rglob("*.parquet") if "_delta_log" not in p.parts)


def live_files(spark, location: str) -> int:
    return spark.sql(f"DESCRIBE DETAIL delta.`{location}`").first().numFiles


def history(spark, location: str, operation: str) -> list:
    return (
        spark.sql(f"DESCRIBE HISTORY delta.`{location}`")
        .filter(f"operation = '{operation}'")
        .orderBy("version")
        .collect()
    )


def price_day(spark, n: int):
    day = dt.date(2025, 3, 1) + dt.timedelta(days=n)
    return spark.createDataFrame([(day, 90000.0 + n)], "day DATE, close_usd DOUBLE")


def test_a_table_younger_than_the_retention_is_not_vacuumed(spark, make_settings):
    """VACUUM RETAIN 168 HOURS can delete nothing in a table made minutes ago (nothing was
    removed that long ago): maintenance skips it, so no VACUUM START/END commits are added and
    the compacted-away files stay, while the one table older than the retention is vacuumed."""
    settings = make_settings(maintenance__optimize_min_files=2)
    tables.ensure_table(spark, settings, "market.prices")
    for n in range(3):
        tables.append(price_day(spark, n), settings, "market.prices")
    young = tables.table_location(settings, "market.prices")
    run_maintenance(spark, settings, log=lambda _m: None)
    assert history(spark, young, "OPTIMIZE")  # it was compacted ...
    assert history(spark, young, "VACUUM START") == []  # ... but not vacuumed
    assert data_files_on_disk(young) == 4  # 3 compacted away, kept: removed seconds ago

    # The same table made 169 hours ago (its first commit's time is what counts): vacuumed.
    first_commit = Path(young) / "_delta_log" / f"{0:020d}.json"
    old = (dt.datetime.now() - dt.timedelta(hours=169)).timestamp()
    os.utime(first_commit, (old, old))
    run_maintenance(spark, settings, log=lambda _m: None)
    assert len(history(spark, young, "VACUUM START")) == 1


def test_daily_runs_with_maintenance_keep_an_unpartitioned_tables_files_bounded(
    spark, make_settings, no_retention_floor
):
    runs = 15
    kept = make_settings(maintenance__optimize_min_files=4, **no_retention_floor)
    plain = make_settings()  # the same daily appends, no maintenance step
    loc = tables.table_location(kept, "market.prices")
    plain_loc = tables.table_location(plain, "market.prices")
    for s in (kept, plain):
        tables.ensure_table(spark, s, "market.prices")
    after_maintenance, on_disk, without = [], [], []
    for n in range(runs):  # one daily run: its append, then the pipeline's maintenance step
        tables.append(price_day(spark, n), kept, "market.prices")
        tables.append(price_day(spark, n), plain, "market.prices")
        run_maintenance(spark, kept, log=lambda _m: None)
        after_maintenance.append(live_files(spark, loc))
        on_disk.append(data_files_on_disk(loc))
        without.append(live_files(spark, plain_loc))

    # By hand: a run adds one file; at 4 files the table is compacted into 1. So 1, 2, 3, then
    # the fourth run's 4 files become 1, and so on: never more than 3 after maintenance.
    assert after_maintenance == [1, 2, 3] * 5
    assert on_disk == after_maintenance  # VACUUM deleted every compacted-away file
    assert without == list(range(1, runs + 1))  # without it: one more file every day
    # Compaction Z-orders on the contract's filter column (schemas/market.prices.yaml: day).
    optimizes = history(spark, loc, "OPTIMIZE")
    assert len(optimizes) == 4  # runs 4, 7, 10 and 13
    assert all(json.loads(o.operationParameters["zOrderBy"]) == ["day"] for o in optimizes)
    expected = spark.createDataFrame(
        [(dt.date(2025, 3, 1) + dt.timedelta(days=n), 90000.0 + n) for n in range(runs)],
        "day DATE, close_usd DOUBLE",
    )
    assertDataFrameEqual(tables.read_table(spark, kept, "market.prices"), expected)


def daily_rows(spark, day: dt.date, ids: range):
    schema = tables.load_schema("entities.entity_daily").struct()
    rows = [(day, i, "unknown", 0, 0, 0, 1000 * i, None, None, None, 0, 0) for i in ids]
    return spark.createDataFrame(rows, schema)


def test_a_day_partition_written_in_several_steps_is_compacted_once(
    spark, make_settings, no_retention_floor
):
    settings = make_settings(**no_retention_floor)
    key = "entities.entity_daily"
    loc = tables.table_location(settings, key)
    tables.ensure_table(spark, settings, key)
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=n) for n in range(5)]

    def files_of(day: dt.date) -> set[str]:
        df = tables.read_table(spark, settings, key).filter(F.col("day") == F.lit(day))
        return {r[0] for r in df.select("_metadata.file_path").distinct().collect()}

    first_day_files = None
    for day in days:  # each day arrives in three steps (say, ingest chunks): three files
        for step in range(3):
            tables.append(daily_rows(spark, day, range(step * 10, step * 10 + 10)), settings, key)
        run_maintenance(spark, settings, log=lambda _m: None)
        assert len(files_of(day)) == 1
        if first_day_files is None:
            first_day_files = files_of(days[0])

    # One file per day; without maintenance there would be three per day.
    assert live_files(spark, loc) == len(days)
    assert data_files_on_disk(loc) == len(days)
    # Each day was rewritten once, when it was fragmented: the first day's file is the same
    # one after four more runs; every OPTIMIZE selected one day and Z-ordered on entity_id.
    assert files_of(days[0]) == first_day_files
    optimizes = history(spark, loc, "OPTIMIZE")
    assert [o.operationMetrics["numRemovedFiles"] for o in optimizes] == ["3"] * len(days)
    assert all(json.loads(o.operationParameters["zOrderBy"]) == ["entity_id"] for o in optimizes)
    for o, day in zip(optimizes, days, strict=True):
        assert str(day) in o.operationParameters["predicate"]
    assert tables.read_table(spark, settings, key).count() == 30 * len(days)


def test_fragmented_partitions_are_the_days_written_in_more_than_one_file(spark, make_settings):
    settings = make_settings()
    key = "entities.entity_daily"
    tables.ensure_table(spark, settings, key)
    d = [dt.date(2025, 3, 1) + dt.timedelta(days=n) for n in range(3)]
    # Day 1 in one write, day 2 in three, day 3 in two: by hand, days 2 and 3 are fragmented.
    for day, writes in zip(d, (1, 3, 2), strict=True):
        for w in range(writes):
            tables.append(daily_rows(spark, day, range(w * 10, w * 10 + 10)), settings, key)
    loc = tables.table_location(settings, key)
    assert fragmented_partitions(spark, loc, ("day",)) == [("2025-03-02",), ("2025-03-03",)]

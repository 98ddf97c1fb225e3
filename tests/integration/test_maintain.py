"""`hodlflow maintain`: compacts a table that has many files, leaves its rows as they were."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from hodlflow import tables
from hodlflow.maintain import run_maintenance

pytestmark = pytest.mark.spark

PRICES = [("2025-03-01", 96000.0), ("2025-03-02", 95000.0), ("2025-03-03", 94000.5)]


def test_maintain_compacts_a_table_with_many_files_and_keeps_its_rows(spark, make_settings):
    settings = make_settings(maintenance__optimize_min_files=2)
    tables.ensure_table(spark, settings, "market.prices")
    for day, price in PRICES:  # one commit, one file per day
        df = spark.createDataFrame([(day, price)], "day STRING, close_usd DOUBLE")
        tables.append(df.selectExpr("CAST(day AS DATE) AS day", "close_usd"), settings, "market.prices")
    path = tables.table_location(settings, "market.prices")
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first().numFiles == 3

    result = run_maintenance(spark, settings, log=lambda _m: None)

    assert result.tables == [tables.qualified_name(settings, "market.prices")]
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first().numFiles == 1
    expected = spark.createDataFrame(PRICES, "day STRING, close_usd DOUBLE").selectExpr(
        "CAST(day AS DATE) AS day", "close_usd"
    )
    assertDataFrameEqual(tables.read_table(spark, settings, "market.prices"), expected)

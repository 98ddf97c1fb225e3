"""Creating a step's tables after a kill: the remains of a create stopped before its first
commit are cleared (the fault campaign found a SIGKILL there stopping every later run of the
step); a location holding data or a commit is never touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from hodlflow import tables

# What Delta leaves when its first commit of a new table is killed while being written: the
# commit's temporary file and checksum, and an empty folder of staged commits.
TMP = ".00000000000000000000.json.18348ff8-8fa4-415b-aed3-23883b367b98.tmp"


def _remains(location: Path) -> None:
    log = location / "_delta_log"
    (log / "_staged_commits").mkdir(parents=True)
    (log / TMP).write_text('{"commitInfo":{}}\n')
    (log / f".{TMP}.crc").write_bytes(b"crc")


def test_a_creation_killed_before_its_first_commit_is_cleared_and_the_table_made(
    spark, make_settings
):
    settings = make_settings()
    location = Path(tables.table_location(settings, "market.prices"))
    _remains(location)
    said: list[str] = []
    tables.ensure_table(spark, settings, "market.prices", said.append)
    assert tables.exists(spark, settings, "market.prices")
    assert spark.table(tables.qualified_name(settings, "market.prices")).count() == 0
    assert not (location / "_delta_log" / TMP).exists()
    assert said == [
        f"cleared {location}: the remains of a creation of market.prices stopped before its "
        "first commit"
    ]
    # Once made, the table is never cleared again (a second call says nothing).
    tables.ensure_table(spark, settings, "market.prices", said.append)
    assert len(said) == 1


def test_a_location_with_data_or_a_commit_is_left_as_it_is(spark, make_settings):
    settings = make_settings()
    location = Path(tables.table_location(settings, "market.prices"))
    _remains(location)
    (location / "part-00000.parquet").write_bytes(b"PAR1")  # someone's data, not a table
    assert tables.clear_unfinished_creation(spark, settings, "market.prices") is False
    with pytest.raises(Exception, match="not empty and also not a Delta table"):
        tables.ensure_table(spark, settings, "market.prices", print)
    assert (location / "part-00000.parquet").exists() and (location / "_delta_log" / TMP).exists()
    # A committed log without a catalog entry is a table: kept.
    other = make_settings()
    spark.createDataFrame([(1,)], "x INT").write.format("delta").save(
        tables.table_location(other, "market.prices")
    )
    assert tables.clear_unfinished_creation(spark, other, "market.prices") is False
    assert tables.exists(spark, other, "market.prices")


def test_a_table_written_by_an_earlier_version_without_a_contract_column_is_refused(
    spark, make_settings
):
    """entities.entities gained columns (swept_in_sats, busy_peel_days): a warehouse an earlier
    version wrote lacks them, and a run must say so, not fail inside a MERGE."""
    settings = make_settings()
    tables.ensure_table(spark, settings, "market.prices", print)
    location = tables.table_location(settings, "market.prices")
    contract = tables.load_schema("market.prices").names
    older = spark.read.format("delta").load(location).drop(contract[-1])
    older.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(location)
    with pytest.raises(tables.SchemaError) as err:
        tables.ensure_table(spark, settings, "market.prices", print)
    said = str(err.value)
    assert f"market.prices at {location} lacks the column(s) ['{contract[-1]}']" in said
    assert "earlier version of hodlflow" in said

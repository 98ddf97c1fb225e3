"""Delta table maintenance: compact small files (OPTIMIZE) and delete old files no longer
referenced (VACUUM) in every hodlflow table that exists. Content never changes, only the file
layout."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote

from pyspark.sql import SparkSession

from hodlflow import tables
from hodlflow.config import Settings
from hodlflow.step import step


class MaintainError(RuntimeError):
    """A table's files are not laid out as maintenance expects."""


def table_keys() -> list[str]:
    """Every table with a contract in ``schemas/`` (the simulator's ``truth.*`` files are CSV,
    not tables)."""
    return sorted(
        p.stem for p in tables.SCHEMA_DIR.glob("*.yaml") if not p.stem.startswith("truth.")
    )


@dataclass(frozen=True, kw_only=True)
class MaintenanceResult:
    tables: list[str]
    seconds: float

    def summary(self) -> str:
        if not self.tables:
            return "no tables to maintain yet"
        return f"maintained {len(self.tables)} table(s) in {self.seconds:.1f}s: " + ", ".join(
            self.tables
        )


def _sql_path(location: str) -> str:
    return "delta.`" + location.replace("`", "``") + "`"


def _sql_literal(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def live_files(spark: SparkSession, location: str) -> int:
    """The number of data files of the table's current version (``DESCRIBE DETAIL``)."""
    return spark.sql(f"DESCRIBE DETAIL {_sql_path(location)}").select("numFiles").first()[0] or 0


def fragmented_partitions(
    spark: SparkSession, location: str, partition_by: tuple[str, ...]
) -> list:
    """The partition values (tuples of strings) whose partition holds more than one data file.

    Counted from the table's file list (the current Delta snapshot's ``inputFiles``, one path
    per data file, with Delta's Hive-style partition folders ``day=2025-03-01/``): no data and
    no footer is read, however large the table. A day written once has one file and is never
    rewritten again; a day written in several steps (ingest chunks, re-runs) is listed.
    """
    counts: Counter[tuple] = Counter()
    for path in spark.read.format("delta").load(location).inputFiles():
        folders = dict(
            seg.split("=", 1) for seg in path.split("/")[:-1] if "=" in seg
        )  # fmt: skip
        if not all(c in folders for c in partition_by):
            # Column mapping names folders at random: hodlflow's tables never enable it.
            raise MaintainError(
                f"{location}: data file {path} is not in a {'/'.join(partition_by)}= folder "
                "(column mapping enabled on this table?); maintenance needs Hive-style folders"
            )
        counts[tuple(unquote(folders[c]) for c in partition_by)] += 1
    return sorted(p for p, n in counts.items() if n > 1)


def optimize_statements(
    spark: SparkSession, location: str, schema: tables.TableSchema, min_files: int
) -> list[str]:
    """The OPTIMIZE statements a table needs now (none when it is compact).

    - Partitioned table (by day): compact and Z-order only the partitions that hold more than
      one file, so a day's files are rewritten once, not on every run (Z-ordering rewrites every
      file it selects, even a lone one).
    - Unpartitioned table: compact and Z-order it whole once it has at least ``min_files``
      files, so its file count stays under ``min_files`` plus a day's writes.

    Z-order columns come from the table contract (``zorder_by`` in ``schemas/``).
    """
    path = _sql_path(location)
    zorder = f" ZORDER BY ({', '.join(schema.zorder_by)})" if schema.zorder_by else ""
    if schema.partition_by:
        parts = fragmented_partitions(spark, location, schema.partition_by)
        if not parts:
            return []
        cond = " OR ".join(
            "(" + " AND ".join(
                f"{c} = {_sql_literal(v)}" for c, v in zip(schema.partition_by, p, strict=True)
            ) + ")"
            for p in sorted(parts)
        )  # fmt: skip
        return [f"OPTIMIZE {path} WHERE {cond}{zorder}"]
    if live_files(spark, location) >= min_files:
        return [f"OPTIMIZE {path}{zorder}"]
    return []


def vacuum_can_delete(created_ms: int | None, now_ms: int, hours: float) -> bool:
    """Whether ``VACUUM ... RETAIN hours HOURS`` can find a file to delete in a table created at
    ``created_ms`` (epoch milliseconds of its first commit; None when that commit file is gone,
    which Delta does only to logs older than its 30-day retention).

    VACUUM deletes only files whose removal was committed more than ``hours`` ago, and nothing is
    removed before a table exists: a table younger than ``hours`` has none, so its VACUUM (two
    commits and a scan of the log) is skipped.

    >>> vacuum_can_delete(created_ms=0, now_ms=3_600_000, hours=168)
    False
    >>> vacuum_can_delete(created_ms=0, now_ms=169 * 3_600_000, hours=168)
    True
    >>> vacuum_can_delete(created_ms=None, now_ms=0, hours=168)
    True
    """
    return created_ms is None or now_ms - created_ms > hours * 3_600_000


@step("maintain")
def run_maintenance(
    spark: SparkSession, settings: Settings, log: Callable[[str], None] = print
) -> MaintenanceResult:
    """Compact and clean every existing table. A step that died is rolled back first, so
    maintenance never compacts half a step.

    - OPTIMIZE with ZORDER BY the contract's ``zorder_by`` columns (see
      :func:`optimize_statements`): day partitions with more than one file; unpartitioned
      tables with at least ``maintenance.optimize_min_files`` files.
    - VACUUM LITE retaining ``maintenance.vacuum_retention_hours``: deletes the files that the
      transaction log records as removed before then (no listing of the table's directories);
      skipped for a table younger than that, which has no such file
      (:func:`vacuum_can_delete`).

    ``maintenance.parallel_tables`` tables at a time.

    Example::

        run_maintenance(spark, load_settings("local"))
    """
    t0 = time.time()
    hours = settings.maintenance.vacuum_retention_hours
    min_files = settings.maintenance.optimize_min_files
    keys = [k for k in table_keys() if tables.exists(spark, settings, k)]

    def maintain(key: str) -> str:
        location = tables.table_location(settings, key)
        schema = tables.load_schema(key)
        for statement in optimize_statements(spark, location, schema, min_files):
            metrics = (
                spark.sql(statement)
                .select("metrics.numFilesRemoved", "metrics.numFilesAdded")
                .first()
            )
            log(f"{key}: {metrics[0]} files compacted into {metrics[1]}")
        now_ms = int(time.time() * 1000)
        if vacuum_can_delete(tables.created_ms(spark, location), now_ms, hours):
            spark.sql(f"VACUUM {_sql_path(location)} LITE RETAIN {hours} HOURS")
        return tables.qualified_name(settings, key)

    # Tables are independent: their Spark jobs run side by side from driver threads. A table
    # that fails does not stop the others (each one's commits are atomic); its error is raised
    # once all are done.
    with ThreadPoolExecutor(settings.maintenance.parallel_tables, "maintain") as pool:
        done = list(pool.map(maintain, keys))
    return MaintenanceResult(tables=done, seconds=time.time() - t0)

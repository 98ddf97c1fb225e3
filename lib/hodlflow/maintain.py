"""Delta table maintenance: compact small files (OPTIMIZE) and delete old files no longer
referenced (VACUUM) in every hodlflow table that exists. Content never changes, only the file
layout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from hodlflow import tables
from hodlflow.config import Settings


def table_keys() -> list[str]:
    """Every table with a contract in ``schemas/`` (the simulator's ``truth.*`` files are CSV,
    not tables)."""
    return sorted(
        p.stem for p in tables.SCHEMA_DIR.glob("*.yaml") if not p.stem.startswith("truth.")
    )


@dataclass(frozen=True)
class MaintenanceResult:
    tables: list[str]
    seconds: float

    def summary(self) -> str:
        if not self.tables:
            return "no tables to maintain yet"
        return (
            f"maintained {len(self.tables)} table(s) in {self.seconds:.1f}s: "
            + ", ".join(self.tables)
        )


def _sql_path(location: str) -> str:
    return "delta.`" + location.replace("`", "``") + "`"


def run_maintenance(
    spark: SparkSession, settings: Settings, log: Callable[[str], None] = print
) -> MaintenanceResult:
    """Compact and clean every existing table. A step that died is rolled back first, so
    maintenance never compacts half a step.

    - OPTIMIZE (bin-packing small files) only a table with at least
      ``maintenance.optimize_min_files`` files: a fresh or already compact table is left alone,
      so a daily run costs little.
    - VACUUM LITE retaining ``maintenance.vacuum_retention_hours``: deletes the files that the
      transaction log records as removed before then (no listing of the table's directories).

    Example::

        run_maintenance(spark, load_settings("local"))
    """
    t0 = time.time()
    recovered = tables.recover(spark, settings)
    if recovered:
        log(f"rolled back unfinished step(s) {recovered} left by a failed run")
    hours = settings.maintenance.vacuum_retention_hours
    min_files = settings.maintenance.optimize_min_files
    done = []
    for key in table_keys():
        if not tables.exists(spark, settings, key):
            continue
        path = _sql_path(tables.table_location(settings, key))
        files = spark.sql(f"DESCRIBE DETAIL {path}").select("numFiles").first()[0] or 0
        if files >= min_files:
            spark.sql(f"OPTIMIZE {path}")
            log(f"{key}: {files} files compacted")
        spark.sql(f"VACUUM {path} LITE RETAIN {hours} HOURS")
        done.append(tables.qualified_name(settings, key))
    return MaintenanceResult(done, time.time() - t0)

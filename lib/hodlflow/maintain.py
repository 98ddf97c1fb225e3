"""Delta table maintenance: compact small files (OPTIMIZE) and delete unreferenced old files
(VACUUM) in every hodlflow table that exists. Content never changes, only the file layout."""

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
            f"optimized and vacuumed {len(self.tables)} table(s) in {self.seconds:.1f}s: "
            + ", ".join(self.tables)
        )


def run_maintenance(
    spark: SparkSession, settings: Settings, log: Callable[[str], None] = print
) -> MaintenanceResult:
    """OPTIMIZE then VACUUM (retaining ``maintenance.vacuum_retention_hours``) every existing
    table. A step that died is rolled back first, so maintenance never compacts half a step.

    Example::

        run_maintenance(spark, load_settings("local"))
    """
    from delta.tables import DeltaTable

    t0 = time.time()
    recovered = tables.recover(spark, settings)
    if recovered:
        log(f"rolled back unfinished step(s) {recovered} left by a failed run")
    hours = settings.maintenance.vacuum_retention_hours
    done = []
    for key in table_keys():
        if not tables.exists(spark, settings, key):
            continue
        table = DeltaTable.forPath(spark, tables.table_location(settings, key))
        table.optimize().executeCompaction()
        table.vacuum(hours)
        done.append(tables.qualified_name(settings, key))
    return MaintenanceResult(done, time.time() - t0)

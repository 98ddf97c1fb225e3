"""What every writing step shares: how it starts, and which of its stored runs the chain left.

:func:`step` wraps a step's ``run_*(spark, settings, ...)`` function: it holds the warehouse's
lease for the whole run (:mod:`hodlflow.lease`: no other step writes meanwhile), then rolls back
what a step that died left half-written (:func:`hodlflow.tables.recover`, said through the
step's ``log``), checks that the tables it reads exist and creates those it writes, then runs
the step. :func:`runs_off_the_chain` is the reorg check of the steps that record their runs
(entities.runs, metrics.runs).
"""

from __future__ import annotations

import functools
import inspect

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.lease import warehouse_lease

# The step that writes each database's tables (what to run first when one is missing).
WRITTEN_BY = {"chain": "ingest", "entities": "entities", "market": "prices", "metrics": "metrics"}


def step(
    name: str,
    *,
    needs: tuple[str, ...] = (),
    makes: tuple[str, ...] = (),
    missing: type[Exception] = RuntimeError,
):
    """Decorate ``run_*(spark, settings, ..., log=print)``: lease, recover, then check that the
    tables the step reads exist (``needs``: else ``missing`` naming the table, its location and
    the step that writes it) and create those it writes (``makes``), then run (module doc)."""

    def wrap(fn):
        signature = inspect.signature(fn)
        default_log = signature.parameters["log"].default

        @functools.wraps(fn)
        def run(spark, settings, *args, **kwargs):
            log = signature.bind(spark, settings, *args, **kwargs).arguments.get("log", default_log)
            with warehouse_lease(spark, settings, name, log=log):
                recovered = tables.recover(spark, settings)
                if recovered:
                    log(f"rolled back unfinished step(s) {recovered} left by a failed run")
                for key in needs:
                    if not tables.exists(spark, settings, key):
                        raise missing(
                            f"no {key} table at {tables.table_location(settings, key)}: run "
                            f"`hodlflow {WRITTEN_BY[key.split('.')[0]]}` first"
                        )
                for key in makes:
                    tables.ensure_table(spark, settings, key, log)
                return fn(spark, settings, *args, **kwargs)

        return run

    return wrap


def runs_off_the_chain(runs: DataFrame, blocks: DataFrame) -> DataFrame:
    """The rows of ``runs`` (with ``end_height``, ``end_hash``) whose end block is no longer the
    best chain's block at that height in ``blocks`` (``height``, ``hash``): a reorg replaced it,
    or the chain is now shorter. Their results rest on blocks that left the chain."""
    now = blocks.select(F.col("height").alias("end_height"), F.col("hash").alias("_now_hash"))
    return (
        runs.join(now, "end_height", "left")
        .filter(F.col("_now_hash").isNull() | (F.col("_now_hash") != F.col("end_hash")))
        .drop("_now_hash")
    )

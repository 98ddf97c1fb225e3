"""What every writing step shares: how it starts, and which of its stored runs the chain left.

:func:`step` wraps a step's ``run_*(spark, settings, ...)`` function: it holds the warehouse's
lease for the whole run (:mod:`hodlflow.lease`: no other step writes meanwhile), then rolls back
what a step that died left half-written (:func:`hodlflow.tables.recover`, said through the
step's ``log``), then runs the step. :func:`runs_off_the_chain` is the reorg check of the steps
that record their runs (entities.runs, metrics.runs).
"""

from __future__ import annotations

import functools
import inspect

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.lease import warehouse_lease


def step(name: str):
    """Decorate ``run_*(spark, settings, ..., log=print)``: lease, recover, run (module doc)."""

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

"""`hodlflow ingest`: one entry over the three ways of filling the chain tables."""

from __future__ import annotations

from pyspark.sql import SparkSession

from hodlflow.config import Settings


def ingest(
    spark: SparkSession,
    settings: Settings,
    *,
    use_rpc: bool,
    start_height: int | None = None,
    end_height: int | None = None,
    until: int | None = None,
    chunk_blocks: int | None = None,
) -> str:
    """Fill the chain tables and return the summary to show: from a node over JSON-RPC
    (``use_rpc``: :func:`hodlflow.ingest.follow.run_rpc_ingest`), else from the blocks
    directory in atomic chunks of ``chunk_blocks`` heights resumed after the last stored one
    (:func:`hodlflow.ingest.job.run_ingest_chunks`) or in one step
    (:func:`hodlflow.ingest.job.run_ingest`). ``until``: stop before the first block whose
    time is at or after it (Unix seconds; blocks directory only)."""
    if use_rpc:
        from hodlflow.ingest.follow import run_rpc_ingest

        return run_rpc_ingest(spark, settings, start_height, end_height).summary()
    from hodlflow.ingest.job import run_ingest, run_ingest_chunks

    if chunk_blocks is not None:
        done = run_ingest_chunks(spark, settings, chunk_blocks, end_height, until=until)
        return f"{len(done)} chunk(s) ingested" if done else "chain tables already up to date"
    return run_ingest(spark, settings, start_height, end_height, until=until).summary()

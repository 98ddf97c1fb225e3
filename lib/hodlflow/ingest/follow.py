"""The ingest step over JSON-RPC: keep the chain tables a few blocks behind a running node.

Each run goes from the last ingested height to the node's tip minus ``ingest.rpc.confirmations``.
A reorg is found by comparing the stored block hashes with the node's, walking back from the
last stored height to the fork point; the heights from the fork up are then rewritten in the
same atomic step as the new blocks (rows of orphaned blocks replaced, the unspent outputs they
spent restored, the ones they created deleted). The rows are built and written by the same code
as the blocks-directory ingest (:func:`hodlflow.ingest.job.write_range`), so both roads give the
same tables. A run that dies at any point leaves a journal that the next run rolls back first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.chain.network import get_network
from hodlflow.chain.rpc import RpcClient, RpcConfig, RpcError
from hodlflow.config import Settings
from hodlflow.ingest.job import (
    IngestError,
    IngestResult,
    _task_error,
    ensure_chain_tables,
    plan_range,
    write_range,
)
from hodlflow.ingest.rpc_source import fetch_chain_blocks
from hodlflow.ingest.transforms import split_parsed
from hodlflow.step import step

# Heights compared per step of the walk back to a fork point (doubled each step).
_FORK_WINDOW = 16


def rpc_config(settings: Settings) -> RpcConfig:
    """The client settings of ``ingest.rpc`` (raises IngestError when no URL is set)."""
    rpc = settings.ingest.rpc
    if not rpc.url:
        raise IngestError("no node to follow: set ingest.rpc.url (or --rpc URL)")
    try:
        return RpcConfig(
            url=rpc.url,
            user=rpc.user,
            password=rpc.password,
            cookie_file=rpc.cookie_file,
            timeout_s=rpc.timeout_s,
            retries=rpc.retries,
        )
    except ValueError as exc:
        raise IngestError(f"ingest.rpc: {exc}") from None


@step("ingest --rpc")
def run_rpc_ingest(
    spark: SparkSession,
    settings: Settings,
    start_height: int | None = None,
    end_height: int | None = None,
    log: Callable[[str], None] = print,
) -> IngestResult:
    """Ingest the node's best chain up to its tip minus ``ingest.rpc.confirmations``.

    Example::

        run_rpc_ingest(spark, load_settings("local", {"ingest.rpc.url": "http://127.0.0.1:8332",
                                                      "ingest.rpc.cookie_file": "~/.bitcoin/.cookie"}))
    """
    t0 = time.time()
    try:
        return _run(spark, settings, start_height, end_height, log, t0)
    except IngestError:
        raise
    except RpcError as exc:
        raise IngestError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # Spark task failures arrive wrapped; unwrap ours
        wrapped = _task_error(exc)
        if wrapped is not None:
            raise wrapped from None
        raise


def _run(spark, settings, start_height, end_height, log, t0) -> IngestResult:
    config = rpc_config(settings)
    rpc = settings.ingest.rpc
    network = get_network(settings.network)
    with RpcClient(config) as client:
        info = client.check_network(network.name, network.genesis_hash)
        node_tip = int(info["blocks"])
        first = settings.ingest.start_height
        target = node_tip - rpc.confirmations
        log(
            f"node at {client.url}: {info.get('chain')} chain, tip {node_tip}; following up to "
            f"{target} ({rpc.confirmations} confirmation(s) held back)"
        )
        ensure_chain_tables(spark, settings, log)
        stored_last = _stored_last(spark, settings)
        fork = None
        if stored_last is not None:
            fork = _find_fork(spark, settings, client, stored_last, node_tip, first)
            if fork is not None:
                log(f"stored blocks from height {fork} are no longer on the node's best chain: "
                    "rolling back")  # fmt: skip
        # Heights at or below the tip may be rewritten (a re-run or a reorg); new heights stop
        # at the confirmation depth.
        span = plan_range(start_height, end_height, first, max(target, first - 1), stored_last,
                          fork)  # fmt: skip
        if stored_last is not None and (fork is not None or (span and span[0] <= stored_last)):
            # Rewriting stored heights (a reorg or a re-run): keep every stored height the node
            # still has, even inside the confirmation depth, so the tables never shrink for it.
            # When the node's chain is now shorter than the tables (a node restarted on a fresh
            # data directory), the heights above its tip are only removed.
            lo = span[0] if span else fork
            hi = max(span[1] if span else lo - 1, min(stored_last, node_tip))
            span = (lo, hi)
        if span is None:
            return IngestResult(
                start_height=None,
                end_height=None,
                blocks=0,
                transactions=0,
                stale_blocks=0,
                seconds=time.time() - t0,
            )
        start, end = span
        # What the range must join onto and end with, as the node has it now.
        ends = client.block_hashes([h for h in (start - 1, end) if h >= first]) or [None]
    log(f"reading heights {start}..{end} from the node")
    expect_prev = ends[0] if start > first else None
    expect_last = ends[-1]
    parsed = fetch_chain_blocks(
        spark, config, network, start, end, first, rpc.blocks_per_task, rpc.batch_blocks
    ).persist(StorageLevel.DISK_ONLY)  # as in the blocks-dir ingest: not on the heap
    try:
        if end >= start:
            _check_links(parsed, start, end, expect_prev, expect_last)
        else:
            log(f"the node has no block above height {end}: removing heights {start} and up")
        n_tx = write_range(spark, settings, parsed, start, end, stored_last, log)
    finally:
        parsed.unpersist()
    return IngestResult(
        start_height=start,
        end_height=end,
        blocks=end - start + 1,
        transactions=n_tx,
        stale_blocks=0,
        seconds=time.time() - t0,
    )


def _stored_last(spark: SparkSession, settings: Settings) -> int | None:
    blocks = tables.read_table(spark, settings, "chain.blocks")
    return blocks.agg(F.max("height").alias("m")).first().m


def _find_fork(
    spark: SparkSession,
    settings: Settings,
    client: RpcClient,
    stored_last: int,
    node_tip: int,
    first: int,
) -> int | None:
    """The lowest stored height whose block the node no longer has on its best chain, or None.

    Walks back from ``stored_last`` in growing windows; only the window's stored hashes reach
    the driver. Stored heights above the node's tip count as off the chain.
    """
    blocks = tables.read_table(spark, settings, "chain.blocks")
    fork = None
    hi = stored_last
    window = _FORK_WINDOW
    while hi >= first:
        lo = max(first, hi - window + 1)
        stored = {
            r.height: r.hash
            for r in blocks.filter(F.col("height").between(lo, hi))
            .select("height", "hash")
            .collect()
        }
        on_node = [h for h in range(lo, hi + 1) if h <= node_tip]
        node = dict(zip(on_node, client.block_hashes(on_node), strict=True))
        differs = [h for h in range(lo, hi + 1) if stored.get(h) != node.get(h)]
        if not differs:
            return fork
        fork = min(differs)
        if fork > lo:  # the window holds a matching height below the fork: done
            return fork
        hi = lo - 1
        window *= 2
    return fork


def _check_links(
    parsed: DataFrame, start: int, end: int, expect_prev: str | None, expect_last: str
) -> None:
    """Refuse a range that is not one chain from the stored block below ``start`` to the node's
    block at ``end`` (one aggregate row reaches the driver)."""
    blocks = split_parsed(parsed)[0].select("height", "hash", "prev_hash")
    below = blocks.select((F.col("height") + 1).alias("height"), F.col("hash").alias("parent"))
    joined = blocks.join(below, "height", "left")
    linked = F.col("prev_hash") == F.coalesce(F.col("parent"), F.lit(expect_prev or ""))
    first_ok = (F.col("height") != start) | F.lit(expect_prev is None) | linked
    row = joined.agg(
        F.count("*").alias("n"),
        F.sum(F.when((F.col("height") > start) & ~linked, 1).otherwise(0)).alias("broken"),
        F.sum(F.when(~first_ok, 1).otherwise(0)).alias("bad_first"),
        F.max(F.when(F.col("height") == end, F.col("hash"))).alias("last"),
    ).first()
    if row.n != end - start + 1 or row.broken or row.bad_first or row.last != expect_last:
        raise IngestError(
            f"the node's best chain changed while heights {start}..{end} were read (a reorg "
            "during the ingest); nothing was written: run again"
        )

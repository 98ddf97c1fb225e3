"""The ingest step: a blocks directory → the chain tables, for a height range, atomically.

Re-running a range gives identical table contents. A range that starts at or below the last
ingested height first rolls the tables back to just before it (the unspent set included) and
then ingests from there up to at least the previous last height, in one atomic step. Without a
range the step resumes after the last ingested height and goes to the tip.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.chain.network import get_network
from hodlflow.config import Settings
from hodlflow.ingest import transforms as tr
from hodlflow.ingest.best_chain import best_chain, first_block_at_or_after
from hodlflow.ingest.blocks_dir import blk_files, cached_headers, parse_chain_blocks, xor_key
from hodlflow.ingest.header_cache import HeaderCache, cache_dir
from hodlflow.lease import leased
from hodlflow.step import step

CHAIN_TABLES = ["chain.blocks", "chain.transactions", "chain.outputs", "chain.inputs"]
ALL_TABLES = CHAIN_TABLES + ["chain.unspent"]


class IngestError(RuntimeError):
    """Ingest failed; the tables are as they were before. The message says what and where."""


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    start_height: int | None
    end_height: int | None
    blocks: int
    transactions: int
    stale_blocks: int
    seconds: float
    # blk files whose headers this run scanned (the others' came from the header cache); None
    # for the RPC source.
    files_scanned: int | None = None

    def summary(self) -> str:
        if self.blocks == 0 and self.start_height is not None:
            return (
                f"removed heights {self.start_height} and up: the source's chain now ends at "
                f"{self.end_height}"
            )
        if self.blocks == 0:
            return "chain tables already up to date"
        rate = self.transactions / self.seconds if self.seconds else 0.0
        return (
            f"ingested heights {self.start_height}..{self.end_height}: {self.blocks} blocks, "
            f"{self.transactions} transactions in {self.seconds:.1f}s ({rate:,.0f} tx/s); "
            f"{self.stale_blocks} stored block(s) off the best chain skipped"
        )


def ensure_chain_tables(
    spark: SparkSession, settings: Settings, log: Callable[[str], None] = print
) -> None:
    for key in ALL_TABLES:
        tables.ensure_table(spark, settings, key, log)


_PY_ERROR = re.compile(r"(hodlflow\.[\w.]+Error|[\w.]*(?:Parse|Merkle|Pow|BlocksDir)Error): (.+)")


def _task_error(exc: Exception) -> IngestError | None:
    """Turn a Spark task failure that carries one of our errors into a clear IngestError."""
    text = str(exc)
    matches = _PY_ERROR.findall(text)
    if not matches:
        return None
    kind, message = matches[-1]
    return IngestError(f"{kind.rsplit('.', 1)[-1]}: {message.strip()}")


@step("ingest")
def run_ingest(
    spark: SparkSession,
    settings: Settings,
    start_height: int | None = None,
    end_height: int | None = None,
    log: Callable[[str], None] = print,
    until: int | None = None,
) -> IngestResult:
    """Ingest the best chain of ``settings.ingest.blocks_dir`` into the chain tables.

    ``until`` (Unix seconds): stop before the first best-chain block whose header time is at
    or after it (the end of a scheduler's data interval); combined with ``end_height`` the
    lower end wins. Heights already stored are never rolled back by a lower end: re-running an
    earlier interval changes nothing.

    Example::

        run_ingest(spark, load_settings("local", {"ingest.blocks_dir": "/data/blocks"}))
    """
    t0 = time.time()
    try:
        return _run(spark, settings, start_height, end_height, log, t0, until)
    except Exception as exc:  # Spark task failures arrive wrapped; unwrap ours
        if isinstance(exc, IngestError):
            raise
        wrapped = _task_error(exc)
        if wrapped is not None:
            raise wrapped from None
        raise


def _run(spark, settings, start_height, end_height, log, t0, until=None) -> IngestResult:
    blocks_dir = settings.ingest.blocks_dir
    if not blocks_dir:
        raise IngestError("no blocks directory: set ingest.blocks_dir (or --blocks-dir)")
    network = get_network(settings.network)
    ensure_chain_tables(spark, settings, log)
    listed = blk_files(blocks_dir)
    files = [f.path for f in listed]
    key = xor_key(blocks_dir)
    cache = HeaderCache(
        spark,
        cache_dir(settings.warehouse, blocks_dir, network.name, key, settings.check_pow),
    )
    headers, scanned = cached_headers(spark, listed, network, key, settings.check_pow, cache)
    start_hash = settings.ingest.start_hash or network.genesis_hash
    chain, stale = best_chain(headers, start_hash, settings.ingest.start_height)
    tip = chain[-1].height
    first = chain[0].height
    log(
        f"{len(files)} blk file(s)"
        + (
            f" ({scanned} scanned, the others' headers kept from earlier runs)"
            if scanned < len(files)
            else ""
        )  # fmt: skip
        + f", {len(headers)} stored blocks, best chain "
        f"{first}..{tip}, {stale} off the best chain" + (", xor-obfuscated" if key else "")
    )
    stored_last, fork = _stored_state(spark, settings, chain)
    if fork is not None:
        log(f"stored blocks from height {fork} are no longer on the best chain: rolling back")
    if until is not None:
        # The end of a scheduler's interval: stop before the first block at or after it.
        boundary = first_block_at_or_after(chain, until)
        if boundary is not None:
            below = boundary.height - 1
            end_height = below if end_height is None else min(end_height, below)
    span = plan_range(start_height, end_height, first, tip, stored_last, fork)
    if span is None:
        return IngestResult(
            start_height=None,
            end_height=None,
            blocks=0,
            transactions=0,
            stale_blocks=stale,
            seconds=time.time() - t0,
            files_scanned=scanned,
        )
    start, end = span
    wanted = [c for c in chain if start <= c.height <= end]
    # The parsed rows of the whole range are read by every table's write: kept on the local
    # disk, not the heap (cached in memory they filled the storage pool, and building the next
    # cached batch beside it ran a 4 GB heap out of memory at 10^7 transactions).
    task_bytes = int(settings.ingest.task_mb * 2**20)
    parsed = parse_chain_blocks(
        spark, files, wanted, network, key, settings.ingest.blocks_per_task, task_bytes
    ).persist(StorageLevel.DISK_ONLY)
    try:
        n_tx = write_range(spark, settings, parsed, start, end, stored_last, log)
    finally:
        parsed.unpersist()
    return IngestResult(
        start_height=start,
        end_height=end,
        blocks=len(wanted),
        transactions=n_tx,
        stale_blocks=stale,
        seconds=time.time() - t0,
        files_scanned=scanned,
    )


def plan_range(
    start_height: int | None,
    end_height: int | None,
    first: int,
    tip: int,
    stored_last: int | None,
    fork: int | None,
) -> tuple[int, int] | None:
    """The heights to (re)write, shared by both sources, or None when there is nothing to do.

    Default start: after the last stored height (the chain's first height when nothing is
    stored), lowered to ``fork`` (the lowest stored height off the best chain). A start inside
    what is stored rewrites everything from there up to at least the last stored height still on
    the chain, so the unspent set stays the one of the last height; a start past a gap after the
    last stored height is refused.
    """
    start = (
        start_height
        if start_height is not None
        else (first if stored_last is None else stored_last + 1)
    )
    if fork is not None:
        start = min(start, fork)
    if start < first:
        raise IngestError(f"start height {start} is below the chain's first height {first}")
    end = tip if end_height is None else min(end_height, tip)
    if stored_last is not None and start <= stored_last:
        # Re-ingesting inside what is stored: replace everything from start up, so the
        # unspent set stays the one of the last height.
        end = max(end, min(stored_last, tip))
    if stored_last is not None and start > stored_last + 1:
        raise IngestError(
            f"start height {start} leaves a gap after the last ingested height {stored_last}"
        )
    if start > end:
        return None
    return start, end


def _stored_state(spark, settings, chain) -> tuple[int | None, int | None]:
    """The last stored height, and the lowest stored height whose hash is not the best chain's
    (a reorg) or None; one pass over the (small) blocks table."""
    best = spark.createDataFrame(
        [(c.height, c.loc.hash) for c in chain], "height INT, best_hash STRING"
    )
    stored = tables.read_table(spark, settings, "chain.blocks").select("height", "hash")
    differs = F.col("best_hash").isNull() | (F.col("best_hash") != F.col("hash"))
    row = (
        stored.join(best, "height", "left")
        .agg(F.max("height").alias("last"), F.min(F.when(differs, F.col("height"))).alias("fork"))
        .first()
    )
    return row.last, row.fork


def write_range(spark, settings, parsed, start, end, stored_last, log) -> int:
    """Write the parsed rows of heights ``start..end`` (PARSED_SCHEMA) to every chain table in
    one atomic step; when ``start`` is at or below ``stored_last`` the stored heights from
    ``start`` up are replaced and the unspent set rolled back first. Returns the transactions
    written."""
    blocks, txs, outputs, inputs = tr.split_parsed(parsed)
    step = f"ingest {start}..{end}"
    with tables.atomic_step(spark, settings, step, ALL_TABLES):
        if stored_last is not None and start <= stored_last:
            _rollback_unspent(spark, settings, start)
        unspent = tables.read_table(spark, settings, "chain.unspent")
        resolved = tr.resolve_inputs(inputs, tr.spendable_outputs(unspent, outputs)).persist(
            StorageLevel.DISK_ONLY
        )
        try:
            unknown = resolved.filter(F.col("value_sats").isNull()).limit(5).collect()
            if unknown:
                where = "; ".join(
                    f"input {r.vin} of tx {r.txid} at height {r.height} spends "
                    f"{r.prev_txid}:{r.prev_vout}"
                    for r in unknown
                )
                raise IngestError(
                    f"input(s) spending unknown or already spent outputs: {where}. "
                    "Is the chain complete from its start, or was an earlier range skipped?"
                )
            transactions = tr.build_transactions(txs, resolved)
            cond = f"height >= {start}"
            replacing = stored_last is not None and start <= stored_last
            for key, df in (
                ("chain.blocks", tr.build_blocks(blocks, transactions)),
                ("chain.transactions", transactions),
                ("chain.outputs", outputs),
                ("chain.inputs", resolved),
            ):
                if replacing:
                    tables.replace_where(df, settings, key, cond)
                else:  # past the last stored height: nothing to replace, a plain append
                    tables.append(df, settings, key)
            _merge_unspent(spark, settings, tr.unspent_changes(outputs, resolved, start))
        finally:
            resolved.unpersist()
    n_tx = tables.read_table(spark, settings, "chain.transactions").filter(cond).count()
    log(f"wrote heights {start}..{end}")
    return n_tx


def _rollback_unspent(spark, settings, start: int) -> None:
    from delta.tables import DeltaTable

    inputs = tables.read_table(spark, settings, "chain.inputs")
    restored = tr.restored_unspent(inputs, start)
    loc = tables.table_location(settings, "chain.unspent")
    DeltaTable.forPath(spark, loc).delete(F.col("height") >= start)
    tables.append(restored, settings, "chain.unspent")


def _merge_unspent(spark, settings, changes) -> None:
    from delta.tables import DeltaTable

    target = DeltaTable.forPath(spark, tables.table_location(settings, "chain.unspent"))
    cols = tables.load_schema("chain.unspent").names
    (
        target.alias("t")
        .merge(changes.alias("s"), "t.txid = s.txid AND t.vout = s.vout")
        .whenMatchedDelete(condition="s.op = 'D'")
        .whenMatchedUpdate(condition="s.op = 'I'", set={c: f"s.{c}" for c in cols})
        .whenNotMatchedInsert(condition="s.op = 'I'", values={c: f"s.{c}" for c in cols})
        .execute()
    )


@leased("ingest")
def run_ingest_chunks(
    spark: SparkSession,
    settings: Settings,
    chunk_blocks: int,
    end_height: int | None = None,
    log: Callable[[str], None] = print,
    until: int | None = None,
) -> list[IngestResult]:
    """Ingest up to ``end_height``/``until`` (default: the tip) in steps of at most
    ``chunk_blocks`` heights, each its own atomic step: a bulk backfill that dies resumes after
    the last finished chunk. Returns one result per chunk that ingested something.
    """
    if chunk_blocks < 1:
        raise IngestError(f"chunk size must be a positive number of blocks, got {chunk_blocks}")
    done: list[IngestResult] = []
    while True:
        stored = (
            tables.read_table(spark, settings, "chain.blocks").agg(F.max("height")).first()[0]
            if tables.exists(spark, settings, "chain.blocks")
            else None
        )
        first = settings.ingest.start_height if stored is None else stored + 1
        chunk_end = first + chunk_blocks - 1
        if end_height is not None:
            chunk_end = min(chunk_end, end_height)
        result = run_ingest(spark, settings, None, chunk_end, log, until)
        if result.blocks == 0:
            return done
        log(result.summary())
        done.append(result)

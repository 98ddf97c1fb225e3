"""Read a Bitcoin Core blocks directory in parallel with Spark.

Two passes, both split across tasks: (1) every blk file is scanned for its records, reading only
the 8 framing bytes and the 80-byte header of each block; the headers (not the blocks) go to the
driver, which orders them into the best chain; (2) the blocks of the wanted height range are
read by position, parsed and turned into rows inside the tasks. Raw transactions never reach
the driver.

A directory given as a plain path or file:// URI is read by the Python tasks with seeks. On any
other Hadoop filesystem (hdfs://, s3a://) the Python tasks cannot open the files: each blk file
is read whole through Spark's binaryFile source (the JVM's Hadoop client) and handed to the
same code as an in-memory file, in both passes.

Pass 1's headers are kept per blk file (:mod:`hodlflow.ingest.header_cache`): a later run scans
only the newest file and the files that changed since.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from hodlflow.chain.blkfile import (
    XOR_FILE,
    BlocksDirError,
    Record,
    check_xor_key,
    is_blk_name,
    list_blk_files,
    read_block,
    read_xor_key,
    scan_records,
)
from hodlflow.chain.block import check_pow, parse_block, parse_header
from hodlflow.chain.errors import ParseError
from hodlflow.chain.network import Network
from hodlflow.ingest.arrow_rows import parsed_frame
from hodlflow.ingest.best_chain import ChainBlock, HeaderLoc
from hodlflow.ingest.header_cache import HeaderCache, entry_name
from hodlflow.ingest.rows import block_rows
from hodlflow.paths import hadoop_glob, hadoop_list, is_local, local_path, read_bytes


def _open(path: str):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise BlocksDirError(f"cannot read blk file {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class BlkFile:
    """A blk file as listed: its path (a local path or a Hadoop URI), length and modification
    time (ms), which say whether the headers an earlier run found in it still hold."""

    path: str
    length: int
    mtime_ms: int


def blk_files(blocks_dir: str) -> list[BlkFile]:
    """The directory's blk*.dat files in file-number order: local paths for a plain path or
    file:// URI, full URIs for a directory on another Hadoop filesystem."""
    if is_local(blocks_dir):
        out = []
        for path in list_blk_files(local_path(blocks_dir, "ingest.blocks_dir")):
            try:
                st = os.stat(path)
            except OSError as exc:
                raise BlocksDirError(f"cannot read blk file {path}: {exc.strerror}") from None
            out.append(BlkFile(path, st.st_size, st.st_mtime_ns // 1_000_000))
        return out
    listed = [
        BlkFile(*f) for f in hadoop_list(blocks_dir, "blk*.dat", "ingest.blocks_dir")
        if is_blk_name(_name(f[0]))
    ]  # fmt: skip
    if not listed:
        raise BlocksDirError(f"blocks directory {blocks_dir} holds no blk*.dat files")
    return listed


def xor_key(blocks_dir: str) -> bytes | None:
    """The directory's obfuscation key (None without xor.dat or when it is all zero)."""
    if is_local(blocks_dir):
        return read_xor_key(local_path(blocks_dir, "ingest.blocks_dir"))
    found = hadoop_glob(blocks_dir, XOR_FILE, "ingest.blocks_dir")
    if not found:
        return None
    try:
        raw = read_bytes(found[0], "ingest.blocks_dir")
    except OSError as exc:
        raise BlocksDirError(f"cannot read the xor key {found[0]}: {exc.strerror}") from None
    return check_xor_key(raw, found[0])


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _whole_files(spark: SparkSession, files: list[str]):
    """(path, content) rows of ``files`` read whole through Hadoop (Spark's binaryFile source,
    one file per task), for the Python tasks that cannot open a Hadoop URI themselves."""
    return spark.read.format("binaryFile").load(files).select("path", "content").rdd


def _scan_file(
    file_index: int, path: str, fh, network: Network, key: bytes | None, pow_check: bool
) -> Iterator[tuple]:
    for rec in scan_records(path, network, key, fh):
        raw = read_block(path, Record(rec.offset, min(rec.length, 80)), key, fh)
        if len(raw) < 80:
            raise ParseError(
                f"block record of {rec.length} bytes is shorter than a header",
                offset=rec.offset,
                where=path,
            )
        header = parse_header(raw)
        if pow_check:
            check_pow(header, where=f"{path} offset {rec.offset}", network=network)
        yield (header.hash, header.prev_hash, header.bits, header.time, file_index,
               rec.offset, rec.length)  # fmt: skip


def _scan_files(
    items: Iterator[tuple[int, str]], network: Network, key: bytes | None, pow_check: bool
) -> Iterator[tuple]:
    for file_index, path in items:
        with _open(path) as fh:
            yield from _scan_file(file_index, path, fh, network, key, pow_check)


def scan_headers(
    spark: SparkSession, files: list[str], network: Network, key: bytes | None, pow_check: bool
) -> list[HeaderLoc]:
    """Headers and positions of every block stored in ``files`` (one task per file). Local
    files are read by seeking from header to header; files on another Hadoop filesystem are
    read whole (Hadoop has no seek the Python tasks can use)."""
    return _scan_indexed(spark, list(enumerate(files)), network, key, pow_check)


def _scan_indexed(
    spark: SparkSession,
    items: list[tuple[int, str]],
    network: Network,
    key: bytes | None,
    pow_check: bool,
) -> list[HeaderLoc]:
    if not items:
        return []
    if is_local(items[0][1]):
        rdd = spark.sparkContext.parallelize(items, len(items))
        rows = rdd.mapPartitions(lambda it: _scan_files(it, network, key, pow_check))
    else:
        index = {_name(f): i for i, f in items}

        def scan(rows):
            for r in rows:
                yield from _scan_file(
                    index[_name(r.path)], r.path, io.BytesIO(r.content), network, key, pow_check
                )

        rows = _whole_files(spark, [f for _, f in items]).mapPartitions(scan)
    return [HeaderLoc(*r) for r in rows.collect()]


def cached_headers(
    spark: SparkSession,
    files: list[BlkFile],
    network: Network,
    key: bytes | None,
    pow_check: bool,
    cache: HeaderCache,
) -> tuple[list[HeaderLoc], int]:
    """:func:`scan_headers` of ``files``, reusing the headers ``cache`` holds for a file of the
    same length and modification time (see :mod:`hodlflow.ingest.header_cache`). Scans the
    other files and the newest one, stores what it scanned and drops the entries of files that
    changed or are gone. Returns the headers and the number of files scanned."""
    names = cache.names()
    entries = [entry_name(f.path, f.length, f.mtime_ms) for f in files]
    newest = len(files) - 1  # the file the node appends to
    headers: list[HeaderLoc] = []
    scan: list[tuple[int, str]] = []
    for i, name in enumerate(entries):
        kept = cache.read(name, i) if name in names and i != newest else None
        if kept is None:
            scan.append((i, files[i].path))
        else:
            headers.extend(kept)
    found = _scan_indexed(spark, scan, network, key, pow_check)
    by_file: dict[int, list[HeaderLoc]] = defaultdict(list)
    for h in found:
        by_file[h.file_index].append(h)
    for i, _ in scan:
        cache.write(entries[i], sorted(by_file[i], key=lambda h: h.offset))
    for name in names - set(entries):
        cache.drop(name)
    return headers + found, len(scan)


PARSED_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType(), False),
        T.StructField(
            "b",
            T.StructType(
                [
                    T.StructField("height", T.IntegerType()),
                    T.StructField("hash", T.StringType()),
                    T.StructField("prev_hash", T.StringType()),
                    T.StructField("time_s", T.LongType()),
                    T.StructField("median_time_s", T.LongType()),
                    T.StructField("day_n", T.IntegerType()),
                    T.StructField("version", T.IntegerType()),
                    T.StructField("merkle_root", T.StringType()),
                    T.StructField("bits", T.LongType()),
                    T.StructField("difficulty", T.DoubleType()),
                    T.StructField("nonce", T.LongType()),
                    T.StructField("size", T.IntegerType()),
                    T.StructField("stripped_size", T.IntegerType()),
                    T.StructField("weight", T.IntegerType()),
                    T.StructField("tx_count", T.IntegerType()),
                    T.StructField("output_sats", T.LongType()),
                    T.StructField("subsidy_sats", T.LongType()),
                    T.StructField("coinbase_sats", T.LongType()),
                    T.StructField("coinbase_tag", T.StringType()),
                    T.StructField("bip34_height", T.LongType()),
                ]
            ),
        ),
        T.StructField(
            "t",
            T.StructType(
                [
                    T.StructField("txid", T.StringType()),
                    T.StructField("wtxid", T.StringType()),
                    T.StructField("height", T.IntegerType()),
                    T.StructField("day_n", T.IntegerType()),
                    T.StructField("block_hash", T.StringType()),
                    T.StructField("tx_index", T.IntegerType()),
                    T.StructField("is_coinbase", T.BooleanType()),
                    T.StructField("size", T.IntegerType()),
                    T.StructField("vsize", T.IntegerType()),
                    T.StructField("weight", T.IntegerType()),
                    T.StructField("version", T.LongType()),
                    T.StructField("locktime", T.LongType()),
                    T.StructField("has_witness", T.BooleanType()),
                    T.StructField("input_count", T.IntegerType()),
                    T.StructField("output_count", T.IntegerType()),
                    T.StructField("output_sats", T.LongType()),
                ]
            ),
        ),
        T.StructField(
            "o",
            T.StructType(
                [
                    T.StructField("txid", T.StringType()),
                    T.StructField("vout", T.IntegerType()),
                    T.StructField("height", T.IntegerType()),
                    T.StructField("day_n", T.IntegerType()),
                    T.StructField("tx_index", T.IntegerType()),
                    T.StructField("is_coinbase", T.BooleanType()),
                    T.StructField("value_sats", T.LongType()),
                    T.StructField("script_type", T.StringType()),
                    T.StructField("address", T.StringType()),
                    T.StructField("spendable", T.BooleanType()),
                ]
            ),
        ),
        T.StructField(
            "i",
            T.StructType(
                [
                    T.StructField("txid", T.StringType()),
                    T.StructField("vin", T.IntegerType()),
                    T.StructField("height", T.IntegerType()),
                    T.StructField("day_n", T.IntegerType()),
                    T.StructField("tx_index", T.IntegerType()),
                    T.StructField("prev_txid", T.StringType()),
                    T.StructField("prev_vout", T.LongType()),
                    T.StructField("sequence", T.LongType()),
                ]
            ),
        ),
    ]
)


# One task's blocks: a blk file and its wanted blocks (height, median time, offset, length,
# hash), as _parse_slice reads them.
SLICE_SCHEMA = (
    "path string, blocks array<struct<height: int, median_time: bigint, offset: bigint, "
    "length: bigint, hash: string>>"
)


def _parse_blocks(
    path: str,
    fh,
    blocks: list[tuple[int, int, int, int, str]],
    network: Network,
    key: bytes | None,
    genesis_hash: str,
) -> Iterator[tuple]:
    for height, median_time, offset, length, expected_hash in blocks:
        where = f"{path} offset {offset} (height {height})"
        raw = read_block(path, Record(offset, length), key, fh)
        block = parse_block(raw, where=path, base_offset=offset)
        if block.hash != expected_hash:
            raise ParseError(
                f"block at height {height} changed while reading: header hash "
                f"{expected_hash}, now {block.hash}",
                offset=offset,
                where=path,
            )
        yield from block_rows(
            block, height, median_time, network, block.hash == genesis_hash, where
        )


def _parse_slice(
    items: Iterator[tuple[str, list[tuple[int, int, int, int, str]]]],
    network: Network,
    key: bytes | None,
    genesis_hash: str,
) -> Iterator[tuple]:
    for path, blocks in items:
        with _open(path) as fh:
            yield from _parse_blocks(path, fh, blocks, network, key, genesis_hash)


def task_slices(
    blocks: list[ChainBlock], blocks_per_task: int, task_bytes: int
) -> Iterator[list[ChainBlock]]:
    """Consecutive runs of ``blocks`` (one file's, in file order), each one task's work: a run
    ends after ``blocks_per_task`` blocks or once its blocks hold ``task_bytes`` bytes or more.
    The bytes set the size where blocks are full (recent mainnet's ~1.5 MB: about 40 a task
    at 64 MB); the count where they are small (2009's, a simulated chain's), whose tasks would
    otherwise be too many and each too small for its fixed cost.

    >>> from hodlflow.ingest.best_chain import HeaderLoc
    >>> def b(n): return ChainBlock(0, 0, HeaderLoc("h", "p", 0, 0, 0, 0, n))
    >>> [len(s) for s in task_slices([b(10)] * 7, 3, 1000)]
    [3, 3, 1]
    >>> [len(s) for s in task_slices([b(10), b(500), b(600), b(10), b(10)], 100, 1000)]
    [3, 2]
    """
    part: list[ChainBlock] = []
    size = 0
    for block in blocks:
        part.append(block)
        size += block.loc.length
        if len(part) >= blocks_per_task or size >= task_bytes:
            yield part
            part, size = [], 0
    if part:
        yield part


def parse_chain_blocks(
    spark: SparkSession,
    files: list[str],
    chain: list[ChainBlock],
    network: Network,
    key: bytes | None,
    blocks_per_task: int,
    task_bytes: int,
) -> DataFrame:
    """Parse the blocks of ``chain`` into the tagged row DataFrame of :data:`PARSED_SCHEMA`.

    Local blocks are grouped per file in slices (:func:`task_slices`: at most
    ``blocks_per_task`` blocks and about ``task_bytes`` of them); each slice is one task.
    Files on another Hadoop filesystem are read whole, one task per file holding wanted blocks.
    """
    by_file: dict[int, list[ChainBlock]] = {}
    for cb in chain:
        by_file.setdefault(cb.loc.file_index, []).append(cb)
    genesis = network.genesis_hash
    if files and not is_local(files[0]):
        wanted = {
            _name(files[i]): [
                (c.height, c.median_time, c.loc.offset, c.loc.length, c.loc.hash)
                for c in sorted(blocks, key=lambda c: c.loc.offset)
            ]
            for i, blocks in by_file.items()
        }
        plan = spark.sparkContext.broadcast(wanted)

        def parse(rows):
            for r in rows:
                fh = io.BytesIO(r.content)
                yield from _parse_blocks(
                    r.path, fh, plan.value[_name(r.path)], network, key, genesis
                )

        if not by_file:
            return spark.createDataFrame([], PARSED_SCHEMA)
        rows = _whole_files(spark, [files[i] for i in sorted(by_file)]).mapPartitions(parse)
        return spark.createDataFrame(rows, PARSED_SCHEMA, verifySchema=False)
    slices = [
        (files[file_index], [(c.height, c.median_time, c.loc.offset, c.loc.length, c.loc.hash)
                             for c in part])
        for file_index in sorted(by_file)
        for part in task_slices(
            sorted(by_file[file_index], key=lambda c: c.loc.offset), blocks_per_task, task_bytes
        )
    ]  # fmt: skip
    # The rows reach Spark as Arrow batches (hodlflow.ingest.arrow_rows), not pickled objects.
    return parsed_frame(
        spark, slices, SLICE_SCHEMA, lambda it: _parse_slice(it, network, key, genesis),
        PARSED_SCHEMA,
    )  # fmt: skip

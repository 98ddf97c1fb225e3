"""Read a height range of blocks from a node's JSON-RPC in parallel with Spark.

The range is cut into slices of ``blocks_per_task`` heights; each slice is one task, which opens
its own RPC connection, asks for the block hashes of its heights (and of the 10 heights before
it, for the median time past) in one batch, fetches the raw blocks (``getblock HASH 0``) in
batches of ``batch_blocks`` and parses them with hodlflow's parser into the same tagged rows as
the blocks-directory reader. So throughput grows with the executors, raw blocks never reach the
driver, and the node needs no ``txindex``.

Each task checks that its blocks link (every block's prev_hash is the hash before it); the
caller checks the links between slices and both ends of the range, because a reorg while the
tasks run could mix two chains.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyspark.sql import DataFrame, SparkSession

from hodlflow.chain.block import parse_block, parse_header
from hodlflow.chain.errors import ParseError
from hodlflow.chain.network import Network
from hodlflow.chain.rpc import RpcClient, RpcConfig
from hodlflow.ingest.arrow_rows import parsed_frame
from hodlflow.ingest.blocks_dir import PARSED_SCHEMA
from hodlflow.ingest.rows import block_rows

MEDIAN_WINDOW = 11  # Bitcoin Core's median time past: this block and the 10 before it


class ChainChangedError(RuntimeError):
    """The node's chain changed while a range was read (a reorg during the ingest)."""


def _fetch_slice(
    items: Iterator[tuple[int, int]],
    config: RpcConfig,
    network: Network,
    first_height: int,
    batch_blocks: int,
) -> Iterator[tuple]:
    genesis = network.genesis_hash
    with RpcClient(config) as client:
        for lo, hi in items:
            before = max(first_height, lo - (MEDIAN_WINDOW - 1))
            hashes = client.block_hashes(range(before, hi + 1))
            window = [parse_header(h).time for h in client.raw_headers(hashes[: lo - before])]
            prev = hashes[lo - before - 1] if lo > before else None
            wanted = hashes[lo - before :]
            for i in range(0, len(wanted), batch_blocks):
                part = wanted[i : i + batch_blocks]
                for j, raw in enumerate(client.raw_blocks(part)):
                    height = lo + i + j
                    where = f"block {part[j]} at height {height} from the node at {client.url}"
                    block = parse_block(raw, where=where)
                    if block.hash != part[j]:
                        raise ParseError(
                            f"the node sent block {block.hash} for hash {part[j]}", where=where
                        )
                    if prev is not None and block.header.prev_hash != prev:
                        raise ChainChangedError(
                            f"block at height {height} does not follow the block before it: "
                            "the node's chain changed while reading (a reorg); run again"
                        )
                    prev = block.hash
                    window.append(block.header.time)
                    if len(window) > MEDIAN_WINDOW:
                        window.pop(0)
                    median = sorted(window)[len(window) // 2]
                    yield from block_rows(
                        block, height, median, network, block.hash == genesis, where
                    )


def fetch_chain_blocks(
    spark: SparkSession,
    config: RpcConfig,
    network: Network,
    start: int,
    end: int,
    first_height: int,
    blocks_per_task: int,
    batch_blocks: int,
) -> DataFrame:
    """Fetch and parse heights ``start..end`` into the tagged rows of
    :data:`hodlflow.ingest.blocks_dir.PARSED_SCHEMA`.

    ``first_height`` is the first height of the followed chain: the median time past of a
    block looks back no further, as in the blocks-directory reader.
    """
    slices = [
        (lo, min(lo + blocks_per_task - 1, end)) for lo in range(start, end + 1, blocks_per_task)
    ]
    return parsed_frame(
        spark, slices, "lo bigint, hi bigint",
        lambda it: _fetch_slice(it, config, network, first_height, batch_blocks), PARSED_SCHEMA,
    )  # fmt: skip

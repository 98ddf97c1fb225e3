"""Known entities from outside the chain: mining pools and exchange address seeds.

Two kinds of file, both checked on load with errors that name the file and the place:

* a pool list in the format of mempool's public mining-pools list (``conf/pools.json``): a JSON
  array of ``{"id": int, "name": str, "addresses": [str], "tags": [str], "link": str}``, where
  each tag is a case-insensitive regular expression searched in the coinbase script's text;
* address seeds (``conf/labels/*.csv``): a CSV with a header naming ``address`` and ``label``
  (other columns, e.g. ``source``, are ignored), ``#`` comment lines and blank lines skipped.

:func:`match_pool` names the pool of one block; :func:`block_pools` does the same for a whole
``chain.blocks`` table in Spark and gives the same answer row for row.

>>> pools = [Pool(1, "AntPool", ("1AntAddr",), (re.compile("/AntPool/", re.I),), "")]
>>> match_pool("Mined by /antpool/ x", [], pools).name
'AntPool'
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType

from hodlflow.entities.components import require_columns
from hodlflow.paths import located, read_bytes

_INT32_MAX = 2**31 - 1  # pool ids go into an int column


class LabelsError(ValueError):
    """A pool list or label seed file is unreadable or invalid; the message names the file and
    the array index and field (pool lists) or the line (seed CSVs)."""


@dataclass(frozen=True)
class Pool:
    """One mining pool: its payout addresses and its coinbase tags (compiled, case-insensitive
    regular expressions, searched in the coinbase script's printable text)."""

    id: int
    name: str
    addresses: tuple[str, ...]
    tags: tuple[re.Pattern[str], ...]
    link: str


# -- pool lists -------------------------------------------------------------------------------


def _read_text(path: str, setting: str) -> str:
    try:
        return read_bytes(path, setting).decode("utf-8-sig")
    except OSError as e:
        raise LabelsError(f"{path}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise LabelsError(f"{path}: not UTF-8 text: {e}") from e


def _typename(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _field(path: str, i: int, entry: dict, key: str, kind: type) -> Any:
    if key not in entry:
        raise LabelsError(f"{path}: [{i}]: missing field {key!r}")
    v = entry[key]
    # bool is an int in Python, but ``"id": true`` is a mistake in the file.
    if not isinstance(v, kind) or isinstance(v, bool):
        raise LabelsError(f"{path}: [{i}].{key}: must be {kind.__name__}, got {_typename(v)} {v!r}")
    return v


def _strings(path: str, i: int, entry: dict, key: str) -> list[str]:
    values = _field(path, i, entry, key, list)
    for j, v in enumerate(values):
        if not isinstance(v, str):
            raise LabelsError(f"{path}: [{i}].{key}[{j}]: must be str, got {_typename(v)} {v!r}")
        if not v.strip():
            raise LabelsError(f"{path}: [{i}].{key}[{j}]: must not be empty")
    return values


def load_pools(path: str | Path) -> list[Pool]:
    """Read a mining-pool list in mempool's format; pools in file order.

    Each entry needs ``id`` (int, 0 to 2^31-1, unique), ``name`` (non-empty str),
    ``addresses`` (list of str; one address belongs to at most one pool; repeats within a pool
    are dropped), ``tags`` (list of str, each a regular expression, compiled case-insensitive;
    an empty tag would match every coinbase and is refused) and ``link`` (str, may be empty).
    Other keys are ignored. Raises :class:`LabelsError` naming the file and ``[index].field``.
    """
    path = located(str(path), "entities.pools")
    text = _read_text(path, "entities.pools")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabelsError(f"{path}: not JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e
    if not isinstance(raw, list):
        raise LabelsError(f"{path}: must be a JSON array of pools, got a {_typename(raw)}")
    pools: list[Pool] = []
    id_at: dict[int, int] = {}
    address_at: dict[str, tuple[int, int]] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise LabelsError(f"{path}: [{i}]: must be an object, got {_typename(entry)}")
        pool_id = _field(path, i, entry, "id", int)
        if not 0 <= pool_id <= _INT32_MAX:
            raise LabelsError(
                f"{path}: [{i}].id: must be between 0 and {_INT32_MAX}, got {pool_id}"
            )
        if pool_id in id_at:
            raise LabelsError(
                f"{path}: [{i}].id: id {pool_id} is already used by [{id_at[pool_id]}]"
            )
        id_at[pool_id] = i
        name = _field(path, i, entry, "name", str)
        if not name.strip():
            raise LabelsError(f"{path}: [{i}].name: must not be empty")
        addresses = _strings(path, i, entry, "addresses")
        for j, a in enumerate(addresses):
            seen = address_at.get(a)
            if seen is not None and seen[0] != i:
                raise LabelsError(
                    f"{path}: [{i}].addresses[{j}]: address {a} is already in "
                    f"[{seen[0]}].addresses[{seen[1]}]"
                )
            address_at.setdefault(a, (i, j))
        tags = []
        for j, t in enumerate(_strings(path, i, entry, "tags")):
            try:
                tags.append(re.compile(t, re.IGNORECASE))
            except re.error as e:
                raise LabelsError(
                    f"{path}: [{i}].tags[{j}]: not a valid regular expression {t!r}: {e}"
                ) from e
        link = _field(path, i, entry, "link", str)
        pools.append(Pool(pool_id, name, tuple(dict.fromkeys(addresses)), tuple(tags), link))
    return pools


# -- label seeds ------------------------------------------------------------------------------


class _Lines:
    """The lines of a file without blank and ``#`` lines; ``last`` is the number (1-based) of
    the last line handed out."""

    def __init__(self, text: str):
        self._text = text
        self.last = 0

    def __iter__(self) -> Iterator[str]:
        # StringIO splits on "\n" only, as the csv module does (a "\r\n" ending stays on
        # its line), so the numbers are the file's own.
        for n, line in enumerate(io.StringIO(self._text), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            self.last = n
            yield line


def load_label_seeds(path: str | Path) -> list[tuple[str, str]]:
    """Read an address seed CSV: ``(address, label)`` pairs in file order.

    The first line that is neither blank nor a ``#`` comment is the header; it must name the
    columns ``address`` and ``label`` (others are ignored). Values are stripped of surrounding
    blanks. An empty address or label, or an address given two different labels, is an error
    naming the file and line; the same address given the same label again is kept once.
    """
    path = located(str(path), "entities.label_seeds")
    lines = _Lines(_read_text(path, "entities.label_seeds"))
    rows = csv.reader(lines)
    header = next(rows, None)
    if header is None:
        raise LabelsError(f"{path}: no header line (expected columns address,label)")
    names = [h.strip() for h in header]
    if "address" not in names or "label" not in names:
        raise LabelsError(
            f"{path}: line {lines.last}: the header must name the columns address and label, "
            f"got {','.join(names)}"
        )
    ai, li = names.index("address"), names.index("label")
    label_at: dict[str, tuple[str, int]] = {}
    seeds: list[tuple[str, str]] = []
    for row in rows:
        # A quoted value may span lines: report the line the row starts on.
        line = lines.last - sum(v.count("\n") for v in row)
        address = row[ai].strip() if ai < len(row) else ""
        label = row[li].strip() if li < len(row) else ""
        if not address:
            raise LabelsError(f"{path}: line {line}: empty address")
        if not label:
            raise LabelsError(f"{path}: line {line}: empty label for address {address}")
        seen = label_at.get(address)
        if seen is None:
            label_at[address] = (label, line)
            seeds.append((address, label))
        elif seen[0] != label:
            raise LabelsError(
                f"{path}: line {line}: address {address} is labelled {label!r} here and "
                f"{seen[0]!r} on line {seen[1]}"
            )
    return seeds


# -- matching ---------------------------------------------------------------------------------


def _address_match(addresses: Iterable[str], pools: Sequence[Pool]) -> int | None:
    """Index of the first pool (list order) holding any of ``addresses``."""
    wanted = set(addresses)
    for i, pool in enumerate(pools):
        if not wanted.isdisjoint(pool.addresses):
            return i
    return None


def _tag_match(text: str | None, pools: Sequence[Pool]) -> int | None:
    """Index of the first pool (list order) with a tag found in ``text``."""
    if text is None:
        return None
    for i, pool in enumerate(pools):
        if any(t.search(text) for t in pool.tags):
            return i
    return None


def match_pool(
    coinbase_text: str | None, payout_addresses: Iterable[str], pools: Sequence[Pool]
) -> Pool | None:
    """The pool that mined a block, or None.

    An address match wins: the first pool (list order) holding any of the coinbase's payout
    addresses. Otherwise the first pool with a tag that ``search``es ``coinbase_text`` (the
    printable text of the coinbase script, as ``chain.blocks.coinbase_tag``); None text
    matches no tag. ``None`` addresses in ``payout_addresses`` are ignored.
    """
    i = _address_match((a for a in payout_addresses if a is not None), pools)
    if i is None:
        i = _tag_match(coinbase_text, pools)
    return None if i is None else pools[i]


def block_pools(
    spark: SparkSession, blocks: DataFrame, coinbase_outputs: DataFrame, pools: Sequence[Pool]
) -> DataFrame:
    """The pool of every block, as :func:`match_pool` names it.

    Input: ``blocks`` with ``height`` and ``coinbase_tag`` (string, nullable: the printable text
    of the coinbase script, as ``chain.blocks``), one row per height; ``coinbase_outputs`` with
    ``height`` and ``address`` (the coinbase transactions' outputs, e.g. ``chain.outputs``
    where ``is_coinbase``; NULL addresses are ignored, heights not in ``blocks`` too).

    Output: one row per row of ``blocks``: ``height``, ``pool_id`` (int), ``pool_name``
    (string), ``matched_by`` (string): ``'address'`` when a coinbase output pays an address of
    a pool (the first such pool in list order), else ``'tag'`` when a pool's tag is found in
    ``coinbase_tag`` (the first such pool), else all three NULL.

    The pool list is small and travels with the plan: its addresses as a broadcast join, its
    tags inside a Python UDF that runs the same code as :func:`match_pool` (so Python's regular
    expression rules apply, not Java's). Nothing is collected to the driver.
    """
    require_columns(blocks, ("height", "coinbase_tag"), "blocks")
    require_columns(coinbase_outputs, ("height", "address"), "coinbase_outputs")
    pools = list(pools)
    pool_table = F.broadcast(
        spark.createDataFrame(
            [(i, p.id, p.name) for i, p in enumerate(pools)],
            "pool_index int, pool_id int, pool_name string",
        )
    )
    address_table = F.broadcast(
        spark.createDataFrame(
            [(a, i) for i, p in enumerate(pools) for a in p.addresses],
            "address string, pool_index int",
        )
    )
    by_address = (
        coinbase_outputs.select("height", "address")
        .join(address_table, "address")
        .groupBy("height")
        .agg(F.min("pool_index").alias("address_index"))
    )
    # Plain (pickled) rows: one short string per block; Arrow needs pyarrow, not a dependency.
    tag_index = F.udf(lambda text: _tag_match(text, pools), IntegerType(), useArrow=False)
    # Many blocks share a tag: match each distinct tag once, then join back (null-safe).
    tags = (
        blocks.select("coinbase_tag")
        .distinct()
        .withColumn("tag_index", tag_index("coinbase_tag"))
        .withColumnRenamed("coinbase_tag", "_tag")
    )
    matched = (
        blocks.select("height", "coinbase_tag")
        .join(by_address, "height", "left")
        .join(tags, F.col("coinbase_tag").eqNullSafe(F.col("_tag")), "left")
        .select(
            "height",
            F.coalesce("address_index", "tag_index").alias("pool_index"),
            F.when(F.col("address_index").isNotNull(), F.lit("address"))
            .when(F.col("tag_index").isNotNull(), F.lit("tag"))
            .alias("matched_by"),
        )
    )
    return matched.join(pool_table, "pool_index", "left").select(
        "height", "pool_id", "pool_name", "matched_by"
    )


__all__ = [
    "LabelsError",
    "Pool",
    "block_pools",
    "load_label_seeds",
    "load_pools",
    "match_pool",
]

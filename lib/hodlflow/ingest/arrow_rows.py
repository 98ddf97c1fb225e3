"""Tagged rows → Arrow record batches: the columnar hand-off from the parsing tasks to Spark.

The parser yields one tuple per block, transaction, output and input
(:func:`hodlflow.ingest.rows.block_rows`). Handed to Spark as Python objects they are pickled
one by one and rebuilt as Java objects, then as Spark rows: a quarter of the parse stage's time
on full blocks (docs/benchmarks.md, 2026-12-07). Here the
tuples of each kind are gathered into columns (one C-level transposition per batch) and turned
into Arrow arrays, so the rows cross to the JVM as Arrow record batches through
``DataFrame.mapInArrow`` (columns of fixed-width values and string buffers, read in place).

Each batch holds rows of one kind: its ``kind`` column is constant, the struct column of that
kind holds the values and the three others are all null. The rows are those of the
``blocks_dir.PARSED_SCHEMA`` tagged union, so the DataFrame is the one ``createDataFrame``
built from the tuples, value for value.

Runs inside the Python tasks (pyarrow is imported there, not by the driver's modules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from hodlflow.ingest.rows import KIND_BLOCK, KIND_INPUT, KIND_OUTPUT, KIND_TX

# Rows of one kind per record batch: big enough that the per-batch cost vanishes, small enough
# that a task holds a few MB (an output row is ~150 bytes).
BATCH_ROWS = 16_384

_POSITION = {KIND_BLOCK: 1, KIND_TX: 2, KIND_OUTPUT: 3, KIND_INPUT: 4}


def arrow_schema(schema: T.StructType):
    """The Arrow schema Spark itself reads a ``mapInArrow`` result of ``schema`` as."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


def tagged_batches(rows: Iterable[tuple], schema, batch_rows: int = BATCH_ROWS) -> Iterator:
    """Record batches (Arrow ``schema``, of :func:`arrow_schema`) of the tagged ``rows``
    ((kind, block, tx, output, input) tuples, one part set): each batch ``batch_rows`` rows of
    one kind at most; a kind's rows keep their order."""
    pending: dict[str, list[tuple]] = {k: [] for k in _POSITION}
    for row in rows:
        kind = row[0]
        part = pending[kind]
        part.append(row[_POSITION[kind]])
        if len(part) >= batch_rows:
            yield _batch(kind, part, schema)
            pending[kind] = []
    for kind, part in pending.items():
        if part:
            yield _batch(kind, part, schema)


def _batch(kind: str, values: list[tuple], schema):
    import pyarrow as pa

    n = len(values)
    columns: list[Any] = [pa.array([kind] * n, pa.string())]
    for position, field in enumerate(schema):
        if position == 0:
            continue
        if position != _POSITION[kind]:
            columns.append(pa.nulls(n, field.type))
            continue
        children = [
            pa.array(column, type=child.type)
            for column, child in zip(zip(*values, strict=True), field.type, strict=True)
        ]
        columns.append(pa.StructArray.from_arrays(children, fields=list(field.type)))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _plain(value: Any) -> Any:
    """A row read back from Arrow as the tuples it was given as: structs (dicts) become
    tuples, lists stay lists."""
    if isinstance(value, dict):
        return tuple(_plain(v) for v in value.values())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parsed_frame(
    spark: SparkSession,
    items: list,
    items_schema: str,
    parse: Callable[[Iterator[tuple]], Iterable[tuple]],
    schema: T.StructType,
) -> DataFrame:
    """The DataFrame of ``schema`` (a tagged-row schema) that ``parse`` yields from ``items``,
    one task per item: ``parse`` gets an iterator of the items of its task (tuples of
    ``items_schema``'s fields, as given) and yields tagged rows, which reach Spark as Arrow
    batches (:func:`tagged_batches`)."""
    if not items:
        return spark.createDataFrame([], schema)
    frame = spark.sparkContext.parallelize(items, len(items)).toDF(items_schema)
    target = arrow_schema(schema)

    def run(batches):
        def items_of():
            for batch in batches:
                yield from (_plain(r) for r in batch.to_pylist())

        yield from tagged_batches(parse(items_of()), target)

    return frame.mapInArrow(run, schema)

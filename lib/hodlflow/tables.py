"""The table contracts of ``schemas/`` and the small Delta I/O layer every stage writes through.

Each ``schemas/<db>.<table>.yaml`` file names the columns (type, nullability, comment) and the
partitioning of one Delta table. Tables are created with those columns, registered in the
catalog under ``<db_prefix><db>.<table>`` at ``<warehouse>/<db_prefix><db>/<table>``, and
every write is conformed to the contract first.

Delta commits one table at a time. A step that writes several tables wraps its writes in
:func:`atomic_step`: it records each table's version in a journal before the first write and,
if the step fails (or the process dies and the next run finds the journal), restores every
table to its recorded version, so a failed step leaves the tables as they were.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hodlflow.config import PROJECT_ROOT, Settings
from hodlflow.paths import hadoop_fs, write_bytes

SCHEMA_DIR = PROJECT_ROOT / "schemas"

_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}


class SchemaError(ValueError):
    """A DataFrame does not meet a table contract; the message names missing and present columns."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    comment: str


@dataclass(frozen=True)
class TableSchema:
    key: str  # "<db>.<table>" without the prefix
    description: str
    partition_by: tuple[str, ...]
    columns: tuple[Column, ...]
    # Columns queries filter by: `hodlflow maintain` Z-orders the table's files on them.
    zorder_by: tuple[str, ...] = ()

    @property
    def database(self) -> str:
        return self.key.split(".")[0]

    @property
    def table(self) -> str:
        return self.key.split(".")[1]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def struct(self) -> T.StructType:
        return T.StructType(
            [T.StructField(c.name, _TYPES[c.type], c.nullable) for c in self.columns]
        )


@cache
def load_schema(key: str) -> TableSchema:
    """The contract of one table, e.g. ``load_schema("chain.blocks")``."""
    path = SCHEMA_DIR / f"{key}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))
        raise SchemaError(f"no table contract {path}; known tables: {known}")
    raw = yaml.safe_load(path.read_text())
    cols = []
    for c in raw["columns"]:
        if c["type"] not in _TYPES:
            raise SchemaError(f"{path}: column {c['name']} has unknown type {c['type']!r}")
        cols.append(
            Column(c["name"], c["type"], bool(c.get("nullable", True)), c.get("comment", ""))
        )
    partition_by = tuple(raw.get("partition_by") or ())
    zorder_by = tuple(raw.get("zorder_by") or ())
    names = {c.name for c in cols}
    for name in zorder_by:
        if name not in names or name in partition_by:
            raise SchemaError(
                f"{path}: zorder_by column {name!r} must be a column that is not a partition "
                f"column; columns: {sorted(names)}, partition_by: {list(partition_by)}"
            )
    return TableSchema(
        key=raw["table"],
        description=" ".join(str(raw.get("description", "")).split()),
        partition_by=partition_by,
        columns=tuple(cols),
        zorder_by=zorder_by,
    )


def qualified_name(settings: Settings, key: str) -> str:
    db, table = key.split(".")
    return f"{settings.db_prefix}{db}.{table}"


def table_location(settings: Settings, key: str) -> str:
    db, table = key.split(".")
    return f"{settings.warehouse.rstrip('/')}/{settings.db_prefix}{db}/{table}"


def _sql_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# A Delta log file that makes a commit (or a checkpoint of them): anything else under
# ``_delta_log`` (a ``.tmp`` being written, its ``.crc``) is not yet part of the table.
_COMMITTED_LOG = re.compile(r"\d{20}\.(json|checkpoint(\.\d+\.\d+)?\.parquet)|_last_checkpoint")


def clear_unfinished_creation(spark: SparkSession, settings: Settings, key: str) -> bool:
    """Delete the location of ``key`` when it holds only what a create killed before its first
    commit leaves: a ``_delta_log`` with no commit in it (a temporary file, empty folders), and
    no data file. Delta refuses to create a table on a non-empty location that is not a table,
    so without this one kill at the wrong moment would stop every later run of the step.
    Anything else (a table, a data file, a commit) is left as it is. Returns whether it
    deleted something."""
    location = table_location(settings, key)
    fs, hpath = hadoop_fs(spark, location)
    if not fs.exists(hpath) or exists(spark, settings, key):
        return False
    files = fs.listFiles(hpath, True)
    while files.hasNext():
        path = files.next().getPath()
        parent = path.getParent().getName()
        in_log = parent == "_delta_log" or path.getParent().getParent().getName() == "_delta_log"
        if not in_log or _COMMITTED_LOG.fullmatch(path.getName()):
            return False
    return bool(fs.delete(hpath, True))


def ensure_table(
    spark: SparkSession, settings: Settings, key: str, log: Callable[[str], None] = print
) -> str:
    """Create the database and the Delta table of ``key`` when missing; return its name.

    The remains of a create killed before its first commit are cleared first (said through
    ``log``): :func:`clear_unfinished_creation`. An existing table that lacks a column of the
    contract (written by an earlier version) raises :class:`SchemaError` naming them."""
    schema = load_schema(key)
    name = qualified_name(settings, key)
    if clear_unfinished_creation(spark, settings, key):
        log(
            f"cleared {table_location(settings, key)}: the remains of a creation of {key} "
            "stopped before its first commit"
        )
    db = name.split(".")[0]
    spark.sql(
        f"CREATE DATABASE IF NOT EXISTS {db} LOCATION "
        f"{_sql_str(settings.warehouse.rstrip('/') + '/' + db)}"
    )
    cols = ",\n  ".join(
        f"{c.name} {c.type.upper()}{'' if c.nullable else ' NOT NULL'} COMMENT {_sql_str(c.comment)}"
        for c in schema.columns
    )
    parts = f"PARTITIONED BY ({', '.join(schema.partition_by)})" if schema.partition_by else ""
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {name} (\n  {cols}\n) USING delta {parts} "
        f"LOCATION {_sql_str(table_location(settings, key))} "
        f"COMMENT {_sql_str(schema.description)}"
    )
    location = table_location(settings, key)
    have = set(spark.read.format("delta").load(location).columns)
    missing = [c for c in schema.names if c not in have]
    if missing:
        raise SchemaError(
            f"{key} at {location} lacks the column(s) {missing} of its contract "
            f"(schemas/{key}.yaml): an earlier version of hodlflow wrote it. Rebuild the tables "
            f"of {db} and of the steps after it with this version: in a new warehouse, or after "
            f"DROP DATABASE {db} CASCADE and deleting {settings.warehouse.rstrip('/')}/{db}"
        )
    return name


def conform(df: DataFrame, key: str) -> DataFrame:
    """Select the contract's columns in order, cast to the contract's types.

    Raises :class:`SchemaError` naming the missing columns and the present ones.
    """
    schema = load_schema(key)
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{key}: missing column(s) {missing}; the DataFrame has {sorted(df.columns)}"
        )
    return df.select([F.col(c.name).cast(_TYPES[c.type]).alias(c.name) for c in schema.columns])


def exists(spark: SparkSession, settings: Settings, key: str) -> bool:
    """Whether the Delta table of ``key`` exists (it has a commit)."""
    jvm = spark.sparkContext._jvm
    location = table_location(settings, key)
    return bool(jvm.io.delta.tables.DeltaTable.isDeltaTable(spark._jsparkSession, location))


def read_table(spark: SparkSession, settings: Settings, key: str) -> DataFrame:
    return spark.read.format("delta").load(table_location(settings, key))


def _clustered(df: DataFrame, key: str) -> DataFrame:
    """Shuffle rows so each partition value (a day) is written by one task: one file per day
    instead of one per day and task (hundreds of tiny files on a multi-year range)."""
    parts = load_schema(key).partition_by
    return df.repartition(*parts) if parts else df


def replace_where(df: DataFrame, settings: Settings, key: str, condition: str) -> None:
    """Atomically replace the rows matching ``condition`` with ``df`` (one Delta commit)."""
    (
        _clustered(conform(df, key), key)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", condition)
        .save(table_location(settings, key))
    )


def append(df: DataFrame, settings: Settings, key: str) -> None:
    _clustered(conform(df, key), key).write.format("delta").mode("append").save(
        table_location(settings, key)
    )


def delete_where(spark: SparkSession, settings: Settings, key: str, condition: str) -> None:
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, table_location(settings, key)).delete(condition)


def table_version(spark: SparkSession, location: str) -> int:
    """The latest version of the Delta table at ``location``: the highest ``N.json`` commit file
    of its ``_delta_log`` (a listing, no Spark job; commits are always JSON files)."""
    fs, hpath = _fs(spark, f"{location.rstrip('/')}/_delta_log")
    versions = [
        int(name[:-5])
        for name in (status.getPath().getName() for status in fs.listStatus(hpath))
        if name.endswith(".json") and name[:-5].isdigit()
    ]
    if not versions:
        raise SchemaError(f"{location} is not a Delta table: no commit in its _delta_log")
    return max(versions)


def created_ms(spark: SparkSession, location: str) -> int | None:
    """When the Delta table at ``location`` was created: the modification time (epoch ms) of its
    first commit file, ``_delta_log/00000000000000000000.json``; None once Delta's log cleanup
    has deleted that file (it keeps 30 days of log by default)."""
    fs, hpath = _fs(spark, f"{location.rstrip('/')}/_delta_log/{0:020d}.json")
    if not fs.exists(hpath):
        return None
    return int(fs.getFileStatus(hpath).getModificationTime())


# ---------------------------------------------------------------------------- atomic steps


def _journal_dir(settings: Settings) -> str:
    return f"{settings.warehouse.rstrip('/')}/_hodlflow/journal/{settings.db_prefix or 'default'}"


def _fs(spark: SparkSession, path: str):
    return hadoop_fs(spark, path)


def _list_journals(spark: SparkSession, settings: Settings) -> list[str]:
    fs, hpath = _fs(spark, _journal_dir(settings))
    if not fs.exists(hpath):
        return []
    return [str(s.getPath().toString()) for s in fs.listStatus(hpath)]


def _read_text(spark: SparkSession, path: str) -> str:
    fs, hpath = _fs(spark, path)
    stream = fs.open(hpath)
    try:
        reader = spark.sparkContext._jvm.java.io.BufferedReader(
            spark.sparkContext._jvm.java.io.InputStreamReader(stream, "UTF-8")
        )
        lines = []
        while (line := reader.readLine()) is not None:
            lines.append(line)
        return "\n".join(lines)
    finally:
        stream.close()


def restore_versions(spark: SparkSession, versions: dict[str, int]) -> None:
    from delta.tables import DeltaTable

    for location, version in versions.items():
        if table_version(spark, location) != version:
            DeltaTable.forPath(spark, location).restoreToVersion(version)


def recover(spark: SparkSession, settings: Settings) -> list[str]:
    """Roll back the tables of any step that died before finishing (its journal is still there).

    Returns the names of the recovered steps. Every step calls this before it starts.
    """
    recovered = []
    for path in _list_journals(spark, settings):
        entry = json.loads(_read_text(spark, path))
        restore_versions(spark, entry["versions"])
        _drop_journal(spark, path)
        recovered.append(entry["step"])
    return recovered


@contextlib.contextmanager
def atomic_step(
    spark: SparkSession, settings: Settings, step: str, keys: list[str]
) -> Iterator[None]:
    """Make the writes to ``keys`` inside the block all-or-nothing.

    Example::

        with atomic_step(spark, settings, "ingest 100-199", ["chain.blocks", "chain.inputs"]):
            replace_where(blocks_df, settings, "chain.blocks", "height >= 100")
            append(inputs_df, settings, "chain.inputs")
    """
    recover(spark, settings)
    versions = {
        table_location(settings, k): table_version(spark, table_location(settings, k)) for k in keys
    }
    journal = f"{_journal_dir(settings)}/{uuid.uuid4().hex}.json"
    write_bytes(spark, journal, json.dumps({"step": step, "versions": versions}).encode())
    try:
        yield
    except BaseException:
        restore_versions(spark, versions)
        _drop_journal(spark, journal)
        raise
    _drop_journal(spark, journal)


def _drop_journal(spark: SparkSession, path: str) -> None:
    fs, hpath = _fs(spark, path)
    fs.delete(hpath, False)

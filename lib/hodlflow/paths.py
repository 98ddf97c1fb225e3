"""Paths in settings: a plain local path or a Hadoop filesystem URI.

Two kinds of reader meet a path:

- Spark and Delta (``warehouse.path``, ``entities.checkpoint_dir``) open it through Hadoop's
  ``FileSystem``: any URI whose scheme has a filesystem on the classpath works unchanged
  (``file:///data/wh``, ``hdfs://nn:8020/wh``, ``s3a://bucket/wh`` with hadoop-aws and its
  credentials in ``spark.conf``); a plain path means the default filesystem.
- Python code that reads files: the blk files (``ingest.blocks_dir``) and the small files read
  once on the driver (pool lists, label seeds, price CSVs). A plain path or a ``file:`` URI is
  opened by Python (:func:`local_path`): the blk files with seeks by the tasks, so the
  directory must be on a filesystem every executor mounts at the same path. Any other scheme
  is read through the Hadoop filesystem of the running Spark session: the small files by
  :func:`read_bytes` on the driver, the blk files whole by Spark's ``binaryFile`` source in
  the tasks (``hodlflow.ingest.blocks_dir``).
"""

from __future__ import annotations

import errno
import re
from urllib.parse import unquote, urlsplit

# RFC 3986 scheme followed by ':' — but not a Windows drive letter such as C:\.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")


class PathError(ValueError):
    """A path setting cannot be used where it is needed; the message names the setting."""


def scheme(path: str) -> str | None:
    """The URI scheme of ``path`` in lower case (``file``, ``s3a``, ``hdfs``), None for a
    plain path.

    Example::

        scheme("s3a://bucket/wh")  # 's3a'
        scheme("./warehouse")  # None
    """
    m = _SCHEME.match(path)
    return m.group(1).lower() if m else None


def local_path(path: str, setting: str) -> str:
    """The local filesystem path of ``path``: a plain path unchanged, a ``file:`` URI
    (``file:///a/b``, ``file:/a/b``, ``file://localhost/a/b``) as ``/a/b``.

    Raises :class:`PathError` naming ``setting`` for any other scheme, or for a ``file:`` URI
    that names another host (not a path this process can open).

    Example::

        local_path("file:///data/blocks", "ingest.blocks_dir")  # '/data/blocks'
    """
    kind = scheme(path)
    if kind is None:
        return path
    if kind != "file":
        raise PathError(
            f"{setting}={path!r}: {kind}:// is not supported here; this file is opened by "
            "Python, not through Hadoop: give a local path or a file:// URI on a filesystem "
            "the driver and every executor mount at the same path (docs/cluster.md: Run on a "
            "cluster)"
        )
    parts = urlsplit(path)
    if parts.netloc not in ("", "localhost"):
        raise PathError(
            f"{setting}={path!r}: a file:// URI names a path, not a host "
            f"({parts.netloc!r}); write file:///absolute/path"
        )
    if not parts.path:
        raise PathError(f"{setting}={path!r}: the file:// URI has no path")
    return unquote(parts.path)


def is_local(path: str) -> bool:
    """True for a plain path or a ``file:`` URI (opened by Python), False for a URI that only a
    Hadoop filesystem reads (``hdfs:``, ``s3a:``, ``viewfs:``, ...)."""
    return scheme(path) in (None, "file")


def _hadoop(path: str, setting: str):
    """(JVM, Hadoop FileSystem, Hadoop Path) of ``path`` in the running Spark session."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise PathError(
            f"{setting}={path!r}: a {scheme(path)}:// path is read through Spark's Hadoop "
            "filesystem, and no Spark session is running; give a local path or file:// URI"
        )
    try:
        fs, hpath = hadoop_fs(spark, path)
    except Exception as exc:  # py4j: no FileSystem for the scheme, bad authority
        raise PathError(
            f"{setting}={path!r}: Hadoop cannot open this filesystem: {java_message(exc)} (its "
            "connector jar and settings go in spark.conf; docs/cluster.md: Run on a cluster)"
        ) from None
    return spark.sparkContext._jvm, fs, hpath


def hadoop_fs(spark, path: str):
    """(Hadoop FileSystem, Hadoop Path) of ``path`` with the session's Hadoop configuration."""
    hpath = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def write_bytes(spark, path: str, data: bytes) -> None:
    """Create or overwrite ``path`` (any Hadoop URI or local path) with ``data``, on the driver."""
    fs, hpath = hadoop_fs(spark, path)
    out = fs.create(hpath, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def located(path: str, setting: str) -> str:
    """A file as messages name it and readers take it: the local path of a plain path or
    ``file:`` URI, else the URI itself (read through Hadoop)."""
    return local_path(path, setting) if is_local(path) else path


def java_message(exc: BaseException) -> str:
    """The first line of a Java exception raised through py4j (class and message), else str."""
    java = getattr(exc, "java_exception", None)
    text = java.toString() if java is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def hadoop_list(directory: str, pattern: str, setting: str) -> list[tuple[str, int, int]]:
    """(full URI, length in bytes, modification time in ms) of the files of ``directory`` (a
    Hadoop URI) whose names match the glob ``pattern``, sorted by name; raises
    :class:`PathError` when the directory does not exist."""
    jvm, fs, hpath = _hadoop(directory, setting)
    try:
        if not fs.getFileStatus(hpath).isDirectory():
            raise PathError(f"{setting}={directory!r}: not a directory")
        found = fs.globStatus(jvm.org.apache.hadoop.fs.Path(hpath, pattern))
    except PathError:
        raise
    except Exception as exc:
        raise PathError(f"{setting}={directory!r}: cannot list: {java_message(exc)}") from None
    files = [
        (st.getPath().toString(), st.getLen(), st.getModificationTime())
        for st in (found or []) if st.isFile()
    ]  # fmt: skip
    return sorted(files, key=lambda f: f[0].rsplit("/", 1)[-1])


def hadoop_glob(directory: str, pattern: str, setting: str) -> list[str]:
    """The URIs of :func:`hadoop_list`."""
    return [uri for uri, _, _ in hadoop_list(directory, pattern, setting)]


def read_bytes(path: str, setting: str) -> bytes:
    """The whole of a small file: a plain path or ``file:`` URI read by Python, any other
    scheme through Hadoop on the driver. Raises :class:`OSError` (its ``strerror`` says why)
    when it cannot be read, :class:`PathError` when the path cannot be used at all."""
    if is_local(path):
        with open(local_path(path, setting), "rb") as fh:
            return fh.read()
    jvm, fs, hpath = _hadoop(path, setting)
    try:
        stream = fs.open(hpath)
        try:
            return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()
    except Exception as exc:
        raise OSError(errno.EIO, java_message(exc), path) from None

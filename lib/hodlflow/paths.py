"""Paths in settings: a plain local path or a Hadoop filesystem URI.

Two kinds of reader meet a path:

- Spark and Delta (``warehouse.path``, ``entities.checkpoint_dir``) open it through Hadoop's
  ``FileSystem``: any URI whose scheme has a filesystem on the classpath works unchanged
  (``file:///data/wh``, ``hdfs://nn:8020/wh``, ``s3a://bucket/wh`` with hadoop-aws and its
  credentials in ``spark.conf``); a plain path means the default filesystem.
- Python code that opens files itself: the blk files (read with seeks by Python tasks on the
  executors, so the directory must be on a filesystem every executor mounts at the same path)
  and the small files read once on the driver (pool lists, label seeds, price CSVs). These take
  a plain path or a ``file:`` URI; :func:`local_path` turns the URI into the path and refuses
  other schemes with an error naming the setting.
"""

from __future__ import annotations

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
            "the driver and every executor mount at the same path (README: Running on a "
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

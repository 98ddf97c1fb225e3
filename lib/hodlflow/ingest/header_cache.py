"""The headers earlier runs found in each blk file, so a run scans only new and changed files.

Bitcoin Core appends blocks to its newest blk file and leaves the older ones as they are; a
reindex rewrites them and pruning deletes them, which changes their length or modification
time. The headers (and positions) pass 1 found in a file are kept in one small binary file per
blk file under ``<warehouse>/_hodlflow/blk_headers/<id>/``, named after the blk file, its
length and its modification time. A run reuses the entry of every file whose length and time
are unchanged and scans the others; the newest blk file, the one the node is writing, is always
scanned. ``<id>`` is derived from the blocks directory, the network, the xor key and whether
proof of work was checked: headers scanned without the check are not reused by a run that
checks it.

On a local directory this saves a seek per stored block per run; on hdfs:// or s3a://, where a
file can only be read whole, it saves reading every blk file on every daily run.
"""

from __future__ import annotations

import hashlib
import struct

from pyspark.sql import SparkSession

from hodlflow.ingest.best_chain import HeaderLoc
from hodlflow.paths import hadoop_fs, read_bytes, write_bytes

# hash, prev_hash (internal byte order reversed: display order), bits, time, offset, length
_RECORD = struct.Struct("<32s32sIIQI")
_MAGIC = b"hodlflow-blk-headers-1\n"


def cache_dir(
    warehouse: str, blocks_dir: str, network: str, key: bytes | None, pow_checked: bool
) -> str:
    ident = "|".join((blocks_dir.rstrip("/"), network, key.hex() if key else "", str(pow_checked)))
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return f"{warehouse.rstrip('/')}/_hodlflow/blk_headers/{digest}"


def entry_name(path: str, length: int, mtime_ms: int) -> str:
    return f"{path.rstrip('/').rsplit('/', 1)[-1]}.{length}.{mtime_ms}.hdr"


def encode(headers: list[HeaderLoc]) -> bytes:
    body = b"".join(
        _RECORD.pack(bytes.fromhex(h.hash), bytes.fromhex(h.prev_hash), h.bits, h.time,
                     h.offset, h.length)
        for h in headers
    )  # fmt: skip
    return _MAGIC + struct.pack("<I", len(headers)) + body


def decode(raw: bytes, file_index: int) -> list[HeaderLoc] | None:
    """The headers of an entry, or None when it is not a whole entry (a write cut short)."""
    head = len(_MAGIC) + 4
    if not raw.startswith(_MAGIC) or len(raw) < head:
        return None
    (count,) = struct.unpack_from("<I", raw, len(_MAGIC))
    if len(raw) != head + count * _RECORD.size:
        return None
    out = []
    for i in range(count):
        h, prev, bits, time, offset, length = _RECORD.unpack_from(raw, head + i * _RECORD.size)
        out.append(HeaderLoc(h.hex(), prev.hex(), bits, time, file_index, offset, length))
    return out


class HeaderCache:
    """The entries of one blocks directory (see the module's doc)."""

    def __init__(self, spark: SparkSession, directory: str):
        self._spark = spark
        self._jvm = spark.sparkContext._jvm
        self._fs, self._dir = hadoop_fs(spark, directory)

    def names(self) -> set[str]:
        if not self._fs.exists(self._dir):
            return set()
        return {st.getPath().getName() for st in self._fs.listStatus(self._dir)}

    def read(self, name: str, file_index: int) -> list[HeaderLoc] | None:
        return decode(read_bytes(str(self._path(name).toString()), "header cache"), file_index)

    def write(self, name: str, headers: list[HeaderLoc]) -> None:
        write_bytes(self._spark, str(self._path(name).toString()), encode(headers))

    def drop(self, name: str) -> None:
        self._fs.delete(self._path(name), False)

    def _path(self, name: str):
        return self._jvm.org.apache.hadoop.fs.Path(self._dir, name)

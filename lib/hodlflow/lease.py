"""One writing step at a time on a warehouse: a lease file beside the step journals.

Every step that writes tables (ingest, entities, metrics and its price load, maintain) runs
under :func:`warehouse_lease`. The lease is the file ``<warehouse>/_hodlflow/lease/<db prefix or
default>.json``, created only if absent, holding who took it (host, pid, step, since) and when
its holder last renewed it; the holder renews it every ``ttl_s`` / 4 seconds and deletes it when
the step ends, failed or not. A second step on the same warehouse and prefix refuses at once
with :class:`LeaseError` naming the holder, before it reads, recovers or writes anything — the
journal recovery every step starts with would otherwise roll back the tables of a step still
running. A lease whose holder died is taken over: on the same host when its process is gone,
from any host once it has not been renewed for ``ttl_s`` seconds.

It goes through the Hadoop FileSystem of the session, so it works wherever the warehouse is:
create-if-absent is atomic on local disks (``O_EXCL``) and HDFS; on object stores it is as
atomic as the connector's create without overwrite, and the taker reads the lease back to
check the token it wrote. Within one process the lease is re-entrant (the demo, the suite and
``metrics`` with its price load call leased steps in turn or nested).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from hodlflow.paths import hadoop_fs, is_local, local_path, write_bytes

LEASE_TTL_S = 120.0
# A lease file still empty or cut short this long after it was created: its writer died.
UNWRITTEN_S = 10.0


class LeaseError(RuntimeError):
    """Another step holds the warehouse; the message names it."""


def lease_path(settings) -> str:
    """Where the lease of ``settings``' warehouse and database prefix lives."""
    root = settings.warehouse.rstrip("/")
    return f"{root}/_hodlflow/lease/{settings.db_prefix or 'default'}.json"


class _File:
    """The lease file: a local file through the OS (exclusive create is ``O_EXCL``), anything
    else through the session's Hadoop FileSystem."""

    def __init__(self, spark, path: str):
        self.spark, self.path = spark, path
        self.local = local_path(path, "warehouse.path") if is_local(path) else None
        if self.local is None:
            self.fs, self.hpath = hadoop_fs(spark, path)

    def create(self, data: bytes) -> bool:
        """Write ``data`` if the file does not exist; False if it does."""
        if self.local is not None:
            os.makedirs(os.path.dirname(self.local), exist_ok=True)
            try:
                fd = os.open(self.local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            return True
        try:
            out = self.fs.create(self.hpath, False)
        except Exception as exc:  # py4j: FileAlreadyExistsException
            if "FileAlreadyExists" in str(exc) or self.fs.exists(self.hpath):
                return False
            raise
        try:
            out.write(bytearray(data))
        finally:
            out.close()
        return True

    def replace(self, data: bytes) -> None:
        if self.local is not None:
            tmp = f"{self.local}.{os.getpid()}.tmp"
            with open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, self.local)
            return
        write_bytes(self.spark, self.path, data)

    def read(self) -> dict[str, Any] | None:
        """The lease's content; None when there is no lease; {} while it is being written."""
        try:
            if self.local is not None:
                with open(self.local, "rb") as f:
                    data = f.read()
            else:
                if not self.fs.exists(self.hpath):
                    return None
                stream = self.fs.open(self.hpath)
                try:
                    data = bytes(stream.readAllBytes())
                finally:
                    stream.close()
        except FileNotFoundError:
            return None
        try:
            content = json.loads(data.decode())
        except ValueError:
            return {}
        return content if isinstance(content, dict) else {}

    def modified(self) -> float:
        if self.local is not None:
            return os.stat(self.local).st_mtime
        return self.fs.getFileStatus(self.hpath).getModificationTime() / 1000

    def delete(self) -> None:
        if self.local is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.local)
            return
        self.fs.delete(self.hpath, False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(holder: dict[str, Any], modified: float, now: float, ttl_s: float) -> bool:
    """Whether a lease's holder is gone: its process on this host has ended, or it has not
    renewed the lease for ``ttl_s`` (a holder on another host), or the lease was never written
    whole (``holder`` empty, older than ``UNWRITTEN_S``)."""
    if not holder:  # not written whole: its writer died between creating and writing it
        return now - modified > UNWRITTEN_S
    renewed = holder.get("renewed", modified)
    if not isinstance(renewed, (int, float)):
        renewed = modified
    if now - renewed > ttl_s:
        return True
    pid = holder.get("pid")
    return holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid)


def describe(holder: dict[str, Any], now: float) -> str:
    """``ingest (host h, pid 12, since 2026-12-06 19:02:11 UTC, renewed 3 s ago)``."""
    if not holder:
        return "a step whose lease is being written"
    since = dt.datetime.fromtimestamp(holder.get("since", 0), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    renewed = max(0, round(now - holder.get("renewed", now)))
    return (
        f"`{holder.get('step')}` (host {holder.get('host')}, pid {holder.get('pid')}, since "
        f"{since} UTC, renewed {renewed} s ago)"
    )


def live_holder(settings, clock: Callable[[], float] = time.time) -> str | None:
    """Who holds the lease of a warehouse on a local disk, described (:func:`describe`), when
    its holder is alive; None when there is no lease, its holder is gone, or the warehouse is
    not local (read before any Spark process starts: the embedded Derby metastore's check,
    :func:`hodlflow.metastore.check_derby_free`, names the step it waits on)."""
    path = lease_path(settings)
    if not is_local(path):
        return None
    lease = _File(None, path)
    holder = lease.read()
    try:
        if not holder or _stale(holder, lease.modified(), clock(), LEASE_TTL_S):
            return None
    except FileNotFoundError:  # released between the read and the stat
        return None
    return describe(holder, clock())


# Leases this process holds: path -> nesting depth.
_held: dict[str, int] = {}
_held_lock = threading.Lock()


@contextlib.contextmanager
def warehouse_lease(
    spark,
    settings,
    step: str,
    ttl_s: float = LEASE_TTL_S,
    clock: Callable[[], float] = time.time,
    log: Callable[[str], None] = print,
) -> Iterator[None]:
    """Hold the warehouse's lease for the block (module doc); :class:`LeaseError` if another
    live step holds it.

    Example::

        with warehouse_lease(spark, settings, "ingest"):
            ...  # recover, read, write
    """
    path = lease_path(settings)
    with _held_lock:
        if path in _held:
            _held[path] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_lock:
                _held[path] -= 1
        return
    lease = _File(spark, path)
    token = uuid.uuid4().hex
    now = clock()
    mine = {"step": step, "host": socket.gethostname(), "pid": os.getpid(), "since": now,
            "renewed": now, "token": token}  # fmt: skip
    for attempt in range(2):
        if lease.create(json.dumps(mine).encode()):
            break
        holder = lease.read()
        if holder is None:
            continue  # released between our create and read: try again
        now = clock()
        if attempt == 0 and _stale(holder, lease.modified(), now, ttl_s):
            lease.delete()  # its holder is gone: take it over
            log(f"took over the lease left by {describe(holder, now)}: its holder is gone")
            continue
        raise LeaseError(
            f"the warehouse {settings.warehouse} (database prefix "
            f"{settings.db_prefix or 'none'}) is in use by {describe(holder, now)}; `{step}` "
            f"did not start. Run it again when that step has ended (a lease left by a step "
            f"that died is taken over once its process is gone, or after {ttl_s:.0f} s "
            f"without renewal): {path}"
        )
    else:
        raise LeaseError(f"could not take the lease {path} for `{step}`: it keeps changing")
    if (lease.read() or {}).get("token") != token:
        raise LeaseError(f"another step took the lease {path} at the same moment as `{step}`")
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 4):
            with contextlib.suppress(Exception):
                lease.replace(json.dumps({**mine, "renewed": clock()}).encode())

    renewer = threading.Thread(target=renew, name="hodlflow-lease", daemon=True)
    renewer.start()
    with _held_lock:
        _held[path] = 1
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with _held_lock:
            _held.pop(path, None)
        if (lease.read() or {}).get("token") == token:
            lease.delete()


def leased(step: str):
    """Run the decorated ``fn(spark, settings, ...)`` under :func:`warehouse_lease`."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(spark, settings, *args, **kwargs):
            with warehouse_lease(spark, settings, step):
                return fn(spark, settings, *args, **kwargs)

        return run

    return wrap

"""The Hive metastore on PostgreSQL: the catalog (databases, tables, their locations) that a
pipeline job, the Thrift server and an analyst's ``spark-sql`` share at the same time.

Spark's built-in Hive 2.3 client reaches it over JDBC (DataNucleus): the four
``javax.jdo.option.*`` settings name the database, and ``datanucleus.schema.autoCreateAll``
creates the Hive schema's tables on first use. The PostgreSQL JDBC driver jar comes from the
jar cache (``hodlflow fetch-jars``).

The password is kept out of everything a user or another process can read: not in
:func:`postgres_conf` (command lines, settings dumps), only in :func:`secret_conf`, which goes
to a driver JVM over Py4J (:func:`hodlflow.spark.build_session`) or in a private properties
file (:func:`secret_properties_file`, for ``spark-sql`` and the Thrift server). Errors name the
setting and the URL, never the password.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from hodlflow import envvars
from hodlflow.config import ConfigError, MetastoreSettings

POSTGRES_PACKAGE = "org.postgresql:postgresql:42.7.14"
POSTGRES_DRIVER = "org.postgresql.Driver"
# How Ivy names the driver jar it retrieves (organisation_module-version.jar).
POSTGRES_JAR_PREFIX = "org.postgresql_postgresql-"
PASSWORD_ENV = envvars.METASTORE_PASSWORD
PASSWORD_KEY = "spark.hadoop.javax.jdo.option.ConnectionPassword"


class MetastoreError(RuntimeError):
    """The metastore database cannot be used; the message names the setting and the URL."""


def postgres_jar(jars_cache: str) -> str | None:
    """The cached PostgreSQL JDBC driver jar, or None."""
    jars = sorted(glob.glob(os.path.join(jars_cache, POSTGRES_JAR_PREFIX + "*.jar")))
    return jars[-1] if jars else None


def metastore_jars(ms: MetastoreSettings, jars_cache: str) -> list[str]:
    """The jars the metastore client needs on the driver's classpath (none for Derby, which
    is in pyspark), or :class:`MetastoreError` when the driver jar is not cached."""
    if ms.kind != "postgres":
        return []
    jar = postgres_jar(jars_cache)
    if jar is None:
        raise MetastoreError(
            f"spark.metastore.kind=postgres needs the PostgreSQL JDBC driver ({POSTGRES_PACKAGE}) "
            f"in {jars_cache}: run `make setup` (or `hodlflow fetch-jars`) once with access to "
            "Maven Central"
        )
    return [jar]


def postgres_conf(ms: MetastoreSettings) -> dict[str, str]:
    """Spark settings that point the Hive client at the PostgreSQL metastore (no password)."""
    return {
        "spark.hadoop.javax.jdo.option.ConnectionURL": str(ms.url),
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": POSTGRES_DRIVER,
        "spark.hadoop.javax.jdo.option.ConnectionUserName": str(ms.user),
        # An empty database gets the Hive schema's tables on first use; Hive 2.3 would
        # otherwise insist on a schema version row written by its schematool.
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.hadoop.datanucleus.schema.autoCreateTables": "true",
        "spark.hadoop.datanucleus.schema.autoCreateColumns": "true",
        # ... but no foreign keys (autoCreateAll would add them): DataNucleus creates a table
        # when first needed, over a connection of its own, and adding a foreign key then waits
        # for a lock that the metastore's open transaction on the other connection holds until
        # that very DDL is done: a hang (seen on the first CREATE TABLE of a Delta table).
        "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
        "spark.hadoop.datanucleus.schema.autoCreateConstraints": "false",
    }


def secret_conf(ms: MetastoreSettings) -> dict[str, str]:
    """The password setting, for a channel nobody else reads (empty for Derby)."""
    if ms.kind != "postgres":
        return {}
    if ms.password is None:
        raise ConfigError(
            f"the metastore user {ms.user!r} at spark.metastore.url={ms.url} has no password: "
            f"put it in the environment variable {PASSWORD_ENV} (or the setting "
            "spark.metastore.password)"
        )
    return {PASSWORD_KEY: ms.password}


def postgres_address(url: str) -> tuple[str, int, str]:
    """``jdbc:postgresql://host[:port]/database[?...]`` → (host, port, database)."""
    parts = urlsplit(url.removeprefix("jdbc:"))
    database = parts.path.lstrip("/")
    try:
        port = parts.port or 5432
    except ValueError:
        port = None
    if parts.scheme != "postgresql" or not database or port is None or "," in parts.netloc:
        raise ConfigError(
            "setting spark.metastore.url must be jdbc:postgresql://host[:port]/database "
            f"(one host), got {url!r}"
        )
    return parts.hostname or "localhost", port, database


def check_metastore(ms: MetastoreSettings, timeout_s: float = 10.0) -> None:
    """Log in to the PostgreSQL metastore once, so that an unreachable server, a wrong
    password or a missing database is a one-line error naming the setting and the URL instead
    of a page of Hive stack traces (or a Thrift server that starts without a catalog).
    Nothing to check for Derby."""
    if ms.kind != "postgres":
        return
    import pg8000.dbapi
    import pg8000.exceptions

    host, port, database = postgres_address(str(ms.url))
    password = secret_conf(ms)[PASSWORD_KEY]
    where = f"spark.metastore.url={ms.url}"
    try:
        conn = pg8000.dbapi.connect(
            user=str(ms.user), password=password, host=host, port=port, database=database,
            timeout=timeout_s,
        )  # fmt: skip
    except pg8000.exceptions.InterfaceError as exc:
        raise MetastoreError(
            f"the metastore database is not reachable at {where}: {_reason(exc)}"
        ) from None
    except pg8000.exceptions.DatabaseError as exc:
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        code, message = info.get("C", ""), info.get("M", str(exc))
        if code in ("28P01", "28000"):
            raise MetastoreError(
                f"PostgreSQL refused the metastore login of spark.metastore.user={ms.user!r} "
                f"at {where} (password from {PASSWORD_ENV} or spark.metastore.password): "
                f"{message}"
            ) from None
        raise MetastoreError(f"the metastore database at {where} refused: {message}") from None
    conn.close()


# A step's JVM lets go of Derby's lock only once it has shut down, a moment after the step's
# Python process has exited: `hodlflow ingest && hodlflow entities` (or a DAG's consecutive
# tasks) would otherwise be refused. Wait this long for the holder to let go.
DERBY_RELEASE_WAIT_S = 20.0


def _derby_holder(db_dir: str) -> int | None:
    """The pid holding the Derby database's ``dbex.lck`` lock, or None."""
    try:
        fd = os.open(os.path.join(db_dir, "dbex.lck"), os.O_RDONLY)
    except OSError:
        return None  # never opened (or removed): nobody has it
    try:
        # struct flock: l_type, l_whence, l_start, l_len (0 = to the end), l_pid.
        query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        held = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, query))
    finally:
        os.close(fd)
    return None if held[0] == fcntl.F_UNLCK else held[4]


def check_derby_free(
    db_dir: str,
    wait_s: float = DERBY_RELEASE_WAIT_S,
    lease_holder: Callable[[], str | None] = lambda: None,
    warehouse: str = "",
) -> None:
    """Refuse, with a message saying why and what to do, when another process has the embedded
    Derby metastore ``db_dir`` open (Hive would otherwise fail deep inside with "Another
    instance of Derby may have already booted the database"). A JVM that opens a Derby
    database holds a lock on its ``dbex.lck`` file until it ends; this only looks at the lock
    (F_GETLK), it never takes it, and gives a holder that is shutting down ``wait_s`` seconds
    to let go.

    ``lease_holder``: who holds the ``warehouse``'s lease (:func:`hodlflow.lease.live_holder`),
    a live writing step: then the refusal names that step (host, pid, since when) and comes at
    once, as the lease's own refusal does; a step still running will not let go soon."""
    deadline = time.monotonic() + wait_s
    while (pid := _derby_holder(db_dir)) is not None:
        if (who := lease_holder()) is not None:
            raise MetastoreError(
                f"the warehouse {warehouse} is in use by {who}; its Spark process (pid {pid}) "
                f"has the embedded Derby metastore {db_dir} open, which admits one process at "
                "a time, so this step did not start. Run it again when that step has ended"
            )
        if time.monotonic() >= deadline:
            raise MetastoreError(
                f"the embedded Derby metastore {db_dir} is open in another Spark process "
                f"(pid {pid}: a running `hodlflow serve-sql`, `sql` or pipeline step; waited "
                f"{wait_s:.0f} s for it to let go). Derby admits one process at a time: stop "
                "that one, or share the catalog through a PostgreSQL metastore "
                "(spark.metastore.kind=postgres, docs/sql-and-bi.md: A shared metastore on "
                "PostgreSQL)"
            )
        time.sleep(0.2)


def _reason(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(cause or exc)
    return text.split("\n")[0] or type(cause or exc).__name__


def _escape(value: str) -> str:
    """A value for java.util.Properties.load (which Spark reads its properties files with)."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "\\" + out if out[:1] in (" ", "\t") else out


@contextmanager
def secret_properties_file(
    ms: MetastoreSettings, extra: Mapping[str, str] | None = None
) -> Iterator[str | None]:
    """A properties file with the metastore password (and the ``extra`` secret settings: the
    Thrift server's keystore password), readable by this user only, for ``spark-submit
    --properties-file`` (spark-submit reads it inside its JVM: no secret is ever on a command
    line); deleted when the block ends. ``None`` when there is no secret (Derby, no TLS)."""
    secrets = {**secret_conf(ms), **(extra or {})}
    if not secrets:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="hodlflow-secrets-")  # mode 0700
    path = os.path.join(folder, "secrets.properties")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# hodlflow: passwords for spark-submit (deleted when the command ends)\n")
        for key, value in secrets.items():
            fh.write(f"{key}={_escape(value)}\n")
    try:
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def is_postgres_jar(path: str) -> bool:
    return Path(path).name.startswith(POSTGRES_JAR_PREFIX)

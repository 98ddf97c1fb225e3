"""Spark SQL over the project's catalog from outside PySpark: the ``spark-sql`` shell and
Spark's Thrift JDBC/ODBC server (HiveThriftServer2), both started from the pyspark package's own
``bin/`` with the settings every hodlflow session uses (:func:`hodlflow.spark.catalog_conf`):
same warehouse, same metastore, Delta from the local jar cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from hodlflow.config import Settings
from hodlflow.spark import catalog_conf

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


def spark_home() -> str:
    """The pyspark package folder: it carries ``bin/spark-submit``, ``spark-sql``, ``beeline``
    and the jars (the Thrift server's included)."""
    import pyspark

    return str(Path(pyspark.__file__).resolve().parent)


def spark_env(base: Mapping[str, str]) -> dict[str, str]:
    """The environment for Spark's scripts: ``SPARK_HOME`` at the pyspark package and Python
    workers on this interpreter (the one hodlflow is installed in)."""
    env = dict(base)
    env["SPARK_HOME"] = spark_home()
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def _conf_args(settings: Settings, secrets_file: str | None) -> list[str]:
    # The metastore password reaches spark-submit only through a private properties file.
    args = ["--properties-file", secrets_file] if secrets_file else []
    if settings.spark.master:
        args += ["--master", settings.spark.master]
    for key, value in catalog_conf(settings).items():
        args += ["--conf", f"{key}={value}"]
    return args


def spark_sql_command(
    settings: Settings, query: str | None = None, secrets_file: str | None = None
) -> list[str]:
    """``spark-sql`` on the project's catalog: an interactive shell, or ``-e query``.
    ``secrets_file``: :func:`hodlflow.metastore.secret_properties_file` (PostgreSQL)."""
    cmd = [os.path.join(spark_home(), "bin", "spark-sql"), *_conf_args(settings, secrets_file)]
    return cmd + (["-e", query] if query is not None else [])


def thrift_server_command(
    settings: Settings, host: str, port: int, secrets_file: str | None = None
) -> list[str]:
    """``spark-submit`` of HiveThriftServer2 on the project's catalog, listening on host:port
    (binary transport: ``jdbc:hive2://host:port/default``). ``secrets_file`` as for
    :func:`spark_sql_command`."""
    return [
        os.path.join(spark_home(), "bin", "spark-submit"),
        "--class", THRIFT_SERVER_CLASS,
        "--name", f"{settings.spark.app_name}-thrift-server",
        *_conf_args(settings, secrets_file),
        "--hiveconf", f"hive.server2.thrift.bind.host={host}",
        "--hiveconf", f"hive.server2.thrift.port={port}",
        "--hiveconf", "hive.server2.transport.mode=binary",
        "spark-internal",
    ]  # fmt: skip


def run_foreground(cmd: list[str], env: Mapping[str, str], grace_seconds: float = 30.0) -> int:
    """Run ``cmd`` in the foreground until it ends; SIGINT/SIGTERM are passed on to it (Spark
    stops its server and context on SIGTERM) and, if it has not ended ``grace_seconds`` later,
    it is killed. Returns its exit code (0 after a requested shutdown)."""
    child = subprocess.Popen(cmd, env=dict(env))
    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Short waits: a wait without a timeout is resumed after the signal handler runs, so
        # the grace period would never start.
        deadline = None
        while True:
            try:
                code = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping and deadline is None:
                    deadline = time.monotonic() + grace_seconds
                if deadline is not None and time.monotonic() > deadline:
                    child.kill()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0 if stopping else code

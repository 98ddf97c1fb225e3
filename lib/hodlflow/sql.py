"""Spark SQL over the project's catalog from outside PySpark: the ``spark-sql`` shell and
Spark's Thrift JDBC/ODBC server (HiveThriftServer2), both started from the pyspark package's own
``bin/`` with the settings every hodlflow session uses (:func:`hodlflow.spark.catalog_conf`):
same warehouse, same metastore, Delta from the local jar cache."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from hodlflow import envvars
from hodlflow.config import ConfigError, ServeSettings, Settings
from hodlflow.metastore import secret_properties_file
from hodlflow.spark import catalog_conf, check_metastore_usable
from hodlflow.sqlauth import (
    AUTH_CLASS,
    FILE_PROPERTY,
    KEYSTORE_PASSWORD_ENV,
    PasswordFileError,
    auth_jar,
    read_password_file,
)

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


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, an IPv4 address in
    127.0.0.0/8 or ``::1``. Other names are not resolved: they count as reachable."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(serve: ServeSettings) -> None:
    """Refuse (:class:`ConfigError`) to serve a non-loopback host without logins, unless
    ``serve.allow_unauthenticated`` says so: anyone reaching the port would read every table."""
    if serve.password_file or serve.allow_unauthenticated or is_loopback(serve.host):
        return
    raise ConfigError(
        f"serve-sql will not listen on {serve.host}:{serve.port} (serve.host) without "
        "authentication: anyone who reaches that address could read every table. Set "
        "serve.password_file (or --password-file; add users with `hodlflow serve-sql-user add "
        "NAME`), or listen on loopback (serve.host: 127.0.0.1), or, on a network you trust, "
        "pass --insecure-no-auth (serve.allow_unauthenticated: true)"
    )


# The HiveConf of the Thrift server is built from the Spark conf: spark.hadoop.* keys reach it
# (seen: the keystore password from the private properties file opened the keystore). A
# --hiveconf value is a system property of the JVM (and is on its command line, and logged).
KEYSTORE_PASSWORD_KEY = "spark.hadoop.hive.server2.keystore.password"


def serve_secret_conf(serve: ServeSettings) -> dict[str, str]:
    """The Thrift server's secret settings, for the private properties file only (empty
    without TLS); :class:`ConfigError` when the keystore has no password."""
    if not serve.tls_keystore:
        return {}
    if not serve.tls_keystore_password:
        raise ConfigError(
            f"serve.tls_keystore={serve.tls_keystore} needs its password: put it in the "
            f"environment variable {KEYSTORE_PASSWORD_ENV} (or the setting "
            "serve.tls_keystore_password)"
        )
    return {KEYSTORE_PASSWORD_KEY: serve.tls_keystore_password}


def check_serve_files(serve: ServeSettings) -> None:
    """Before the server starts: the password file holds at least one well-formed user and
    the keystore exists (one-line errors naming the setting, instead of refusals or a stack
    trace once the JVM is up)."""
    if serve.password_file:
        try:
            entries = read_password_file(serve.password_file)
        except PasswordFileError as exc:
            raise ConfigError(f"serve.password_file: {exc}") from None
        if not entries:
            raise ConfigError(
                f"serve.password_file={serve.password_file} holds no user: add one with "
                f"`hodlflow serve-sql-user add NAME --password-file {serve.password_file}`"
            )
    if serve.tls_keystore and not os.path.isfile(serve.tls_keystore):
        raise ConfigError(f"serve.tls_keystore={serve.tls_keystore} is not a file")


def check_keystore(serve: ServeSettings, timeout_s: float = 60.0) -> None:
    """Open ``serve.tls_keystore`` with its password (``keytool -list``, the password in
    keytool's environment only) and find a private key in it: a wrong password or a keystore
    without the server's key is a one-line :class:`ConfigError` before the server starts, not
    a stack trace from a server that does not listen. Skipped when keytool is not installed."""
    keytool = shutil.which("keytool")
    if not serve.tls_keystore or keytool is None:
        return
    var = "HODLFLOW_KEYSTORE_CHECK"
    done = subprocess.run(
        [keytool, "-list", "-keystore", serve.tls_keystore, "-storepass:env", var],
        env={var: str(serve.tls_keystore_password)},
        capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    where = f"serve.tls_keystore={serve.tls_keystore}"
    if done.returncode != 0:
        reason = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no reason given"]
        raise ConfigError(
            f"{where} does not open with its password ({KEYSTORE_PASSWORD_ENV} or "
            f"serve.tls_keystore_password): {reason[0].removeprefix('keytool error: ')}"
        )
    if "PrivateKeyEntry" not in done.stdout:
        raise ConfigError(
            f"{where} holds no private key (only certificates?): the server needs its own key "
            "and certificate (keytool -genkeypair, or a PKCS12 file of key and certificate)"
        )


def _serve_args(serve: ServeSettings, jars_cache: str) -> tuple[list[str], str | None]:
    """The ``--hiveconf`` options of logins and TLS (no secret among them) and the jar of the
    login check (None without logins)."""
    args: list[str] = []
    jar = None
    if serve.password_file:
        jar = auth_jar(jars_cache)
        args += [
            "--hiveconf", "hive.server2.authentication=CUSTOM",
            "--hiveconf", f"hive.server2.custom.authentication.class={AUTH_CLASS}",
            # Read by the class as a system property (what --hiveconf sets): the HiveConf the
            # Thrift server hands a custom provider is a fresh one, without custom keys.
            "--hiveconf", f"{FILE_PROPERTY}={os.path.abspath(serve.password_file)}",
            # The login admits a user; queries run as the server's own OS user (no Hadoop
            # impersonation of names that exist only in the password file).
            "--hiveconf", "hive.server2.enable.doAs=false",
        ]  # fmt: skip
    if serve.tls_keystore:
        args += [
            "--hiveconf", "hive.server2.use.SSL=true",
            "--hiveconf", f"hive.server2.keystore.path={os.path.abspath(serve.tls_keystore)}",
        ]  # fmt: skip
    return args, jar


def thrift_server_command(
    settings: Settings, host: str, port: int, secrets_file: str | None = None
) -> list[str]:
    """``spark-submit`` of HiveThriftServer2 on the project's catalog, listening on host:port
    (binary transport: ``jdbc:hive2://host:port/default``), with logins checked against
    ``serve.password_file`` and TLS with ``serve.tls_keystore`` when those are set.
    ``secrets_file`` as for :func:`spark_sql_command`, holding :func:`serve_secret_conf` too."""
    serve_args, jar = _serve_args(settings.serve, settings.spark.jars_cache)
    conf_args = _conf_args(settings, secrets_file)
    if jar:
        # On the driver JVM's own classpath, beside Delta's jars (a --driver-class-path option
        # would replace the spark.driver.extraClassPath of catalog_conf).
        key = "spark.driver.extraClassPath="
        i = next(i for i, a in enumerate(conf_args) if a.startswith(key))
        conf_args[i] = conf_args[i] + os.pathsep + jar
    return [
        os.path.join(spark_home(), "bin", "spark-submit"),
        "--class", THRIFT_SERVER_CLASS,
        "--name", f"{settings.spark.app_name}-thrift-server",
        *conf_args,
        "--hiveconf", f"hive.server2.thrift.bind.host={host}",
        "--hiveconf", f"hive.server2.thrift.port={port}",
        "--hiveconf", "hive.server2.transport.mode=binary",
        *serve_args,
        "spark-internal",
    ]  # fmt: skip


def jdbc_url(serve: ServeSettings, host: str, port: int) -> str:
    """The JDBC URL clients connect to (``;ssl=true`` with TLS; they add their truststore)."""
    return f"jdbc:hive2://{host}:{port}/default" + (";ssl=true" if serve.tls_keystore else "")


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


def run_spark_sql(settings: Settings, query: str | None = None) -> int:
    """`hodlflow sql` through spark-sql: the interactive shell without ``query`` (it takes over
    the terminal and Ctrl-C), ``-e query`` with one; the same warehouse and metastore, the
    metastore password in a private properties file deleted when spark-sql ends. Returns its
    exit code."""
    check_metastore_usable(settings)
    env = spark_env(os.environ)
    with secret_properties_file(settings.spark.metastore) as secrets:
        cmd = spark_sql_command(settings, query, secrets)
        if query is None and secrets is None:
            # The interactive shell takes over this process (terminal, Ctrl-C).
            os.execve(cmd[0], cmd, env)
        if query is None:  # stay, to delete the password file: Ctrl-C is the shell's
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return subprocess.run(cmd, env=env).returncode


def serve(settings: Settings, log=print) -> int:
    """`hodlflow serve-sql`: Spark's Thrift JDBC/ODBC server in the foreground on
    ``serve.host``:``serve.port`` over the project's warehouse and metastore, until it stops
    (Ctrl-C or SIGTERM: :func:`run_foreground`); returns its exit code.

    Refused before anything starts (:class:`ConfigError`): a non-loopback host without logins
    unless ``serve.allow_unauthenticated`` (:func:`check_exposure`), a password file or
    keystore that is missing, not private or does not open (:func:`check_serve_files`,
    :func:`check_keystore`), a metastore in use. The passwords reach spark-submit in a private
    properties file only, never a command line or the environment its JVM inherits."""
    serve_ = settings.serve
    host, port = serve_.host, serve_.port
    check_exposure(serve_)
    check_serve_files(serve_)
    secret = serve_secret_conf(serve_)
    check_keystore(serve_)
    check_metastore_usable(settings)
    env = spark_env(os.environ)
    for name in envvars.SECRETS:
        env.pop(name, None)
    with secret_properties_file(settings.spark.metastore, secret) as secrets:
        cmd = thrift_server_command(settings, host, port, secrets)
        logins = (
            f"logins: the users of {serve_.password_file}"
            if serve_.password_file
            else "no logins (anyone who reaches the port reads every table)"
        )
        tls = f"TLS: {serve_.tls_keystore}" if serve_.tls_keystore else "no TLS"
        user = " -n USER -w PASSWORD_FILE" if serve_.password_file else ""
        log(
            f"Spark Thrift JDBC/ODBC server on {host}:{port} over {settings.warehouse} "
            f"(ready in ~20-30 s; Ctrl-C stops it)\n  {logins}; {tls}\n"
            f"  beeline -u '{jdbc_url(serve_, host, port)}'{user}"
        )
        return run_foreground(cmd, env)

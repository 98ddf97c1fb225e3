"""`hodlflow sql` and `hodlflow serve-sql` over a warehouse of their own (Derby admits one
process at a time, so not the shared test session's catalog): a Delta table written here by
hand is registered through `hodlflow sql --spark-sql` (the spark-sql binary), then the Thrift
JDBC/ODBC server started by `hodlflow serve-sql` on a free port answers beeline over JDBC with
the rows written, and stops cleanly on SIGTERM."""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys

import pytest

from hodlflow.sql import spark_env, spark_home
from tests.support.ports import free_port, wait_listening

pytestmark = pytest.mark.spark

ROWS = [(880000, "00aa", "2025-03-01", 1), (880001, "00bb", "2025-03-01", 3),
        (880002, "00cc", "2025-03-02", 2)]  # fmt: skip


def hodlflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "hodlflow.cli", *args]


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    """A warehouse with one small Delta table, written by path from the shared session (no
    catalog entry there), then registered in the warehouse's own metastore by `hodlflow sql`."""
    wh = tmp_path_factory.mktemp("sql-serving") / "warehouse"
    df = spark.createDataFrame(ROWS, "height INT, hash STRING, day STRING, tx_count INT")
    df.selectExpr("height", "hash", "CAST(day AS DATE) AS day", "tx_count").write.format(
        "delta"
    ).save(f"{wh}/chain/blocks")
    done = subprocess.run(
        hodlflow("sql", "--env", "test", "--warehouse", str(wh), "--spark-sql", "-e",
                 f"CREATE DATABASE IF NOT EXISTS chain LOCATION '{wh}/chain'; "
                 f"CREATE TABLE IF NOT EXISTS chain.blocks USING delta LOCATION '{wh}/chain/blocks'; "
                 "SELECT count(*), sum(tx_count) FROM chain.blocks"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1].split() == ["3", "6"]
    return wh


def beeline(port: int, query: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.path.join(spark_home(), "bin", "beeline"), "-u", f"jdbc:hive2://127.0.0.1:{port}/default",
         "--silent=true", "--outputformat=csv2", "-e", query],
        env=spark_env(os.environ), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def stop(server: subprocess.Popen) -> int:
    """SIGTERM, as Ctrl-C or a service manager stops it; its exit code (killed if it hangs)."""
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=90)
    except subprocess.TimeoutExpired:
        server.kill()
        raise


def test_serve_sql_answers_jdbc_queries_with_the_tables_rows_and_stops_on_sigterm(warehouse):
    port = free_port()
    server = subprocess.Popen(
        hodlflow("serve-sql", "--env", "test", "--warehouse", str(warehouse), "--port", str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_listening(server, port, server.stdout.read)
        done = beeline(port, "SELECT height, hash, day, tx_count FROM chain.blocks ORDER BY height")
        assert done.returncode == 0, done.stderr[-4000:]
        # beeline echoes its prompt ("0: jdbc:hive2://...> ") in front of the first line.
        text = re.sub(r"^\d+: jdbc:\S+> ", "", done.stdout.strip())
        rows = list(csv.reader(io.StringIO(text)))
        assert rows == [["height", "hash", "day", "tx_count"],
                        ["880000", "00aa", "2025-03-01", "1"],
                        ["880001", "00bb", "2025-03-01", "3"],
                        ["880002", "00cc", "2025-03-02", "2"]]  # fmt: skip
    finally:
        code = stop(server)
    assert code == 0
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the port is free again


# --- logins and TLS ---------------------------------------------------------------------------


def keytool(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run(["keytool", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout


def make_keystores(folder, keystore_password: str, truststore_password: str):
    """A self-signed server key (PKCS12, its password given through keytool's environment)
    and a truststore holding only its certificate, for the clients."""
    keystore, cert, truststore = folder / "server.p12", folder / "server.crt", folder / "trust.p12"
    env = {"KS_PW": keystore_password, "TS_PW": truststore_password}
    keytool(
        "-genkeypair",
        "-alias",
        "hodlflow",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        "2",
        "-dname",
        "CN=localhost",
        "-ext",
        "SAN=ip:127.0.0.1,dns:localhost",
        "-keystore",
        str(keystore),
        "-storetype",
        "PKCS12",
        "-storepass:env",
        "KS_PW",
        env=env,
    )
    keytool(
        "-exportcert",
        "-alias",
        "hodlflow",
        "-keystore",
        str(keystore),
        "-storepass:env",
        "KS_PW",
        "-file",
        str(cert),
        env=env,
    )
    keytool("-importcert", "-noprompt", "-alias", "hodlflow", "-file", str(cert),
            "-keystore", str(truststore), "-storetype", "PKCS12", "-storepass:env", "TS_PW",
            env=env)  # fmt: skip
    return keystore, truststore


def add_user(users, name: str, password: str) -> None:
    """`hodlflow serve-sql-user add` with the password on standard input."""
    done = subprocess.run(
        hodlflow("serve-sql-user", "add", name, "--password-file", str(users), "--password-stdin"),
        input=password + "\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat_file in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat_file).read()
        except OSError:
            continue  # ended meanwhile
        fields = text.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(text.split()[0]))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def proc_file(pid: int, name: str) -> bytes | None:
    """/proc/PID/NAME, or None when the process has ended meanwhile."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as fh:
            return fh.read()
    except OSError:
        return None


def all_command_lines() -> bytes:
    pids = [int(p.split("/")[2]) for p in glob.glob("/proc/[0-9]*")]
    return b"\n".join(c for p in pids if (c := proc_file(p, "cmdline")))


def beeline_as(port: int, query: str, url_extra: str, *login: str) -> subprocess.CompletedProcess:
    """beeline on ``jdbc:hive2://127.0.0.1:port/default`` + ``url_extra`` with the login
    options given (``-n USER -w PASSWORD_FILE``: the password from a file, off the command
    line); no terminal, so it cannot prompt."""
    return subprocess.run(
        [os.path.join(spark_home(), "bin", "beeline"),
         "-u", f"jdbc:hive2://127.0.0.1:{port}/default{url_extra}", *login,
         "--silent=true", "--outputformat=csv2", "-e", query],
        env=spark_env(os.environ), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_serve_sql_with_logins_and_tls_lets_only_a_user_with_the_password_read(warehouse, tmp_path):
    # Random passwords, so that finding one anywhere can only mean it leaked there; the
    # user's has a non-ASCII letter (the login bytes are UTF-8; the Thrift server's SASL
    # layer reads them byte by byte).
    keystore_pw, user_pw = f"ks-{secrets.token_hex(8)}", f"Pä-{secrets.token_hex(8)}"
    wrong_pw = f"wrong-{secrets.token_hex(8)}"
    # The truststore holds the server's public certificate only: its password guards nothing
    # secret, so it may go in the JDBC URL as BI tools take it.
    keystore, truststore = make_keystores(tmp_path, keystore_pw, "public-truststore")
    tls = f";ssl=true;sslTrustStore={truststore};trustStorePassword=public-truststore"
    users = tmp_path / "users"
    add_user(users, "admin", f"admin-{secrets.token_hex(8)}")
    right_file, wrong_file = tmp_path / "right.pw", tmp_path / "wrong.pw"
    for path, pw in ((right_file, user_pw), (wrong_file, wrong_pw)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(pw)
    log_path = tmp_path / "server.log"
    port = free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            hodlflow("serve-sql", "--env", "test", "--warehouse", str(warehouse),
                     "--port", str(port), "--password-file", str(users),
                     "--tls-keystore", str(keystore)),
            stdout=log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "HODLFLOW_SERVE_KEYSTORE_PASSWORD": keystore_pw},
        )  # fmt: skip
    query = "SELECT height, hash, day, tx_count FROM chain.blocks ORDER BY height"
    try:
        wait_listening(server, port, log_path.read_text)
        # Added while the server runs: it reads the file at each login.
        add_user(users, "analyst", user_pw)

        # The secrets file spark-submit read: private, and named on the JVM's command line.
        tree = process_tree(server.pid)
        cmdlines = {p: c.split(b"\0") for p in tree if (c := proc_file(p, "cmdline"))}
        [(jvm, props)] = [(p, c[c.index(b"--properties-file") + 1]) for p, c in cmdlines.items()
                          if b"--properties-file" in c]  # fmt: skip
        assert stat.S_IMODE(os.stat(props).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(props)).st_mode) == 0o700

        done = beeline_as(port, query, tls, "-n", "analyst", "-w", str(right_file))
        assert done.returncode == 0, done.stderr[-4000:]
        text = re.sub(r"^\d+: jdbc:\S+> ", "", done.stdout.strip())
        assert list(csv.reader(io.StringIO(text))) == [
            ["height", "hash", "day", "tx_count"], ["880000", "00aa", "2025-03-01", "1"],
            ["880001", "00bb", "2025-03-01", "3"], ["880002", "00cc", "2025-03-02", "2"]]  # fmt: skip
        # A logged-in user cannot read the keystore password back from the server's settings.
        done = beeline_as(port, "SET spark.hadoop.hive.server2.keystore.password", tls,
                          "-n", "analyst", "-w", str(right_file))  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        assert keystore_pw not in done.stdout + done.stderr

        refusals = {
            "wrong password": beeline_as(port, query, tls, "-n", "analyst", "-w", str(wrong_file)),
            "no password": beeline_as(port, query, tls, "-n", "analyst"),
            "no user": beeline_as(port, query, tls),
            "unknown user": beeline_as(port, query, tls, "-n", "mallory", "-w", str(right_file)),
        }
        for case, done in refusals.items():
            assert done.returncode != 0, case
            assert "Error validating the login" in done.stderr, (case, done.stderr[-2000:])
            assert "880000" not in done.stdout + done.stderr, case
        # A client without TLS gets no answer either.
        done = beeline_as(port, query, "", "-n", "analyst", "-w", str(right_file))
        assert done.returncode != 0 and "880000" not in done.stdout + done.stderr

        # No process shows a password on its command line, and the server's processes do not
        # have the keystore password in their environment either (only the serve-sql Python
        # process was started with it).
        everything = all_command_lines()
        for secret in (keystore_pw, user_pw, wrong_pw):
            assert secret.encode() not in everything
        environs = {p: e for p in process_tree(server.pid)[1:] if (e := proc_file(p, "environ"))}
        assert jvm in environs
        for p, environ in environs.items():
            assert keystore_pw.encode() not in environ, p
    finally:
        code = stop(server)
    assert code == 0, log_path.read_text()[-4000:]
    assert not os.path.exists(props)  # the secrets file went with the server

    log = log_path.read_text()
    # The refusals reached our provider (the server logs them without the password).
    assert "hodlflow: wrong user name or password (user 'analyst'" in log
    assert "hodlflow: wrong user name or password (user 'mallory'" in log
    # No password in the server's output nor in any file left behind, but the two files made
    # to hold the user's password for beeline (private).
    secrets_of = {"keystore": keystore_pw, "user": user_pw, "wrong": wrong_pw}
    for what, secret in secrets_of.items():
        assert secret not in log, what
    for root in (tmp_path, warehouse):
        for path in glob.glob(f"{root}/**", recursive=True):
            if os.path.isdir(path) or path in (str(right_file), str(wrong_file)):
                continue
            data = open(path, "rb").read()
            for what, secret in secrets_of.items():
                assert secret.encode() not in data, (what, path)
    for path in (right_file, wrong_file, users):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

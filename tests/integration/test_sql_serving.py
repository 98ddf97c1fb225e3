"""`hodlflow sql` and `hodlflow serve-sql` over a warehouse of their own (Derby admits one
process at a time, so not the shared test session's catalog): a Delta table written here by
hand is registered through `hodlflow sql --spark-sql` (the spark-sql binary), then the Thrift
JDBC/ODBC server started by `hodlflow serve-sql` on a free port answers beeline over JDBC with
the rows written, and stops cleanly on SIGTERM."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from hodlflow.sql import spark_env, spark_home
from tests.support.ports import free_port

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


def test_serve_sql_answers_jdbc_queries_with_the_tables_rows_and_stops_on_sigterm(warehouse):
    port = free_port()
    server = subprocess.Popen(
        hodlflow("serve-sql", "--env", "test", "--warehouse", str(warehouse), "--port", str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"serve-sql exited with {server.returncode}:\n{server.stdout.read()[-4000:]}"
                )
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.time() > deadline:
                pytest.fail("the Thrift server did not listen within 300 s")
            time.sleep(2)
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
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the port is free again

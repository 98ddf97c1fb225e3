"""The shared metastore on a real PostgreSQL server (Debian's package, a throw-away cluster on
a free loopback port): the Thrift server (`hodlflow serve-sql`) keeps answering JDBC queries
while ingest processes (`hodlflow ingest`, then spark-submit of jobs/ingest.py as the Airflow
DAGs run it) create and append the chain tables, sees those tables (made
after it started) with the tiny chain's row counts, and a `spark-sql` process (`hodlflow sql
--spark-sql`) opens the same catalog at the same time. The password never shows on a command
line. Bad logins, an unreachable server and a missing driver jar are one-line errors naming the
setting and the URL, never the password. Every server is stopped at the end."""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from hodlflow.chain.network import REGTEST
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sql import spark_env, spark_home
from tests.support.ports import free_port, wait_listening
from tests.support.postgres import start_postgres, stop_postgres
from tests.support.tiny_chain import build_tiny_chain

pytestmark = pytest.mark.spark

# Quotes, a backslash and '=' on purpose: the properties file must carry them unchanged.
PASSWORD = "hodl'flow=pw\\42"


@pytest.fixture(scope="module")
def postgres():
    pg = start_postgres("metastore", "hodlflow", PASSWORD)
    try:
        yield pg
    finally:
        stop_postgres(pg)


def metastore_args(url: str, user: str = "hodlflow") -> list[str]:
    return ["--set", "spark.metastore.kind=postgres", "--set", f"spark.metastore.url={url}",
            "--set", f"spark.metastore.user={user}"]  # fmt: skip


def hodlflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "hodlflow.cli", *args]


def env_with(password: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HODLFLOW_METASTORE_PASSWORD", None)
    if password is not None:
        env["HODLFLOW_METASTORE_PASSWORD"] = password
    return env


def beeline(port: int, query: str) -> list[list[str]]:
    done = subprocess.run(
        [os.path.join(spark_home(), "bin", "beeline"), "-u", f"jdbc:hive2://127.0.0.1:{port}/default",
         "--silent=true", "--outputformat=csv2", "-e", query],
        env=spark_env(os.environ), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    # beeline echoes its prompt ("0: jdbc:hive2://...> ") in front of the first line.
    text = re.sub(r"^\d+: jdbc:\S+> ", "", done.stdout.strip())
    return list(csv.reader(io.StringIO(text)))


def processes_showing(secret: str) -> list[str]:
    """Command lines of running processes that contain ``secret``."""
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue  # ended meanwhile
        if secret.encode() in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:300])
    return found


def tail(path) -> str:
    with open(path, errors="replace") as fh:
        return fh.read()[-4000:]


def start(args: list[str], env: dict[str, str], log, submit: bool = False) -> subprocess.Popen:
    """A hodlflow process in the background, its output in the file ``log`` (a pipe nobody
    reads while it runs would fill up and stop it). ``submit``: ``args`` start with a step
    name, run as the Airflow DAGs run it: spark-submit of ``jobs/<step>.py`` with the
    properties file of `hodlflow fetch-jars`."""
    cmd = hodlflow(*args)
    if submit:
        from hodlflow.config import PROJECT_ROOT, load_settings

        props = os.path.join(load_settings("test").spark.jars_cache, "spark-submit.properties")
        cmd = [os.path.join(spark_home(), "bin", "spark-submit"), "--master", "local[1]",
               "--properties-file", props, str(PROJECT_ROOT / "jobs" / f"{args[0]}.py"),
               *args[1:]]  # fmt: skip
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=spark_env(env), stdout=out, stderr=subprocess.STDOUT)


def query_while_running(job: subprocess.Popen, port: int) -> int:
    """Ask the Thrift server over JDBC every few seconds while ``job`` runs (each beeline is a
    JVM start: asking non-stop would slow the job on a small machine); the number of queries
    asked and answered while the job was still running."""
    answered = 0
    while job.poll() is None:
        rows = beeline(port, "SHOW DATABASES")
        assert rows[0] == ["namespace"]
        assert processes_showing(PASSWORD) == []
        if job.poll() is None:
            answered += 1
        try:
            job.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    return answered


def finish(job: subprocess.Popen, log) -> None:
    job.wait(timeout=600)
    assert job.returncode == 0, f"{job.args} exited with {job.returncode}:\n{tail(log)}"


# The chain tables' counts in one query: blocks, the top height, the blocks' tx_count sum,
# transactions (counted in chain.transactions) and the blocks' fees.
COUNTS = (
    "SELECT (SELECT count(*) FROM chain.blocks) AS blocks, (SELECT max(height) FROM chain.blocks)"
    " AS top, (SELECT sum(tx_count) FROM chain.blocks) AS tx_count,"
    " (SELECT count(*) FROM chain.transactions) AS txs,"
    " (SELECT sum(fees_sats) FROM chain.blocks) AS fees"
)
HEADER = ["blocks", "top", "tx_count", "txs", "fees"]


def test_the_thrift_server_serves_tables_a_concurrent_pipeline_creates_and_appends(
    postgres, tmp_path
):
    tiny = build_tiny_chain()
    blocks = str(tmp_path / "blocks")
    write_blocks_dir(blocks, tiny.stored, REGTEST)
    # Every Spark process of the test writes an event log: the password must not be in them
    # (Spark redacts settings named like a password).
    events = tmp_path / "events"
    events.mkdir()
    common = ["--env", "test", "--warehouse", str(tmp_path / "warehouse"),
              *metastore_args(postgres.jdbc_url),
              "--set", "spark.conf.spark.eventLog.enabled=true",
              "--set", f"spark.conf.spark.eventLog.dir={events.as_uri()}",
              "--set", "spark.conf.spark.eventLog.compress=false"]  # fmt: skip
    ingest = ["ingest", *common, "--blocks-dir", blocks, "--network", "regtest",
              "--set", f"ingest.start_hash={tiny.g.hash}"]  # fmt: skip
    env = env_with(PASSWORD)
    # A temporary folder of the test's own: the password file of each command is made there
    # (tempfile reads TMPDIR), so the check below sees this test's files and no other test's
    # running beside it on the other pytest worker.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env["TMPDIR"] = str(private_tmp)
    port = free_port()
    logs = {name: tmp_path / f"{name}.log" for name in ("server", "ingest1", "ingest2")}
    server = start(["serve-sql", *common, "--port", str(port)], env, logs["server"])
    code = None
    try:
        wait_listening(server, port, lambda: tail(logs["server"]))
        # The server's password file, private to this user, while the server runs.
        (held,) = glob.glob(str(private_tmp / "hodlflow-secrets-*" / "secrets.properties"))
        assert os.stat(held).st_mode & 0o077 == 0
        assert beeline(port, "SHOW DATABASES") == [["namespace"], ["default"]]

        # The pipeline creates the chain tables (heights 0-1) while the server answers.
        job = start([*ingest, "--end-height", "1"], env, logs["ingest1"])
        answered = query_while_running(job, port)
        finish(job, logs["ingest1"])
        assert answered >= 1
        # Tables made after the server started, with the tiny chain's counts: blocks G and
        # B1, their two coinbase transactions.
        # (One beeline a check: each is a JVM start.)
        assert beeline(port, COUNTS) == [HEADER, ["2", "1", "2", "2", "0"]]

        # The pipeline appends heights 2-3 (through spark-submit, as the DAGs run it) while the
        # server and a spark-sql process read.
        job = start(ingest, env, logs["ingest2"], submit=True)
        shell = subprocess.run(
            hodlflow("sql", *common, "--spark-sql", "-e",
                     "SELECT count(*), sum(tx_count) FROM chain.blocks WHERE height <= 1"),
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert shell.returncode == 0, shell.stderr[-4000:]
        assert shell.stdout.strip().splitlines()[-1].split() == ["2", "2"]
        query_while_running(job, port)
        finish(job, logs["ingest2"])
        # 4 blocks; 6 transactions (4 coinbases, A, C); fees 10,000 + 5,000 sat.
        assert beeline(port, COUNTS) == [HEADER, ["4", "3", "6", "6", "15000"]]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()  # reported below, unless the test already failed
            server.wait()
    assert code == 0, f"serve-sql did not stop cleanly on SIGTERM:\n{tail(logs['server'])}"
    # The password files spark-submit read are gone with the commands that made them.
    assert glob.glob(str(private_tmp / "hodlflow-secrets-*")) == []
    # No file the test leaves behind holds the password: the processes' logs, the warehouse,
    # the event logs — there the password setting shows, redacted, in each process's settings.
    apps = sorted(events.iterdir())  # one event log (a folder of files) per Spark process
    assert len(apps) >= 4  # the server, two ingests, spark-sql
    redacted = set()
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert PASSWORD.encode() not in data, path
        if events in path.parents and b'ConnectionPassword":"*********(redacted)"' in data:
            redacted.add(path.relative_to(events).parts[0])
    assert redacted == {app.name for app in apps}


def cli_error(args: list[str], password: str | None) -> tuple[int, str]:
    done = subprocess.run(hodlflow(*args), env=env_with(password), capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    return done.returncode, done.stderr


def test_a_wrong_password_names_the_user_setting_and_url_but_not_the_password(postgres, tmp_path):
    code, err = cli_error(["serve-sql", "--env", "test", "--warehouse", str(tmp_path),
                           *metastore_args(postgres.jdbc_url)], "not-the-password")  # fmt: skip
    assert code == 1
    assert f"spark.metastore.user='hodlflow' at spark.metastore.url={postgres.jdbc_url}" in err
    assert "password authentication failed" in err
    assert "not-the-password" not in err


def test_an_unreachable_server_names_the_url_setting(postgres, tmp_path):
    url = f"jdbc:postgresql://127.0.0.1:{free_port()}/metastore"
    code, err = cli_error(["sql", "--env", "test", "--warehouse", str(tmp_path),
                           *metastore_args(url), "-e", "SELECT 1"], PASSWORD)  # fmt: skip
    assert code == 1
    assert f"not reachable at spark.metastore.url={url}" in err
    assert PASSWORD not in err


def test_no_password_asks_for_the_environment_variable(postgres, tmp_path):
    code, err = cli_error(["sql", "--env", "test", "--warehouse", str(tmp_path),
                           *metastore_args(postgres.jdbc_url), "-e", "SELECT 1"], None)  # fmt: skip
    assert code == 2
    assert "HODLFLOW_METASTORE_PASSWORD" in err and postgres.jdbc_url in err


def test_a_missing_driver_jar_says_how_to_fetch_it(postgres, tmp_path):
    from hodlflow.config import load_settings

    cache = tmp_path / "jars"
    cache.mkdir()
    for jar in glob.glob(os.path.join(load_settings("test").spark.jars_cache, "io.delta_*.jar")):
        shutil.copy(jar, cache)  # Delta's jars, not PostgreSQL's
    code, err = cli_error(["serve-sql", "--env", "test", "--warehouse", str(tmp_path),
                           "--set", f"spark.jars_cache={cache}",
                           *metastore_args(postgres.jdbc_url)], PASSWORD)  # fmt: skip
    assert code == 1
    assert "spark.metastore.kind=postgres needs the PostgreSQL JDBC driver" in err
    assert str(cache) in err and "make setup" in err


def test_with_derby_a_second_process_is_refused_at_once_naming_the_metastore(spark, session_dir):
    """The contrast: the test session's embedded Derby metastore, once open, shuts out every
    other process; `hodlflow sql` says so before starting Spark instead of a Hive stack trace."""
    spark.sql("SHOW DATABASES").collect()  # the session has its Derby database open now
    warehouse = os.path.join(session_dir, "warehouse")
    code, err = cli_error(["sql", "--env", "test", "--warehouse", warehouse, "-e", "SELECT 1"],
                          None)  # fmt: skip
    assert code == 1
    assert f"the embedded Derby metastore {warehouse}/metastore_db is open in another" in err
    assert "spark.metastore.kind=postgres" in err

"""spark.metastore settings and what they make of every Spark start (no Spark, no server):
PostgreSQL's JDBC settings and driver jar in the catalog conf, the password kept out of it,
out of repr, and in a private file that is gone afterwards."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from hodlflow.config import ConfigError, load_settings
from hodlflow.metastore import (
    PASSWORD_KEY,
    MetastoreError,
    check_derby_free,
    postgres_address,
    secret_properties_file,
)
from hodlflow.spark import catalog_conf

URL = "jdbc:postgresql://db.internal:5433/hive_meta"
SECRET = "s3cret-not-to-show"


@pytest.fixture
def jars_cache(tmp_path):
    cache = tmp_path / "jars"
    cache.mkdir()
    for name in ("io.delta_delta-spark_4.2_2.13-4.4.0.jar", "io.delta_delta-storage-4.4.0.jar",
                 "org.postgresql_postgresql-42.7.14.jar"):  # fmt: skip
        (cache / name).write_bytes(b"")
    return str(cache)


def pg_settings(jars_cache, tmp_path, **extra):
    over = {
        "warehouse.path": str(tmp_path / "wh"),
        "spark.jars_cache": jars_cache,
        "spark.metastore.kind": "postgres",
        "spark.metastore.url": URL,
        "spark.metastore.user": "hive",
        "spark.metastore.password": SECRET,
    }
    over.update(extra)
    return load_settings("test", over)


def test_postgres_catalog_conf_names_url_driver_user_and_the_driver_jar_but_not_the_password(
    jars_cache, tmp_path
):
    conf = catalog_conf(pg_settings(jars_cache, tmp_path))
    assert conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == URL
    assert conf["spark.hadoop.javax.jdo.option.ConnectionDriverName"] == "org.postgresql.Driver"
    assert conf["spark.hadoop.javax.jdo.option.ConnectionUserName"] == "hive"
    pg_jar = os.path.join(jars_cache, "org.postgresql_postgresql-42.7.14.jar")
    assert pg_jar in conf["spark.jars"].split(",")
    assert pg_jar in conf["spark.driver.extraClassPath"].split(os.pathsep)
    assert PASSWORD_KEY not in conf
    assert not any(SECRET in f"{k}={v}" for k, v in conf.items())
    assert "derby" not in " ".join(conf.values())


def test_derby_stays_the_default_without_the_postgres_driver(jars_cache, tmp_path):
    conf = catalog_conf(load_settings("test", {"warehouse.path": str(tmp_path / "wh"),
                                               "spark.jars_cache": jars_cache}))  # fmt: skip
    url = conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert url == f"jdbc:derby:;databaseName={tmp_path / 'wh' / 'metastore_db'};create=true"
    assert "postgresql" not in conf["spark.jars"]


def test_jars_in_spark_conf_are_added_to_the_delta_jars_not_put_in_their_place(
    jars_cache, tmp_path
):
    # A filesystem connector (hadoop-aws for s3a://) given as spark.jars in the settings.
    conf = catalog_conf(load_settings("test", {"warehouse.path": str(tmp_path / "wh"),
                                               "spark.jars_cache": jars_cache,
                                               "spark.conf.spark.jars": "/opt/jars/hadoop-aws.jar"}))  # fmt: skip
    jars = conf["spark.jars"].split(",")
    assert jars[-1] == "/opt/jars/hadoop-aws.jar"
    assert any("delta-spark" in os.path.basename(j) for j in jars[:-1])


def test_the_password_is_not_in_the_settings_repr(jars_cache, tmp_path):
    assert SECRET not in repr(pg_settings(jars_cache, tmp_path))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"spark.metastore.kind": "mysql"}, "spark.metastore.kind must be one of"),
        ({"spark.metastore.url": None}, "spark.metastore.url must be jdbc:postgresql://"),
        (
            {"spark.metastore.url": "jdbc:mysql://h/db"},
            "spark.metastore.url must be jdbc:postgresql://",
        ),
        ({"spark.metastore.url": URL + "?password=x"}, "must not hold the password"),
        ({"spark.metastore.user": None}, "spark.metastore.user is needed"),
        ({"spark.metastore.port": 5432}, "spark.metastore"),
    ],
)
def test_bad_metastore_settings_are_refused_naming_the_setting(
    jars_cache, tmp_path, extra, message
):
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        pg_settings(jars_cache, tmp_path, **extra)


def test_jdbc_url_gives_host_port_and_database():
    assert postgres_address(URL) == ("db.internal", 5433, "hive_meta")
    assert postgres_address("jdbc:postgresql://localhost/m?ssl=true") == ("localhost", 5432, "m")
    with pytest.raises(ConfigError, match="host\\[:port\\]/database"):
        postgres_address("jdbc:postgresql://localhost:5432/")


def test_the_password_file_is_private_holds_the_escaped_password_and_is_removed(
    jars_cache, tmp_path
):
    settings = pg_settings(jars_cache, tmp_path, **{"spark.metastore.password": "a\\b=c'd"})
    with secret_properties_file(settings.spark.metastore) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        lines = [x for x in open(path).read().splitlines() if not x.startswith("#")]
        # java.util.Properties reads "\\" as one backslash.
        assert lines == [f"{PASSWORD_KEY}=a\\\\b=c'd"]
    assert not os.path.exists(os.path.dirname(path))


def test_derby_needs_no_password_file(tmp_path):
    settings = load_settings("test", {"warehouse.path": str(tmp_path)})
    with secret_properties_file(settings.spark.metastore) as path:
        assert path is None


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], "dbex.lck"), os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)  # what a JVM with the Derby database open holds
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(db_dir, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db_dir), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_derby_metastore_let_go_by_a_process_shutting_down_is_waited_for(tmp_path):
    # The previous step's JVM exits a moment after its Python: the next step waits for it.
    proc = _holder(tmp_path, 1.5)
    try:
        check_derby_free(str(tmp_path), wait_s=30)
        assert proc.wait(timeout=5) == 0  # it had to end before the check returned
    finally:
        proc.kill()


def test_a_derby_metastore_held_past_the_wait_is_refused_naming_folder_and_pid(tmp_path):
    proc = _holder(tmp_path, 60)
    try:
        with pytest.raises(MetastoreError) as err:
            check_derby_free(str(tmp_path), wait_s=0.5)
        assert (
            f"Derby metastore {tmp_path} is open in another Spark process (pid {proc.pid}"
            in str(err.value)
        )
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    check_derby_free(str(tmp_path), wait_s=0)  # free once the holder is gone


def test_a_derby_metastore_held_by_a_running_step_is_refused_at_once_naming_the_step(tmp_path):
    # Two steps started together on a local warehouse: the second finds the first's JVM holding
    # Derby before it can reach the warehouse lease. It names the step from the lease (host,
    # pid, since when) and does not wait for a step that will not end soon.
    from types import SimpleNamespace

    from hodlflow.lease import live_holder, warehouse_lease

    s = SimpleNamespace(warehouse=str(tmp_path / "wh"), db_prefix="")
    proc = _holder(tmp_path, 60)
    try:
        assert live_holder(s) is None  # no lease yet: the plain wait and message
        with warehouse_lease(None, s, "ingest"):
            t0 = time.monotonic()
            with pytest.raises(MetastoreError) as err:
                check_derby_free(str(tmp_path), wait_s=30, warehouse=s.warehouse,
                                 lease_holder=lambda: live_holder(s))  # fmt: skip
            assert time.monotonic() - t0 < 10  # not the 30 s wait
            msg = str(err.value)
            assert f"{s.warehouse} is in use by `ingest` (host {socket.gethostname()}, " in msg
            assert f"pid {os.getpid()}, since " in msg and " UTC, renewed " in msg
            assert f"its Spark process (pid {proc.pid})" in msg and str(tmp_path) in msg
        assert live_holder(s) is None  # released: back to waiting on Derby alone
        with pytest.raises(MetastoreError, match="waited 0 s"):
            check_derby_free(str(tmp_path), wait_s=0.2, lease_holder=lambda: live_holder(s))
    finally:
        proc.kill()
        proc.wait()

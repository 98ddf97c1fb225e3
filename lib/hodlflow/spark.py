"""The one Spark session factory, used by jobs, the CLI and the tests.

Delta Lake's jars are not in any pip package. ``fetch_jars`` resolves them once from Maven
Central (through Spark's own Ivy, so the versions are the ones delta-spark's pip package pins)
into ``spark.jars_cache``; every later session loads them from there with ``spark.jars`` and
never touches the network.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from hodlflow.config import Settings
from hodlflow.lease import live_holder
from hodlflow.metastore import (
    POSTGRES_JAR_PREFIX,
    POSTGRES_PACKAGE,
    check_derby_free,
    check_metastore,
    metastore_jars,
    postgres_conf,
    postgres_jar,
    secret_conf,
)
from hodlflow.paths import local_path, scheme

# The Maven coordinates matching the pinned pyspark/delta-spark pip packages. (Maven Central
# serves 4.4.0 of this artifact but not 4.4.1, which PyPI has: both are pinned to 4.4.0.)
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"


class JarsMissingError(RuntimeError):
    """The Delta jars are not in the cache: run ``make setup`` (or ``hodlflow fetch-jars``)."""


# Of what Ivy resolves, only Delta's own jars go on the classpath: the rest (Hadoop, Parquet,
# Jackson, log4j) are already in pyspark at the versions Spark was built with, and a second copy
# would shadow them.
_CLASSPATH_PREFIXES = ("io.delta_delta-spark", "io.delta_delta-storage")


def cached_jars(jars_cache: str) -> list[str]:
    return sorted(
        j
        for j in glob.glob(os.path.join(jars_cache, "*.jar"))
        if Path(j).name.startswith(_CLASSPATH_PREFIXES)
    )


def fetch_jars(jars_cache: str) -> list[str]:
    """Resolve the Delta jars and their dependencies, and the PostgreSQL JDBC driver (for a
    shared metastore), from Maven Central into ``jars_cache``.

    Runs one throw-away Spark session with ``spark.jars.packages`` and a private Ivy home, then
    copies the resolved jars into the cache. Idempotent: returns at once when the cache is full.
    """
    existing = cached_jars(jars_cache)
    if any("delta-spark" in Path(j).name for j in existing) and postgres_jar(jars_cache):
        return existing
    os.makedirs(jars_cache, exist_ok=True)
    ivy_home = tempfile.mkdtemp(prefix="hodlflow-ivy-")
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("hodlflow-fetch-jars")
        .config("spark.jars.packages", f"{DELTA_PACKAGE},{POSTGRES_PACKAGE}")
        .config("spark.jars.ivy", ivy_home)
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()
    jars = glob.glob(os.path.join(ivy_home, "jars", "*.jar"))
    if not any("delta-spark" in Path(j).name for j in jars):
        raise JarsMissingError(
            f"Ivy resolved no delta-spark jar for {DELTA_PACKAGE} into {ivy_home}"
        )
    for jar in jars:
        if Path(jar).name.startswith((*_CLASSPATH_PREFIXES, POSTGRES_JAR_PREFIX)):
            shutil.copy2(jar, jars_cache)
    shutil.rmtree(ivy_home, ignore_errors=True)
    return cached_jars(jars_cache)


SUBMIT_PROPERTIES = "spark-submit.properties"


def write_submit_properties(jars_cache: str) -> str:
    """Write ``<jars_cache>/spark-submit.properties``: ``spark.jars`` = the cached Delta jars
    and the PostgreSQL JDBC driver (for a shared metastore), for ``spark-submit
    --properties-file`` (the Airflow DAGs pass it).

    Under spark-submit the driver JVM is already running when a job builds its session, so
    ``spark.jars`` set there comes too late for the driver's own classpath (Delta's catalog
    class is then not found): the jars must be on spark-submit's command line or in this file.
    """
    jars = cached_jars(jars_cache)
    if not any("delta-spark" in Path(j).name for j in jars):
        raise JarsMissingError(f"no Delta Lake jars in {jars_cache}: run `hodlflow fetch-jars`")
    pg = postgres_jar(jars_cache)
    jars += [pg] if pg else []
    path = os.path.join(jars_cache, SUBMIT_PROPERTIES)
    with open(path, "w") as fh:
        fh.write("# Written by `hodlflow fetch-jars`: the Delta Lake jars for spark-submit.\n")
        fh.write(f"spark.jars {','.join(os.path.abspath(j) for j in jars)}\n")
        if pg:
            # The metastore's JDBC driver must be on the driver JVM's own classpath: from
            # spark.jars alone java.sql.DriverManager finds "No suitable driver" (seen).
            fh.write(f"spark.driver.extraClassPath {os.path.abspath(pg)}\n")
    return path


def metastore_dir(settings: Settings) -> str:
    if settings.spark.metastore_dir:
        return settings.spark.metastore_dir
    wh = settings.warehouse
    if scheme(wh) not in (None, "file"):
        raise ValueError(
            f"warehouse.path={wh!r} is not local: set spark.metastore_dir to a local folder "
            "for the embedded Derby metastore, or configure a shared metastore in spark.conf"
        )
    return os.path.join(local_path(wh, "warehouse.path"), "metastore_db")


def metastore_url(settings: Settings) -> str:
    """The JDBC URL of the embedded Derby metastore (an absolute path: independent of the
    working directory of whichever process opens it)."""
    return f"jdbc:derby:;databaseName={metastore_dir(settings).rstrip('/')};create=true"


def _session_jars(settings: Settings) -> list[str]:
    """The cached jar files (Delta's, and the metastore's JDBC driver when it is PostgreSQL),
    or :class:`JarsMissingError` saying how to fetch them."""
    jars = cached_jars(settings.spark.jars_cache)
    if not any("delta-spark" in Path(j).name for j in jars):
        raise JarsMissingError(
            f"no Delta Lake jars in {settings.spark.jars_cache}: run `make setup` "
            "(or `hodlflow fetch-jars`) once with access to Maven Central"
        )
    return jars + metastore_jars(settings.spark.metastore, settings.spark.jars_cache)


def metastore_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings naming the metastore database (``spark.metastore``), never its
    password (:func:`hodlflow.metastore.secret_conf`): embedded Derby in ``metastore_dir``
    (with ``derby.system.home`` beside it, where derby.log goes), or PostgreSQL."""
    if settings.spark.metastore.kind == "postgres":
        return postgres_conf(settings.spark.metastore)
    ms = metastore_dir(settings).rstrip("/")
    return {
        # An absolute database path: under spark-submit the driver JVM is already running,
        # so derby.system.home may come too late to place it.
        "spark.hadoop.javax.jdo.option.ConnectionURL": metastore_url(settings),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={os.path.dirname(ms)}",
    }


def check_metastore_usable(settings: Settings) -> None:
    """Before a Spark process starts: PostgreSQL takes the login (one-line errors otherwise);
    an embedded Derby metastore is not open in another process."""
    if settings.spark.metastore.kind == "postgres":
        check_metastore(settings.spark.metastore)
    elif settings.spark.metastore_dir or scheme(settings.warehouse) in (None, "file"):
        check_derby_free(metastore_dir(settings).rstrip("/"),
                         lease_holder=lambda: live_holder(settings),
                         warehouse=f"{settings.warehouse} (database prefix "
                         f"{settings.db_prefix or 'none'})")  # fmt: skip


def _session_conf(settings: Settings, jars: list[str]) -> dict[str, str]:
    """Every Spark setting of a hodlflow process but the metastore password."""
    conf = {
        # Load Delta (and the metastore's JDBC driver) from the local cache: no Ivy, no network.
        "spark.jars": ",".join(jars),
        # Also on the driver JVM's own classpath: the Thrift server opens each JDBC session in
        # a thread that does not see spark.jars' class loader (DeltaCatalog not found), and
        # the Hive client loads the JDBC driver (a shared class) from the driver's loader.
        "spark.driver.extraClassPath": os.pathsep.join(jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # A persistent catalog so `spark-sql` and the Thrift server see the same databases.
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": settings.warehouse,
    }
    conf.update(metastore_conf(settings))
    java_opts = conf.pop("spark.driver.extraJavaOptions", "")
    conf.update(settings.spark.conf)
    if settings.spark.conf.get("spark.jars"):  # a connector (hadoop-aws): added to Delta's
        conf["spark.jars"] = ",".join([*jars, settings.spark.conf["spark.jars"]])
    conf["spark.driver.extraJavaOptions"] = (
        java_opts + " " + settings.spark.conf.get("spark.driver.extraJavaOptions", "")
    ).strip()
    if not conf["spark.driver.extraJavaOptions"]:
        del conf["spark.driver.extraJavaOptions"]
    return conf


def catalog_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings that make a process see the project's catalog: Delta from the jar
    cache, the Hive catalog over ``warehouse.path`` and the same metastore. Used as
    ``--conf`` options of ``spark-sql`` and the Thrift server (``hodlflow sql``/``serve-sql``),
    so it never holds the metastore password (that goes in a private properties file).
    """
    return _session_conf(settings, _session_jars(settings))


def build_session(settings: Settings) -> SparkSession:
    """Create (or return the running) Spark session configured for hodlflow.

    Example::

        spark = build_session(load_settings("local"))
        spark.sql("SELECT count(*) FROM chain.blocks").show()
    """
    jars = _session_jars(settings)
    conf = _session_conf(settings, jars)
    if settings.spark.master:
        # Under spark-submit the master comes from the command line (cluster.yaml sets null).
        conf["spark.master"] = settings.spark.master
    conf["spark.app.name"] = settings.spark.app_name
    if settings.spark.metastore.kind == "derby":
        conf.pop("spark.driver.extraClassPath")  # needed by the Thrift server and PostgreSQL
    # Python workers run the driver's interpreter (the project's virtual environment), where
    # hodlflow is installed; a cluster can point spark.pyspark.python elsewhere in conf/.
    # PySpark's RDD API takes the worker interpreter from PYSPARK_PYTHON (not from the conf).
    conf.setdefault("spark.pyspark.python", sys.executable)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Delta: every write of a table is one atomic commit; keep stats for height/day skipping.
    conf.setdefault("spark.databricks.delta.schema.autoMerge.enabled", "false")
    secrets = secret_conf(settings.spark.metastore)
    if SparkContext._gateway is None:
        # Only before this process starts its JVM: later, that JVM itself holds the Derby
        # database (a session stopped and built again reuses it).
        check_metastore_usable(settings)
    if secrets and SparkContext._gateway is None:
        # PySpark puts every setting it knows when it starts the driver JVM on that JVM's
        # command line (visible in `ps`). Start the JVM without the password; the session
        # below then hands it over the Py4J socket.
        SparkContext._ensure_initialized(conf=SparkConf(loadDefaults=False).setAll(conf.items()))
    builder = SparkSession.builder
    for key, value in {**conf, **secrets}.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()


def prepare_jars(jars_cache: str) -> str:
    """`hodlflow fetch-jars`: cache the Delta jars and the PostgreSQL JDBC driver
    (:func:`fetch_jars`) and write the spark-submit properties file
    (:func:`write_submit_properties`); what it did, as lines to show."""
    jars = fetch_jars(jars_cache)
    return (
        f"{len(jars)} Delta Lake jar(s) cached in {jars_cache}\n"
        f"PostgreSQL JDBC driver (metastore): {postgres_jar(jars_cache)}\n"
        f"spark-submit properties file: {write_submit_properties(jars_cache)}"
    )

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

from pyspark.sql import SparkSession

from hodlflow.config import Settings
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
    """Resolve the Delta jars and their dependencies from Maven Central into ``jars_cache``.

    Runs one throw-away Spark session with ``spark.jars.packages`` and a private Ivy home, then
    copies the resolved jars into the cache. Idempotent: returns at once when the cache is full.
    """
    existing = cached_jars(jars_cache)
    if any("delta-spark" in Path(j).name for j in existing):
        return existing
    os.makedirs(jars_cache, exist_ok=True)
    ivy_home = tempfile.mkdtemp(prefix="hodlflow-ivy-")
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("hodlflow-fetch-jars")
        .config("spark.jars.packages", DELTA_PACKAGE)
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
        if Path(jar).name.startswith(_CLASSPATH_PREFIXES):
            shutil.copy2(jar, jars_cache)
    shutil.rmtree(ivy_home, ignore_errors=True)
    return cached_jars(jars_cache)


SUBMIT_PROPERTIES = "spark-submit.properties"


def write_submit_properties(jars_cache: str) -> str:
    """Write ``<jars_cache>/spark-submit.properties``: ``spark.jars`` = the cached Delta jars,
    for ``spark-submit --properties-file`` (the Airflow DAGs pass it).

    Under spark-submit the driver JVM is already running when a job builds its session, so
    ``spark.jars`` set there comes too late for the driver's own classpath (Delta's catalog
    class is then not found): the jars must be on spark-submit's command line or in this file.
    """
    jars = cached_jars(jars_cache)
    if not any("delta-spark" in Path(j).name for j in jars):
        raise JarsMissingError(f"no Delta Lake jars in {jars_cache}: run `hodlflow fetch-jars`")
    path = os.path.join(jars_cache, SUBMIT_PROPERTIES)
    with open(path, "w") as fh:
        fh.write("# Written by `hodlflow fetch-jars`: the Delta Lake jars for spark-submit.\n")
        fh.write(f"spark.jars {','.join(os.path.abspath(j) for j in jars)}\n")
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


def _delta_jars(settings: Settings) -> list[str]:
    """The cached jar files, or :class:`JarsMissingError` saying how to fetch them."""
    jars = cached_jars(settings.spark.jars_cache)
    if not any("delta-spark" in Path(j).name for j in jars):
        raise JarsMissingError(
            f"no Delta Lake jars in {settings.spark.jars_cache}: run `make setup` "
            "(or `hodlflow fetch-jars`) once with access to Maven Central"
        )
    return jars


def catalog_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings that make a process see the project's catalog: Delta from the jar
    cache, the Hive catalog over ``warehouse.path`` and the same metastore. Used as
    ``--conf`` options of ``spark-sql`` and the Thrift server (``hodlflow sql``/``serve-sql``).
    """
    jars = _delta_jars(settings)
    ms = metastore_dir(settings).rstrip("/")
    conf = {
        "spark.jars": ",".join(jars),
        # Also on the driver JVM's own classpath: the Thrift server opens each JDBC session in
        # a thread that does not see spark.jars' class loader (DeltaCatalog not found).
        "spark.driver.extraClassPath": os.pathsep.join(jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": settings.warehouse,
        "spark.hadoop.javax.jdo.option.ConnectionURL": metastore_url(settings),
    }
    conf.update(settings.spark.conf)
    conf["spark.driver.extraJavaOptions"] = (
        f"-Dderby.system.home={os.path.dirname(ms)} "
        + settings.spark.conf.get("spark.driver.extraJavaOptions", "")
    ).strip()
    return conf


def build_session(settings: Settings) -> SparkSession:
    """Create (or return the running) Spark session configured for hodlflow.

    Example::

        spark = build_session(load_settings("local"))
        spark.sql("SELECT count(*) FROM chain.blocks").show()
    """
    jars = _delta_jars(settings)
    ms = metastore_dir(settings).rstrip("/")
    builder = SparkSession.builder.appName(settings.spark.app_name)
    if settings.spark.master:
        # Under spark-submit the master comes from the command line (cluster.yaml sets null).
        builder = builder.master(settings.spark.master)
    builder = (
        builder
        # Load Delta from the local cache: no Ivy resolution, no network at start.
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        # A persistent catalog so `spark-sql` and the Thrift server see the same databases.
        .config("spark.sql.catalogImplementation", "hive")
        .config("spark.sql.warehouse.dir", settings.warehouse)
        # An absolute database path: under spark-submit the driver JVM is already running,
        # so derby.system.home (below, where derby.log goes) may come too late to place it.
        .config("spark.hadoop.javax.jdo.option.ConnectionURL", metastore_url(settings))
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dderby.system.home={os.path.dirname(ms)} "
            + settings.spark.conf.get("spark.driver.extraJavaOptions", ""),
        )
        # Delta: every write of a table is one atomic commit; keep stats for height/day skipping.
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
    )
    # Python workers run the driver's interpreter (the project's virtual environment), where
    # hodlflow is installed; a cluster can point spark.pyspark.python elsewhere in conf/.
    # PySpark's RDD API takes the worker interpreter from PYSPARK_PYTHON (not from the conf).
    builder = builder.config("spark.pyspark.python", sys.executable)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in settings.spark.conf.items():
        if key == "spark.driver.extraJavaOptions":
            continue  # merged above
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()

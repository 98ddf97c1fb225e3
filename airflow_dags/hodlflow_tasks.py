"""Task builders shared by the hodlflow DAGs (a plain module, no DAG in it).

Everything here runs at parse time, so it only builds operators: no pyspark or hodlflow import,
no Variable read, no network. Settings reach the tasks when they run, through Jinja templates
over Airflow Variables (all optional):

  hodlflow_env          conf/environments/<env>.yaml to use (default: local)
  hodlflow_conf_file    a settings overlay YAML on the worker (warehouse, ingest.start_hash, ...)
  hodlflow_warehouse    warehouse.path (default: from the settings)
  hodlflow_blocks_dir   Bitcoin Core blocks/ directory (default: ingest.blocks_dir)
  hodlflow_prices_csv   daily price CSV loaded into market.prices before the metrics
  hodlflow_jobs_dir     folder of hodlflow's jobs/*.py on the worker (default: beside this folder)
  hodlflow_spark_properties  spark-submit --properties-file putting the Delta jars on the
                        classpath (default: <checkout>/.cache/jars/spark-submit.properties, written
                        by `hodlflow fetch-jars`)

Spark work runs through spark-submit with the Connection ``hodlflow_spark`` (conn type spark;
host = the master, e.g. ``local[2]``, ``spark://host:7077`` or ``yarn``). The worker needs
hodlflow installed in the Python environment whose ``spark-submit`` and ``hodlflow`` come first
on PATH (pyspark's spark-submit runs the job with that environment's Python).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import PokeReturnValue, task

SPARK_CONN_ID = "hodlflow_spark"
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_JOBS_DIR = os.path.join(_CHECKOUT, "jobs")
# Written by `hodlflow fetch-jars` (make setup): spark.jars = the cached Delta Lake jars.
_DEFAULT_PROPERTIES = os.path.join(_CHECKOUT, ".cache", "jars", "spark-submit.properties")


def var(name: str, default: str = "") -> str:
    """A template reading Variable ``name`` when the task runs (never at parse time)."""
    return "{{ var.value.get('" + name + "', '" + default + "') }}"


# Options every hodlflow command takes; an empty value means "from the settings".
SETTINGS_ARGS = [
    "--env", var("hodlflow_env", "local"),
    "--conf-file", var("hodlflow_conf_file"),
    "--warehouse", var("hodlflow_warehouse"),
]  # fmt: skip
BLOCKS_DIR_ARGS = ["--blocks-dir", var("hodlflow_blocks_dir")]

DEFAULT_ARGS = {
    "owner": "hodlflow",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
}


def spark_job(task_id: str, job: str, args: list[str], **kwargs) -> SparkSubmitOperator:
    """A spark-submit of ``jobs/<job>.py`` with the settings options and ``args``."""
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        application=var("hodlflow_jobs_dir", _DEFAULT_JOBS_DIR) + f"/{job}.py",
        application_args=[*SETTINGS_ARGS, *args],
        name=f"hodlflow-{job}",
        properties_file=var("hodlflow_spark_properties", _DEFAULT_PROPERTIES),
        **kwargs,
    )


@task.sensor(task_id="wait_for_chain", poke_interval=600, timeout=2 * 24 * 3600, mode="reschedule")
def wait_for_chain(data_interval_end=None) -> PokeReturnValue:
    """Done when the blocks directory's best chain holds the first block at or after the
    interval's end with the confirmation depth (`hodlflow tip --after`, headers only, no
    Spark): every block of the interval is then final."""
    import subprocess

    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    def value(name: str, default: str = "") -> str:
        return Variable.get(name, default=default)

    cmd = [
        "hodlflow", "tip",
        "--env", value("hodlflow_env", "local"),
        "--conf-file", value("hodlflow_conf_file"),
        "--warehouse", value("hodlflow_warehouse"),
        "--blocks-dir", value("hodlflow_blocks_dir"),
        "--after", data_interval_end.isoformat(),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    print(done.stdout.strip())
    if done.returncode == 3:  # the chain has not passed the interval's end by the depth yet
        return PokeReturnValue(is_done=False)
    if done.returncode != 0:
        raise AirflowFailException(
            f"hodlflow tip failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    return PokeReturnValue(is_done=True, xcom_value=done.stdout.strip())

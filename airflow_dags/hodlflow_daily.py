"""hodlflow_daily: one UTC day of blocks per run, from a Bitcoin Core blocks directory.

wait_for_chain → ingest → entities → metrics → check → maintain

- wait_for_chain: the first block at or after the interval's end has ``ingest.confirmations``
  confirmations (reschedules itself every 10 minutes until then).
- ingest: ``hodlflow ingest --until <interval end>``: every block before the interval's end.
  Heights already stored are kept, so re-running an interval (or an older one) changes nothing.
- entities, metrics: incremental, up to what ingest stored; metrics loads the price CSV of
  Variable ``hodlflow_prices_csv`` first when set.
- check: reconciles the chain tables (fails the run on a mismatch).
- maintain: OPTIMIZE and VACUUM (``maintenance.vacuum_retention_hours``).

Catchup runs missed days in order (one run at a time). The first day comes from the environment
variable HODLFLOW_DAILY_START (YYYY-MM-DD, read when the file is parsed; default 2009-01-03):
bulk history is faster through ``hodlflow_backfill``, then set this to the day after it.
Settings, Variables and the Spark connection: see hodlflow_tasks.py and docs/airflow.md.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, CronDataIntervalTimetable, chain

from hodlflow_tasks import BLOCKS_DIR_ARGS, DEFAULT_ARGS, spark_job, var, wait_for_chain

START = dt.datetime.fromisoformat(os.environ.get("HODLFLOW_DAILY_START", "2009-01-03")).replace(
    tzinfo=dt.UTC
)

with DAG(
    dag_id="hodlflow_daily",
    description="blocks of one UTC day → chain, entities, metrics tables; checks; maintenance",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START,
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["hodlflow"],
    doc_md=__doc__,
) as dag:
    chain(
        wait_for_chain(),
        spark_job(
            "ingest", "ingest", [*BLOCKS_DIR_ARGS, "--until", "{{ data_interval_end.isoformat() }}"]
        ),
        spark_job("entities", "entities", []),
        spark_job("metrics", "metrics", ["--prices", var("hodlflow_prices_csv")]),
        spark_job("check", "check", []),
        spark_job("maintain", "maintain", []),
    )

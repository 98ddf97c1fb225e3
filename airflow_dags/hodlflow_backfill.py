"""hodlflow_backfill: bulk history from a blocks directory, in height chunks, resumable.

ingest_chunks → entities → metrics → check → maintain

Triggered by hand (``airflow dags trigger hodlflow_backfill --conf '{"chunk_blocks": 20000}'``).
``ingest_chunks`` ingests ``chunk_blocks`` heights per atomic step up to ``until`` (a date or
ISO date-time; empty: the tip): a run that dies, or a retry, resumes after the last finished
chunk. Entities and metrics then process everything ingested in one run each.
Settings, Variables and the Spark connection: see hodlflow_tasks.py and docs/airflow.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, chain

from hodlflow_tasks import BLOCKS_DIR_ARGS, DEFAULT_ARGS, spark_job, var

with DAG(
    dag_id="hodlflow_backfill",
    description="bulk history: blocks directory → chain tables in height chunks, then the rest",
    schedule=None,
    start_date=dt.datetime(2009, 1, 3, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "chunk_blocks": Param(
            10000, type="integer", minimum=1, description="heights per atomic ingest step"
        ),
        "until": Param(
            "",
            type="string",
            description="ingest blocks before this date/ISO time (empty: the tip)",
        ),
    },  # fmt: skip
    tags=["hodlflow"],
    doc_md=__doc__,
) as dag:
    chain(
        spark_job(
            "ingest_chunks",
            "ingest",
            [
                *BLOCKS_DIR_ARGS,
                "--chunk-blocks",
                "{{ params.chunk_blocks }}",
                "--until",
                "{{ params.until }}",
            ],
        ),  # fmt: skip
        spark_job("entities", "entities", []),
        spark_job("metrics", "metrics", ["--prices", var("hodlflow_prices_csv")]),
        spark_job("check", "check", []),
        spark_job("maintain", "maintain", []),
    )

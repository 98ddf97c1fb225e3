"""``make demo``: build a small chain, run every pipeline step that exists, show the results."""

from __future__ import annotations

import shutil
from pathlib import Path

from hodlflow.config import Settings

QUERIES = [
    ("blocks by coinbase tag",
     "SELECT coinbase_tag, count(*) AS blocks, sum(coinbase_sats)/1e8 AS btc_mined, "
     "sum(fees_sats) AS fees_sats FROM {chain}.blocks GROUP BY coinbase_tag ORDER BY blocks DESC"),
    ("outputs by script type",
     "SELECT script_type, count(*) AS outputs, sum(value_sats)/1e8 AS btc, "
     "count(address) AS with_address FROM {chain}.outputs GROUP BY script_type ORDER BY outputs DESC"),
    ("largest unspent addresses",
     "SELECT address, script_type, count(*) AS utxos, sum(value_sats)/1e8 AS btc "
     "FROM {chain}.unspent WHERE address IS NOT NULL GROUP BY address, script_type "
     "ORDER BY btc DESC LIMIT 5"),
]  # fmt: skip


def run_demo(settings: Settings, out: str, blocks: int = 150) -> int:
    """Write the demo blocks directory under ``out``, ingest it into the configured warehouse,
    check it and print table counts and a few queries. Returns 0 when the check passes."""
    from hodlflow.ingest.check import run_check
    from hodlflow.ingest.job import run_ingest
    from hodlflow.sim.demo_chain import write_demo_chain
    from hodlflow.spark import build_session

    shutil.rmtree(Path(out) / "blocks", ignore_errors=True)
    info = write_demo_chain(out, blocks=blocks)
    print(
        f"demo chain: {info['stored_blocks']} blocks ({info['transactions']} transactions on the "
        f"best chain, 1 stale) in {info['files']} xor-obfuscated blk files at {info['blocks_dir']}"
    )
    settings = settings.with_overrides(
        {
            "network": "main",
            "check_pow": False,
            "ingest.blocks_dir": info["blocks_dir"],
            "ingest.start_hash": info["start_hash"],
            "ingest.start_height": 0,
        }
    )
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    chain_db = f"{settings.db_prefix}chain"
    # A demo starts from scratch: drop what an earlier demo left.
    for table in ("blocks", "transactions", "outputs", "inputs", "unspent"):
        spark.sql(f"DROP TABLE IF EXISTS {chain_db}.{table}")
        shutil.rmtree(Path(settings.warehouse) / chain_db / table, ignore_errors=True)
    print(run_ingest(spark, settings).summary())
    report = run_check(spark, settings)
    print(report.text())
    print("\nchain tables:")
    for table in ("blocks", "transactions", "outputs", "inputs", "unspent"):
        n = spark.table(f"{chain_db}.{table}").count()
        print(f"  {chain_db}.{table:<13} {n:>8,} rows")
    for title, sql in QUERIES:
        print(f"\n{title}:")
        spark.sql(sql.format(chain=chain_db)).show(truncate=False)
    print(
        f"Explore the tables with Spark SQL (warehouse {settings.warehouse}):\n"
        f'  .venv/bin/hodlflow sql "SELECT * FROM {chain_db}.blocks ORDER BY height DESC"\n'
        "  or from PySpark: build_session(load_settings('local')).table('chain.outputs')"
    )
    return 0 if report.ok else 1

"""``make demo``: simulate a scenario, run every pipeline step that exists, show the results."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

from hodlflow.config import Settings

CHAIN_TABLES = ("blocks", "transactions", "outputs", "inputs", "unspent")
ENTITY_TABLES = (
    "address_entity",
    "entities",
    "entity_daily",
    "merges",
    "transfers",
    "class_flows",
    "runs",
)


def _gold_tables() -> list[tuple[str, str]]:
    from hodlflow.metrics.job import METRIC_TABLES

    return [("market", "prices"), *(tuple(k.split(".")) for k in METRIC_TABLES)]


MINER_DAYS = (
    "SELECT day, blocks, round(revenue_btc, 2) AS revenue_btc, round(price_usd) AS price, "
    "round(production_cost_usd_per_btc) AS cost_per_btc, round(price_to_cost, 3) AS price_cost, "
    "round(miner_outflow_btc, 1) AS miner_out_btc, round(miner_to_exchange_btc, 1) AS to_exch_btc, "
    "round(hash_rate_ths / 1e6, 1) AS hash_eh_s, round(hash_rate_sma30_ths / 1e6, 1) AS sma30, "
    "round(hash_rate_sma60_ths / 1e6, 1) AS sma60, coalesce(hash_ribbon_signal, '') AS ribbon, "
    "round(puell_multiple, 3) AS puell FROM {metrics}.miner_pressure "
    "WHERE day BETWEEN date_sub('{first}', 5) AND date_add('{first}', 5) "
    "OR hash_ribbon_signal IS NOT NULL ORDER BY day"
)

LARGEST_ENTITIES = (
    "SELECT entity_id, entity_type, coalesce(label, '') AS label, address_count AS addresses, "
    "round(balance_sats / 1e8, 2) AS balance_btc, round(received_sats / 1e8, 2) AS received_btc, "
    "coalesce(cast(miner_hop AS string), '') AS miner_hop FROM {entities}.entities "
    "ORDER BY balance_sats DESC LIMIT 12"
)
ENTITY_TYPES = (
    "SELECT entity_type, count(*) AS entities, sum(address_count) AS addresses, "
    "round(sum(balance_sats) / 1e8, 2) AS balance_btc FROM {entities}.entities "
    "GROUP BY entity_type ORDER BY balance_btc DESC"
)

QUERIES = [
    ("blocks by pool (coinbase tag)",
     "SELECT coinbase_tag, count(*) AS blocks, round(sum(coinbase_sats)/1e8, 4) AS btc_earned, "
     "round(sum(fees_sats)/1e8, 4) AS btc_fees FROM {chain}.blocks "
     "GROUP BY coinbase_tag ORDER BY blocks DESC LIMIT 8"),
    ("outputs by script type",
     "SELECT script_type, count(*) AS outputs, round(sum(value_sats)/1e8, 4) AS btc, "
     "count(address) AS with_address FROM {chain}.outputs GROUP BY script_type ORDER BY outputs DESC"),
    ("coin days destroyed by month (age of the coins spent)",
     "SELECT date_trunc('month', day) AS month, count(*) AS inputs, "
     "round(sum(value_sats * datediff(day, created_day)) / 1e8) AS coin_days_destroyed "
     "FROM {chain}.inputs GROUP BY 1 ORDER BY 1 DESC LIMIT 6"),
]  # fmt: skip


def _truth_story(out: str) -> None:
    """The simulator's ground truth around the price falling under the production cost."""
    path = Path(out) / "truth" / "miner_daily.csv"
    if not path.exists():
        return
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    below = [r for r in rows if float(r["price_usd"]) < float(r["production_cost_usd_per_btc"])]
    print("\nground truth (the simulator's own books):")
    if not below:
        print("  the price never falls under the production cost in this scenario")
        return
    first = below[0]["day"]
    before = [r for r in rows if r["day"] < first][-14:]
    during = [r for r in rows if r["day"] >= first][:14]

    def avg(rs, col):
        return sum(int(r[col]) for r in rs) / max(1, len(rs)) / 1e8

    print(f"  price first under production cost on {first}")
    print(f"  miner outflow / day:          {avg(before, 'miner_outflow_sats'):10.2f} BTC in the 14 days "
          f"before, {avg(during, 'miner_outflow_sats'):10.2f} BTC in the 14 days from then")  # fmt: skip
    print(f"  miner → exchange / day:       {avg(before, 'miner_to_exchange_sats'):10.2f} BTC before, "
          f"{avg(during, 'miner_to_exchange_sats'):10.2f} BTC from then")  # fmt: skip


def simulated_chain_settings(settings: Settings, out: str, manifest: dict) -> Settings:
    """``settings`` for the simulated chain in ``out`` (its ``manifest``): its blocks directory
    and start block, no proof of work, and the labels it publishes (pool tags, exchange cold
    wallets) added to the entities step's."""
    files = manifest.get("files", {})
    return settings.with_overrides(
        {
            "network": "main",
            "check_pow": False,  # simulated headers carry mainnet difficulty without the work
            "ingest.blocks_dir": os.path.join(out, "blocks"),
            "ingest.start_hash": manifest["start_hash"],
            "ingest.start_height": manifest["start_height"],
            "entities.pools": [*settings.entities.pools, os.path.join(out, files["pools"])],
            "entities.label_seeds": [
                *settings.entities.label_seeds,
                os.path.join(out, files["exchange_labels"]),
            ],
        }
    )


def drop_tables(spark, settings: Settings) -> None:
    """Drop every chain, entities and gold table of ``settings`` and remove their folders."""
    chain_db = f"{settings.db_prefix}chain"
    entities_db = f"{settings.db_prefix}entities"
    gold = [(f"{settings.db_prefix}{db}", (t,)) for db, t in _gold_tables()]
    for db, names in ((chain_db, CHAIN_TABLES), (entities_db, ENTITY_TABLES), *gold):
        for table in names:
            spark.sql(f"DROP TABLE IF EXISTS {db}.{table}")
            shutil.rmtree(Path(settings.warehouse) / db / table, ignore_errors=True)


def _entities(spark, settings: Settings, out: str, manifest: dict, entities_db: str) -> None:
    """Cluster and type the simulated chain with the simulator's published labels (pool tags,
    exchange cold wallets: ``settings`` from :func:`simulated_chain_settings`), show the largest
    entities and score them against the truth."""
    from hodlflow.entities.evaluate import evaluate_entities
    from hodlflow.entities.job import run_entities

    files = manifest.get("files", {})
    print("\nclustering addresses into entities ...")
    print(run_entities(spark, settings).summary())
    print("\nentities by type:")
    spark.sql(ENTITY_TYPES.format(entities=entities_db)).show(truncate=False)
    print("largest entities by balance:")
    spark.sql(LARGEST_ENTITIES.format(entities=entities_db)).show(truncate=False)
    scores = evaluate_entities(spark, settings, os.path.join(out, files["addresses"]))
    c, h = scores["clustering"], scores["holder_classes"]
    print("entities against the simulator's ground truth (hodlflow evaluate):")
    print(
        f"  clustering: pairwise precision {c['precision']:.4f}, recall {c['recall']:.4f}, "
        f"adjusted Rand index {c['adjusted_rand_index']:.4f} over {c['addresses']:,} addresses"
    )
    for key in ("miners", "exchanges", "coinjoins"):
        t = scores[key]
        print(
            f"  {key:<10} address recall {t['address_recall']:.3f}, precision "
            f"{t['address_precision']:.3f}; entities found {t['truth_entities_found']} of "
            f"{t['truth_entities']}"
        )
    accuracy = "n/a" if h["accuracy"] is None else f"{h['accuracy']:.3f}"
    coverage = "n/a" if h["coverage"] is None else f"{h['coverage']:.3f}"
    print(f"  holder classes (last day): accuracy {accuracy}, coverage {coverage}")


FLOW_STORY = (
    "SELECT CASE WHEN m.day < '{first}' THEN '14 days before' ELSE '14 days from' END AS period, "
    "round(avg(p.miner_outflow_btc), 1) AS miner_out, round(avg(p.miner_to_exchange_btc), 1) "
    "AS miner_to_exch, round(avg(x.netflow_btc), 1) AS exch_netflow, "
    "round(avg(m.weak_to_exchange_btc), 1) AS weak_sell, "
    "round(avg(m.exchange_to_strong_btc), 1) AS strong_buy, "
    "round(avg(m.direct_net_weak_to_strong_btc), 1) AS direct_w2s, "
    "round(avg(m.net_weak_to_strong_btc), 1) AS net_weak_to_strong "
    "FROM {metrics}.holder_migration m JOIN {metrics}.exchange_flows x USING (day) "
    "JOIN {metrics}.miner_pressure p USING (day) "
    "WHERE m.day BETWEEN date_sub('{first}', 14) AND date_add('{first}', 13) "
    "GROUP BY 1 ORDER BY 1 DESC"
)

HOLDER_STORY = (
    "SELECT m.day, round(p.price_to_cost, 2) AS price_to_cost, "
    "round(m.lth_supply_btc, 0) AS lth_supply, round(m.sth_to_lth_btc, 1) AS sth_to_lth, "
    "round(m.top100_share, 4) AS top100_share, round(m.gini, 4) AS gini, "
    "m.accumulation_entities AS accumulators, round(m.strong_balance_btc, 0) AS strong_held, "
    "round(m.weak_balance_btc, 0) AS weak_held, round(x.balance_btc, 0) AS exchange_balance, "
    "round(c.mvrv, 3) AS mvrv, round(c.sopr, 3) AS sopr, round(l.sopr, 3) AS lth_sopr "
    "FROM {metrics}.holder_migration m JOIN {metrics}.miner_pressure p USING (day) "
    "LEFT JOIN {metrics}.exchange_flows x USING (day) "
    "JOIN {metrics}.supply_cohorts c ON c.day = m.day AND c.cohort = 'all' "
    "JOIN {metrics}.supply_cohorts l ON l.day = m.day AND l.cohort = 'lth' "
    "WHERE m.day IN (date_sub('{first}', 28), date_sub('{first}', 14), DATE'{first}', "
    "date_add('{first}', 14), date_add('{first}', 28), date_add('{first}', 56), "
    "date_add('{first}', 84)) ORDER BY m.day"
)


def _miner_pressure(spark, settings: Settings, out: str) -> None:
    """Load the simulator's prices, compute metrics.miner_pressure and show the days around the
    price first falling under the production cost, and the hash-ribbon signals."""
    from pyspark.sql import functions as F

    from hodlflow import tables
    from hodlflow.metrics.job import run_metrics
    from hodlflow.metrics.prices import load_prices

    first, last = load_prices(spark, settings, os.path.join(out, "prices.csv"))
    print(f"\nmarket.prices: {first}..{last} from the simulator's prices.csv")
    print(run_metrics(spark, settings).summary())
    below = (
        tables.read_table(spark, settings, "metrics.miner_pressure")
        .filter("below_cost")
        .agg(F.min("day"))
        .first()[0]
    )
    if below is None:
        print("the price never falls under the production cost")
        return
    print(f"miner pressure around {below}, the first day the price is under the production cost:")
    sql = MINER_DAYS.format(metrics=f"{settings.db_prefix}metrics", first=below)
    spark.sql(sql).show(40, truncate=False)
    print("flows per day, the 14 days before and the 14 days from then (metrics.*):")
    spark.sql(FLOW_STORY.format(metrics=f"{settings.db_prefix}metrics", first=below)).show(
        truncate=False
    )
    print("holders and supply on key days around it (metrics.holder_migration, supply_cohorts):")
    spark.sql(HOLDER_STORY.format(metrics=f"{settings.db_prefix}metrics", first=below)).show(
        truncate=False
    )


def run_demo(settings: Settings, out: str, scenario: str) -> int:
    """Simulate ``scenario`` into ``out``, ingest it into the configured warehouse (from scratch),
    check it and print counts, a few queries and the ground truth. Returns 0 when the check
    passes."""
    from hodlflow.ingest.check import run_check
    from hodlflow.ingest.job import run_ingest
    from hodlflow.sim.simulator import run_simulation
    from hodlflow.spark import build_session

    shutil.rmtree(out, ignore_errors=True)
    print(f"simulating {scenario} ...")
    manifest = run_simulation(scenario, out)
    blocks_dir = os.path.join(out, "blocks")
    print(
        f"simulated chain: heights {manifest['start_height']}..{manifest['tip_height']}, "
        f"{manifest.get('blocks', '?')} blocks, {manifest.get('transactions', '?')} transactions, "
        f"{manifest.get('days', '?')} days in {blocks_dir}"
    )
    settings = simulated_chain_settings(settings, out, manifest)
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    chain_db = f"{settings.db_prefix}chain"
    entities_db = f"{settings.db_prefix}entities"
    drop_tables(spark, settings)  # a demo starts from scratch: drop what an earlier demo left
    print(run_ingest(spark, settings).summary())
    report = run_check(spark, settings)
    print(report.text())
    print("\nchain tables:")
    for table in CHAIN_TABLES:
        n = spark.table(f"{chain_db}.{table}").count()
        print(f"  {chain_db}.{table:<13} {n:>10,} rows")
    for title, sql in QUERIES:
        print(f"\n{title}:")
        spark.sql(sql.format(chain=chain_db)).show(truncate=False)
    _entities(spark, settings, out, manifest, entities_db)
    _miner_pressure(spark, settings, out)
    _truth_story(out)
    from hodlflow.report.job import run_report

    result = run_report(spark, settings, os.path.join(out, "report"))
    print(f"\n{result.summary()}")
    print(
        f"\nExplore the tables with Spark SQL (warehouse {settings.warehouse}):\n"
        f'  .venv/bin/hodlflow sql "SELECT * FROM {chain_db}.blocks ORDER BY height DESC"\n'
        "  or in PySpark: from hodlflow.config import load_settings; "
        "from hodlflow.spark import build_session\n"
        "                 build_session(load_settings('local')).table('chain.outputs').show()"
    )
    print(f"\nthe report (opens offline): {result.html_path}")
    return 0 if report.ok else 1

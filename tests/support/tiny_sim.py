"""The simulated tiny chain (conf/scenarios/tiny.yaml) shared by the tests that run the whole
pipeline out of process (the Airflow DAG, the standalone cluster): one simulation and one
in-process local-mode reference run per test session, which those runs must equal."""

from __future__ import annotations

from pathlib import Path

from hodlflow.config import CONF_DIR, PROJECT_ROOT, load_settings

# The chain's first three days (~430 blocks): coinbases only on the first day, miners spending
# on the second, exchanges, holders and co-spends from the third: work for every step.
UNTIL = "2025-03-04"
DAYS = ("2025-03-01", "2025-03-02", "2025-03-03")
REFERENCE_PREFIX = "ref_"
# Every table the three steps write (the runs tables hold commit times: compared apart).
TABLES = ("chain.blocks", "chain.transactions", "chain.outputs", "chain.inputs", "chain.unspent",
          "entities.address_entity", "entities.entities", "entities.entity_daily",
          "entities.transfers", "entities.class_flows", "entities.merges", "market.prices", "metrics.miner_pressure",
          "metrics.entity_flows", "metrics.exchange_flows", "metrics.holder_migration",
          "metrics.holder_migration_revised",
          "metrics.supply_cohorts", "metrics.supply_changes", "metrics.supply_state",
          "metrics.entity_balance_cohorts")  # fmt: skip


def site_overlay(out: Path, manifest: dict, warehouse: str, checkpoints: str | None = None) -> dict:
    """A settings overlay pointing hodlflow at the simulated chain and a warehouse."""
    return {
        "check_pow": False,  # simulated headers carry mainnet difficulty without the work
        "warehouse": {"path": warehouse},
        "ingest": {"start_hash": manifest["start_hash"], "start_height": manifest["start_height"]},
        "entities": {
            "pools": [str(CONF_DIR / "pools.json"), str(out / manifest["files"]["pools"])],
            "label_seeds": [
                str(CONF_DIR / "labels" / "exchanges.csv"),
                str(out / manifest["files"]["exchange_labels"]),
            ],
            "checkpoint_dir": checkpoints,
        },
    }


def read(spark, warehouse: str, key: str, prefix: str = ""):
    """A table of a warehouse by its path (prefix: the run's warehouse.db_prefix)."""
    db, table = key.split(".")
    return spark.read.format("delta").load(f"{warehouse}/{prefix}{db}/{table}")


def days_of(spark, warehouse: str, prefix: str = "") -> list[str]:
    """The days of the blocks a warehouse holds."""
    rows = read(spark, warehouse, "chain.blocks", prefix).select("day").distinct().collect()
    return sorted(str(r.day) for r in rows)


def submit_properties(base: Path, roles: tuple[str, ...] = ("driver",)) -> Path:
    """A spark-submit properties file in ``base``: the Delta jars from the set-up's cache (the
    file `hodlflow fetch-jars` writes) plus, for short jobs in ``roles``, the test environment's
    JVM options (conf/environments/test.yaml: room for compiled code), the C1 compiler only (a
    job of a minute is over before C2's optimizations repay their compile time: ~3 s less a
    spark-submit) and serial GC."""
    text = (Path(PROJECT_ROOT) / ".cache" / "jars" / "spark-submit.properties").read_text()
    jvm = load_settings("test").spark.conf["spark.driver.extraJavaOptions"]
    for role in roles:
        text += f"spark.{role}.extraJavaOptions {jvm} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC\n"
    path = base / "spark-submit.properties"
    path.write_text(text)
    return path

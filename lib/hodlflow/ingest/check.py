"""``hodlflow check``: reconcile the chain tables and fail loudly on any mismatch.

Rules (each a Spark aggregate; only the first few offending rows reach the driver):
1. supply: Σ unspent value = Σ subsidy − unclaimed subsidy − unspendable outputs, where
   unclaimed = Σ (subsidy + fees − coinbase value) over blocks and unspendable = Σ value of the
   OP_RETURN outputs and the genesis coinbase (decided from the outputs, not the unspent set);
2. every non-coinbase input resolves to exactly one earlier output (input rows = Σ input_count
   of non-coinbase transactions, and each spends an output created at a lower height, or earlier
   in the same block);
3. no output is spent twice;
4. fees ≥ 0 for every transaction;
5. the unspent set equals the outputs not spent by any input (by count and value).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from hodlflow import tables
from hodlflow.chain.network import get_network
from hodlflow.config import Settings
from hodlflow.ingest.job import ALL_TABLES


@dataclass
class CheckReport:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def passed(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def failed(self, text: str) -> None:
        self.lines.append(f"FAIL  {text}")
        self.failures.append(text)

    def text(self) -> str:
        head = "chain tables reconcile" if self.ok else f"{len(self.failures)} check(s) FAILED"
        return "\n".join([*self.lines, head])


def _sats(n: int) -> str:
    return f"{n:,} sat ({n / 1e8:,.8f} BTC)"


def run_check(spark: SparkSession, settings: Settings) -> CheckReport:
    """Run every rule over the whole chain tables and return the report."""
    from delta.tables import DeltaTable

    for key in ALL_TABLES:
        loc = tables.table_location(settings, key)
        if not DeltaTable.isDeltaTable(spark, loc):
            report = CheckReport()
            report.failed(f"no Delta table {key} at {loc}: run `hodlflow ingest` first")
            return report
    t = {k.split(".")[1]: tables.read_table(spark, settings, k) for k in (
        "chain.blocks", "chain.transactions", "chain.outputs", "chain.inputs", "chain.unspent")}  # fmt: skip
    report = CheckReport()
    b = (
        t["blocks"]
        .agg(
            F.count("*").alias("n"),
            F.min("height").alias("lo"),
            F.max("height").alias("hi"),
            F.coalesce(F.sum("subsidy_sats"), F.lit(0)).alias("subsidy"),
            F.coalesce(
                F.sum(F.col("subsidy_sats") + F.col("fees_sats") - F.col("coinbase_sats")), F.lit(0)
            ).alias("unclaimed"),  # fmt: skip
        )
        .first()
    )
    if b.n == 0:
        report.failed("chain.blocks is empty: nothing ingested yet")
        return report
    if b.hi - b.lo + 1 != b.n:
        report.failed(f"heights {b.lo}..{b.hi} are not contiguous: {b.n} blocks stored")
    else:
        report.passed(f"{b.n} blocks, heights {b.lo}..{b.hi}, contiguous")

    spent_keys = t["inputs"].select(
        F.col("prev_txid").alias("txid"), F.col("prev_vout").alias("vout")
    )
    # Unspendable, decided from the outputs themselves (not from what the unspent set lacks):
    # OP_RETURN outputs and the coinbase of the network's genesis block.
    genesis = get_network(settings.network).genesis_hash
    genesis_heights = (
        t["blocks"].filter(F.col("hash") == genesis).select("height", F.lit(True).alias("g"))
    )
    unspendable = (
        t["outputs"]
        .join(genesis_heights, "height", "left")
        .filter(
            (F.col("script_type") == "op_return") | (F.col("is_coinbase") & F.col("g").isNotNull())
        )
        .agg(F.coalesce(F.sum("value_sats"), F.lit(0)).alias("v"), F.count("*").alias("n"))
        .first()
    )
    unspent = (
        t["unspent"]
        .agg(F.coalesce(F.sum("value_sats"), F.lit(0)).alias("v"), F.count("*").alias("n"))
        .first()
    )
    expected = b.subsidy - b.unclaimed - unspendable.v
    text = (
        f"supply: unspent {_sats(unspent.v)} = subsidy {_sats(b.subsidy)} − unclaimed "
        f"{_sats(b.unclaimed)} − unspendable {_sats(unspendable.v)} ({unspendable.n} outputs)"
    )
    if unspent.v == expected:
        report.passed(text)
    else:
        report.failed(text + f" — off by {_sats(unspent.v - expected)}")

    # Rule 2: every non-coinbase input is there and spends an earlier output.
    expected_inputs = (
        t["transactions"].filter(~F.col("is_coinbase")).agg(F.sum("input_count")).first()[0] or 0
    )
    n_inputs = t["inputs"].count()
    if n_inputs == expected_inputs:
        report.passed(f"{n_inputs} inputs, one per non-coinbase transaction input")
    else:
        missing = (
            t["transactions"]
            .filter(~F.col("is_coinbase"))
            .join(t["inputs"].groupBy("height", "tx_index").count(), ["height", "tx_index"], "left")
            .filter(F.coalesce("count", F.lit(0)) != F.col("input_count"))
            .select("txid", "height")
            .limit(5)
            .collect()
        )
        report.failed(
            f"{n_inputs} input rows but transactions declare {expected_inputs}; e.g. "
            + ", ".join(f"tx {r.txid} at height {r.height}" for r in missing)
        )
    bad_order = (
        t["inputs"]
        .join(
            t["outputs"].select(
                F.col("txid").alias("prev_txid"),
                F.col("vout").alias("prev_vout"),
                F.col("height").alias("o_height"),
                F.col("tx_index").alias("o_tx_index"),
            ),
            ["prev_txid", "prev_vout"],
            "left",
        )
        .filter(
            F.col("o_height").isNull()
            | (F.col("o_height") > F.col("height"))
            | ((F.col("o_height") == F.col("height")) & (F.col("o_tx_index") >= F.col("tx_index")))
        )
        .select("txid", "vin", "height", "prev_txid", "prev_vout")
        .limit(5)
        .collect()
    )
    if bad_order:
        report.failed(
            "inputs that spend no earlier output: "
            + "; ".join(
                f"input {r.vin} of tx {r.txid} at height {r.height} spends {r.prev_txid}:{r.prev_vout}"
                for r in bad_order
            )
        )
    else:
        report.passed("every input spends an output created before it")

    doubles = (
        t["inputs"].groupBy("prev_txid", "prev_vout")
        .agg(F.count("*").alias("n"), F.collect_list(F.concat_ws("@", "txid", "height")).alias("by"))
        .filter("n > 1")
        .limit(5)
        .collect()
    )  # fmt: skip
    if doubles:
        report.failed(
            "outputs spent more than once: "
            + "; ".join(f"{r.prev_txid}:{r.prev_vout} by {', '.join(r.by)}" for r in doubles)
        )
    else:
        report.passed("no output is spent twice")

    negative = (
        t["transactions"]
        .filter("fee_sats < 0")
        .select("txid", "height", "fee_sats")
        .limit(5)
        .collect()
    )
    if negative:
        report.failed(
            "negative fees: "
            + "; ".join(f"tx {r.txid} at height {r.height}: {r.fee_sats} sat" for r in negative)
        )
    else:
        report.passed("every fee is ≥ 0")

    unspent_expected = (
        t["outputs"]
        .join(spent_keys, ["txid", "vout"], "left_anti")
        .join(t["unspent"].select("txid", "vout"), ["txid", "vout"], "left_semi")
        .count()
    )
    if unspent_expected == unspent.n:
        report.passed(f"unspent set: {unspent.n} outputs, each an output not spent by any input")
    else:
        report.failed(
            f"unspent set holds {unspent.n} outputs but only {unspent_expected} of them are "
            "unspent outputs of chain.outputs"
        )
    return report

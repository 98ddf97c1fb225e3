"""DataFrame → DataFrame transforms that turn parsed rows into the chain tables.

All pure: no reads, writes or actions. Inputs and outputs are described in each docstring.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def _dates(df: DataFrame) -> DataFrame:
    out = df
    if "day_n" in df.columns:
        out = out.withColumn("day", F.date_from_unix_date("day_n")).drop("day_n")
    return out


def split_parsed(parsed: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """Split the tagged rows of ``blocks_dir.PARSED_SCHEMA`` into (blocks, txs, outputs, inputs).

    Times become timestamps (UTC) and ``day_n`` a date column ``day``. Outputs keep their
    ``spendable`` flag (false for OP_RETURN, oversized scripts and the genesis coinbase).
    """
    blocks = (
        _dates(parsed.filter("kind = 'b'").select("b.*"))
        .withColumn("time", F.timestamp_seconds("time_s"))
        .withColumn("median_time", F.timestamp_seconds("median_time_s"))
        .drop("time_s", "median_time_s")
    )
    txs = _dates(parsed.filter("kind = 't'").select("t.*"))
    outputs = _dates(parsed.filter("kind = 'o'").select("o.*"))
    inputs = _dates(parsed.filter("kind = 'i'").select("i.*"))
    return blocks, txs, outputs, inputs


def spendable_outputs(unspent: DataFrame, new_outputs: DataFrame) -> DataFrame:
    """What the range's inputs may spend: the unspent set before the range plus the range's own
    spendable outputs. Columns: txid, vout, height, day, is_coinbase, value_sats, script_type,
    address.
    """
    cols = ["txid", "vout", "height", "day", "is_coinbase", "value_sats", "script_type", "address"]
    return unspent.select(cols).unionByName(new_outputs.filter("spendable").select(cols))


def resolve_inputs(inputs: DataFrame, spendable: DataFrame) -> DataFrame:
    """Attach to each input the output it spends.

    Input: ``inputs`` (txid, vin, height, day, tx_index, prev_txid, prev_vout, sequence) and
    ``spendable`` (see :func:`spendable_outputs`). Output: the inputs columns plus value_sats,
    script_type, address, created_height, created_day, created_is_coinbase; all six NULL when
    the spent output is unknown (the caller reports those). Where two spendable rows share an
    outpoint (mainnet's BIP30 duplicate coinbases) the later one wins, as in the node.
    """
    s = spendable.select(
        F.col("txid").alias("prev_txid"),
        F.col("vout").alias("prev_vout"),
        "value_sats",
        "script_type",
        "address",
        F.col("height").alias("created_height"),
        F.col("day").alias("created_day"),
        F.col("is_coinbase").alias("created_is_coinbase"),
    )
    joined = inputs.join(s, ["prev_txid", "prev_vout"], "left")
    # BIP30: keep one match per input, the most recently created.
    latest = F.max_by(
        F.struct("value_sats", "script_type", "address", "created_height", "created_day",
                 "created_is_coinbase"),
        "created_height",
    )  # fmt: skip
    keys = ["txid", "vin", "height", "day", "tx_index", "prev_txid", "prev_vout", "sequence"]
    return joined.groupBy(keys).agg(latest.alias("s")).select(*keys, "s.*")


def build_transactions(txs: DataFrame, resolved_inputs: DataFrame) -> DataFrame:
    """Add input_sats and fee_sats to the parsed transactions.

    ``input_sats`` = Σ value of the outputs it spends (0 for the coinbase, which spends none);
    ``fee_sats`` = input_sats − output_sats (0 for the coinbase). Joined on (height, tx_index),
    which, unlike txid, is unique even across BIP30 duplicates.
    """
    sums = resolved_inputs.groupBy("height", "tx_index").agg(
        F.sum("value_sats").alias("input_sats")
    )
    return (
        txs.join(sums, ["height", "tx_index"], "left")
        .withColumn("input_sats", F.coalesce("input_sats", F.lit(0)).cast("bigint"))
        .withColumn(
            "fee_sats",
            F.when(F.col("is_coinbase"), F.lit(0)).otherwise(
                F.col("input_sats") - F.col("output_sats")
            ),
        )
    )


def build_blocks(blocks: DataFrame, transactions: DataFrame) -> DataFrame:
    """Add fees_sats (Σ fee_sats of the block's transactions) to the parsed blocks."""
    fees = transactions.groupBy("height").agg(F.sum("fee_sats").alias("fees_sats"))
    return blocks.join(fees, "height", "left").withColumn(
        "fees_sats", F.coalesce("fees_sats", F.lit(0)).cast("bigint")
    )


def unspent_changes(
    new_outputs: DataFrame, resolved_inputs: DataFrame, range_start: int
) -> DataFrame:
    """The MERGE source that moves the unspent set across the range.

    Rows with ``op = 'D'``: outputs created before ``range_start`` and spent in the range.
    Rows with ``op = 'I'``: spendable outputs created in the range and not spent in it.
    Columns: op plus the chain.unspent columns.
    """
    spent_keys = resolved_inputs.select(
        F.col("prev_txid").alias("txid"), F.col("prev_vout").cast("int").alias("vout")
    )
    cols = ["txid", "vout", "height", "day", "is_coinbase", "value_sats", "script_type", "address"]
    inserts = (
        new_outputs.filter("spendable")
        .join(spent_keys, ["txid", "vout"], "left_anti")
        .select(F.lit("I").alias("op"), *cols)
    )
    deletes = spent_outputs(resolved_inputs.filter(F.col("created_height") < range_start))
    return inserts.unionByName(deletes.select(F.lit("D").alias("op"), *cols))


def spent_outputs(resolved_inputs: DataFrame) -> DataFrame:
    """The outputs that resolved inputs spend, as chain.unspent rows (from the resolved columns)."""
    return resolved_inputs.select(
        F.col("prev_txid").alias("txid"),
        F.col("prev_vout").cast("int").alias("vout"),
        F.col("created_height").alias("height"),
        F.col("created_day").alias("day"),
        F.col("created_is_coinbase").alias("is_coinbase"),
        "value_sats",
        "script_type",
        "address",
    )


def restored_unspent(inputs_from: DataFrame, start: int) -> DataFrame:
    """Outputs created before ``start`` and spent at ``start`` or later, as chain.unspent rows:
    what a rollback to height ``start − 1`` puts back into the unspent set.

    Input: chain.inputs rows (any heights). Output: chain.unspent columns.
    """
    return inputs_from.filter(
        (F.col("height") >= start) & (F.col("created_height") < start)
    ).select(
        F.col("prev_txid").alias("txid"),
        F.col("prev_vout").alias("vout"),
        F.col("created_height").alias("height"),
        F.col("created_day").alias("day"),
        F.col("created_is_coinbase").alias("is_coinbase"),
        "value_sats",
        "script_type",
        "address",
    )

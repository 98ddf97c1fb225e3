"""Supply cohorts (docs/metrics.md, "Coin age and supply cohorts" and "Value, profit and
coin-days"): HODL waves, long- and short-term holder supply, realized cap and price, MVRV, coin
days destroyed, dormancy, SOPR and aSOPR, per day.

The unspent supply is kept as a compact aggregate: value unspent by creation day
(``metrics.supply_state``, one row per creation day, as of the last computed day) and the
per-day changes that built it (``metrics.supply_changes``: + outputs created, − outputs spent,
by creation day). A run starts from the stored state, steps it through the new days' outputs
and inputs, and never rescans history: its cost is (days in the run) × (creation days so far)
rows, a few million for the whole mainnet history, plus the new days' transactions.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hodlflow.chain.network import COIN

# HODL-wave bands (docs/metrics.md): (name, min age in days, max age in days exclusive).
BANDS = (
    ("lt_1d", 0, 1),
    ("1d_1w", 1, 7),
    ("1w_1m", 7, 30),
    ("1m_3m", 30, 90),
    ("3m_6m", 90, 180),
    ("6m_12m", 180, 365),
    ("1y_2y", 365, 730),
    ("2y_3y", 730, 1095),
    ("3y_5y", 1095, 1825),
    ("5y_7y", 1825, 2555),
    ("7y_10y", 2555, 3650),
    ("gt_10y", 3650, None),
)
# Mainnet's two BIP30 duplicate coinbases: the outputs created at the first height were
# overwritten in the unspent set by the duplicate's (100 BTC lost); the first never count.
BIP30_OVERWRITTEN = (
    ("d5d27987d2a3dfc724e359870c6644b40e497bdc0589a033220fe15429d88599", 91812),
    ("e3bf3d07d4b0375638d5f1db5255fe07ba2c4cb067cd81b84ee974b6585fb468", 91722),
)
ASOPR_MIN_SECONDS = 3600


def cohorts(lth_days: int) -> list[tuple[str, str, int, int | None]]:
    """(cohort, kind, min age, max age exclusive) of every row a day has, in order."""
    return [
        ("all", "total", 0, None),
        ("sth", "holder", 0, lth_days),
        ("lth", "holder", lth_days, None),
        *((name, "band", lo, hi) for name, lo, hi in BANDS),
    ]


def calendar(spark: SparkSession, first: dt.date, last: dt.date) -> DataFrame:
    """One row (``day``) per calendar day ``first``..``last`` (none when last < first)."""
    n = (last - first).days + 1
    return spark.range(0, max(n, 0)).select(
        F.date_add(F.lit(first), F.col("id").cast("int")).alias("day")
    )


def band_of(value: Column, bands) -> Column:
    """The name of the band (name, min, max exclusive; the last one open) ``value`` falls in,
    bands in ascending order."""
    expr = None
    for name, _lo, hi in bands:
        if hi is None:
            return expr.otherwise(F.lit(name))
        expr = (F.when if expr is None else expr.when)(value < hi, F.lit(name))
    raise AssertionError("the last band is open")


def _cohorts_of(age: Column, lth_days: int) -> Column:
    return F.array(
        F.lit("all"),
        F.when(age >= lth_days, F.lit("lth")).otherwise(F.lit("sth")),
        band_of(age, BANDS),
    )


def supply_changes(
    outputs: DataFrame, inputs: DataFrame, genesis_height: int | None, network: str
) -> DataFrame:
    """(day, created_day, delta_sats): per day, value created (outputs that enter the unspent
    set: not OP_RETURN, not the genesis coinbase, not mainnet's two BIP30-overwritten
    coinbases) minus value spent, by the spent outputs' creation day. Pass the outputs and
    inputs of the days wanted."""
    spendable = F.col("script_type") != "op_return"
    if genesis_height is not None:
        spendable = spendable & ~(F.col("is_coinbase") & (F.col("height") == genesis_height))
    if network == "main":
        for txid, height in BIP30_OVERWRITTEN:
            spendable = spendable & ~((F.col("txid") == txid) & (F.col("height") == height))
    created = outputs.filter(spendable).select(
        "day", F.col("day").alias("created_day"), F.col("value_sats").alias("delta_sats")
    )
    spent = inputs.select("day", "created_day", (-F.col("value_sats")).alias("delta_sats"))
    return (
        created.unionByName(spent)
        .groupBy("day", "created_day")
        .agg(F.sum("delta_sats").alias("delta_sats"))
    )


def unspent_by_day(
    spark: SparkSession, base: DataFrame, changes: DataFrame, first: dt.date, last: dt.date
) -> DataFrame:
    """(day, created_day, unspent_sats) for every day from ``first`` − 1 to ``last`` and every
    creation day up to it: ``base`` (created_day, unspent_sats: the state at the end of
    ``first`` − 1) stepped through ``changes`` (days ``first``..``last``). Zero rows dropped."""
    days = calendar(spark, first - dt.timedelta(days=1), last)
    created = base.select("created_day").unionByName(changes.select("created_day")).distinct()
    grid = (
        days.crossJoin(created)
        .filter(F.col("created_day") <= F.col("day"))
        .join(
            base.select("created_day", F.col("unspent_sats").alias("_base")), "created_day", "left"
        )
        .join(changes, ["day", "created_day"], "left")
    )
    upto = (
        Window.partitionBy("created_day")
        .orderBy("day")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    state = F.coalesce(F.col("_base"), F.lit(0)) + F.sum(
        F.coalesce(F.col("delta_sats"), F.lit(0))
    ).over(upto)
    return grid.select("day", "created_day", state.alias("unspent_sats")).filter(
        F.col("unspent_sats") != 0
    )


def _price_at_creation(df: DataFrame, prices: DataFrame) -> DataFrame:
    """``df`` with ``created_price``: the close of its created_day; 0 before the first priced
    day (no market then); NULL when that day has no price."""
    first_price = prices.agg(F.min("day").alias("_first_price"))
    created = prices.select(F.col("day").alias("created_day"), F.col("close_usd").alias("_cp"))
    return (
        df.join(created, "created_day", "left")
        .crossJoin(first_price)
        .withColumn(
            "created_price",
            F.when(F.col("created_day") < F.col("_first_price"), F.lit(0.0)).otherwise(
                F.col("_cp")
            ),
        )
        .drop("_cp", "_first_price")
    )


def _sum_or_null(value: Column, price: Column) -> Column:
    """Σ value × price, NULL when any row with value has no price (never a partial sum)."""
    missing = F.sum(F.when(price.isNull() & (value != 0), 1).otherwise(0))
    return F.when(missing == 0, F.sum(value * F.coalesce(price, F.lit(0.0))))


def supply_aggregates(unspent: DataFrame, prices: DataFrame, lth_days: int) -> DataFrame:
    """(day, cohort, supply_sats, realized_cap_usd) per day of ``unspent`` (output of
    :func:`unspent_by_day`) and cohort; plus the day's ``maturing_sats`` (read on the 'all'
    row): coins aged lth_days − 1 at the day's end, which turn long-term the next day."""
    age = F.datediff(F.col("day"), F.col("created_day"))
    rows = _price_at_creation(unspent, prices).withColumn("_age", age)
    return (
        rows.withColumn("cohort", F.explode(_cohorts_of(F.col("_age"), lth_days)))
        .groupBy("day", "cohort")
        .agg(
            F.sum("unspent_sats").alias("supply_sats"),
            (_sum_or_null(F.col("unspent_sats"), F.col("created_price")) / COIN).alias(
                "realized_cap_usd"
            ),
            F.sum(F.when(F.col("_age") == lth_days - 1, F.col("unspent_sats")).otherwise(0)).alias(
                "maturing_sats"
            ),
        )
    )


def spent_aggregates(
    inputs: DataFrame, blocks: DataFrame, prices: DataFrame, lth_days: int
) -> DataFrame:
    """(day, cohort, spent_sats, cdd, spend_usd, created_usd, a_spend_usd, a_created_usd) for
    the spends of ``inputs``, by the age of the spent coins (day − created_day). The ``a_``
    sums leave out outputs spent less than an hour after their block (aSOPR)."""
    times = blocks.select("height", F.col("time").cast("long").alias("time"))
    rows = (
        inputs.select("day", "height", "created_day", "created_height", "value_sats")
        .join(times.withColumnRenamed("time", "_spent_at"), "height")
        .join(
            times.select(F.col("height").alias("created_height"), F.col("time").alias("_made_at")),
            "created_height",
        )
        .join(prices.select("day", F.col("close_usd").alias("_price")), "day", "left")
    )
    rows = _price_at_creation(rows, prices).withColumn(
        "_age", F.datediff(F.col("day"), F.col("created_day"))
    )
    adjusted = (F.col("_spent_at") - F.col("_made_at")) >= ASOPR_MIN_SECONDS
    a_value = F.when(adjusted, F.col("value_sats")).otherwise(0)
    return (
        rows.withColumn("cohort", F.explode(_cohorts_of(F.col("_age"), lth_days)))
        .groupBy("day", "cohort")
        .agg(
            F.sum("value_sats").alias("spent_sats"),
            (F.sum(F.col("value_sats") * F.col("_age")) / COIN).alias("cdd"),
            _sum_or_null(F.col("value_sats"), F.col("_price")).alias("spend_usd"),
            _sum_or_null(F.col("value_sats"), F.col("created_price")).alias("created_usd"),
            _sum_or_null(a_value, F.col("_price")).alias("a_spend_usd"),
            _sum_or_null(a_value, F.col("created_price")).alias("a_created_usd"),
        )
    )


def _ratio(num: str, den: str) -> Column:
    return F.when(F.col(den) > 0, F.col(num) / F.col(den))


def supply_cohorts(
    spark: SparkSession,
    supply: DataFrame,
    spent: DataFrame,
    prices: DataFrame,
    first: dt.date,
    last: dt.date,
    lth_days: int,
) -> DataFrame:
    """The rows of ``metrics.supply_cohorts`` for days ``first``..``last``: every cohort of
    :func:`cohorts` every day (0 where empty)."""
    spec = spark.createDataFrame(
        [(i, *c) for i, c in enumerate(cohorts(lth_days))],
        "cohort_order int, cohort string, cohort_kind string, min_age_days int, max_age_days int",
    )
    days = calendar(spark, first, last)
    price = prices.select("day", F.col("close_usd").alias("price_usd"))
    rows = (
        days.crossJoin(spec)
        .join(supply.drop("maturing_sats"), ["day", "cohort"], "left")
        .join(spent, ["day", "cohort"], "left")
        .join(price, "day", "left")
        .na.fill(0, ["supply_sats", "spent_sats"])
        .na.fill(0.0, ["cdd"])
    )
    by_day = Window.partitionBy("day")
    total = F.max(F.when(F.col("cohort") == "all", F.col("supply_sats"))).over(by_day)
    total_realized = F.max(F.when(F.col("cohort") == "all", F.col("realized_cap_usd"))).over(by_day)
    # A cohort without coins has a realized cap of 0 (known), not NULL.
    realized = F.when(F.col("supply_sats") == 0, F.lit(0.0)).otherwise(F.col("realized_cap_usd"))
    return (
        rows.withColumn("realized_cap_usd", realized)
        .withColumn("supply_btc", F.col("supply_sats") / COIN)
        .withColumn("supply_share", F.when(total > 0, F.col("supply_sats") / total))
        .withColumn(
            "realized_share",
            F.when(total_realized > 0, F.col("realized_cap_usd") / total_realized),
        )
        .withColumn("realized_price_usd", _ratio("realized_cap_usd", "supply_btc"))
        .withColumn("market_value_usd", F.col("supply_btc") * F.col("price_usd"))
        .withColumn("mvrv", _ratio("market_value_usd", "realized_cap_usd"))
        .withColumn("spent_btc", F.col("spent_sats") / COIN)
        .withColumn("dormancy_days", _ratio("cdd", "spent_btc"))
        .withColumn("sopr", _ratio("spend_usd", "created_usd"))
        .withColumn("asopr", _ratio("a_spend_usd", "a_created_usd"))
    )


def lth_changes(spark: SparkSession, supply: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """(day, lth_supply_btc, sth_to_lth_btc, lth_supply_change_btc) for days ``first``..``last``
    from :func:`supply_aggregates` over days ``first`` − 1..``last``. sth_to_lth = coins that
    were lth_days − 1 days old and unspent at the previous day's end: they turned long-term
    this day."""
    days = calendar(spark, first - dt.timedelta(days=1), last)
    lth = supply.filter(F.col("cohort") == "lth").select("day", "supply_sats")
    maturing = supply.filter(F.col("cohort") == "all").select("day", "maturing_sats")
    order = Window.orderBy("day")
    rows = (
        days.join(lth, "day", "left")
        .join(maturing, "day", "left")
        .na.fill(0, ["supply_sats", "maturing_sats"])
    )
    return rows.select(
        "day",
        (F.col("supply_sats") / COIN).alias("lth_supply_btc"),
        (F.lag("maturing_sats").over(order) / COIN).alias("sth_to_lth_btc"),
        ((F.col("supply_sats") - F.lag("supply_sats").over(order)) / COIN).alias(
            "lth_supply_change_btc"
        ),
    ).filter(F.col("day") >= F.lit(first))

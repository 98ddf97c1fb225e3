"""Common-input ownership: address ids, coinjoin flags and the co-spend edges between ids.

Clustering works on integers: :func:`with_address_ids` gives every address a dense, stable
bigint id. :func:`build_tx_summary` and :func:`with_coinjoin_flag` mark the transactions whose
inputs belong to several people by design (coinjoins), and :func:`cospend_edges` links the
input addresses of every other transaction. The edges feed
:func:`hodlflow.entities.components.connected_components`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hodlflow.entities.components import require_columns

# Wasabi 2 (WabiSabi) output denominations: powers of 2, powers of 3, twice the powers of 3,
# and 1, 2, 5 times the powers of 10, from 5,000 sats up to 2^37 sats (1374.38953472 BTC).
WASABI2_MIN_DENOMINATION = 5_000
WASABI2_MAX_DENOMINATION = 2**37


def _wasabi2_denominations() -> list[int]:
    values: set[int] = set()
    for base, factors in ((2, (1,)), (3, (1, 2)), (10, (1, 2, 5))):
        power = 1
        while power <= WASABI2_MAX_DENOMINATION:
            values.update(f * power for f in factors)
            power *= base
    return sorted(v for v in values if WASABI2_MIN_DENOMINATION <= v <= WASABI2_MAX_DENOMINATION)


WASABI2_DENOMINATIONS: tuple[int, ...] = tuple(_wasabi2_denominations())
# Wasabi 1: one base denomination near 0.1 BTC, which the coordinator let drift a little.
WASABI1_BASE_SATS = 10_000_000
WASABI1_TOLERANCE_SATS = 2_000_000


def with_address_ids(addresses: DataFrame, existing: DataFrame | None = None) -> DataFrame:
    """The address id table after adding the addresses of ``addresses``.

    Input: ``addresses`` with ``address`` (string) and ``height`` (int): any rows that name
    addresses, e.g. ``chain.outputs``; duplicates are expected. ``existing``: the id table so
    far (``address``, ``address_id``, ``first_height``), or None when there is none.

    Output: ``address``, ``address_id`` (bigint), ``first_height`` (int): every row of
    ``existing`` unchanged, plus one row for each address of ``addresses`` not in ``existing``.

    Rules:

    * ids are stable: an address in ``existing`` keeps its id and first height;
    * ids are dense: new addresses get max(existing id) + 1, + 2, ... (0, 1, ... when there are
      no existing ids), in the order of first height, then address (string order), so the same
      input always gives the same ids;
    * ``first_height`` of a new address is the smallest height at which ``addresses`` shows it;
      a NULL height counts only when there is no other (such addresses come first);
    * rows with a NULL address are skipped.

    New rows are those with ``address_id`` above the old maximum. Scales with the number of new
    addresses: ids are numbered per first height, and only the per-height counts (one row per
    height) pass through one task to get each height's offset.
    """
    require_columns(addresses, ("address", "height"), "addresses")
    seen = (
        addresses.filter(F.col("address").isNotNull())
        .groupBy("address")
        .agg(F.min("height").alias("first_height"))
    )
    if existing is None:
        old = seen.sparkSession.createDataFrame(
            [], "address string, address_id bigint, first_height int"
        )
    else:
        require_columns(existing, ("address", "address_id", "first_height"), "existing")
        old = existing.select(
            "address", F.col("address_id").cast("bigint"), F.col("first_height").cast("int")
        )
    new = seen.join(old.select("address"), "address", "left_anti").withColumn(
        # Heights are never negative: -1 stands for NULL so that the key joins.
        "h",
        F.coalesce("first_height", F.lit(-1)),
    )
    start = old.agg((F.coalesce(F.max("address_id"), F.lit(-1)) + 1).alias("start"))
    per_height = new.groupBy("h").agg(F.count(F.lit(1)).alias("n"))
    before = Window.orderBy("h").rowsBetween(Window.unboundedPreceding, -1)
    offsets = per_height.crossJoin(start).select(
        "h", (F.col("start") + F.coalesce(F.sum("n").over(before), F.lit(0))).alias("offset")
    )
    within = Window.partitionBy("h").orderBy("address")
    numbered = new.join(offsets, "h").select(
        "address",
        (F.col("offset") + F.row_number().over(within) - 1).cast("bigint").alias("address_id"),
        F.col("first_height").cast("int"),
    )
    return old.unionByName(numbered)


def build_tx_summary(inputs: DataFrame, outputs: DataFrame) -> DataFrame:
    """Per transaction, the counts that coinjoin detection looks at.

    Input: ``inputs`` (``txid``, ``height``, ``address``: e.g. ``chain.inputs``), ``outputs``
    (``txid``, ``height``, ``is_coinbase``, ``value_sats``: e.g. ``chain.outputs``).

    Output, one row per transaction (``txid``, ``height``) of ``outputs``:

    * ``txid``, ``height``, ``is_coinbase``;
    * ``input_count``: its input rows (0 for a coinbase: ``chain.inputs`` holds none);
    * ``input_address_count``: distinct non-NULL addresses among its inputs;
    * ``output_count``: its outputs with a positive value — zero-value outputs (OP_RETURN
      data, anchors) pay nobody and are not counted anywhere below;
    * ``equal_output_count``: size of the largest group of outputs with the same value (1 when
      all values differ, 0 when no output has value); ties go to the larger value;
    * ``equal_output_value``: the value of that group, NULL when ``equal_output_count`` < 2.

    Inputs are matched on (txid, height), which keeps mainnet's two duplicated coinbase txids
    apart; inputs of a transaction missing from ``outputs`` are dropped.
    """
    require_columns(inputs, ("txid", "height", "address"), "inputs")
    require_columns(outputs, ("txid", "height", "is_coinbase", "value_sats"), "outputs")
    keys = ["txid", "height", "is_coinbase"]
    by_value = (
        outputs.filter(F.col("value_sats") > 0)
        .groupBy("txid", "height", "value_sats")
        .agg(F.count(F.lit(1)).alias("n"))
        .groupBy("txid", "height")
        .agg(
            F.sum("n").alias("output_count"),
            F.max(F.struct("n", "value_sats")).alias("top"),
        )
    )
    txs = outputs.select(*keys).distinct()
    spent = inputs.groupBy("txid", "height").agg(
        F.count(F.lit(1)).alias("input_count"),
        F.countDistinct("address").alias("input_address_count"),
    )
    top_n = F.coalesce(F.col("top.n"), F.lit(0))
    return (
        txs.join(by_value, ["txid", "height"], "left")
        .join(spent, ["txid", "height"], "left")
        .select(
            *keys,
            F.coalesce("input_count", F.lit(0)).cast("bigint").alias("input_count"),
            F.coalesce("input_address_count", F.lit(0)).cast("bigint").alias("input_address_count"),
            F.coalesce("output_count", F.lit(0)).cast("bigint").alias("output_count"),
            top_n.cast("bigint").alias("equal_output_count"),
            F.when(top_n >= 2, F.col("top.value_sats")).cast("bigint").alias("equal_output_value"),
        )
    )


def is_coinjoin() -> Column:
    """Boolean column over the columns of :func:`build_tx_summary`; never NULL.

    With n = ``equal_output_count``, a transaction is a coinjoin when it is not a coinbase and
    one of these holds:

    * Whirlpool: exactly 5 inputs and exactly 5 outputs, all of one value (n = 5);
    * Wasabi: n ≥ 10 at a round-ish denomination — a Wasabi 2 standard denomination
      (:data:`WASABI2_DENOMINATIONS`: 2^k, 3^k, 2·3^k, 10^k, 2·10^k, 5·10^k sats from 5,000
      sats to 2^37 sats) or within 0.02 BTC of 0.1 BTC (Wasabi 1's base denomination);
    * JoinMarket (and coordinator-style joins like it): n ≥ 3, at least n inputs from at
      least n distinct addresses, and about as many other outputs as equal ones (between n − 1
      and n + 1: one change per participant, one fewer when a taker sweeps, one more for a
      coordinator fee).

    A NULL ``is_coinbase`` counts as not-coinbase. Conservative the other way round from
    clustering: a false coinjoin only loses that transaction's co-spend edges, a missed one
    merges strangers.
    """
    n = F.col("equal_output_count")
    inputs = F.col("input_count")
    outputs = F.col("output_count")
    value = F.col("equal_output_value")
    whirlpool = (inputs == 5) & (outputs == 5) & (n == 5)
    round_ish = value.isin(*WASABI2_DENOMINATIONS) | (
        F.abs(value - F.lit(WASABI1_BASE_SATS)) <= WASABI1_TOLERANCE_SATS
    )
    wasabi = (n >= 10) & round_ish
    others = outputs - n
    joinmarket = (
        (n >= 3)
        & (inputs >= n)
        & (F.col("input_address_count") >= n)
        & (others >= n - 1)
        & (others <= n + 1)
    )
    not_coinbase = ~F.coalesce(F.col("is_coinbase"), F.lit(False))
    return F.coalesce(not_coinbase & (whirlpool | wasabi | joinmarket), F.lit(False))


def with_coinjoin_flag(tx_summary: DataFrame) -> DataFrame:
    """Add ``is_coinjoin`` (boolean, never NULL) to a :func:`build_tx_summary` frame.

    Output: the input's columns (among them ``txid``, ``height``, ``is_coinbase``) plus
    ``is_coinjoin`` by the rules of :func:`is_coinjoin`. Downstream, a transaction without a
    flag (a NULL after a join) counts as not-coinjoin.
    """
    require_columns(
        tx_summary,
        ("is_coinbase", "input_count", "input_address_count", "output_count",
         "equal_output_count", "equal_output_value"),
        "tx_summary",
    )  # fmt: skip
    return tx_summary.withColumn("is_coinjoin", is_coinjoin())


def cospend_edges(inputs: DataFrame, tx_flags: DataFrame, address_ids: DataFrame) -> DataFrame:
    """Common-input-ownership edges between address ids.

    Input: ``inputs`` (``txid``, ``address``: e.g. ``chain.inputs``); ``tx_flags`` (``txid``,
    ``is_coinbase``, ``is_coinjoin``: e.g. :func:`with_coinjoin_flag`'s output); ``address_ids``
    (``address``, ``address_id``: :func:`with_address_ids`'s output).

    Output: ``src``, ``dst`` (bigint), distinct rows, ``src`` > ``dst``.

    Rules:

    * an input with a NULL address is skipped, and so is one whose address has no id;
    * a transaction flagged coinjoin or coinbase gives no edges; a transaction without a
      flag row, or with a NULL flag, counts as neither;
    * a transaction with fewer than two distinct input address ids gives no edges;
    * otherwise every input address id other than the transaction's smallest one gets the
      edge (id, smallest id): a star, as many edges as inputs, not a clique;
    * edges repeated by several transactions appear once.
    """
    require_columns(inputs, ("txid", "address"), "inputs")
    require_columns(tx_flags, ("txid", "is_coinbase", "is_coinjoin"), "tx_flags")
    require_columns(address_ids, ("address", "address_id"), "address_ids")
    excluded = tx_flags.filter(
        F.coalesce(F.col("is_coinjoin"), F.lit(False))
        | F.coalesce(F.col("is_coinbase"), F.lit(False))
    ).select("txid")
    ids = (
        inputs.filter(F.col("address").isNotNull())
        .join(excluded, "txid", "left_anti")
        .join(address_ids.select("address", F.col("address_id").cast("bigint")), "address")
        .select("txid", "address_id")
        .distinct()
    )
    smallest = F.min("address_id").over(Window.partitionBy("txid"))
    return (
        ids.select(F.col("address_id").alias("src"), smallest.alias("dst"))
        .filter(F.col("src") != F.col("dst"))
        .distinct()
    )


def change_edges(
    inputs: DataFrame,
    outputs: DataFrame,
    tx_flags: DataFrame,
    address_ids: DataFrame,
    new_ids: DataFrame,
    heuristics: tuple[str, ...] | list[str],
) -> DataFrame:
    """Edges from a transaction's guessed change output to its inputs' owner.

    Input: ``inputs`` (``txid``, ``height``, ``address``, ``script_type``), ``outputs``
    (``txid``, ``height``, ``address``, ``script_type``, ``value_sats``), ``tx_flags``
    (``txid``, ``height``, ``is_coinbase``, ``is_coinjoin``), ``address_ids`` (``address``,
    ``address_id``), ``new_ids`` (``address``, ``first_height``: addresses first seen in the
    range), ``heuristics``: names from :data:`hodlflow.config.CHANGE_HEURISTICS`.

    Output: ``src``, ``dst`` (bigint, distinct): (change address id, the transaction's smallest
    input address id).

    Only transactions that are neither coinbase nor coinjoin, with exactly two outputs of
    positive value, both with an address and neither paying an input address back, are
    considered. Then, per heuristic:

    * ``fresh_change`` — exactly one of the two addresses is first seen at this height (a new
      address is what wallets use for change; the payee's is often known): it is the change;
    * ``script_type_change`` — all inputs have one script type and exactly one output has that
      type (wallets pay change to their own kind of script): it is the change.

    Both are guesses: each adds recall and can merge a payee into the payer (lower precision).
    """
    require_columns(inputs, ("txid", "height", "address", "script_type"), "inputs")
    require_columns(outputs, ("txid", "height", "address", "script_type", "value_sats"), "outputs")
    keys = ["txid", "height"]
    plain = tx_flags.filter(
        ~F.coalesce(F.col("is_coinjoin"), F.lit(False))
        & ~F.coalesce(F.col("is_coinbase"), F.lit(False))
    ).select(*keys)
    ids = address_ids.select("address", F.col("address_id").cast("bigint"))
    ins = inputs.filter(F.col("address").isNotNull()).join(ids, "address")
    per_in = ins.groupBy(*keys).agg(
        F.min("address_id").alias("owner"),
        F.collect_set("address").alias("in_addresses"),
        F.countDistinct("script_type").alias("in_types"),
        F.min("script_type").alias("in_type"),
    )
    outs = outputs.filter(F.col("value_sats") > 0).select(*keys, "address", "script_type")
    two = (
        outs.groupBy(*keys)
        .agg(F.count(F.lit(1)).alias("n"), F.count("address").alias("with_address"))
        .filter("n = 2 AND with_address = 2")
    )
    fresh = new_ids.select("address", F.col("first_height").alias("fresh_height"))
    cand = (
        outs.join(two.select(*keys), keys)
        .join(plain, keys)
        .join(per_in, keys)
        .join(ids, "address")
        .join(fresh, "address", "left")
        .withColumn("is_fresh", F.coalesce(F.col("fresh_height") == F.col("height"), F.lit(False)))
        .withColumn(
            "same_type", (F.col("in_types") == 1) & (F.col("script_type") == F.col("in_type"))
        )
        .withColumn("pays_back", F.array_contains("in_addresses", F.col("address")))
    )
    per_tx = Window.partitionBy(*keys)
    cand = cand.withColumn("any_back", F.max("pays_back").over(per_tx)).filter(~F.col("any_back"))
    picks = []
    for name, flag in (("fresh_change", "is_fresh"), ("script_type_change", "same_type")):
        if name in heuristics:
            counted = cand.withColumn("_n", F.sum(F.col(flag).cast("int")).over(per_tx))
            picks.append(counted.filter(F.col(flag) & (F.col("_n") == 1)).select(
                F.col("address_id").alias("src"), F.col("owner").alias("dst")))  # fmt: skip
    if not picks:
        return ids.sparkSession.createDataFrame([], "src bigint, dst bigint")
    edges = picks[0]
    for more in picks[1:]:
        edges = edges.unionByName(more)
    return edges.filter(F.col("src") != F.col("dst")).distinct()


def _payment_inputs(inputs: DataFrame, tx_flags: DataFrame, address_ids: DataFrame):
    """What the change rules that read a window (:func:`peel_steps`, :func:`deposit_edges`)
    know of a payment's inputs: ``ins`` (the inputs of transactions neither coinbase nor
    coinjoin), ``ids`` (``address``, ``address_id``, ``first_height``), ``per_in`` per
    ``txid`` (``in_type`` and ``in_types``: the inputs' script type and how many there are,
    ``with_address``, ``n_in``, ``in_addresses``) and ``owner`` per ``txid`` (the smallest
    input address id)."""
    excluded = tx_flags.filter(
        F.coalesce(F.col("is_coinjoin"), F.lit(False))
        | F.coalesce(F.col("is_coinbase"), F.lit(False))
    ).select("txid")
    ids = address_ids.select(
        "address", F.col("address_id").cast("bigint"), F.col("first_height").cast("int")
    )
    ins = inputs.join(excluded, "txid", "left_anti")
    per_in = ins.groupBy("txid").agg(
        F.min("script_type").alias("in_type"),
        F.countDistinct("script_type").alias("in_types"),
        F.count("address").alias("with_address"),
        F.count(F.lit(1)).alias("n_in"),
        F.collect_set("address").alias("in_addresses"),
    )
    owner = (
        ins.join(ids.select("address", "address_id"), "address")
        .groupBy("txid")
        .agg(F.min("address_id").alias("owner"))
    )
    return ins, ids, per_in, owner


def peel_steps(
    inputs: DataFrame,
    outputs: DataFrame,
    tx_flags: DataFrame,
    address_ids: DataFrame,
    min_ratio: float,
) -> DataFrame:
    """The change of every payment shaped like a step of a peeling chain.

    A wallet that pays out of one large coin — an exchange's hot wallet paying withdrawals, a
    spender paying out of their savings — sends a small part to the payees and the rest to a
    fresh change address of its own kind, and spends that change in its next payment, which
    again peels a little off (Meiklejohn et al., "A Fistful of Bitcoins", 2013, followed such
    chains).

    Input: ``inputs`` (``txid``, ``address``, ``script_type``), ``outputs`` (``txid``,
    ``vout``, ``height``, ``day``, ``address``, ``script_type``, ``value_sats``), ``tx_flags``
    (``txid``, ``is_coinbase``, ``is_coinjoin``) for their transactions; ``address_ids``
    (``address``, ``address_id``, ``first_height``) for every address they name.

    Output: ``txid``, ``vout``, ``height``, ``day``, ``address``, ``address_id`` (of the
    change), ``owner`` (the transaction's smallest input address id): one row per *peel step*,
    a transaction, neither coinbase nor coinjoin, whose inputs all have an address and one
    script type, with two or more outputs of positive value, all with an address and none
    paying an input address back, whose largest output goes to an address first seen at its
    height, of the inputs' script type, and is at least ``min_ratio`` times every other
    output: that output is the step's change.
    """
    require_columns(inputs, ("txid", "address", "script_type"), "inputs")
    require_columns(
        outputs, ("txid", "vout", "height", "day", "address", "script_type", "value_sats"),
        "outputs",
    )  # fmt: skip
    require_columns(address_ids, ("address", "address_id", "first_height"), "address_ids")
    ins, ids, per_in, owner = _payment_inputs(inputs, tx_flags, address_ids)
    by_value = Window.partitionBy("txid").orderBy(F.desc("value_sats"), F.asc("vout"))
    per_tx = Window.partitionBy("txid")
    ranked = outputs.filter(F.col("value_sats") > 0).select(
        "txid", "vout", "height", "day", "address", "script_type", "value_sats",
        F.row_number().over(by_value).alias("rank"),
        F.count(F.lit(1)).over(per_tx).alias("n_out"),
        F.count("address").over(per_tx).alias("out_with_address"),
    )  # fmt: skip
    second = ranked.filter(F.col("rank") == 2).select("txid", F.col("value_sats").alias("second"))
    back = _paying_back(ranked, per_in)
    return (
        ranked.filter((F.col("rank") == 1) & (F.col("n_out") >= 2))
        .filter(F.col("out_with_address") == F.col("n_out"))
        .join(second, "txid")
        .join(per_in, "txid")
        .join(back, "txid", "left_anti")
        .join(ids, "address")
        .filter(
            (F.col("in_types") == 1)
            & (F.col("with_address") == F.col("n_in"))
            & (F.col("script_type") == F.col("in_type"))
            & (F.col("first_height") == F.col("height"))
            & (F.col("value_sats") >= F.lit(float(min_ratio)) * F.col("second"))
        )
        .join(owner, "txid")
        .select("txid", "vout", "height", "day", "address", "address_id", "owner")
    )


def type_change_outputs(
    inputs: DataFrame, outputs: DataFrame, tx_flags: DataFrame, address_ids: DataFrame
) -> DataFrame:
    """The change of payments told by its script type: a wallet pays change to its own kind
    of script, the payees' addresses are whatever their wallets use.

    A transaction, neither coinbase nor coinjoin, whose inputs all have an address and one
    script type, with two or more outputs of positive value, all with an address and none
    paying an input address back, exactly one of which is of the inputs' script type and to an
    address first seen at this height: that output. Unlike ``script_type_change`` (clustering
    edges, two outputs only) this feeds the typing of exchanges' hot wallets only
    (:func:`hodlflow.entities.transforms.with_exchange_feeds`: the change of an exchange's
    withdrawal, whatever its size, is the exchange's).

    Input: ``inputs`` (``txid``, ``address``, ``script_type``), ``outputs`` (``txid``,
    ``vout``, ``height``, ``address``, ``script_type``, ``value_sats``), ``tx_flags``,
    ``address_ids`` (``address``, ``address_id``, ``first_height``). Output: ``txid``,
    ``height``, ``address``.
    """
    require_columns(outputs, ("txid", "height", "address", "script_type", "value_sats"), "outputs")
    _ins, ids, per_in, _owner = _payment_inputs(inputs, tx_flags, address_ids)
    per_tx = Window.partitionBy("txid")
    outs = outputs.filter(F.col("value_sats") > 0).select(
        "txid", "height", "address", "script_type",
        F.count(F.lit(1)).over(per_tx).alias("n_out"),
        F.count("address").over(per_tx).alias("out_with_address"),
    )  # fmt: skip
    cand = (
        outs.join(per_in, "txid")
        .filter(
            (F.col("in_types") == 1)
            & (F.col("with_address") == F.col("n_in"))
            & (F.col("n_out") >= 2)
            & (F.col("out_with_address") == F.col("n_out"))
        )
        .withColumn("_back", F.array_contains("in_addresses", F.col("address")))
        .withColumn("_same", (F.col("script_type") == F.col("in_type")).cast("int"))
        .withColumn("_any_back", F.max("_back").over(per_tx))
        .withColumn("_n_same", F.sum("_same").over(per_tx))
    )
    return (
        cand.filter(~F.col("_any_back") & (F.col("_n_same") == 1) & (F.col("_same") == 1))
        .join(ids.select("address", "first_height"), "address")
        .filter(F.col("first_height") == F.col("height"))
        .select("txid", "height", "address")
    )


def peel_bursts(steps: DataFrame, first_day, min_steps: int, days: int) -> DataFrame:
    """The days on which an entity pays like an exchange's hot wallet: many withdrawals a day.

    A hot wallet pays its customers' withdrawals out of one coin, many a day, each a step of a
    peeling chain (:func:`peel_steps`); a person or a shop paying from their own wallet makes a
    few payments a week. A *busy day* of an entity is a day on which it paid a peel step and
    paid ``min_steps`` or more within the ``days`` days ending that day.

    Input: ``steps`` (``day``, ``entity_id``: the payer of each peel step), holding the steps of
    the days from ``first_day`` on and of the ``days`` − 1 days before it (so a window crossing
    the start of a run counts as in one run over both). Output: ``day``, ``entity_id``,
    ``busy_peel_days`` (1) for each busy day on or after ``first_day``; none when
    ``min_steps`` is 0 (the rule off).
    """
    require_columns(steps, ("day", "entity_id"), "steps")
    if min_steps <= 0:
        steps = steps.limit(0)  # the rule off
    day_num = F.datediff("day", F.lit("1970-01-01"))
    per_day = steps.groupBy("day", "entity_id").agg(F.count(F.lit(1)).alias("_n"))
    trailing = (
        Window.partitionBy("entity_id")
        .orderBy(day_num)
        .rangeBetween(-(days - 1), Window.currentRow)
    )
    return (
        per_day.withColumn("_w", F.sum("_n").over(trailing))
        .filter((F.col("_w") >= min_steps) & (F.col("day") >= F.lit(first_day)))
        .select("day", "entity_id", F.lit(1).cast("bigint").alias("busy_peel_days"))
    )


def _paying_back(outs: DataFrame, per_in: DataFrame) -> DataFrame:
    """The ``txid`` of every transaction of ``outs`` (``txid``, ``address``) with an output
    to one of its own input addresses (``per_in``: ``txid``, ``in_addresses``)."""
    return (
        outs.join(per_in.select("txid", "in_addresses"), "txid")
        .filter(F.array_contains("in_addresses", F.col("address")))
        .select("txid")
        .distinct()
    )


def peel_edges(
    inputs: DataFrame,
    outputs: DataFrame,
    tx_flags: DataFrame,
    address_ids: DataFrame,
    min_ratio: float,
    max_days: int,
    spent_from_height: int,
) -> DataFrame:
    """Edges along peeling chains: a payment's change that the payer's next payment spends.

    When the change coin of a :func:`peel_steps` step pays alone, common-input ownership never
    links it: a chain of one-address entities. Here a step's change is linked to the step's
    payer when a transaction at height ≥ ``spent_from_height``, at most ``max_days`` days
    later, spends it and is a step too (deposits swept into one output, purchases kept, do not
    continue a chain).

    Input: as :func:`peel_steps`, ``inputs`` also with ``height``, ``prev_txid`` and
    ``prev_vout``; the rows of the run's range and of the ``max_days`` days before it.

    Output: ``src``, ``dst`` (bigint, distinct): (change address id, the paying transaction's
    smallest input address id). The edges depend only on the chain, not on where runs begin:
    the same for one run or many.
    """
    require_columns(inputs, ("txid", "height", "prev_txid", "prev_vout"), "inputs")
    steps = peel_steps(inputs, outputs, tx_flags, address_ids, min_ratio)
    spenders = steps.select(F.col("txid").alias("next_txid"), F.col("day").alias("next_day"))
    spends = inputs.filter(F.col("height") >= spent_from_height).select(
        F.col("prev_txid").alias("txid"), F.col("prev_vout").alias("vout"),
        F.col("txid").alias("next_txid"),
    )  # fmt: skip
    return (
        steps.join(spends, ["txid", "vout"])
        .join(spenders, "next_txid")
        .filter(F.datediff("next_day", "day") <= max_days)
        .select(F.col("address_id").alias("src"), F.col("owner").alias("dst"))
        .filter(F.col("src") != F.col("dst"))
        .distinct()
    )


def fingerprint_edges(
    inputs: DataFrame,
    outputs: DataFrame,
    tx_flags: DataFrame,
    transactions: DataFrame,
    address_ids: DataFrame,
    max_days: int,
    spent_from_height: int,
) -> DataFrame:
    """Edges from a payment's change to its payer, told by the wallet that spends it next.

    A wallet writes every transaction the same way: its nVersion, its nSequence on every input
    (final 0xFFFFFFFF, 0xFFFFFFFE, or 0xFFFFFFFD signalling replace-by-fee) and its nLockTime
    (0, or the current height against fee sniping, as Bitcoin Core does). When a payment has
    several fresh outputs of its inputs' script type — a withdrawal to a customer whose wallet
    uses the exchange's kind of script, a batch of them — the one the same wallet pays on from
    is its change: its next payment carries the payment's fingerprint, a customer's wallet
    writes its own. This links the pieces of a hot wallet's peeling chain that a withdrawal
    larger than the rest of the coin breaks off (:func:`peel_edges` needs the change to be the
    largest output) and a batch's change among outputs of the wallet's kind.

    Input: as :func:`peel_edges` (``inputs`` also with ``sequence``), and ``transactions``
    (``txid``, ``version``, ``locktime``); the rows of the run's range and of the ``max_days``
    days before it.

    Output: ``src``, ``dst`` (bigint, distinct): (change address id, the paying transaction's
    smallest input address id), for every payment — neither coinbase nor coinjoin, inputs all
    with an address, of one script type and one nSequence, two or more outputs of positive
    value, all with an address, none paying an input address back — whose outputs to an
    address first seen at its height and of the inputs' script type (the candidates) have one
    that a transaction with the payment's fingerprint (nVersion, one nSequence, nLockTime zero
    or not) spends first, alone in its block, at most ``max_days`` days later, when that
    transaction is a payment with two or more outputs (the wallet paying on, not a sweep into
    one output) at height ≥ ``spent_from_height``: that candidate. A hot wallet pays on within
    hours; a payee that happens to run the same wallet software moves at its own pace, so
    ``max_days`` is short. The edges depend only on the chain up to that spend, not on where
    runs begin.
    """
    require_columns(
        inputs,
        ("txid", "height", "address", "script_type", "sequence", "prev_txid", "prev_vout"),
        "inputs",
    )  # fmt: skip
    require_columns(
        outputs, ("txid", "vout", "height", "day", "address", "script_type", "value_sats"),
        "outputs",
    )  # fmt: skip
    require_columns(transactions, ("txid", "version", "locktime"), "transactions")
    require_columns(address_ids, ("address", "address_id", "first_height"), "address_ids")
    ins, ids, per_in, owner = _payment_inputs(inputs, tx_flags, address_ids)
    seqs = ins.groupBy("txid").agg(
        F.min("sequence").alias("_seq"), F.max("sequence").alias("_seq_max")
    )
    per_out = outputs.groupBy("txid").agg(
        F.count(F.lit(1)).alias("n_out"),
        F.sum((F.col("value_sats") > 0).cast("int")).alias("n_paid"),
        F.count("address").alias("out_with_address"),
    )
    # Every transaction written with one nSequence, with its wallet's marks; a payment also has
    # inputs of one script type, all with an address, and two or more outputs of positive
    # value, all with an address.
    marked = (
        per_in.join(seqs, "txid")
        .join(per_out, "txid")
        .join(transactions.select("txid", "version", "locktime"), "txid")
        .filter(F.col("_seq") == F.col("_seq_max"))
        .select(
            "txid", "in_type", "in_addresses",
            F.struct(
                F.col("version"), F.col("_seq").alias("sequence"),
                (F.col("locktime") > 0).alias("locked"),
            ).alias("fp"),
            (
                (F.col("in_types") == 1)
                & (F.col("with_address") == F.col("n_in"))
                & (F.col("n_paid") >= 2)
                & (F.col("n_paid") == F.col("n_out"))
                & (F.col("out_with_address") == F.col("n_out"))
            ).alias("is_payment"),
        )
    )  # fmt: skip
    payments = marked.filter("is_payment")
    outs = outputs.filter(F.col("value_sats") > 0).select(
        "txid", "vout", "height", "day", "address", "script_type"
    )
    back = _paying_back(outs, payments)
    cand = (
        outs.join(payments.select("txid", "in_type", "fp"), "txid")
        .join(back, "txid", "left_anti")
        .filter(F.col("script_type") == F.col("in_type"))
        .join(ids, "address")
        .filter(F.col("first_height") == F.col("height"))
    )
    # The candidates the same wallet moves within max_days, by any transaction with its marks
    # (the run's and the days before it); the first of them, alone in its block, is the change
    # when that transaction pays on.
    spends = inputs.select(
        F.col("prev_txid").alias("txid"), F.col("prev_vout").alias("vout"),
        F.col("txid").alias("next_txid"), F.col("height").alias("next_height"),
        F.col("day").alias("next_day"),
    ).distinct()  # fmt: skip
    nexts = marked.select(
        F.col("txid").alias("next_txid"), F.col("fp").alias("next_fp"),
        F.col("is_payment").alias("pays_on"),
    )  # fmt: skip
    carried = (
        cand.join(spends, ["txid", "vout"])
        .join(nexts, "next_txid")
        .filter((F.col("next_fp") == F.col("fp")) & (F.datediff("next_day", "day") <= max_days))
    )
    per_tx = Window.partitionBy("txid")
    first = (
        carried.withColumn("_first", F.min("next_height").over(per_tx))
        .filter(F.col("next_height") == F.col("_first"))
        .withColumn("_n", F.count(F.lit(1)).over(per_tx))
    )
    return (
        first.filter(
            (F.col("_n") == 1) & F.col("pays_on") & (F.col("next_height") >= spent_from_height)
        )
        .join(owner, "txid")
        .select(F.col("address_id").cast("bigint").alias("src"), F.col("owner").alias("dst"))
        .filter(F.col("src") != F.col("dst"))
        .distinct()
    )


def deposit_edges(
    inputs: DataFrame,
    outputs: DataFrame,
    tx_flags: DataFrame,
    address_ids: DataFrame,
    sweep_min_inputs: int,
    max_days: int,
    spent_from_height: int,
) -> DataFrame:
    """Edges from the change of a payment into a deposit address to the payer.

    A customer selling on an exchange pays into the deposit address the exchange gave them and
    takes the rest back as change, to a fresh address of their wallet's own kind; days later
    the exchange sweeps its deposit addresses into its wallet (many inputs, one output).
    Merchants sweep their invoice addresses the same way. The swept output is the payee's,
    so the other one is the payer's change: without this link a holder who sells a part of a
    coin and keeps the rest shows as a holder paying a stranger, and its next sale as a fresh
    wallet's.

    Input: as :func:`peel_edges` (``inputs`` with ``txid``, ``height``, ``address``,
    ``script_type``, ``prev_txid``, ``prev_vout``; ``outputs`` with ``txid``, ``vout``,
    ``height``, ``day``, ``address``, ``script_type``, ``value_sats``; ``tx_flags`` with
    ``txid``, ``is_coinbase``, ``is_coinjoin``; ``address_ids`` with ``address``,
    ``address_id``, ``first_height``), the rows of the run's range and of the ``max_days``
    days before it.

    Output: ``src``, ``dst`` (bigint, distinct): (change address id, the paying transaction's
    smallest input address id), for every payment — neither coinbase nor coinjoin, inputs all
    with an address and of one script type, exactly two outputs of positive value, both with
    an address, neither paying an input address back — one of whose outputs a *sweep* (a
    transaction spending ≥ ``sweep_min_inputs`` distinct addresses into one output) at height
    ≥ ``spent_from_height`` spends at most ``max_days`` days after the payment, when the other
    output goes to an address first seen at the payment's height, of the inputs' script type,
    and no sweep spent it before (the change; two deposits in one payment give no edge). The
    edges depend only on the chain up to the sweep, not on where runs begin.
    """
    require_columns(
        inputs, ("txid", "height", "address", "script_type", "prev_txid", "prev_vout"), "inputs"
    )
    require_columns(
        outputs, ("txid", "vout", "height", "day", "address", "script_type", "value_sats"),
        "outputs",
    )  # fmt: skip
    require_columns(address_ids, ("address", "address_id", "first_height"), "address_ids")
    ins, ids, per_in, owner = _payment_inputs(inputs, tx_flags, address_ids)
    n_out = outputs.groupBy("txid").agg(
        F.count(F.lit(1)).alias("n_out"),
        F.sum((F.col("value_sats") > 0).cast("int")).alias("n_paid"),
        F.count("address").alias("with_address"),
        F.first("day").alias("sweep_day"),
    )
    sweeps = (
        ins.groupBy("txid", "height")
        .agg(F.countDistinct("address").alias("n_addrs"))
        .filter(F.col("n_addrs") >= sweep_min_inputs)
        .join(n_out.filter("n_out = 1"), "txid")
        .select(F.col("txid").alias("sweep_txid"), F.col("height").alias("sweep_height"),
                "sweep_day")
    )  # fmt: skip
    swept = (
        ins.join(sweeps, ins.txid == sweeps.sweep_txid)
        .groupBy(F.col("prev_txid").alias("txid"), F.col("prev_vout").alias("vout"))
        .agg(F.min("sweep_height").alias("sweep_height"), F.min("sweep_day").alias("sweep_day"))
    )
    pays = (
        per_in.filter(
            (F.col("in_types") == 1) & (F.col("with_address") == F.col("n_in"))
        )
        .join(n_out.filter("n_out = 2 AND n_paid = 2 AND with_address = 2").select("txid"),
              "txid")
        .join(owner, "txid")
    )  # fmt: skip
    paid = outputs.join(pays, "txid")
    back = paid.filter(F.array_contains("in_addresses", F.col("address"))).select("txid")
    outs = (
        paid.join(back.distinct(), "txid", "left_anti")
        .join(swept, ["txid", "vout"], "left")
        .select("txid", "vout", "height", "day", "address", "script_type", "in_type", "owner",
                "sweep_height", "sweep_day")
    )  # fmt: skip
    deposit = outs.filter(
        (F.col("sweep_height") >= spent_from_height)
        & (F.datediff("sweep_day", "day") <= max_days)
    ).select("txid", F.col("vout").alias("_dep_vout"),
             F.col("sweep_height").alias("_dep_sweep"))  # fmt: skip
    return (
        outs.join(deposit, "txid")
        .filter(F.col("vout") != F.col("_dep_vout"))
        .filter(F.col("sweep_height").isNull() | (F.col("sweep_height") > F.col("_dep_sweep")))
        .join(ids, "address")
        .filter(
            (F.col("first_height") == F.col("height")) & (F.col("script_type") == F.col("in_type"))
        )
        .select(F.col("address_id").alias("src"), F.col("owner").alias("dst"))
        .filter(F.col("src") != F.col("dst"))
        .distinct()
    )


def guard_change_edges(edges: DataFrame, tags: DataFrame) -> DataFrame:
    """The change edges that cannot merge two owners known to differ.

    Input: ``edges`` (``src`` change address id, ``dst`` the payer's address id), ``tags``
    (``address_id``, ``tag``): what is already known of an address's owner — ``exchange:NAME``
    for a label seed or an exchange entity, ``miner`` for a coinbase's receiver or a miner
    entity, ``coinjoin`` — at most one row per address.

    An edge is kept when its change address has no tag, or the same tag as the payer's: a
    labelled or typed address belongs to its known owner, so it is nobody else's change (a
    payment to an exchange's cold wallet of the payer's script type is not change), and two
    owners known to differ (two exchanges, an exchange and a pool) are never joined through a
    guessed change.
    """
    require_columns(edges, ("src", "dst"), "edges")
    require_columns(tags, ("address_id", "tag"), "tags")
    src = tags.select(F.col("address_id").alias("src"), F.col("tag").alias("_src_tag"))
    dst = tags.select(F.col("address_id").alias("dst"), F.col("tag").alias("_dst_tag"))
    return (
        edges.join(src, "src", "left")
        .join(dst, "dst", "left")
        .filter(
            F.col("_src_tag").isNull()
            | F.coalesce(F.col("_src_tag") == F.col("_dst_tag"), F.lit(False))
        )
        .select("src", "dst")
    )

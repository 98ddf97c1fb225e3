"""Entity typing and holder classes as Column expressions over an entity's running totals.

Both read only totals accumulated up to the day they describe, so a type or class decided for
day D uses data up to D (no look-ahead). The totals are the columns of ``entities.entities``
(``schemas/entities.entities.yaml``); the thresholds are the ``entities.*`` settings.

Entity type, first rule that holds:

1. ``exchange`` — a label seed (``entities.label_seeds``) names one of its addresses;
2. ``miner`` (0-hop) — a coinbase output paid it;
3. ``exchange`` — behaviour: ≥ ``exchange_min_sweeps`` sweeps (≥ ``sweep_min_inputs`` distinct
   addresses spent into one output, the way an exchange gathers its deposit addresses) and
   ≥ ``exchange_min_addresses`` addresses; or ≥ ``exchange_flow_min_share`` of what it received
   came from exchange entities' own moves: their sweeps (the hot wallet the deposits are swept
   into), once it has received a sweep any payment of theirs (the cold wallet refilling the
   hot one: customers never receive an exchange's sweep), or the change of their payments (a
   withdrawal's rest paid to a fresh address of the wallet's kind,
   :func:`hodlflow.entities.cospend.peel_steps`: a piece of its peeling chain); or it paid
   at a hot wallet's pace on some day (``busy_peel_days`` > 0: ≥ ``exchange_min_peel_steps``
   peel steps within ``exchange_peel_days`` days, :func:`hodlflow.entities.cospend.peel_bursts`);
4. ``coinjoin`` — ≥ ``coinjoin_min_share`` of the value it moved went through coinjoins;
5. ``miner`` (1-hop) — ≥ ``one_hop_min_share`` of what it received came from 0-hop miners;
6. ``unknown``.

Holder class, for entities of type ``unknown`` with a balance, on day D: with a = D −
``coin_day_sum`` / ``balance_sats`` (value-weighted, entity-adjusted coin age) and
w = 1 / (1 + e^(−0.1·(a − ``lth_days``))) (the entity-adjusted long-term-holder weight):

* ``strong`` — w ≥ ``strong_min_weight``; or a large holder: never spent and a balance ≥
  ``large_holder_min_btc`` (funds and whales withdraw what they buy to an address of their own
  and keep it; the positions of retail buyers who turn over are smaller); or a holder: a ≥
  ``held_days``, whether it never spent (dormant) or sold a part and kept the rest (the
  entity-adjusted age keeps the age of what it kept: a long-term holder taking profit into a
  rally sells a tranche and holds on, where a short-term holder exits its whole position);
* ``weak`` — otherwise, when it has spent (young coins that turn over);
* ``neutral`` — otherwise (young coins never spent yet: too early to tell).
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from hodlflow.chain.network import COIN
from hodlflow.config import EntitiesSettings

EXCHANGE, MINER, COINJOIN, UNKNOWN = "exchange", "miner", "coinjoin", "unknown"
STRONG, WEAK, NEUTRAL = "strong", "weak", "neutral"


def _share(part: str, whole: str, minimum: float) -> Column:
    return (F.col(part) > 0) & (F.col(part) >= F.lit(minimum) * F.col(whole))


def fed_by_exchanges(s: EntitiesSettings) -> Column:
    """The hot-wallet rule: ≥ ``exchange_flow_min_share`` of ``received_sats`` came from
    exchanges' own moves (``from_exchange_sats``)."""
    return _share("from_exchange_sats", "received_sats", s.exchange_flow_min_share)


def type_rules(s: EntitiesSettings) -> tuple[Column, ...]:
    """(seeded, miner 0-hop, sweeping exchange, exchange-fed or busy, coinjoin, miner 1-hop)
    conditions.

    Reads ``seed_label``, ``coinbase_sats``, ``sweep_count``, ``address_count``,
    ``from_exchange_sats``, ``busy_peel_days``, ``coinjoin_sats``, ``moved_sats``, ``from_miner_sats``,
    ``received_sats``.
    """
    seeded = F.col("seed_label").isNotNull()
    miner0 = F.col("coinbase_sats") > 0
    swept = (F.col("sweep_count") >= s.exchange_min_sweeps) & (
        F.col("address_count") >= s.exchange_min_addresses
    )
    fed = fed_by_exchanges(s) | (F.col("busy_peel_days") > 0)
    coinjoin = _share("coinjoin_sats", "moved_sats", s.coinjoin_min_share)
    miner1 = _share("from_miner_sats", "received_sats", s.one_hop_min_share)
    return seeded, miner0, swept, fed, coinjoin, miner1


def with_type(df, s: EntitiesSettings):
    """Add ``entity_type``, ``label``, ``label_source`` and ``miner_hop`` (see the module doc).

    Reads the columns of :func:`type_rules` plus ``pool_name`` and ``pool_matched_by``.
    """
    seeded, miner0, swept, fed, coinjoin, miner1 = type_rules(s)
    etype = (
        F.when(seeded, EXCHANGE)
        .when(miner0, MINER)
        .when(swept | fed, EXCHANGE)
        .when(coinjoin, COINJOIN)
        .when(miner1, MINER)
        .otherwise(UNKNOWN)
    )
    pool_label = ~seeded & miner0 & F.col("pool_name").isNotNull()
    return df.withColumn("entity_type", etype).select(
        "*",
        F.when(seeded, F.col("seed_label")).when(pool_label, F.col("pool_name")).alias("label"),
        F.when(seeded, F.lit("seed"))
        .when(pool_label, F.concat(F.lit("pool_"), F.col("pool_matched_by")))
        .alias("label_source"),
        F.when(F.col("entity_type") != MINER, F.lit(None))
        .when(miner0, F.lit(0))
        .otherwise(F.lit(1))
        .cast("int")
        .alias("miner_hop"),
    )


def coin_age(day: Column) -> Column:
    """Value-weighted, entity-adjusted coin age in days on ``day``; NULL for an empty entity."""
    return F.when(
        F.col("balance_sats") > 0,
        F.datediff(day, F.lit("1970-01-01")) - F.col("coin_day_sum") / F.col("balance_sats"),
    )


def lth_weight(age: Column, lth_days: float) -> Column:
    """The entity-adjusted long-term-holder weight 1 / (1 + e^(−0.1·(age − lth_days)))."""
    return F.lit(1.0) / (F.lit(1.0) + F.exp(F.lit(-0.1) * (age - F.lit(lth_days))))


def holder_class(age: Column, s: EntitiesSettings) -> Column:
    """Holder class from the coin age and the columns ``entity_type``, ``balance_sats`` and
    ``send_count`` (module doc); NULL when it does not apply."""
    h = s.holder
    never_spent = F.col("send_count") == 0
    large = never_spent & (F.col("balance_sats") >= F.lit(round(h.large_holder_min_btc * COIN)))
    applies = (F.col("entity_type") == UNKNOWN) & (F.col("balance_sats") > 0)
    return F.when(
        applies,
        F.when(_long_term(age, s) | large | _held(age, s), STRONG)
        .when(F.col("send_count") > 0, WEAK)
        .otherwise(NEUTRAL),
    )


def aged_coin_age(day: Column, row_day: Column) -> Column:
    """The coin age on ``day`` of an entity whose last ``entities.entity_daily`` row is of
    ``row_day`` (on or before ``day``): it did not move since, so its coins aged by the days
    between, ``coin_age_days`` + (day − row_day). Reads ``coin_age_days`` (NULL when empty)."""
    return F.col("coin_age_days") + F.datediff(day, row_day)


def coins_class(age: Column, kept: Column, s: EntitiesSettings) -> Column:
    """The class of a payer by the coins it spends (entities.class_flows): ``strong`` when
    coins of value-weighted age ``age`` have the LTH weight of the holder rule
    (≥ ``holder.strong_min_weight``), or when they are ≥ ``holder.held_days`` old and the payer
    ``kept`` part of its holdings (a balance left at the day's end: a holder selling a tranche
    into strength, as :func:`holder_class` classes it after the sale), else ``weak``."""
    return F.when(_long_term(age, s) | (kept & _held(age, s)), STRONG).otherwise(WEAK)


def _long_term(age: Column, s: EntitiesSettings) -> Column:
    """Coins of age ``age`` have the LTH weight of a strong holder (≥ strong_min_weight)."""
    return lth_weight(age, s.holder.lth_days) >= F.lit(s.holder.strong_min_weight)


def _held(age: Column, s: EntitiesSettings) -> Column:
    """Coins of age ``age`` have been held ``holder.held_days`` or more."""
    return age >= F.lit(s.holder.held_days)


def with_holder_class(df, day: Column, s: EntitiesSettings):
    """Add ``coin_age_days``, ``lth_weight`` and ``holder_class`` as of ``day``."""
    age = coin_age(day)
    weight = lth_weight(age, s.holder.lth_days)
    return (
        df.withColumn("coin_age_days", age)
        .withColumn("lth_weight", weight)
        .withColumn("holder_class", holder_class(F.col("coin_age_days"), s))
    )

"""Supply cohorts on a hand-built chain whose answers are worked out by hand.

Regtest (subsidy 50 BTC), every fee f = 10,000 sat, long-term threshold set to 2 days
(``entities.holder.lth_days``) so that a 6-day chain has long-term coins:

    day 0 00:10  h0  coinbase 50 → K
    day 0 00:40  h1  coinbase 50+f → K;  S1: h0 coinbase (50, 30 min old) → A 30, B 20−f
    day 1 12:00  h2  coinbase 50 → K
    day 2        (no block)
    day 3 12:00  h3  coinbase 50+2f;  S2: A (30, day 0) → C 30−f;  S3: h2 coinbase (50, day 1) → D 50−f
    day 3 12:30  h4  coinbase 50+f;   S5: C (30−f, 30 min old) → F 30−2f
    day 4        (no block)
    day 5 12:00  h5  coinbase 50+f;   S4: B (20−f, day 0) → E 10 + OP_RETURN 10−2f (burnt)

Unspent by creation day at each day's end (BTC):
    day 0: c0 100                      day 3: c0 70, c3 180 (210−f created − C)
    day 1: c0 100, c1 50               day 4: same
    day 2: same                        day 5: c0 50+f, c3 180, c5 60+f   (supply 290+2f)
Prices: 100, 200, 300, 400, 500, 600 USD on days 0..5.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from hodlflow import tables
from hodlflow.chain.network import REGTEST
from hodlflow.ingest.job import run_ingest
from hodlflow.metrics.job import run_metrics
from hodlflow.metrics.prices import load_prices
from hodlflow.sim.blocksdir import write_blocks_dir
from hodlflow.sim.builder import ChainBuilder, op_return, p2wpkh

COIN = 100_000_000
f = 10_000 / COIN
DAY0 = dt.date(2024, 1, 1)
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
HOUR = 3600
PRICES = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0]
KEYS = ["metrics.supply_cohorts", "metrics.holder_migration", "metrics.miner_pressure"]


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


def _build():
    fee = 10_000
    s = {n: p2wpkh(bytes([0xB0 + i]) * 20) for i, n in enumerate("KABCDEF")}
    b = ChainBuilder(REGTEST, start_time=T0 + 600, payout_script=s["K"])
    h0 = b.add_block(time=T0 + 600)
    s1 = b.tx([h0.coinbase.outpoint(0)], [(30 * COIN, s["A"]), (20 * COIN - fee, s["B"])])
    h1 = b.add_block([s1], time=T0 + 2400)
    h2 = b.add_block(time=T0 + 86_400 + 12 * HOUR)
    s2 = b.tx([s1.outpoint(0)], [(30 * COIN - fee, s["C"])])
    s3 = b.tx([h2.coinbase.outpoint(0)], [(50 * COIN - fee, s["D"])])
    h3 = b.add_block([s2, s3], time=T0 + 3 * 86_400 + 12 * HOUR)
    s5 = b.tx([s2.outpoint(0)], [(30 * COIN - 2 * fee, s["F"])])
    h4 = b.add_block([s5], time=T0 + 3 * 86_400 + 12 * HOUR + 1800)
    s4 = b.tx([s1.outpoint(1)], [(10 * COIN, s["E"]), (10 * COIN - 2 * fee, op_return(b"burn"))])
    h5 = b.add_block([s4], time=T0 + 5 * 86_400 + 12 * HOUR)
    return b, [h0, h1, h2, h3, h4, h5]


@pytest.fixture(scope="module")
def chain(spark, tmp_path_factory):
    from hodlflow.config import load_settings

    base = tmp_path_factory.mktemp("supply")
    builder, blocks = _build()
    blocks_dir = base / "blocks"
    write_blocks_dir(blocks_dir, [x.raw for x in blocks], REGTEST)
    prices = base / "prices.csv"
    prices.write_text("day,close_usd\n" + "".join(f"{day(i)},{p}\n" for i, p in enumerate(PRICES)))

    def settings(prefix: str, blocks_path=blocks_dir):
        return load_settings("test", {
            "warehouse.path": str(base / "warehouse"),
            "warehouse.db_prefix": prefix,
            "network": "regtest",
            "ingest.blocks_dir": str(blocks_path),
            "ingest.start_hash": blocks[0].hash,
            "entities.holder.lth_days": 2,
        })  # fmt: skip

    # Incremental: days 0..1 first, then the rest.
    inc = settings("sup_")
    run_ingest(spark, inc, end_height=2, log=lambda _m: None)
    load_prices(spark, inc, prices)
    run_metrics(spark, inc, log=lambda _m: None)
    run_ingest(spark, inc, log=lambda _m: None)
    run_metrics(spark, inc, log=lambda _m: None)
    return {"settings": settings, "inc": inc, "builder": builder, "blocks": blocks,
            "prices": prices, "base": base}  # fmt: skip


def _cohorts(spark, settings) -> dict[tuple[dt.date, str], object]:
    rows = tables.read_table(spark, settings, "metrics.supply_cohorts").collect()
    return {(r.day, r.cohort): r for r in rows}


def _snapshot(spark, settings) -> dict[str, list[tuple]]:
    return {
        k: sorted(tuple(r) for r in tables.read_table(spark, settings, k).collect()) for k in KEYS
    }


def test_supply_by_cohort_every_calendar_day(spark, chain):
    rows = _cohorts(spark, chain["inc"])
    assert sorted({d for d, _ in rows}) == [day(i) for i in range(6)]  # days 2 and 4 too
    assert len(rows) == 6 * 15  # all, sth, lth and the 12 bands, every day
    expected_all = [100, 150, 150, 250, 250, 290 + 2 * f]
    assert [rows[(day(i), "all")].supply_btc for i in range(6)] == pytest.approx(expected_all)
    # Long-term (≥ 2 days old): c0 from day 2 on, c3 from day 5.
    expected_lth = [0, 0, 100, 70, 70, 230 + f]
    assert [rows[(day(i), "lth")].supply_btc for i in range(6)] == pytest.approx(expected_lth)
    for i in range(6):
        r = rows[(day(i), "sth")]
        assert r.supply_btc + rows[(day(i), "lth")].supply_btc == pytest.approx(expected_all[i])
    # HODL waves on day 5: c5 is < 1 day old; c3 (2 days) and c0 (5 days) are 1d–1w.
    assert rows[(day(5), "lt_1d")].supply_btc == pytest.approx(60 + f)
    assert rows[(day(5), "1d_1w")].supply_btc == pytest.approx(230 + f)
    assert rows[(day(5), "1d_1w")].supply_share == pytest.approx((230 + f) / (290 + 2 * f))
    assert rows[(day(5), "1w_1m")].supply_btc == 0.0
    bands = [r for (d, c), r in rows.items() if d == day(5) and r.cohort_kind == "band"]
    assert sum(r.supply_share for r in bands) == pytest.approx(1.0)


def test_realized_cap_price_and_mvrv(spark, chain):
    rows = _cohorts(spark, chain["inc"])
    r3 = rows[(day(3), "all")]
    assert r3.realized_cap_usd == pytest.approx(70 * 100 + 180 * 400)
    assert r3.realized_price_usd == pytest.approx(79_000 / 250)
    assert r3.market_value_usd == pytest.approx(250 * 400)
    assert r3.mvrv == pytest.approx(250 * 400 / 79_000)
    r5 = rows[(day(5), "all")]
    realized5 = (50 + f) * 100 + 180 * 400 + (60 + f) * 600
    assert r5.realized_cap_usd == pytest.approx(realized5)
    lth5 = rows[(day(5), "lth")]
    assert lth5.realized_cap_usd == pytest.approx((50 + f) * 100 + 180 * 400)
    assert lth5.mvrv == pytest.approx((230 + f) * 600 / ((50 + f) * 100 + 180 * 400))
    assert lth5.realized_share == pytest.approx(lth5.realized_cap_usd / realized5)


def test_spent_volume_coin_days_destroyed_dormancy_sopr_and_asopr(spark, chain):
    rows = _cohorts(spark, chain["inc"])
    r3 = rows[(day(3), "all")]
    # Spent on day 3: A (30, age 3, bought at 100), h2's coinbase (50, age 2, at 200), and C
    # (30−f, made 30 minutes earlier at 400).
    assert r3.spent_btc == pytest.approx(110 - f)
    assert r3.cdd == pytest.approx(30 * 3 + 50 * 2)
    assert r3.dormancy_days == pytest.approx(190 / (110 - f))
    assert r3.sopr == pytest.approx((110 - f) * 400 / (30 * 100 + 50 * 200 + (30 - f) * 400))
    assert r3.asopr == pytest.approx(80 * 400 / (30 * 100 + 50 * 200))  # C left out
    lth3, sth3 = rows[(day(3), "lth")], rows[(day(3), "sth")]
    assert (lth3.spent_btc, lth3.cdd) == pytest.approx((80, 190))
    assert lth3.sopr == pytest.approx(32_000 / 13_000)
    assert (sth3.spent_btc, sth3.sopr, sth3.asopr) == pytest.approx((30 - f, 1.0, None))
    assert rows[(day(3), "1d_1w")].spent_btc == pytest.approx(80)
    # Day 0: the only spend is 30 minutes old: SOPR 1, no aSOPR; no spend on day 2.
    assert (rows[(day(0), "all")].sopr, rows[(day(0), "all")].asopr) == (1.0, None)
    r2 = rows[(day(2), "all")]
    assert (r2.spent_btc, r2.cdd, r2.sopr, r2.dormancy_days) == (0.0, 0.0, None, None)
    # Day 5: B (20−f, age 5) at 600 vs 100.
    assert rows[(day(5), "all")].sopr == pytest.approx(6.0)
    assert rows[(day(5), "all")].cdd == pytest.approx((20 - f) * 5)


def test_short_term_coins_maturing_and_the_long_term_supply_change(spark, chain):
    rows = {
        r.day: r
        for r in tables.read_table(spark, chain["inc"], "metrics.holder_migration").collect()
    }
    assert sorted(rows) == [day(i) for i in range(6)]
    got = [(rows[day(i)].sth_to_lth_btc, rows[day(i)].lth_supply_change_btc) for i in range(6)]
    # day 2: c0 (100) turns 2 days old; day 3: c1 (50) matures, 80 long-term coins spent;
    # day 5: c3 (180) matures, B (20−f) spent.
    expected = [(0, 0), (0, 0), (100, 100), (50, -30), (0, 0), (180, 160 + f)]
    for (m, c), (em, ec) in zip(got, expected, strict=True):
        assert (m, c) == pytest.approx((em, ec))
    # No entities run: the flow and concentration columns are unknown, not 0.
    assert rows[day(3)].weak_to_strong_btc is None and rows[day(3)].top100_share is None


def test_the_supply_state_is_the_unspent_set_by_creation_day(spark, chain):
    from pyspark.sql import functions as F

    settings = chain["inc"]
    state = {
        r.created_day: r.unspent_sats
        for r in tables.read_table(spark, settings, "metrics.supply_state").collect()
    }
    unspent = {
        r.day: r.v
        for r in tables.read_table(spark, settings, "chain.unspent")
        .groupBy("day").agg(F.sum("value_sats").alias("v")).collect()
    }  # fmt: skip
    assert (
        state
        == unspent
        == {day(0): 50 * COIN + 10_000, day(3): 180 * COIN, day(5): 60 * COIN + 10_000}
    )


def test_incremental_runs_equal_a_full_rebuild_and_a_rerun_changes_nothing(spark, chain):
    settings = chain["settings"]("sup_full_")
    run_ingest(spark, settings, log=lambda _m: None)
    load_prices(spark, settings, chain["prices"])
    run_metrics(spark, settings, log=lambda _m: None)
    full = _snapshot(spark, settings)
    assert _snapshot(spark, chain["inc"]) == full
    run_metrics(spark, chain["inc"], log=lambda _m: None)
    assert _snapshot(spark, chain["inc"]) == full


def test_a_corrected_price_recomputes_from_its_day_and_a_run_with_nothing_new_computes_nothing(
    spark, chain
):
    """Day 1's close corrected from 200 to 250 USD after the metrics ran: the next run
    recomputes from day 1 and equals a full run over the corrected prices. By hand, day 1:
    revenue 50 BTC (h2, no fees) × 250; realized cap c0 100 × 100 + c1 50 × 250."""
    settings = chain["settings"]("sup_px_")
    run_ingest(spark, settings, log=lambda _m: None)
    load_prices(spark, settings, chain["prices"])
    run_metrics(spark, settings, log=lambda _m: None)
    runs = tables.read_table(spark, settings, "metrics.runs").count()
    logs: list[str] = []
    again = run_metrics(spark, settings, log=logs.append)
    assert again.up_to_date and again.days == 0 and "up to date" in again.summary()
    assert tables.read_table(spark, settings, "metrics.runs").count() == runs  # nothing written

    corrected = chain["base"] / "prices-corrected.csv"
    fixed = [250.0 if i == 1 else p for i, p in enumerate(PRICES)]
    corrected.write_text(
        "day,close_usd\n" + "".join(f"{day(i)},{p}\n" for i, p in enumerate(fixed))
    )
    load_prices(spark, settings, corrected)
    logs.clear()
    result = run_metrics(spark, settings, log=logs.append)
    assert f"recomputing from {day(1)}" in logs and result.first_day == day(1)
    miner = {
        r.day: r for r in tables.read_table(spark, settings, "metrics.miner_pressure").collect()
    }
    assert miner[day(1)].revenue_usd == pytest.approx(50 * 250)
    assert _cohorts(spark, settings)[(day(1), "all")].realized_cap_usd == pytest.approx(
        100 * 100 + 50 * 250
    )

    fresh = chain["settings"]("sup_px_fresh_")
    run_ingest(spark, fresh, log=lambda _m: None)
    load_prices(spark, fresh, corrected)
    run_metrics(spark, fresh, log=lambda _m: None)
    assert _snapshot(spark, settings) == _snapshot(spark, fresh)


def test_a_reorg_recomputes_the_days_it_touched(spark, chain):
    """(Runs last: it changes the module's chain.) A longer branch on h4 replaces h5 (day 5)
    with two blocks on day 4: the next metrics run recomputes from the first day of the stored
    run whose end block left the chain (day 1: the second run covered days 1..5), stepping the
    stored state back through the stored changes, and equals a fresh computation over the new
    best chain."""
    b, blocks, base, settings = chain["builder"], chain["blocks"], chain["base"], chain["inc"]
    x5 = b.add_block(
        parent=blocks[4].hash, time=T0 + 4 * 86_400 + 12 * HOUR, coinbase_tag=b"/fork/"
    )
    x6 = b.add_block(parent=x5.hash, time=T0 + 4 * 86_400 + 13 * HOUR, coinbase_tag=b"/fork/")
    write_blocks_dir(base / "extra", [x5.raw, x6.raw], REGTEST)
    shutil.copy(base / "extra" / "blk00000.dat", base / "blocks" / "blk00009.dat")
    run_ingest(spark, settings, log=lambda _m: None)
    logs: list[str] = []
    run_metrics(spark, settings, log=logs.append)
    assert f"recomputing from {day(1)}" in logs
    rows = _cohorts(spark, settings)
    assert max(d for d, _ in rows) == day(4)  # day 5's rows are gone with h5
    assert rows[(day(4), "all")].supply_btc == pytest.approx(350)  # B never spent, nothing burnt
    fresh = chain["settings"]("sup_fresh_", base / "fresh-blocks")
    write_blocks_dir(base / "fresh-blocks", [x.raw for x in blocks[:5]] + [x5.raw, x6.raw], REGTEST)
    run_ingest(spark, fresh, log=lambda _m: None)
    load_prices(spark, fresh, chain["prices"])
    run_metrics(spark, fresh, log=lambda _m: None)
    assert _snapshot(spark, settings) == _snapshot(spark, fresh)
    # The recompute redid the off-chain run's days: the next run on the same tip has nothing to
    # do (it neither recomputes from day 1 again nor records a run).
    n_runs = tables.read_table(spark, settings, "metrics.runs").count()
    logs.clear()
    again = run_metrics(spark, settings, log=logs.append)
    assert again.up_to_date and not any(m.startswith("recomputing") for m in logs), logs
    assert tables.read_table(spark, settings, "metrics.runs").count() == n_runs

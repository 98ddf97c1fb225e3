"""Miner-pressure columns on hand-made daily rows, and the price-file checks; expected values
worked out by hand in each test."""

from __future__ import annotations

import datetime as dt

import pytest

from hodlflow.config import CostSettings
from hodlflow.metrics.miner import miner_pressure
from hodlflow.metrics.prices import PricesError, read_prices

D0 = dt.date(2024, 1, 1)
DAILY = "day date, blocks int, subsidy_btc double, fees_btc double, difficulty double, hash_rate_ths double"
COST = CostSettings(efficiency_j_per_th=25.0, power_usd_per_kwh=0.05, pue=1.1)


def _day(i: int) -> dt.date:
    return D0 + dt.timedelta(days=i)


def _frames(spark, hash_rates, subsidy=450.0, fees=0.0, price=60_000.0, priced=None):
    n = len(hash_rates)
    daily = spark.createDataFrame(
        [(_day(i), 144, subsidy, fees, 1e14, float(h)) for i, h in enumerate(hash_rates)], DAILY
    )
    days = range(n) if priced is None else priced
    prices = spark.createDataFrame([(_day(i), price) for i in days], "day date, close_usd double")
    return {r.day: r for r in miner_pressure(daily, prices, COST).collect()}


def test_revenue_hashprice_production_cost_and_price_to_cost(spark):
    rows = _frames(spark, [600e6], subsidy=450.0, fees=50.0, price=60_000.0)
    r = rows[D0]
    assert (r.revenue_btc, r.revenue_usd, r.issuance_usd) == (500.0, 30_000_000.0, 27_000_000.0)
    assert r.hashprice_usd_per_th_day == pytest.approx(30_000_000 / 600e6)
    # 600e6 TH/s × 25 J/TH × 24 h / 1000 = 360e6 kWh a day; × 0.05 $ × 1.1 = 19.8e6 $ / 500 BTC.
    assert r.production_cost_usd_per_btc == pytest.approx(39_600.0)
    assert r.price_to_cost == pytest.approx(60_000 / 39_600)
    assert r.below_cost is False


def test_hash_ribbons_are_null_until_their_windows_fill_and_signal_the_crossings(spark):
    # 60 days at 100, 20 days at 50, then 60 days at 200.
    rates = [100.0] * 60 + [50.0] * 20 + [200.0] * 60
    rows = _frames(spark, rates)
    assert (
        rows[_day(28)].hash_rate_sma30_ths is None and rows[_day(29)].hash_rate_sma30_ths == 100.0
    )
    assert (
        rows[_day(58)].hash_rate_sma60_ths is None and rows[_day(59)].hash_rate_sma60_ths == 100.0
    )
    assert rows[_day(59)].hash_ribbon_capitulation is False
    # Day 60: 30-day mean (29×100 + 50)/30 < 60-day mean (59×100 + 50)/60: the 30-day falls below.
    assert rows[_day(60)].hash_ribbon_signal == "capitulation"
    assert [d for d, r in rows.items() if r.hash_ribbon_signal == "capitulation"] == [_day(60)]
    recovery = [d for d, r in rows.items() if r.hash_ribbon_signal == "recovery"]
    assert len(recovery) == 1
    day = (recovery[0] - D0).days
    sma = lambda i, n: sum(rates[i - n + 1 : i + 1]) / n  # noqa: E731
    assert sma(day, 30) >= sma(day, 60) and sma(day - 1, 30) < sma(day - 1, 60)


def test_puell_multiple_needs_365_priced_days(spark):
    rows = _frames(spark, [100.0] * 370, subsidy=450.0, price=50_000.0)
    assert rows[_day(363)].puell_multiple is None
    assert rows[_day(364)].puell_multiple == pytest.approx(1.0)
    # A day without a price breaks every window that holds it.
    gap = _frames(spark, [100.0] * 370, priced=[i for i in range(370) if i != 100])
    assert gap[_day(100)].price_usd is None and gap[_day(100)].revenue_usd is None
    assert gap[_day(364)].puell_multiple is None and gap[_day(369)].puell_multiple is None


def _write(tmp_path, text):
    p = tmp_path / "prices.csv"
    p.write_text(text)
    return p


def test_a_good_price_file_is_read_in_day_order(tmp_path):
    p = _write(tmp_path, "day,close_usd,source\n2024-01-02,101.5,x\n2024-01-01,100,x\n\n")
    assert read_prices(p) == [(D0, 100.0), (_day(1), 101.5)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,price\n2024-01-01,1\n", "line 1: the header must name day and close_usd"),
        ("day,close_usd\n2024-13-01,1\n", "line 2: day '2024-13-01' is not an ISO date"),
        ("day,close_usd\n2024-01-01,0\n", "line 2: close_usd '0' on 2024-01-01 is not a positive"),
        ("day,close_usd\n2024-01-01,abc\n", "close_usd 'abc' on 2024-01-01 is not a positive"),
        ("day,close_usd\n2024-01-01,1\n2024-01-01,2\n", "line 3: 2024-01-01 is given twice (first on line 2)"),
        ("day,close_usd\n2024-01-01,1\n2024-01-04,2\n", "no price for 2024-01-02 (gap from 2024-01-01 to 2024-01-04)"),
        ("day,close_usd\n", "no prices"),
    ],
)  # fmt: skip
def test_a_bad_price_file_names_the_file_line_and_problem(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(PricesError) as err:
        read_prices(p)
    assert str(p) in str(err.value) and message in str(err.value)


def test_a_missing_price_file_is_a_clear_error(tmp_path):
    with pytest.raises(PricesError, match="cannot read the price file"):
        read_prices(tmp_path / "nope.csv")


def test_miner_outflow_mpi_ratio_and_z_score(spark):
    import statistics

    n = 731
    outflow = [1.0] * 729 + [2.0, 1.0]
    daily = spark.createDataFrame(
        [(_day(i), 144, 450.0, 0.0, 1e14, 100.0) for i in range(n)], DAILY
    )
    prices = spark.createDataFrame(
        [(_day(i), 10.0) for i in range(n)], "day date, close_usd double"
    )
    flows = spark.createDataFrame(
        [(_day(i), v, 0.0, 0.0) for i, v in enumerate(outflow) if i != 5],
        "day date, miner_outflow_btc double, miner_to_exchange_btc double, miner_to_miner_btc double",
    )
    covered = _day(729)
    rows = {r.day: r for r in miner_pressure(daily, prices, COST, flows, covered).collect()}
    assert rows[_day(5)].miner_outflow_btc == 0.0  # covered, no miner flow: 0, not null
    assert rows[_day(730)].miner_outflow_btc is None  # after the entities step's last day
    usd = [v * 10.0 for v in outflow]
    usd[5] = 0.0

    def ratio(i):
        return usd[i] / statistics.fmean(usd[i - 364 : i + 1])

    assert rows[_day(363)].mpi_ratio is None
    assert rows[_day(364)].mpi_ratio == pytest.approx(ratio(364))
    ratios = [ratio(i) for i in range(364, 730)]
    window = ratios[-365:]  # days 365..729
    expected = (window[-1] - statistics.fmean(window)) / statistics.stdev(window)
    assert rows[_day(727)].mpi is None  # 365 ratios exist from day 728 (364..728)
    assert rows[_day(729)].mpi == pytest.approx(expected)
    assert rows[_day(730)].mpi is None  # its outflow is unknown


def test_loading_the_same_prices_again_writes_nothing_and_a_changed_file_replaces_its_days(
    spark, make_settings, tmp_path
):
    from hodlflow import tables
    from hodlflow.metrics.prices import load_prices

    settings = make_settings()
    location = tables.table_location(settings, "market.prices")
    first = _write(tmp_path, "day,close_usd\n2024-01-01,100\n2024-01-02,101.5\n")
    assert load_prices(spark, settings, first) == (D0, _day(1))
    version = tables.table_version(spark, location)
    # A daily run loads the same file every day: no new commit.
    load_prices(spark, settings, first)
    assert tables.table_version(spark, location) == version
    # One more day and a corrected price: one commit, the file's rows exactly.
    second = tmp_path / "second.csv"
    second.write_text("day,close_usd\n2024-01-01,100\n2024-01-02,102\n2024-01-03,99\n")
    load_prices(spark, settings, second)
    assert tables.table_version(spark, location) == version + 1
    got = sorted(
        (r.day, r.close_usd) for r in tables.read_table(spark, settings, "market.prices").collect()
    )
    assert got == [(D0, 100.0), (_day(1), 102.0), (_day(2), 99.0)]
    # A file covering only part of the table is compared over its own days.
    part = tmp_path / "part.csv"
    part.write_text("day,close_usd\n2024-01-03,99\n")
    load_prices(spark, settings, part)
    assert tables.table_version(spark, location) == version + 1

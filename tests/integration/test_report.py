"""`hodlflow report` on a hand-built chain, the page rendered by headless Chromium.

One block a day from Saturday 2024-03-02 to Wednesday 03-06 (regtest, subsidy 50 BTC, fee
10,000 sat), a pool P (tag /TestPool/) and an exchange deposit D1 (label seed):

    h0 d0  coinbase → P
    h1 d1  coinbase → P;  T1: P 50 → A1 20, A2 10, B1 10, B2 5, P change
    h2 d2  coinbase → P;  T2: B1 + B2 → D1;  T3: A2 → D2
    h3 d3  coinbase → P;  T4: D1 + D2 → X (the exchange sweeps);  T5: A1 → E
    h4 d4  coinbase → P

Prices 300, 400, 200, 100, 500 USD; long-term holders from 2 days (``entities.holder.lth_days``). The entities step runs to h3 only, so day d4 has no entity
flows: those series must show a gap there, not a zero. The expected values of every chart come
from Spark SQL over the Delta tables (written in this file, not taken from the report code) and,
for the price and the weekly means, from the hand.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import subprocess
from html.parser import HTMLParser

import pytest

from hodlflow import tables
from hodlflow.chain.network import REGTEST
from hodlflow.cli import main
from hodlflow.entities.job import run_entities
from hodlflow.ingest.job import run_ingest
from hodlflow.metrics.job import run_metrics
from hodlflow.metrics.prices import load_prices
from hodlflow.report.job import ReportError, run_report
from hodlflow.sim.blocksdir import write_blocks_dir
from tests.support.tiny_chain import FIVE_DAY_NAMES, five_day_chain

COIN = 100_000_000
FEE = 10_000
DAY0 = dt.date(2024, 3, 2)  # a Saturday: the five days span two ISO weeks
T0 = 1_709_337_600 + 12 * 3600  # 2024-03-02 12:00 UTC
PRICES = [300.0, 400.0, 200.0, 100.0, 500.0]
# A fleet this inefficient makes the regtest chain's production cost ≈ 250 USD per BTC every day
# (hash rate ∝ difficulty ≈ 4.7e-10 × 2^32 / 600 / 144 per block; the revenue varies by the fees
# only): the price is below it on days 2 and 3.
EFFICIENCY_J_PER_TH = 4.09e23
DAYS = [(DAY0 + dt.timedelta(days=i)).isoformat() for i in range(5)]
BANDS = ["lt_1d", "1d_1w", "1w_1m", "1m_3m", "3m_6m", "6m_12m", "1y_2y", "2y_3y", "3y_5y",
         "5y_7y", "7y_10y", "gt_10y"]  # fmt: skip

# Chart → the series it must draw: (table, the SQL expression of the value, extra condition).
EXPECTED = {
    "price_cost": [
        ("price_usd", "market.prices", "close_usd", ""),
        (
            "production_cost_usd_per_btc",
            "metrics.miner_pressure",
            "production_cost_usd_per_btc",
            "",
        ),
    ],
    "miner_outflow": [
        ("miner_outflow_btc", "metrics.miner_pressure", "miner_outflow_btc", ""),
        ("miner_to_exchange_btc", "metrics.miner_pressure", "miner_to_exchange_btc", ""),
        ("mpi_ratio", "metrics.miner_pressure", "mpi_ratio", ""),
        ("mpi", "metrics.miner_pressure", "mpi", ""),
    ],
    "hash_ribbon": [
        ("hash_rate_ths", "metrics.miner_pressure", "hash_rate_ths", ""),
        ("hash_rate_sma30_ths", "metrics.miner_pressure", "hash_rate_sma30_ths", ""),
        ("hash_rate_sma60_ths", "metrics.miner_pressure", "hash_rate_sma60_ths", ""),
    ],
    "migration": [
        ("net_weak_to_strong_btc", "metrics.holder_migration", "net_weak_to_strong_btc", ""),
        (
            "revised_net_weak_to_strong_btc",
            "metrics.holder_migration_revised",
            "net_weak_to_strong_btc",
            "",
        ),
        ("weak_to_exchange_btc", "metrics.holder_migration", "weak_to_exchange_btc", ""),
        ("exchange_to_strong_btc", "metrics.holder_migration", "exchange_to_strong_btc", ""),
    ],
    "holder_balances": [
        ("strong_balance_btc", "metrics.holder_migration", "strong_balance_btc", ""),
        ("weak_balance_btc", "metrics.holder_migration", "weak_balance_btc", ""),
    ],
    "holder_supply": [
        ("lth_supply_btc", "metrics.supply_cohorts", "supply_btc", "cohort = 'lth'"),
        ("sth_supply_btc", "metrics.supply_cohorts", "supply_btc", "cohort = 'sth'"),
    ],
    "hodl_waves": [
        (f"band_{b}", "metrics.supply_cohorts", "supply_share", f"cohort = '{b}'") for b in BANDS
    ],
    "exchange_balance": [
        ("exchange_balance_btc", "metrics.exchange_flows", "balance_btc", ""),
        ("exchange_netflow_btc", "metrics.exchange_flows", "netflow_btc", ""),
    ],
}


def _build():
    from bitcoinlib.encoding import pubkeyhash_to_addr_bech32

    h = {n: bytes([0xC0 + i]) * 20 for i, n in enumerate(FIVE_DAY_NAMES)}
    genesis, blocks = five_day_chain(h, start_time=T0)
    return genesis, blocks, pubkeyhash_to_addr_bech32(h["D1"], prefix="bcrt")


@pytest.fixture(scope="module")
def gold(spark, tmp_path_factory):
    """The chain through ingest, entities (to h3), prices and metrics; settings for it."""
    from hodlflow.config import load_settings

    base = tmp_path_factory.mktemp("report")
    genesis, blocks, d1 = _build()
    write_blocks_dir(base / "blocks", blocks, REGTEST)
    pools = base / "pools.json"
    pools.write_text(json.dumps([{"id": 1, "name": "TestPool", "addresses": [],
                                  "tags": ["/testpool/"], "link": ""}]))  # fmt: skip
    seeds = base / "seeds.csv"
    seeds.write_text(f"address,label\n{d1},TestEx\n")
    prices = base / "prices.csv"
    prices.write_text(
        "day,close_usd\n" + "".join(f"{d},{p}\n" for d, p in zip(DAYS, PRICES, strict=True))
    )

    def settings(prefix: str = "rep_", **more):
        values = {
            "warehouse.path": str(base / "warehouse"),
            "warehouse.db_prefix": prefix,
            "network": "regtest",
            "ingest.blocks_dir": str(base / "blocks"),
            "ingest.start_hash": genesis,
            "entities.pools": [str(pools)],
            "entities.label_seeds": [str(seeds)],
            "entities.holder.lth_days": 2,
            "metrics.cost.efficiency_j_per_th": EFFICIENCY_J_PER_TH,
        }
        values.update(more)
        return load_settings("test", values)

    main_settings = settings()
    quiet = {"log": lambda _m: None}
    run_ingest(spark, main_settings, **quiet)
    run_entities(spark, main_settings, end_height=3, **quiet)
    load_prices(spark, main_settings, prices)
    run_metrics(spark, main_settings, **quiet)
    out = base / "out"
    result = run_report(spark, main_settings, str(out))
    return {"settings": settings, "main": main_settings, "out": out, "result": result, "base": base}


class _Dom(HTMLParser):
    """The rendered DOM's charts: figure attributes, their svg and their series paths."""

    def __init__(self):
        super().__init__()
        self.charts: dict[str, dict] = {}
        self.facts: dict[str, str] = {}
        self._chart = None
        self._fact = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure" and "data-chart" in a:
            self._chart = self.charts.setdefault(
                a["data-chart"], {"attrs": a, "paths": [], "means": [], "shaded": [], "marks": []}
            )
        elif tag == "svg" and self._chart is not None:
            self._chart["svg"] = a
        elif tag == "path" and self._chart is not None and "series" in a.get("class", ""):
            self._chart["paths"].append(a)
        elif tag == "path" and self._chart is not None and a.get("class") == "mean":
            self._chart["means"].append(a)
        elif tag == "rect" and self._chart is not None and a.get("class") == "below-cost":
            self._chart["shaded"].append(a)
        elif tag == "line" and self._chart is not None and a.get("class") == "marker":
            self._chart["marks"].append(a)
        elif tag == "b" and "data-fact" in a:
            self._fact = a["data-fact"]
            self.facts[self._fact] = ""

    def handle_endtag(self, tag):
        if tag == "figure":
            self._chart = None
        elif tag == "b":
            self._fact = None

    def handle_data(self, data):
        if self._fact:
            self.facts[self._fact] += data


def _render(page, work_dir) -> _Dom:
    """Run the page's script in headless Chromium and parse the DOM it ends with."""
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={work_dir / 'chromium-profile'}", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
    parser = _Dom()
    parser.feed(dom)
    return parser


def _points(d: str) -> list[tuple[float, float]]:
    """The absolute M/L points of a path's ``d``."""
    return [(float(x), float(y)) for x, y in re.findall(r"[ML]\s*(-?[\d.]+)[ ,](-?[\d.]+)", d)]


def _is_affine(xs: list[float], ys: list[float]) -> bool:
    """ys = a·xs + b for some a (pixels rounded to 0.01)."""
    lo, hi = min(range(len(xs)), key=xs.__getitem__), max(range(len(xs)), key=xs.__getitem__)
    if xs[hi] == xs[lo]:
        return max(ys) - min(ys) < 0.02
    a = (ys[hi] - ys[lo]) / (xs[hi] - xs[lo])
    return all(abs(ys[lo] + a * (x - xs[lo]) - y) < 0.05 for x, y in zip(xs, ys, strict=True))


def _oracle(spark, settings, table: str, column: str, where: str) -> list[float | None]:
    """One value per report day (None where the table has no row or a null)."""
    name = tables.qualified_name(settings, table)
    tables.ensure_table(spark, settings, table)  # registered by the steps; idempotent
    cond = f"WHERE {where}" if where else ""
    rows = spark.sql(f"SELECT day, {column} AS v FROM {name} {cond}").collect()
    by_day = {r.day.isoformat(): r.v for r in rows}
    return [by_day.get(d) for d in DAYS]


@pytest.fixture(scope="module")
def dom(gold) -> _Dom:
    return _render(gold["out"] / "report.html", gold["base"])


def test_every_chart_draws_its_tables_series_in_chromium(spark, gold, dom):
    assert set(dom.charts) == set(EXPECTED)
    for chart_id, series in EXPECTED.items():
        chart = dom.charts[chart_id]
        assert chart["attrs"].get("data-drawn") == "true", chart_id
        assert chart["svg"]["data-points"] == "5", chart_id  # five days on the axis
        paths = {p["data-series"]: p for p in chart["paths"]}
        assert list(paths) == [key for key, *_ in series], chart_id
        below = [0.0] * 5  # running sum of a stacked chart
        for key, table, column, where in series:
            path = paths[key]
            assert path["data-table"] == table
            expected = _oracle(spark, gold["main"], table, column, where)
            drawn = json.loads(path["data-values"])
            assert drawn == pytest.approx(expected, nan_ok=False), (chart_id, key)
            # The line: one point per day with a value, at that day's x, heights in proportion.
            pts = _points(path["d"])
            have = [i for i, v in enumerate(expected) if v is not None]
            assert len(pts) == len(have), (chart_id, key)
            if chart_id == "hodl_waves":
                for i in have:
                    below[i] += expected[i]
                heights = [below[i] for i in have]
            else:
                heights = [expected[i] for i in have]
            if len(pts) >= 2:
                assert _is_affine([float(i) for i in have], [x for x, _ in pts])
                assert _is_affine(heights, [y for _, y in pts]), (chart_id, key)
    # Hand values: the prices of the CSV, drawn on every day.
    prices = {p["data-series"]: p for p in dom.charts["price_cost"]["paths"]}["price_usd"]
    assert json.loads(prices["data-values"]) == PRICES
    assert len(_points(prices["d"])) == 5
    # By hand: on day 1 the pool P paid A1 20 + A2 10 + B1 10 + B2 5 BTC (its change stays).
    outflow = {p["data-series"]: p for p in dom.charts["miner_outflow"]["paths"]}
    assert json.loads(outflow["miner_outflow_btc"]["data-values"])[1] == pytest.approx(45.0)
    # Entity flows stop after h3 (day 3): a gap on day 4, not a zero.
    for chart_id, key in (("migration", "weak_to_exchange_btc"),
                          ("exchange_balance", "exchange_balance_btc"),
                          ("miner_outflow", "miner_outflow_btc")):  # fmt: skip
        path = {p["data-series"]: p for p in dom.charts[chart_id]["paths"]}[key]
        values = json.loads(path["data-values"])
        assert values[4] is None and None not in values[:4], (chart_id, key)
        assert len(_points(path["d"])) == 4


def test_flow_charts_draw_a_7_day_mean_and_shade_the_days_below_cost(spark, gold, dom):
    below = _oracle(spark, gold["main"], "metrics.miner_pressure", "below_cost", "")
    assert any(below) and not all(below)  # the tiny story ends below the cost
    for chart_id in ("miner_outflow", "migration"):
        chart = dom.charts[chart_id]
        assert [r["data-day"] for r in chart["shaded"]] == [
            d for d, b in zip(DAYS, below, strict=True) if b
        ]
        lefts = [(key, table, column) for key, table, column, _w in EXPECTED[chart_id]
                 if {p["data-series"]: p for p in chart["paths"]}[key]["data-axis"] == "left"]  # fmt: skip
        assert [m["data-mean-of"] for m in chart["means"]] == [k for k, *_ in lefts]
        for mean, (key, table, column) in zip(chart["means"], lefts, strict=True):
            daily = _oracle(spark, gold["main"], table, column, "")
            # By hand: the mean of the day and the six before it that have a value.
            want = []
            for i, v in enumerate(daily):
                seen = [w for w in daily[max(0, i - 6) : i + 1] if w is not None]
                want.append(None if v is None else sum(seen) / len(seen))
            assert json.loads(mean["data-values"]) == pytest.approx(want), (chart_id, key)
            assert len(_points(mean["d"])) == sum(w is not None for w in want)
    # Other charts neither shade nor smooth.
    assert not dom.charts["price_cost"]["shaded"] and not dom.charts["holder_supply"]["means"]


def test_the_hash_ribbon_marks_each_crossing_on_its_day(spark, gold, dom, tmp_path):
    """Five days are too few for a 30-day mean: no crossing, no mark. With the table's signal
    set on two days (a Delta UPDATE, undone after), the page marks exactly those days, at their
    points, daily and by week."""
    assert not any(c["marks"] for c in dom.charts.values())
    name = tables.qualified_name(gold["main"], "metrics.miner_pressure")
    signals = {"2024-03-03": "capitulation", "2024-03-05": "recovery"}
    cases = " ".join(f"WHEN day = DATE'{d}' THEN '{k}'" for d, k in signals.items())
    spark.sql(f"UPDATE {name} SET hash_ribbon_signal = CASE {cases} END")
    try:
        run_report(spark, gold["main"], str(tmp_path / "daily"))
        weekly = gold["main"].with_overrides({"report.max_daily_points": 4})
        run_report(spark, weekly, str(tmp_path / "weekly"))
    finally:
        spark.sql(f"UPDATE {name} SET hash_ribbon_signal = NULL")
    daily = _render(tmp_path / "daily" / "report.html", tmp_path)
    marks = daily.charts["hash_ribbon"]["marks"]
    assert [(m["data-day"], m["data-signal"]) for m in marks] == list(signals.items())
    # At the x of their days: the hash rate is drawn on every day, one point each.
    rate = {p["data-series"]: p for p in daily.charts["hash_ribbon"]["paths"]}["hash_rate_ths"]
    xs = [x for x, _ in _points(rate["d"])]
    assert [float(m["x1"]) for m in marks] == pytest.approx([xs[DAYS.index(d)] for d in signals])
    assert not any(c["marks"] for k, c in daily.charts.items() if k != "hash_ribbon")
    # By week: Sunday 03-03 on the week of Monday 02-26 (the first point), Tuesday 03-05 on
    # the week of 03-04 (the second).
    text = (tmp_path / "weekly" / "report.html").read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text).group(1))
    assert data["markers"] == [["2024-03-03", "2024-02-26", "capitulation"],
                               ["2024-03-05", "2024-03-04", "recovery"]]  # fmt: skip


def test_the_key_facts_name_the_first_day_below_cost(spark, gold, dom):
    name = tables.qualified_name(gold["main"], "metrics.miner_pressure")
    costs = [r[0] for r in spark.sql(f"SELECT production_cost_usd_per_btc FROM {name}").collect()]
    assert all(240 < c < 260 for c in costs)  # the premise of the hand value below
    assert dom.facts["first_below_cost_day"] == "2024-03-04"  # 200 USD < ~250
    assert dom.facts["days_below_cost"] == "2"  # and 100 USD the day after


def test_the_page_references_nothing_outside_itself(gold):
    text = (gold["out"] / "report.html").read_text()
    # The only URL is the SVG namespace name, an identifier the browser never fetches.
    assert set(re.findall(r"https?://[^\s\"'<>)]+", text)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(script|img|link|iframe)[^>]*\s(src|href)=", text)
    assert "@import" not in text and "url(" not in text


def test_a_png_of_every_chart_lies_beside_the_page(gold):
    for chart_id in EXPECTED:
        png = (gold["out"] / f"{chart_id}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", chart_id
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        assert (width, height) == (1000, 400), chart_id  # 10 × 4 inches at 100 dpi


def test_a_long_range_is_charted_by_week_means(spark, gold, tmp_path):
    settings = gold["main"].with_overrides({"report.max_daily_points": 4})
    result = run_report(spark, settings, str(tmp_path / "weekly"))
    assert result.bucket == "week"
    text = (tmp_path / "weekly" / "report.html").read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text).group(1))
    # Sat 03-02 and Sun 03-03 are the week of Monday 02-26; 03-04..03-06 the next week.
    assert data["days"] == ["2024-02-26", "2024-03-04"]
    assert data["values"]["price_usd"] == pytest.approx([350.0, 800.0 / 3])


def test_a_range_narrows_the_days(spark, gold, tmp_path):
    result = run_report(spark, gold["main"], str(tmp_path / "r"), DAY0 + dt.timedelta(days=1),
                        DAY0 + dt.timedelta(days=2))  # fmt: skip
    text = (tmp_path / "r" / "report.html").read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text).group(1))
    assert (result.points, data["days"]) == (2, DAYS[1:3])
    assert data["values"]["price_usd"] == [400.0, 200.0]


def test_without_gold_tables_the_report_says_to_run_metrics(spark, gold, tmp_path, capsys):
    empty = gold["settings"]("nometrics_")
    with pytest.raises(
        ReportError, match=r"no metrics\.miner_pressure table at .*run `hodlflow metrics` first"
    ):
        run_report(spark, empty, str(tmp_path / "none"))
    assert not (tmp_path / "none" / "report.html").exists()
    code = main(["report", "--env", "test", "--warehouse", str(gold["base"] / "warehouse"),
                 "--set", "warehouse.db_prefix=nometrics_", "--out", str(tmp_path / "none")])  # fmt: skip
    assert code == 1
    assert "run `hodlflow metrics` first" in capsys.readouterr().err


def test_a_range_without_days_is_a_clear_error(spark, gold, tmp_path):
    with pytest.raises(ReportError, match="holds no day between 2030-01-01"):
        run_report(spark, gold["main"], str(tmp_path / "late"), dt.date(2030, 1, 1))

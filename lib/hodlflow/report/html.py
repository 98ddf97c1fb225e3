"""The self-contained HTML page: the series embedded as JSON, drawn into SVG by the small inline
script below when the page opens (no library, no network). Every drawn line is a ``<path
class="series">`` carrying the series' values (``data-values``, null = no data), its table and
column; one point per day (or week) that has a value, a gap where it has none."""

from __future__ import annotations

import html
import json
from dataclasses import asdict

from hodlflow.report.charts import CHARTS, ChartSpec
from hodlflow.report.series import BELOW_COST_KEY, MEAN_DAYS, ReportData

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 24px auto; max-width: 980px; color: #222; background: #fff; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 18px; margin: 0 0 6px; }
.sub { color: #555; margin-top: 0; }
#facts ul { columns: 2; padding-left: 18px; }
#facts li { margin: 2px 0; }
figure.chart { margin: 28px 0; padding: 12px 14px; border: 1px solid #ddd; border-radius: 6px; }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 13px; margin-top: 6px; }
ul.legend { list-style: none; padding: 0; margin: 4px 0; font-size: 13px; display: flex;
            flex-wrap: wrap; gap: 4px 16px; }
ul.legend span.swatch { display: inline-block; width: 14px; height: 4px; margin-right: 6px;
                        vertical-align: middle; }
ul.legend .empty { color: #999; }
svg text { font-size: 11px; fill: #333; }
svg .grid { stroke: #eee; }
svg .axis { stroke: #888; }
svg path.series { fill: none; stroke-linejoin: round; stroke-linecap: round; }
"""

# The drawing code. Scales: x by the point's index (days are consecutive), y linear per axis
# from rounded tick bounds. Stacked charts draw each series at the running sum of the series
# below it (a missing value adds nothing and leaves a gap in that series' line).
_SCRIPT = r"""
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var W = 900, H = 330, MT = 12, MB = 44, ML = 74;

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v, percent) {
    if (percent) return (Math.round(v * 1000) / 10) + "%";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 100 || v === 0) return v.toFixed(0);
    if (a >= 1) return v.toFixed(1);
    return v.toPrecision(2);
  }
  function niceStep(span) {
    // 1, 2 or 5 times a power of ten; the tolerance keeps a sum of shares of 1.0000000001
    // from doubling the step.
    var raw = span / 5, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p * (1 - 1e-9);
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function scale(values, withZero) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (lo === Infinity) { lo = 0; hi = 1; }
    if (withZero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (hi === lo) { var pad = Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad; }
    var step = niceStep(hi - lo);
    lo = Math.floor(lo / step + 1e-9) * step; hi = Math.ceil(hi / step - 1e-9) * step;
    var ticks = [];
    for (var t = lo; t <= hi + step / 2; t += step) ticks.push(Math.abs(t) < step / 1e6 ? 0 : t);
    return { lo: lo, hi: hi, ticks: ticks };
  }

  // The mean of the values among each point and the k - 1 before it that have one; null where
  // the point has none (series.trailing_mean).
  function tmean(vals, k) {
    return vals.map(function (v, i) {
      if (v === null) return null;
      var sum = 0, cnt = 0;
      for (var j = Math.max(0, i - k + 1); j <= i; j++) if (vals[j] !== null) { sum += vals[j]; cnt++; }
      return sum / cnt;
    });
  }

  function draw(fig, chart) {
    var n = data.days.length, right = chart.y2_label !== null, MR = right ? 74 : 40;
    var pw = W - ML - MR, ph = H - MT - MB;
    var x = function (i) { return ML + (n > 1 ? i * pw / (n - 1) : pw / 2); };
    // Values as drawn: the running sum for stacked charts.
    var drawn = {}, below = new Array(n).fill(0);
    chart.series.forEach(function (s) {
      var vals = data.values[s.key];
      if (chart.stacked) {
        drawn[s.key] = vals.map(function (v, i) { if (v === null) return null; below[i] += v; return below[i]; });
      } else drawn[s.key] = vals;
    });
    var axes = {};
    ["left", "right"].forEach(function (side) {
      var all = [];
      chart.series.forEach(function (s) { if (s.axis === side) all = all.concat(drawn[s.key]); });
      if (!all.length) return;
      axes[side] = scale(all, chart.stacked || chart.percent);
      // No value on this axis: no tick numbers (they would be made up).
      axes[side].empty = all.every(function (v) { return v === null; });
    });
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
                          "aria-label": chart.title, "data-points": n });
    fig.querySelector(".plot").appendChild(svg);
    var yOf = function (side) {
      var a = axes[side];
      return function (v) { return MT + ph * (1 - (v - a.lo) / (a.hi - a.lo)); };
    };
    // Grid, y ticks and axis labels.
    Object.keys(axes).forEach(function (side) {
      var a = axes[side], y = yOf(side);
      (a.empty ? [] : a.ticks).forEach(function (t) {
        if (side === "left") el("line", { x1: ML, x2: W - MR, y1: y(t), y2: y(t), "class": "grid" }, svg);
        var label = el("text", { x: side === "left" ? ML - 6 : W - MR + 6, y: y(t) + 4,
                                 "text-anchor": side === "left" ? "end" : "start" }, svg);
        label.textContent = fmt(t, chart.percent);
      });
      var ax = side === "left" ? 14 : W - 10;
      var title = el("text", { x: ax, y: MT + ph / 2, "text-anchor": "middle", "class": "axis-label",
                               transform: "rotate(-90 " + ax + " " + (MT + ph / 2) + ")" }, svg);
      title.textContent = side === "left" ? chart.y_label : chart.y2_label;
    });
    el("line", { x1: ML, x2: W - MR, y1: MT + ph, y2: MT + ph, "class": "axis" }, svg);
    el("line", { x1: ML, x2: ML, y1: MT, y2: MT + ph, "class": "axis" }, svg);
    // x ticks: about six dates.
    var every = Math.max(1, Math.ceil(n / 6));
    for (var i = 0; i < n; i += every) {
      el("line", { x1: x(i), x2: x(i), y1: MT + ph, y2: MT + ph + 4, "class": "axis" }, svg);
      el("text", { x: x(i), y: MT + ph + 17, "text-anchor": "middle" }, svg).textContent = data.days[i];
    }
    el("text", { x: ML + pw / 2, y: H - 6, "text-anchor": "middle", "class": "axis-label" }, svg)
      .textContent = data.bucket === "week" ? "week (UTC, starting Monday; weekly means)" : "day (UTC)";
    // Flow charts: the days (weeks) the price closed below the production cost, shaded.
    var shaded = 0;
    if (chart.flow) {
      var bc = data.values[data.below_cost_key], half = n > 1 ? pw / (n - 1) / 2 : pw / 2;
      for (var b = 0; b < n; b++) {
        if (bc[b] === null || bc[b] < 0.5) continue;
        var x0 = Math.max(ML, x(b) - half), x1 = Math.min(W - MR, x(b) + half);
        el("rect", { x: x0.toFixed(2), y: MT, width: (x1 - x0).toFixed(2), height: ph, fill: "#d62728",
                     "fill-opacity": 0.13, "class": "below-cost", "data-day": data.days[b] }, svg);
        shaded++;
      }
    }
    // Hash-ribbon crossings: a vertical line at the point of each, labelled by its signal.
    var marked = {};
    if (chart.markers) data.markers.forEach(function (m) {
      var i = data.days.indexOf(m[1]);
      if (i < 0) return;
      var color = m[2] === "capitulation" ? "#d62728" : "#2ca02c";
      el("line", { x1: x(i), x2: x(i), y1: MT, y2: MT + ph, stroke: color, "stroke-width": 1.2,
                   "stroke-dasharray": "4 3", "class": "marker", "data-day": m[0],
                   "data-signal": m[2] }, svg);
      el("text", { x: x(i) + 3, y: MT + 10, fill: color }, svg).textContent = m[2];
      marked[m[2]] = color;
    });
    var smooth = chart.flow && data.bucket === "day";
    // Stacked areas under the lines (a missing value counts as 0 for the fill only).
    if (chart.stacked) {
      var y = yOf("left"), base = new Array(n).fill(0);
      chart.series.forEach(function (s) {
        var top = base.map(function (b, i) { var v = data.values[s.key][i]; return b + (v === null ? 0 : v); });
        var pts = [];
        for (var i = 0; i < n; i++) pts.push(x(i).toFixed(2) + "," + y(top[i]).toFixed(2));
        for (var j = n - 1; j >= 0; j--) pts.push(x(j).toFixed(2) + "," + y(base[j]).toFixed(2));
        el("polygon", { points: pts.join(" "), fill: s.color, "fill-opacity": 0.75, "class": "area" }, svg);
        base = top;
      });
    }
    // One path per series: a point per day with a value, "M" after every gap.
    chart.series.forEach(function (s) {
      var y = yOf(s.axis), vals = drawn[s.key], d = [], pen = false;
      for (var i = 0; i < n; i++) {
        if (vals[i] === null) { pen = false; continue; }
        d.push((pen ? "L" : "M") + x(i).toFixed(2) + " " + y(vals[i]).toFixed(2));
        var alone = (i === 0 || vals[i - 1] === null) && (i === n - 1 || vals[i + 1] === null);
        if (alone) el("circle", { cx: x(i), cy: y(vals[i]), r: 2.5, fill: s.color, "class": "dot" }, svg);
        pen = true;
      }
      // Right-axis series are context (flows, an index): thinner and lighter; a flow's daily
      // values are faint under their 7-day mean.
      var faint = smooth && s.axis === "left";
      el("path", { d: d.join(" "), stroke: chart.stacked ? "#333" : s.color,
                   "stroke-width": chart.stacked ? 0.8 : s.axis === "right" || faint ? 1.2 : 2,
                   "stroke-opacity": faint ? 0.3 : s.axis === "right" ? 0.75 : 1, "class": "series",
                   "data-series": s.key, "data-table": s.table, "data-column": s.column,
                   "data-axis": s.axis, "data-values": JSON.stringify(data.values[s.key]) }, svg);
    });
    if (smooth) chart.series.forEach(function (s) {
      if (s.axis !== "left") return;
      var y = yOf("left"), m = tmean(data.values[s.key], data.mean_days), d = [], pen = false;
      for (var i = 0; i < n; i++) {
        if (m[i] === null) { pen = false; continue; }
        d.push((pen ? "L" : "M") + x(i).toFixed(2) + " " + y(m[i]).toFixed(2));
        pen = true;
      }
      el("path", { d: d.join(" "), stroke: s.color, "stroke-width": 2, "class": "mean",
                   "data-mean-of": s.key, "data-values": JSON.stringify(m) }, svg);
    });
    var legend = fig.querySelector("ul.legend");
    chart.series.forEach(function (s) {
      var li = document.createElement("li");
      var sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = s.color;
      li.appendChild(sw);
      var empty = data.values[s.key].every(function (v) { return v === null; });
      li.appendChild(document.createTextNode(s.label + (s.axis === "right" ? " (right axis)" : "")
                                             + (smooth && s.axis === "left" ? " (" + data.mean_days
                                                + "-day mean over faint daily values)" : "")
                                             + (empty ? " — no data in this range" : "")));
      if (empty) li.className = "empty";
      legend.appendChild(li);
    });
    Object.keys(marked).forEach(function (signal) {
      var li = document.createElement("li"), sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = marked[signal];
      li.appendChild(sw);
      li.appendChild(document.createTextNode(signal + " (dashed line: the day of the crossing)"));
      legend.appendChild(li);
    });
    if (shaded) {
      var li = document.createElement("li"), sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = "rgba(214, 39, 40, 0.25)";
      li.appendChild(sw);
      li.appendChild(document.createTextNode("price below the production cost"
                                             + (data.bucket === "week" ? " (most days of the week)" : "")));
      legend.appendChild(li);
    }
    fig.setAttribute("data-drawn", "true");
  }

  data.charts.forEach(function (chart) {
    draw(document.getElementById("chart-" + chart.id), chart);
  });
  document.body.setAttribute("data-charts-drawn", String(data.charts.length));
})();
"""


def _fmt(value, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _facts_html(data: ReportData) -> str:
    f = data.facts
    below = f.get("first_below_cost_day")
    items = [
        f"Range: {data.first} to {data.last} ({len(data.days)} "
        f"{'weeks, weekly means' if data.bucket == 'week' else 'days'}).",
        (
            f"The price first closed below the production cost on "
            f"<b data-fact='first_below_cost_day'>{below}</b>; "
            f"<b data-fact='days_below_cost'>{f.get('days_below_cost')}</b> day(s) below cost "
            "in the range."
            if below
            else "The price never closed below the production cost in this range"
            "<b data-fact='first_below_cost_day'></b>."
        ),
    ]
    if below:
        items.append(
            "Miner outflow: "
            f"{_fmt(f.get('miner_outflow_before_btc_per_day'), ' BTC')}/day in the 14 days "
            f"before, {_fmt(f.get('miner_outflow_after_btc_per_day'), ' BTC')}/day in the 14 "
            "days from then."
        )
    items += [
        f"Last close: {_fmt(f.get('last_price_usd'), ' USD', 0)}; production cost on the last "
        f"day: {_fmt(f.get('last_production_cost_usd_per_btc'), ' USD', 0)} per BTC.",
        "Net weak → strong migration over the range (½ strong hands' net inflow − ½ weak "
        f"hands' net inflow): {_fmt(f.get('net_weak_to_strong_btc'), ' BTC')}.",
        f"Long-term holder supply on the last day: {_fmt(f.get('last_lth_supply_btc'), ' BTC')}.",
        f"Exchange balance on the last processed day: "
        f"{_fmt(f.get('last_exchange_balance_btc'), ' BTC')}.",
    ]
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _figure(chart: ChartSpec) -> str:
    return (
        f'<figure class="chart" id="chart-{chart.id}" data-chart="{chart.id}">'
        f"<h2>{html.escape(chart.title)}</h2>"
        '<div class="plot"></div><ul class="legend"></ul>'
        f"<figcaption>{html.escape(chart.caption)} "
        f"PNG: <code>{chart.id}.png</code>.</figcaption></figure>"
    )


def render_html(data: ReportData) -> str:
    """The whole page as one string (CSS, data and drawing script inline)."""
    payload = {
        "days": data.days,
        "bucket": data.bucket,
        "values": data.values,
        "below_cost_key": BELOW_COST_KEY,
        "mean_days": MEAN_DAYS,
        "markers": data.markers,
        "charts": [asdict(c) for c in CHARTS],
    }
    # "</" inside a script element would end it early.
    embedded = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    title = f"hodlflow report {data.first} to {data.last}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f'<h1>hodlflow report</h1><p class="sub">On-chain gold tables (metrics.*, market.prices)'
        f" from {data.first} to {data.last}. Written by <code>hodlflow report</code>; it needs no "
        "network to open.</p>"
        f'<section id="facts"><h2>Key facts</h2>{_facts_html(data)}</section>'
        + "".join(_figure(c) for c in CHARTS)
        + f'<script type="application/json" id="report-data">{embedded}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )

"""The report: the gold tables drawn as charts in one self-contained HTML page, and as PNGs.

* :mod:`hodlflow.report.charts` — what each chart shows and which table and column it reads;
* :mod:`hodlflow.report.series` — the daily (or weekly) series, joined and aggregated by Spark;
* :mod:`hodlflow.report.html` — the page: data as JSON, drawn into SVG by an inline script;
* :mod:`hodlflow.report.png` — the same charts through matplotlib;
* :mod:`hodlflow.report.job` — the step behind ``hodlflow report``.
"""

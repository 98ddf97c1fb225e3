"""The gold layer: daily metrics tables (``metrics.*``) and the price table (``market.prices``).

* :mod:`hodlflow.metrics.prices` — the user's daily close prices, validated, into
  ``market.prices``;
* :mod:`hodlflow.metrics.miner` — ``metrics.miner_pressure``: issuance, fees, revenue, hash rate,
  hash ribbons, hashprice, production cost and price versus cost, Puell multiple;
* :mod:`hodlflow.metrics.job` — the step that brings them up to the chain tables.
"""

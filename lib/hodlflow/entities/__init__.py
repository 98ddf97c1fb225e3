"""The entity layer: addresses → integer ids → co-spend edges → connected components.

* :mod:`hodlflow.entities.cospend` — dense stable address ids, coinjoin flags per
  transaction, and the common-input-ownership edges between address ids;
* :mod:`hodlflow.entities.components` — connected components of those edges
  (large-star/small-star), their incremental update for new edges, and the merges it implies.

Every function takes and returns DataFrames; its docstring is the contract (columns, rules,
NULL and edge cases). Only :func:`~hodlflow.entities.components.connected_components` (and
:func:`~hodlflow.entities.components.incremental_components`, which calls it) run Spark jobs
themselves: an iterative algorithm has to look at its own progress.
"""

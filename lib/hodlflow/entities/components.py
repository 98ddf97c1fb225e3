"""Connected components of an undirected graph on integer node ids, as DataFrames.

The algorithm is the alternating large-star / small-star of Kiveris, Lattanzi, Mirrokni,
Rastogi and Vassilvitskii, "Connected Components in MapReduce and Beyond" (SoCC 2014): every
round shuffles the edge list a few times and never gathers a component in one place, so it runs
unchanged from a laptop to the whole chain (~1.4·10^9 address ids) in O(log² n) rounds at
worst, a handful in practice. A component is
named by its smallest node id, so a merge keeps the smaller (older) id and the larger one is
recorded as merged into it (:func:`merges`).

Edges are kept *oriented*: each undirected edge once, as ``(src, dst)`` with ``src > dst``.
The *parent* of a node is the smallest of its smaller neighbours (itself when it has none),
the ``m(u)`` of the paper: the minimum of its closed neighbourhood.

* large-star: every edge ``(v, u)`` becomes ``(v, parent(u))`` — all of ``u``'s larger
  neighbours hang from the smallest node ``u`` sees;
* small-star: with ``m = parent(u)``, every edge ``(u, v)`` becomes ``(v, m)`` and ``u`` keeps
  ``(u, m)`` — ``u`` and its smaller neighbours hang from the smallest of them.

Both steps keep the components and never raise a parent, and the graph ends as a forest of
stars whose centres are the component minima.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hodlflow.tables import SchemaError


class ComponentsNotConvergedError(RuntimeError):
    """The parents still changed after ``max_iterations`` rounds."""


def require_columns(df: DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`~hodlflow.tables.SchemaError` naming the missing and the present columns."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{what}: missing column(s) {missing}; the DataFrame has {sorted(df.columns)}"
        )


def _parents(oriented: DataFrame) -> DataFrame:
    """(src, parent): the smallest smaller neighbour of every node that has one."""
    return oriented.groupBy("src").agg(F.min("dst").alias("parent"))


# Each step reads the previous edges once (windows, no self-join), so a round adds a few
# operators to the plan; a self-join would double the plan tree every round.


def _large_star(oriented: DataFrame) -> DataFrame:
    """Every edge (v, u), v > u, becomes (v, parent(u)); parent(u) = u when u has none."""
    both_ways = oriented.select(
        F.explode(
            F.array(
                F.struct(F.col("src").alias("a"), F.col("dst").alias("b")),
                F.struct(F.col("dst").alias("a"), F.col("src").alias("b")),
            )
        ).alias("e")
    ).select("e.a", "e.b")
    # The minimum of a's closed neighbourhood is a's parent.
    parent = F.least(F.col("a"), F.min("b").over(Window.partitionBy("a")))
    return (
        both_ways.select("a", "b", parent.alias("m"))
        .filter(F.col("b") > F.col("a"))
        .select(F.col("b").alias("src"), F.col("m").alias("dst"))
    )


def _small_star(oriented: DataFrame) -> DataFrame:
    """With m = parent(u): every edge (u, v) becomes (v, m) (dropped when v = m), plus (u, m)."""
    # One shuffle by src serves the de-duplication of the large-star output and the window.
    by_src = oriented.repartition("src").dropDuplicates(["src", "dst"])
    parent = F.min("dst").over(Window.partitionBy("src"))
    linked = by_src.select("src", "dst", parent.alias("m")).select(
        F.explode(
            F.array(
                F.struct(F.col("dst").alias("src"), F.col("m").alias("dst")),
                F.struct(F.col("src"), F.col("m").alias("dst")),
            )
        ).alias("e")
    )
    return linked.select("e.src", "e.dst").filter("src != dst").distinct()


def _progress(oriented: DataFrame) -> tuple[int, int]:
    """(checksum, unsettled nodes) of a round's edges, in one Spark job.

    *checksum*: Σ (node − parent) over the nodes with a smaller neighbour. Parents never rise
    (each step replaces a node's smaller neighbour by that neighbour's parent, or by the minimum
    of a set holding it), so the sum never falls and an unchanged sum means that no parent
    changed: changed parent pointers counted without joining two rounds. Decimal, because
    1.4·10^9 nodes times their ids comes near the bigint range.

    *unsettled nodes*: nodes with both a smaller and a larger neighbour, or with two smaller
    ones (the edges are distinct). None means the edges are a forest of stars, each centre
    smaller than its leaves: every parent is final.

    Why a round that changes no parent is the last: write p for the parents, E → E' → E'' for
    the round. Large-star puts (b, p(a)) in E' for each edge (b, a) of E, so p(b) ≤ p(a);
    small-star puts (a, p(b)) in E'' for each edge (b, a) of E', so p(a) ≤ p(b) there. An edge
    (v, m) of E' comes from a path v → u → m in E (or from the edge (v, m) itself), so the
    first inequality gives p(v) ≤ p(m) and the second p(m) ≤ p(v): p is constant on every edge
    of E', which has the components of E, so every node's parent is its component's minimum.
    """
    ends = oriented.select(
        F.explode(
            F.array(
                F.struct(
                    F.col("src").alias("node"),
                    F.col("dst").alias("parent"),
                    F.lit(False).alias("is_dst"),
                ),
                F.struct(
                    F.col("dst").alias("node"),
                    F.lit(None).cast("bigint").alias("parent"),
                    F.lit(True).alias("is_dst"),
                ),
            )
        ).alias("e")
    ).select("e.*")
    per_node = ends.groupBy("node").agg(
        F.min("parent").alias("parent"),
        F.count("parent").alias("parents"),
        F.max("is_dst").alias("is_dst"),
    )
    unsettled = ((F.col("parents") > 0) & F.col("is_dst")) | (F.col("parents") > 1)
    row = per_node.agg(
        F.sum((F.col("node") - F.col("parent")).cast("decimal(38,0)")).alias("checksum"),
        F.count_if(unsettled).alias("unsettled"),
    ).first()
    return int(row["checksum"] or 0), int(row["unsettled"])


def _keep(df: DataFrame, round_no: int, every: int, reliable: bool) -> DataFrame:
    """Keep a round's edges for the next round and cut the lineage now and then.

    Local: a lazy local checkpoint every round, filled by the round's progress job (one job per
    round) and dropped by Spark's cleaner once unreferenced. Reliable: cached every round and
    written to ``checkpoint_dir`` every ``every`` rounds (a lazy reliable checkpoint would
    compute the round twice).
    """
    if not reliable:
        return df.localCheckpoint(eager=False)
    if round_no % every == 0:
        return df.checkpoint(eager=True)
    return df.persist(StorageLevel.MEMORY_AND_DISK)


def connected_components(
    edges: DataFrame,
    checkpoint_dir: str | None = None,
    max_iterations: int = 100,
    checkpoint_interval: int = 4,
    log: Callable[[str], None] | None = None,
) -> DataFrame:
    """Label every node with the smallest node id of its connected component.

    Input ``edges``: columns ``src``, ``dst`` (integers, cast to bigint), undirected; any
    other columns are ignored.

    Output: ``node``, ``component`` (bigint, non-null), one row per distinct node of ``edges``;
    ``component`` is the smallest node id connected to ``node`` (a node's own id when alone).

    Rules:

    * edges are undirected: ``(a, b)`` and ``(b, a)`` are the same edge, duplicates are one;
    * a self-loop ``(a, a)`` adds node ``a`` and nothing else (the way to add isolated nodes);
    * a row with a NULL ``src`` or ``dst`` is ignored (it names no edge and no node);
    * the result is the same for any order or partitioning of the input.

    Runs Spark jobs (unlike the pure transforms): one per round, which also reports whether the
    round changed anything. Rounds stop as soon as the edges form stars around the component
    minima or a round changes no parent, both exact (see :func:`_progress`); a graph still
    changing after ``max_iterations`` rounds raises :class:`ComponentsNotConvergedError`.

    Lineage: with ``checkpoint_dir`` None every round is locally checkpointed (fast, but lost
    with an executor) and the result is a lazy frame over those checkpoints. With
    ``checkpoint_dir`` (set as the SparkContext's checkpoint directory: use it on a cluster)
    rounds are cached, written there every ``checkpoint_interval`` rounds, and the result is
    written there too. ``log``, when given, receives one line per round.

    Example::

        edges = spark.createDataFrame([(1, 2), (2, 3), (7, 7)], "src bigint, dst bigint")
        connected_components(edges)  # (1, 1), (2, 1), (3, 1), (7, 7)
    """
    require_columns(edges, ("src", "dst"), "edges")
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be at least 1, got {max_iterations}")
    if checkpoint_interval < 1:
        raise ValueError(f"checkpoint_interval must be at least 1, got {checkpoint_interval}")
    reliable = checkpoint_dir is not None
    if reliable:
        edges.sparkSession.sparkContext.setCheckpointDir(checkpoint_dir)

    base = edges.select(F.col("src").cast("bigint"), F.col("dst").cast("bigint")).dropna()
    # Read twice (first round, nodes at the end): kept, not recomputed from the caller's plan.
    base = base.persist(StorageLevel.MEMORY_AND_DISK) if reliable else base.localCheckpoint(False)
    oriented = (
        base.select(
            F.greatest("src", "dst").alias("src"),
            F.least("src", "dst").alias("dst"),
        )
        .filter("src != dst")
        .distinct()
    )
    checksum: int | None = None
    converged = False
    round_no = 0
    while not converged and round_no < max_iterations:
        round_no += 1
        t0 = time.perf_counter()
        stars = _keep(_small_star(_large_star(oriented)), round_no, checkpoint_interval, reliable)
        new_checksum, unsettled = _progress(stars)
        if log is not None:
            log(
                f"components round {round_no}: {unsettled} unsettled nodes, "
                f"checksum {new_checksum}, {time.perf_counter() - t0:.2f} s"
            )
        oriented.unpersist()
        oriented = stars
        converged = unsettled == 0 or new_checksum == checksum
        checksum = new_checksum
    if not converged:
        oriented.unpersist()
        base.unpersist()
        raise ComponentsNotConvergedError(
            f"connected components still changing after {max_iterations} rounds"
        )

    # Nodes come from the input, as isolated ones have no edge left.
    nodes = (
        base.select(F.col("src").alias("node"))
        .union(base.select(F.col("dst").alias("node")))
        .distinct()
    )
    parents = _parents(oriented).withColumnRenamed("src", "node")
    labelled = nodes.join(parents, "node", "left").select(
        "node", F.coalesce("parent", "node").alias("component")
    )
    if not reliable:
        return labelled
    result = labelled.checkpoint(eager=True)
    oriented.unpersist()
    base.unpersist()
    return result


def touched_components(
    previous: DataFrame,
    new_edges: DataFrame,
    checkpoint_dir: str | None = None,
    max_iterations: int = 100,
) -> DataFrame:
    """The labels that new edges change or add, computed on a graph the size of the new edges.

    Input: ``previous`` (``node``, ``component``) as returned by :func:`connected_components`
    (every component named by its smallest node, which is itself a node of ``previous``);
    ``new_edges`` (``src``, ``dst``) with the rules of :func:`connected_components` (self-loops
    add nodes, NULL endpoints are ignored).

    Output: ``node``, ``component``: one row for every endpoint of ``new_edges`` and for every
    old component id such an endpoint belongs to, labelled with its component over all old and
    new edges. An old component id whose label here differs from itself was merged into that
    label (with every node of it); an endpoint absent from ``previous`` is a new node.

    The algorithm runs on the new edges plus one edge from each endpoint to its old component
    id, so the cost follows the new edges, not history (one join of the endpoints with
    ``previous``).
    """
    require_columns(previous, ("node", "component"), "previous")
    require_columns(new_edges, ("src", "dst"), "new_edges")
    fresh = new_edges.select(F.col("src").cast("bigint"), F.col("dst").cast("bigint")).dropna()
    endpoints = (
        fresh.select(F.col("src").alias("node"))
        .union(fresh.select(F.col("dst").alias("node")))
        .distinct()
    )
    to_old = endpoints.join(previous.select("node", "component"), "node").select(
        F.col("node").alias("src"), F.col("component").alias("dst")
    )
    return connected_components(
        fresh.unionByName(to_old), checkpoint_dir=checkpoint_dir, max_iterations=max_iterations
    )


def incremental_components(
    previous: DataFrame,
    new_edges: DataFrame,
    checkpoint_dir: str | None = None,
    max_iterations: int = 100,
) -> DataFrame:
    """Update a labelling for new edges, touching only the components they join.

    Input: as :func:`touched_components`. Output: ``node``, ``component`` for every node of
    ``previous`` and of ``new_edges``, equal to :func:`connected_components` over all old and
    new edges.

    Rules:

    * every node of a component so merged takes the merged component's id (the smallest of the
      merged ids and new nodes); a component no new edge touches keeps its id;
    * new nodes not linked to old ones form components of their own.
    """
    local = touched_components(previous, new_edges, checkpoint_dir, max_iterations)
    # A touched old component id is a node of `local`: its new label relabels the whole component.
    relabel = local.select(
        F.col("node").alias("component"), F.col("component").alias("new_component")
    )
    updated = (
        previous.select("node", "component")
        .join(relabel, "component", "left")
        .select("node", F.coalesce("new_component", "component").alias("component"))
    )
    added = local.join(previous.select("node"), "node", "left_anti")
    return updated.unionByName(added)


def merges(previous: DataFrame, current: DataFrame) -> DataFrame:
    """The component ids of ``previous`` that ``current`` merged into others.

    Input: two labellings (``node``, ``component``), ``current`` a later one over a superset of
    the edges (components only grow). Output: ``old_component``, ``new_component`` (bigint),
    one row per component id of ``previous`` whose node now carries a different (smaller)
    component id. An id that is still a component id, or whose node is missing from
    ``current``, gives no row.
    """
    require_columns(previous, ("node", "component"), "previous")
    require_columns(current, ("node", "component"), "current")
    old_ids = previous.select(F.col("component").alias("node")).distinct()
    return (
        old_ids.join(current.select("node", "component"), "node")
        .filter(F.col("component") != F.col("node"))
        .select(F.col("node").alias("old_component"), F.col("component").alias("new_component"))
    )

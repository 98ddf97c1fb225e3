"""Connected components (large-star/small-star) against networkx, the independent oracle.

Graphs are seeded random shapes with node ids scattered over a wide range (so no shape is
helped by ids that follow the edges); the expected labelling is networkx's components, each
node mapped to its component's smallest id. Incremental updates are checked against a full
recomputation over the same edges, and merges against hand-written pairs.
"""

from __future__ import annotations

import random

import networkx as nx
import pytest
from pyspark.testing import assertDataFrameEqual

from hodlflow.entities.components import (
    ComponentsNotConvergedError,
    connected_components,
    incremental_components,
    merges,
)
from hodlflow.tables import SchemaError

EDGES = "src bigint, dst bigint"
LABELS = "node bigint, component bigint"
MERGES = "old_component bigint, new_component bigint"


def networkx_labels(edges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """node → smallest node of its component, by networkx (self-loops add nodes)."""
    graph = nx.Graph()
    graph.add_edges_from(edges)
    labels = []
    for component in nx.connected_components(graph):
        smallest = min(component)
        labels += [(n, smallest) for n in component]
    return labels


def relabel(edges: list[tuple[int, int]], rng: random.Random) -> list[tuple[int, int]]:
    """The same graph with its nodes renamed to random distinct ids in [0, 10^9)."""
    nodes = sorted({n for e in edges for n in e})
    names = dict(zip(nodes, rng.sample(range(10**9), len(nodes)), strict=True))
    return [(names[a], names[b]) for a, b in edges]


def sparse_graph(rng: random.Random) -> list[tuple[int, int]]:
    return [(rng.randrange(400), rng.randrange(400)) for _ in range(300)]


def dense_graph(rng: random.Random) -> list[tuple[int, int]]:
    # Three dense blobs of 25 nodes (edge probability 0.3) and nothing between them.
    return [
        (b * 25 + i, b * 25 + j)
        for b in range(3)
        for i in range(25)
        for j in range(i + 1, 25)
        if rng.random() < 0.3
    ]


def chains(rng: random.Random) -> list[tuple[int, int]]:
    # Ten paths of 2 to 40 nodes.
    edges, start = [], 0
    for _ in range(10):
        length = rng.randint(2, 40)
        edges += [(start + i, start + i + 1) for i in range(length - 1)]
        start += length
    return edges


def stars(rng: random.Random) -> list[tuple[int, int]]:
    # Eight stars of 5 to 60 leaves, two of them joined leaf to leaf.
    edges, start, leaves = [], 0, []
    for _ in range(8):
        size = rng.randint(5, 60)
        edges += [(start, start + k) for k in range(1, size + 1)]
        leaves.append(start + size)
        start += size + 1
    return edges + [(leaves[0], leaves[1])]


def isolated_pairs(rng: random.Random) -> list[tuple[int, int]]:
    # 150 disjoint pairs and 20 lone nodes given as self-loops.
    return [(2 * i, 2 * i + 1) for i in range(150)] + [(1000 + i, 1000 + i) for i in range(20)]


def long_path(rng: random.Random) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(199)]


def assert_like_networkx(spark, edges: list[tuple[int, int]]) -> None:
    actual = connected_components(spark.createDataFrame(edges, EDGES))
    expected = spark.createDataFrame(networkx_labels(edges), LABELS)
    assertDataFrameEqual(actual, expected)


@pytest.mark.parametrize(
    "shape, seed",
    [
        (sparse_graph, 1),
        (dense_graph, 3),
        (chains, 4),
        (stars, 5),
        (isolated_pairs, 6),
        (long_path, 7),
    ],
    ids=["sparse", "dense", "chains", "stars", "isolated-pairs", "path-200"],
)
def test_components_are_networkx_components_labelled_by_smallest_node(spark, shape, seed):
    rng = random.Random(seed)
    assert_like_networkx(spark, relabel(shape(rng), rng))


def test_edge_direction_and_duplicates_do_not_matter(spark):
    edges = [(5, 3), (3, 5), (3, 5), (9, 5)]
    actual = connected_components(spark.createDataFrame(edges, EDGES))
    expected = spark.createDataFrame([(3, 3), (5, 3), (9, 3)], LABELS)
    assertDataFrameEqual(actual, expected)


def test_round_leaving_a_node_with_two_smaller_neighbours_is_not_the_last(spark):
    # After one round the edges are (3,1) (3,2) (4,1) (5,2): no node is both a smaller and a
    # larger end, yet 3 still ties 1 and 2 together; stopping there would label 2 and 5 as 2.
    edges = [(1, 4), (3, 5), (4, 3), (5, 2), (5, 3)]
    actual = connected_components(spark.createDataFrame(edges, EDGES))
    expected = spark.createDataFrame([(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)], LABELS)
    assertDataFrameEqual(actual, expected)


def test_self_loop_adds_an_isolated_node(spark):
    edges = [(1, 2), (7, 7)]
    actual = connected_components(spark.createDataFrame(edges, EDGES))
    expected = spark.createDataFrame([(1, 1), (2, 1), (7, 7)], LABELS)
    assertDataFrameEqual(actual, expected)


def test_edge_with_null_endpoint_is_ignored(spark):
    edges = [(1, 2), (4, None), (None, 5)]
    actual = connected_components(spark.createDataFrame(edges, EDGES))
    expected = spark.createDataFrame([(1, 1), (2, 1)], LABELS)
    assertDataFrameEqual(actual, expected)


def test_no_edges_give_no_nodes(spark):
    actual = connected_components(spark.createDataFrame([], EDGES))
    assertDataFrameEqual(actual, spark.createDataFrame([], LABELS))


def test_reliable_checkpoints_give_the_same_components(spark, tmp_path):
    rng = random.Random(8)
    edges = relabel(chains(rng), rng)
    actual = connected_components(
        spark.createDataFrame(edges, EDGES), checkpoint_dir=str(tmp_path), checkpoint_interval=1
    )
    assertDataFrameEqual(actual, spark.createDataFrame(networkx_labels(edges), LABELS))


def test_graph_not_settled_within_max_iterations_raises(spark):
    edges = relabel(long_path(random.Random(9)), random.Random(9))
    with pytest.raises(ComponentsNotConvergedError, match="after 1 rounds"):
        connected_components(spark.createDataFrame(edges, EDGES), max_iterations=1)


def test_edges_without_dst_column_are_rejected_naming_the_columns(spark):
    frame = spark.createDataFrame([(1, 2)], "src bigint, target bigint")
    with pytest.raises(SchemaError, match=r"edges: missing column\(s\) \['dst'\]; .*'target'"):
        connected_components(frame)


# -- incremental --------------------------------------------------------------------------


@pytest.mark.parametrize("seed, new_share", [(11, 0.1), (12, 0.5), (13, 0.9)])
def test_incremental_update_equals_full_recomputation(spark, seed, new_share):
    rng = random.Random(seed)
    edges = relabel(sparse_graph(rng) + [(1000 + a, 1000 + b) for a, b in chains(rng)], rng)
    rng.shuffle(edges)
    cut = int(len(edges) * (1 - new_share))
    old, new = edges[:cut], edges[cut:]
    # The labelling before the update comes from the oracle too.
    previous = spark.createDataFrame(networkx_labels(old), LABELS)
    actual = incremental_components(previous, spark.createDataFrame(new, EDGES))
    assertDataFrameEqual(actual, spark.createDataFrame(networkx_labels(edges), LABELS))


def test_incremental_update_adds_unlinked_new_nodes_as_own_components(spark):
    previous = spark.createDataFrame([(1, 1), (2, 1)], LABELS)
    new_edges = spark.createDataFrame([(8, 9), (20, 20)], EDGES)
    actual = incremental_components(previous, new_edges)
    expected = spark.createDataFrame([(1, 1), (2, 1), (8, 8), (9, 8), (20, 20)], LABELS)
    assertDataFrameEqual(actual, expected)


def test_incremental_update_relabels_every_node_of_a_merged_component(spark):
    # {3, 4, 6} joins {1, 2} through the edge 2–6: 3, 4 and 6 all take id 1.
    previous = spark.createDataFrame([(1, 1), (2, 1), (3, 3), (4, 3), (6, 3), (7, 7)], LABELS)
    new_edges = spark.createDataFrame([(2, 6)], EDGES)
    actual = incremental_components(previous, new_edges)
    expected = spark.createDataFrame([(1, 1), (2, 1), (3, 1), (4, 1), (6, 1), (7, 7)], LABELS)
    assertDataFrameEqual(actual, expected)


# -- merges -------------------------------------------------------------------------------


def test_merges_list_component_ids_that_disappeared_into_smaller_ones(spark):
    previous = spark.createDataFrame([(1, 1), (2, 1), (3, 3), (5, 5), (8, 8), (9, 8)], LABELS)
    current = spark.createDataFrame(
        [(1, 1), (2, 1), (3, 1), (5, 1), (8, 8), (9, 8), (12, 8)], LABELS
    )
    actual = merges(previous, current)
    expected = spark.createDataFrame([(3, 1), (5, 1)], MERGES)
    assertDataFrameEqual(actual, expected)


def test_no_merges_when_components_only_gained_new_nodes(spark):
    previous = spark.createDataFrame([(1, 1), (2, 1)], LABELS)
    current = spark.createDataFrame([(1, 1), (2, 1), (4, 1), (6, 6)], LABELS)
    assertDataFrameEqual(merges(previous, current), spark.createDataFrame([], MERGES))

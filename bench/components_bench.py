"""Connected components on Spark (large-star/small-star) against networkx, on random graphs.

For each size n: a random graph of n nodes and ``degree``·n/2 edges, endpoints drawn by a
seeded hash of the edge number (so every run and every partitioning gives the same graph, and
ids are scattered like address ids). ``connected_components`` runs on Spark ``local[cores]``
and its result is written to the ``noop`` sink (everything computed, nothing stored); networkx
runs on the same edges collected to the driver (up to ``--networkx-max`` nodes), and the two
labellings are compared. Prints one table row per size; ``--log`` also prints every round.

The session comes from the project's factory with the ``local`` settings, a fresh temporary
warehouse and ``spark.master = local[cores]``; the JVM is warmed up on a small graph first.

Usage: ``python bench/components_bench.py [SIZES ...] [--cores 2] [--degree 2.0]
[--networkx-max 1000000] [--partitions N] [--checkpoint-dir DIR] [--log]``, sizes as
integers or powers like ``1e5``; default ``1e4 1e5``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import networkx as nx
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hodlflow.config import load_settings
from hodlflow.entities.components import connected_components
from hodlflow.spark import build_session


def random_edges(spark: SparkSession, nodes: int, edges: int, partitions: int) -> DataFrame:
    """``edges`` rows (src, dst) with endpoints in [0, nodes): xxhash64 of the edge number."""
    ids = spark.range(0, edges, numPartitions=partitions)
    return ids.select(
        F.pmod(F.xxhash64("id", F.lit(1)), F.lit(nodes)).alias("src"),
        F.pmod(F.xxhash64("id", F.lit(2)), F.lit(nodes)).alias("dst"),
    )


def networkx_labels(pairs: list[tuple[int, int]]) -> tuple[dict[int, int], float]:
    """node → smallest node of its component, and the seconds networkx took."""
    t0 = time.perf_counter()
    graph = nx.Graph()
    graph.add_edges_from(pairs)
    labels = {}
    for component in nx.connected_components(graph):
        smallest = min(component)
        labels.update(dict.fromkeys(component, smallest))
    return labels, time.perf_counter() - t0


def bench_size(spark, n: int, args) -> dict:
    m = int(n * args.degree / 2)
    edges = random_edges(spark, n, m, args.partitions).localCheckpoint(eager=True)
    rounds: list[str] = []

    def log(line: str) -> None:
        rounds.append(line)
        if args.log:
            print(f"    {line}", flush=True)

    t0 = time.perf_counter()
    result = connected_components(edges, checkpoint_dir=args.checkpoint_dir, log=log)
    result.write.format("noop").mode("overwrite").save()
    spark_s = time.perf_counter() - t0
    row = result.agg(
        F.count(F.lit(1)).alias("nodes"),
        F.sum((F.col("node") == F.col("component")).cast("long")).alias("components"),
    ).first()
    out = {
        "n": n,
        "m": m,
        "nodes": row["nodes"],
        "components": row["components"],
        "rounds": len(rounds),
        "spark_s": spark_s,
        "networkx_s": None,
        "agree": None,
    }
    if n <= args.networkx_max:
        pairs = [(r.src, r.dst) for r in edges.collect()]
        expected, out["networkx_s"] = networkx_labels(pairs)
        actual = {r.node: r.component for r in result.collect()}
        out["agree"] = actual == expected
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", default=["1e4", "1e5"], help="node counts")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--degree", type=float, default=2.0, help="average degree")
    parser.add_argument("--networkx-max", type=float, default=1e6)
    parser.add_argument("--partitions", type=int, default=None, help="default: 4 × cores")
    parser.add_argument("--checkpoint-dir", default=None, help="reliable checkpoints here")
    parser.add_argument("--log", action="store_true", help="print every round")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes]
    args.partitions = args.partitions or 4 * args.cores

    with tempfile.TemporaryDirectory(prefix="hodlflow-bench-components-") as warehouse:
        settings = load_settings(
            "local",
            {
                "warehouse.path": warehouse,
                "spark.master": f"local[{args.cores}]",
                "spark.conf.spark.sql.shuffle.partitions": str(args.partitions),
            },
        )
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        print(
            f"connected components: Spark local[{args.cores}] ({args.partitions} shuffle "
            f"partitions) vs networkx {nx.__version__}; {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, load {os.getloadavg()[0]:.2f} at start"
        )
        connected_components(random_edges(spark, 1000, 1000, 2)).count()  # warm-up
        header = (
            f"{'nodes':>10} {'edges':>10} {'components':>10} {'rounds':>6} "
            f"{'spark s':>8} {'networkx s':>10} {'ratio':>6}  agree"
        )
        print(header)
        print("-" * len(header))
        for n in sizes:
            r = bench_size(spark, n, args)
            nx_s = f"{r['networkx_s']:.2f}" if r["networkx_s"] is not None else "-"
            ratio = f"{r['spark_s'] / r['networkx_s']:.1f}" if r["networkx_s"] else "-"
            agree = {True: "yes", False: "NO", None: "-"}[r["agree"]]
            print(
                f"{r['nodes']:>10,} {r['m']:>10,} {r['components']:>10,} {r['rounds']:>6} "
                f"{r['spark_s']:>8.2f} {nx_s:>10} {ratio:>6}  {agree}",
                flush=True,
            )
        spark.stop()


if __name__ == "__main__":
    main()

"""Connected components on Spark (large-star/small-star) against networkx: time and peak memory.

For each size n (addresses): a co-spend-like graph (:func:`spark_edges`, the same graph in
numpy for networkx: :func:`numpy_edges`), then two child processes, one after the other, so
that every peak is the child's own and one run does not disturb the other:

* **spark**: a fresh Spark ``local[cores]`` JVM from the project's session factory (the
  ``local`` settings, a temporary warehouse). It generates the edges in Spark from the seed
  (``spark.range`` + ``xxhash64``, nothing built in the driver), checkpoints them, warms up on
  a tiny graph, then times ``connected_components`` with its result written to the ``noop``
  sink (everything computed, nothing stored). A thread samples, every 0.2 s, the RSS of the
  JVM (driver = executor in local mode; pid from ``ProcessHandle``), of the Python driver and
  the JVM heap in use (``MemoryMXBean``); the peaks reported are the larger of the samples and
  the processes' ``VmHWM`` (lifetime peak RSS of these fresh processes).
* **networkx**: a fresh Python process rebuilds the same edges with numpy (not timed), then
  times ``nx.Graph`` + ``add_edges_from`` + ``nx.connected_components`` (+ the smallest node of
  each component, Spark's label). Peak RSS: the child's ``ru_maxrss``. Sizes above
  ``--networkx-max`` are skipped, with the memory and time the largest measured run
  extrapolates to.

Both sides report nodes, components, the largest component and Σ label over all nodes; the
row says ``agree`` when all four match (the checksum ties every node's label, not just counts).

The graph (addresses in first-seen order, like hodlflow's address ids): ``T ≈ n / 1.64``
transactions; transaction t spends k_t fresh addresses, ids ``t·4096 + i`` (i < k_t), with
P(k ≥ x) = x⁻² (75 % one input, 1 % ≥ 10, 0.01 % ≥ 100; at most 4096). With probability
``1 − new_cluster`` it also spends one address of a uniformly random earlier transaction
(clusters grow in proportion to their size: Simon's model, so component sizes follow a power
law), and with probability ``second_reuse`` a second address of that same transaction: a cycle,
as the two were linked already (or a repeated edge, ~0.2 % of the rows, when one of them is that
transaction's smallest input). A second address of *any* earlier transaction would merge
clusters instead: at 2 % of transactions one giant component already holds a quarter of the
nodes. A transaction's edges are the co-spend star of ``hodlflow.entities.cospend_edges``:
every input but the smallest gets ``(input, smallest)``; a lone fresh address gets the
self-loop ``(a, a)`` (how ``connected_components`` takes an isolated node). Hashes: Spark's ``xxhash64``, mirrored bit
for bit in numpy; every draw is integer or exact float arithmetic, so both sides get the same
edges.

Usage: ``python bench/components_bench.py [SIZES ...] [--cores 2] [--networkx-max 1e6]
[--partitions N] [--driver-memory 4g] [--checkpoint-dir DIR] [--seed 7] [--json FILE]
[--log]``, sizes as integers or powers like ``1e5``; default ``1e5 1e6 1e7``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

STRIDE = 4096  # id stride per transaction = the most inputs one transaction has
MEAN_INPUTS = sum(x**-2.0 for x in range(1, STRIDE + 1))  # E[k] for P(k >= x) = x^-2, x <= 4096
FRACTION_BITS = 12  # a hash's bits 0-11 decide, 12-42 pick a transaction, 43-63 a slot


def transactions_for(n: int) -> int:
    return max(1, round(n / MEAN_INPUTS))


# --------------------------------------------------------------------------- the graph, Spark


def spark_edges(spark, n: int, seed: int, new_cluster: float, second_reuse: float, partitions: int):
    """The co-spend-like edges (src, dst bigint) for about ``n`` addresses, built in Spark."""
    from pyspark.sql import functions as F

    seed_col = F.lit(seed).cast("long")

    def h(col, salt):  # Spark's xxhash64 over two longs (seed 42)
        return F.xxhash64(col, salt)

    def inputs(t):  # k_t
        u = (F.shiftrightunsigned(h(t, seed_col), 11) + 1) * F.lit(2.0**-53)
        return F.least(F.floor(F.lit(1.0) / F.sqrt(u)), F.lit(STRIDE).cast("long"))

    def slot(k, r):  # uniform in [0, k) from bits 43-63 of r
        return F.shiftright(k * F.shiftrightunsigned(r, 43), 21)

    t = F.col("id")
    frac = 1 << FRACTION_BITS
    h1 = h(t, seed_col)
    h2 = h(t, h1)
    h3 = h(t, h2)
    # An earlier transaction, uniform in [0, t), from bits 12-42 of h2.
    tp = F.shiftright(t * F.shiftrightunsigned(h2, 12).bitwiseAND(0x7FFFFFFF), 31)
    txs = (
        spark.range(0, transactions_for(n), numPartitions=partitions)
        .select(
            t.alias("t"),
            inputs(t).alias("k"),
            ((t > 0) & (h2.bitwiseAND(frac - 1) >= int(new_cluster * frac))).alias("reuse"),
            (h3.bitwiseAND(frac - 1) < int(second_reuse * frac)).alias("second"),
            tp.alias("tp"),
            h2.alias("h2"),
            h3.alias("h3"),
        )
        .withColumn("k_tp", inputs(F.col("tp")))
        .select(
            "t",
            "k",
            "reuse",
            "second",
            (F.col("tp") * STRIDE + slot(F.col("k_tp"), F.col("h2"))).alias("old1"),
            (F.col("tp") * STRIDE + slot(F.col("k_tp"), F.col("h3"))).alias("old2"),
        )
    )
    none = F.array().cast("array<bigint>")
    reuse, second = F.col("reuse"), F.col("reuse") & F.col("second")
    first = F.col("t") * STRIDE
    old = F.concat(
        F.when(reuse, F.array("old1")).otherwise(none),
        F.when(second, F.array("old2")).otherwise(none),
    )
    centre = F.when(second, F.least("old1", "old2")).when(reuse, F.col("old1")).otherwise(first)
    star = txs.select(
        F.explode(F.concat(F.sequence(first, first + F.col("k") - 1), old)).alias("src"),
        centre.alias("dst"),
        ((F.col("k") == 1) & ~reuse).alias("alone"),
    )
    return star.filter((F.col("src") != F.col("dst")) | F.col("alone")).select("src", "dst")


# --------------------------------------------------------------------------- the graph, numpy

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)


def _rotl(x, r: int):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _hash_long(value, seed):
    """Spark's ``XXH64.hashLong(value, seed)`` on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = seed + _P5 + np.uint64(8)
        x = x ^ (_rotl(value * _P2, 31) * _P1)
        x = _rotl(x, 27) * _P1 + _P4
        x = x ^ (x >> np.uint64(33))
        x = x * _P2
        x = x ^ (x >> np.uint64(29))
        x = x * _P3
        return x ^ (x >> np.uint64(32))


def _xxhash64(a, b):
    """Spark's ``xxhash64(a, b)`` for two bigint columns, as uint64."""
    return _hash_long(b, _hash_long(a, np.uint64(42)))


def numpy_edges(n: int, seed: int, new_cluster: float, second_reuse: float):
    """The same edges as :func:`spark_edges`, as two int64 arrays (order differs)."""
    u64 = np.uint64
    t = np.arange(transactions_for(n), dtype=np.int64)
    tu = t.astype(u64)
    seed_u = np.full_like(tu, u64(seed))

    def inputs(ts):
        hs = _xxhash64(ts.astype(u64), np.full(len(ts), u64(seed)))
        u = ((hs >> u64(11)).astype(np.int64) + 1).astype(np.float64) * 2.0**-53
        return np.minimum(np.floor(1.0 / np.sqrt(u)), STRIDE).astype(np.int64)

    def slot(k, r):
        return (k * (r >> u64(43)).astype(np.int64)) >> 21

    frac = 1 << FRACTION_BITS
    h1 = _xxhash64(tu, seed_u)
    h2 = _xxhash64(tu, h1)
    h3 = _xxhash64(tu, h2)
    k = inputs(t)
    reuse = (t > 0) & ((h2 & u64(frac - 1)) >= u64(int(new_cluster * frac)))
    second = reuse & ((h3 & u64(frac - 1)) < u64(int(second_reuse * frac)))
    tp = (t * ((h2 >> u64(12)) & u64(0x7FFFFFFF)).astype(np.int64)) >> 31
    k_tp = inputs(tp)
    old1 = tp * STRIDE + slot(k_tp, h2)
    old2 = tp * STRIDE + slot(k_tp, h3)
    first = t * STRIDE
    centre = np.where(second, np.minimum(old1, old2), np.where(reuse, old1, first))
    offsets = np.repeat(np.cumsum(k) - k, k)
    fresh = np.repeat(first, k) + (np.arange(int(k.sum()), dtype=np.int64) - offsets)
    src = np.concatenate([fresh, old1[reuse], old2[second]])
    dst = np.concatenate([np.repeat(centre, k), centre[reuse], centre[second]])
    alone = np.concatenate(
        [np.repeat((k == 1) & ~reuse, k), np.zeros(int(reuse.sum() + second.sum()), bool)]
    )
    keep = (src != dst) | alone
    return src[keep], dst[keep]


# --------------------------------------------------------------------------- memory


def _status_kb(pid: int | str, key: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process (all its threads), from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Sampler(threading.Thread):
    """Samples JVM RSS, Python RSS and JVM heap used every ``interval`` seconds; keeps maxima."""

    def __init__(self, jvm_pid: int, memory_bean, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.jvm_pid, self.bean, self.interval = jvm_pid, memory_bean, interval
        self.jvm_rss = self.py_rss = self.heap = self.samples = 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        self.jvm_rss = max(self.jvm_rss, _status_kb(self.jvm_pid, "VmRSS") * 1024)
        self.py_rss = max(self.py_rss, _status_kb("self", "VmRSS") * 1024)
        try:
            self.heap = max(self.heap, int(self.bean.getHeapMemoryUsage().getUsed()))
        except Exception:  # the gateway going away at the end
            pass
        self.samples += 1

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()


# --------------------------------------------------------------------------- children


def spark_child(n: int, args) -> dict:
    from pyspark.sql import functions as F

    from hodlflow.config import load_settings
    from hodlflow.entities.components import connected_components
    from hodlflow.spark import build_session

    overrides = {
        "spark.master": f"local[{args.cores}]",
        "spark.conf.spark.sql.shuffle.partitions": str(args.partitions),
    }
    if args.driver_memory:
        overrides["spark.conf.spark.driver.memory"] = args.driver_memory
    with tempfile.TemporaryDirectory(prefix="hodlflow-bench-components-") as warehouse:
        overrides["warehouse.path"] = warehouse
        settings = load_settings("local", overrides)
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        jvm = spark.sparkContext._jvm
        jvm_pid = int(jvm.java.lang.ProcessHandle.current().pid())
        bean = jvm.java.lang.management.ManagementFactory.getMemoryMXBean()
        gen = (args.seed, args.new_cluster, args.second_reuse, args.partitions)

        # Warm-up (JIT, class loading) on a small graph of the same shape.
        connected_components(spark_edges(spark, 10_000, *gen)).write.format("noop").mode(
            "overwrite"
        ).save()

        t0 = time.perf_counter()
        edges = spark_edges(spark, n, *gen).localCheckpoint(eager=True)
        gen_s = time.perf_counter() - t0
        counts = edges.agg(
            F.count(F.lit(1)).alias("rows"), F.count_if(F.col("src") != F.col("dst")).alias("m")
        ).first()

        rounds: list[str] = []

        def log(line: str) -> None:
            rounds.append(line)
            if args.log:
                print(f"    {line}", file=sys.stderr, flush=True)

        sampler = Sampler(jvm_pid, bean)
        sampler.sample()
        sampler.start()
        load = os.getloadavg()[0]
        cpu0 = _cpu_seconds(jvm_pid) + _cpu_seconds("self")
        t0 = time.perf_counter()
        result = connected_components(edges, checkpoint_dir=args.checkpoint_dir, log=log)
        result.write.format("noop").mode("overwrite").save()
        spark_s = time.perf_counter() - t0
        cpu_s = _cpu_seconds(jvm_pid) + _cpu_seconds("self") - cpu0
        sampler.stop()
        jvm_hwm = _status_kb(jvm_pid, "VmHWM") * 1024
        py_hwm = _status_kb("self", "VmHWM") * 1024

        sizes = result.groupBy("component").agg(
            F.count(F.lit(1)).alias("size"),
        )
        row = sizes.agg(
            F.sum("size").alias("nodes"),
            F.count(F.lit(1)).alias("components"),
            F.max("size").alias("largest"),
            F.sum(F.col("component").cast("decimal(38,0)") * F.col("size")).alias("checksum"),
            F.count_if(F.col("size") == 1).alias("singletons"),
            F.count_if(F.col("size").between(2, 9)).alias("size_2_9"),
            F.count_if(F.col("size").between(10, 99)).alias("size_10_99"),
            F.count_if(F.col("size").between(100, 999)).alias("size_100_999"),
            F.count_if(F.col("size") >= 1000).alias("size_1000_up"),
        ).first()
        out = {
            "n": n,
            "transactions": transactions_for(n),
            "edge_rows": counts["rows"],
            "edges": counts["m"],
            "nodes": int(row["nodes"]),
            "components": int(row["components"]),
            "largest": int(row["largest"]),
            "checksum": str(int(row["checksum"])),
            "histogram": {
                k: int(row[k])
                for k in ("singletons", "size_2_9", "size_10_99", "size_100_999", "size_1000_up")
            },
            "rounds": len(rounds),
            "round_log": rounds,
            "generate_s": gen_s,
            "spark_s": spark_s,
            "spark_cpu_s": cpu_s,
            "load_at_start": load,
            "load_at_end": os.getloadavg()[0],
            "jvm_peak_rss": max(jvm_hwm, sampler.jvm_rss),
            "jvm_sampled_rss": sampler.jvm_rss,
            "jvm_heap_peak": sampler.heap,
            "jvm_heap_max": int(bean.getHeapMemoryUsage().getMax()),
            "python_peak_rss": max(py_hwm, sampler.py_rss),
            "samples": sampler.samples,
            "driver_memory": spark.sparkContext.getConf().get("spark.driver.memory", "1g"),
            "checkpoint_dir": args.checkpoint_dir,
        }
        spark.stop()
    return out


def networkx_child(n: int, args) -> dict:
    import networkx as nx

    src, dst = numpy_edges(n, args.seed, args.new_cluster, args.second_reuse)
    baseline = _status_kb("self", "VmRSS") * 1024
    load = os.getloadavg()[0]
    cpu0 = _cpu_seconds("self")
    t0 = time.perf_counter()
    graph = nx.Graph()
    step = 100_000  # Python ints made chunk by chunk: the graph, not the edge list, is measured
    for a in range(0, len(src), step):
        graph.add_edges_from(
            zip(src[a : a + step].tolist(), dst[a : a + step].tolist(), strict=True)
        )
    build_s = time.perf_counter() - t0
    components = largest = checksum = nodes = 0
    for component in nx.connected_components(graph):
        smallest = min(component)
        components += 1
        nodes += len(component)
        largest = max(largest, len(component))
        checksum += smallest * len(component)
    total_s = time.perf_counter() - t0
    cpu_s = _cpu_seconds("self") - cpu0
    return {
        "n": n,
        "nodes": nodes,
        "edges": graph.number_of_edges() - nx.number_of_selfloops(graph),
        "components": components,
        "largest": largest,
        "checksum": str(checksum),
        "build_s": build_s,
        "networkx_s": total_s,
        "networkx_cpu_s": cpu_s,
        "load_at_start": load,
        "baseline_rss": baseline,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "networkx": nx.__version__,
    }


def run_child(kind: str, n: int, args) -> dict:
    """Run this script as ``--child kind`` for size n; its last stdout line is the JSON result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, str(n)]
    for flag in ("cores", "partitions", "seed", "new_cluster", "second_reuse"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.driver_memory:
        cmd += ["--driver-memory", args.driver_memory]
    if args.checkpoint_dir:
        cmd += ["--checkpoint-dir", os.path.join(args.checkpoint_dir, f"{kind}-{n}")]
    if args.log:
        cmd.append("--log")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"{kind} child exited with {proc.returncode}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- report


def _mb(b: float | None) -> str:
    return "-" if not b else f"{b / 1e6:,.0f}"


def _gb(b: float) -> str:
    return f"{b / 1e9:.1f} GB"


def _mem_available() -> int:
    return _status_meminfo("MemAvailable")


def _status_meminfo(key: str) -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def table(rows: list[dict]) -> list[str]:
    head = (
        f"{'size':>10} {'nodes':>10} {'edges':>10} {'components':>10} {'rounds':>6} "
        f"{'spark s':>8} {'cpu s':>6} {'JVM MB':>7} {'heap MB':>7} {'py MB':>6} "
        f"{'nx s':>7} {'nx MB':>7} {'s ratio':>7} {'MB ratio':>8}  agree"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        s, x = r["spark"], r.get("networkx")
        if "error" in s:
            lines.append(f"{r['n']:>10,} spark failed: {s['error']}")
            continue
        nx_ok = x is not None and "error" not in x
        spark_rss = s["jvm_peak_rss"] + s["python_peak_rss"]
        lines.append(
            f"{r['n']:>10,} {s['nodes']:>10,} {s['edges']:>10,} {s['components']:>10,} "
            f"{s['rounds']:>6} {s['spark_s']:>8.1f} {s['spark_cpu_s']:>6.0f} "
            f"{_mb(s['jvm_peak_rss']):>7} "
            f"{_mb(s['jvm_heap_peak']):>7} {_mb(s['python_peak_rss']):>6} "
            + (
                f"{x['networkx_s']:>7.1f} {_mb(x['peak_rss']):>7} "
                f"{s['spark_s'] / x['networkx_s']:>7.1f} {spark_rss / x['peak_rss']:>8.1f}  "
                + ("yes" if r["agree"] else "NO")
                if nx_ok
                else f"{'-':>7} {'-':>7} {'-':>7} {'-':>8}  -"
            )
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", default=["1e5", "1e6", "1e7"], help="addresses")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--networkx-max", type=float, default=1e6)
    parser.add_argument("--partitions", type=int, default=None, help="default: 4 × cores")
    parser.add_argument("--driver-memory", default=None, help="default: conf/ (4g)")
    parser.add_argument("--checkpoint-dir", default=None, help="reliable checkpoints here")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--new-cluster",
        type=float,
        default=0.3,
        help="probability that a transaction spends only fresh addresses",
    )
    parser.add_argument(
        "--second-reuse",
        type=float,
        default=0.1,
        help="probability that a reusing transaction spends a second address "
        "of the same old transaction (a cycle)",
    )
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--log", action="store_true", help="print every round (stderr)")
    parser.add_argument("--child", choices=("spark", "networkx"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes]
    args.partitions = args.partitions or 4 * args.cores

    if args.child:
        child = spark_child if args.child == "spark" else networkx_child
        print(json.dumps(child(sizes[0], args)), flush=True)
        return 0

    print(
        f"== connected components: Spark local[{args.cores}] ({args.partitions} shuffle "
        f"partitions, driver memory {args.driver_memory or 'from conf/'}) vs networkx; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load "
        f"{os.getloadavg()[0]:.2f} at start, {_gb(_mem_available())} available"
    )
    print(
        f"  co-spend-like graphs, seed {args.seed}: ~n/{MEAN_INPUTS:.2f} transactions, inputs "
        f"P(k>=x)=x^-2, {args.new_cluster:.0%} spend only fresh addresses, the rest one old "
        f"address ({args.second_reuse:.0%} of those a second one of the same transaction: a "
        "cycle); star edges to the smallest input"
    )
    rows: list[dict] = []
    failed = False
    for n in sizes:
        s = run_child("spark", n, args)
        row = {"n": n, "spark": s, "networkx": None, "agree": None}
        if "error" in s:
            failed = True
            print(f"  {n:,}: {s['error']}", flush=True)
            rows.append(row)
            continue
        hist = s["histogram"]
        print(
            f"  {n:,} addresses: {s['transactions']:,} txs, {s['nodes']:,} nodes, "
            f"{s['edges']:,} edges (+{s['edge_rows'] - s['edges']:,} self-loops), "
            f"{s['components']:,} components: {hist['singletons']:,} of 1, "
            f"{hist['size_2_9']:,} of 2-9, {hist['size_10_99']:,} of 10-99, "
            f"{hist['size_100_999']:,} of 100-999, {hist['size_1000_up']:,} of 1000+, "
            f"largest {s['largest']:,}",
            flush=True,
        )
        print(
            f"    spark: {s['spark_s']:.1f}s ({s['spark_cpu_s']:.0f} CPU-s, load "
            f"{s['load_at_start']:.1f} → {s['load_at_end']:.1f}), {s['rounds']} rounds (edges "
            f"generated in {s['generate_s']:.1f}s, not counted); peak RSS JVM "
            f"{_mb(s['jvm_peak_rss'])} MB "
            f"(sampled {_mb(s['jvm_sampled_rss'])} MB in {s['samples']} samples), heap used "
            f"{_mb(s['jvm_heap_peak'])} of {_mb(s['jvm_heap_max'])} MB, Python "
            f"{_mb(s['python_peak_rss'])} MB",
            flush=True,
        )
        if n <= args.networkx_max:
            x = run_child("networkx", n, args)
            row["networkx"] = x
            if "error" in x:
                failed = True
                print(f"    networkx: {x['error']}", flush=True)
            else:
                keys = ("nodes", "components", "largest", "checksum")
                row["agree"] = all(s[k] == x[k] for k in keys)
                failed = failed or not row["agree"]
                print(
                    f"    networkx {x['networkx']}: {x['networkx_s']:.1f}s ({x['build_s']:.1f}s "
                    f"of it building the graph; {x['networkx_cpu_s']:.1f} CPU-s, load "
                    f"{x['load_at_start']:.1f}), peak RSS {_mb(x['peak_rss'])} MB "
                    f"({_mb(x['baseline_rss'])} MB before the graph); components "
                    f"{x['components']:,} vs Spark {s['components']:,}, "
                    + ("labels agree (nodes, components, largest, Σ label)" if row["agree"]
                       else "DISAGREE: " + ", ".join(f"{k} {s[k]} vs {x[k]}" for k in keys)),
                    flush=True,
                )  # fmt: skip
        else:
            done = [r["networkx"] for r in rows if r["networkx"] and "error" not in r["networkx"]]
            if done:
                ref = max(done, key=lambda r: r["n"])
                scale = n / ref["n"]
                est = ref["baseline_rss"] + (ref["peak_rss"] - ref["baseline_rss"]) * scale
                why = (
                    f"the {ref['n']:,} run ({_mb(ref['peak_rss'])} MB, {ref['networkx_s']:.0f}s) "
                    f"extrapolates to ~{_gb(est)} RSS and ~{ref['networkx_s'] * scale:.0f}s "
                    f"single-threaded; {_gb(_mem_available())} available now, shared with the "
                    "Spark runs and other work"
                )
                row["networkx_estimate"] = {"peak_rss": est, "seconds": ref["networkx_s"] * scale}
            else:
                why = "no smaller networkx run to extrapolate from"
            print(
                f"    networkx: skipped above --networkx-max {args.networkx_max:,.0f}: {why}",
                flush=True,
            )
        rows.append(row)
    print()
    print(
        "  time = connected components from checkpointed / in-memory edges to every node's "
        "label; cpu s = Spark's CPU seconds (JVM + Python) in that time; MB = peak RSS, 10^6 "
        "bytes; heap = JVM heap used (sampled); ratios = Spark / networkx (RSS: JVM + Python)"
    )
    for line in table(rows):
        print("  " + line)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

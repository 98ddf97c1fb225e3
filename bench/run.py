"""``make bench``: generate the chain, time the parsers on one core, time the Spark ingest.

Prints the report as it goes and writes it to ``bench-out/report.txt``:

1. the generated chain (``gen_chain.py``): blocks, transactions, MB per shape;
2. parser throughput on one core against bitcoinlib, blockchain-parser and bitcoin-explorer,
   with the ratios, and where our parser spends its time (``parser_bench.py``);
3. end-to-end ``run_ingest`` on Spark ``local[2]`` (``ingest_bench.py``);
4. RPC ingest from a local btcd node, Spark ``local[1]`` against ``local[2]``: blocks/s and
   transactions/s (``rpc_bench.py``);
5. connected components on co-spend-like graphs of 10^5, 10^6 and 10^7 addresses, Spark
   ``local[2]`` against networkx: time and peak memory (``components_bench.py``);
6. a summary: our figures per shape and the slowest ratio against each peer.

The parser and ingest benchmarks run as child processes: the first pins itself to one CPU,
the second starts its own JVM, and neither disturbs the other (the components benchmark starts
a JVM per size).

Usage: ``python bench/run.py [--out bench-out] [--scale 1.0] [--runs 5] [--skip-ingest]
[--skip-rpc] [--components 1e5,1e6,1e7]``; ``--components`` defaults to ``$BENCH_COMPONENTS`` or
``1e5,1e6,1e7``, and ``none`` skips it (``make bench BENCH_COMPONENTS=1e5,1e6``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata

from gen_chain import Sizes, describe, generate

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = ("bitcoinlib", "blockchain-parser", "bitcoin-explorer")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def environment() -> list[str]:
    versions = ", ".join(
        f"{d} {_version(d)}" for d in ("hodlflow", *PEERS, "pyspark", "delta-spark")
    )
    return [
        f"hodlflow benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"  {_cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at start",
        f"  {versions}",
    ]


class Report:
    """Lines printed as they come and kept for report.txt."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str = "") -> None:
        for line in text.split("\n"):
            print(line, flush=True)
            self.lines.append(line)

    def run(self, args: list[str], env: dict[str, str]) -> int:
        """Run a bench script; its stdout joins the report, its stderr only the console."""
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            self.add(line.rstrip("\n"))
        return proc.wait()


def summary(parser_rows: list[dict], ingest: dict | None) -> list[str]:
    lines = ["== summary"]
    by_key = {(r["parser"], r["shape"]): r for r in parser_rows}
    shapes = list(dict.fromkeys(r["shape"] for r in parser_rows))
    slower = []
    for shape in shapes:
        ours = by_key.get(("hodlflow (files)", shape)) or {}
        mem = by_key.get(("hodlflow (memory)", shape)) or {}
        if ours.get("tx_per_s"):
            lines.append(
                f"  hodlflow parser, {shape}: {ours['tx_per_s']:,.0f} tx/s, "
                f"{ours['inputs_per_s']:,.0f} inputs/s, {ours['mb_per_s']:.1f} MB/s reading the "
                f"files ({mem.get('tx_per_s') or 0:,.0f} tx/s from memory), one core"
            )
        for r in parser_rows:
            if r["shape"] != shape or r["parser"].startswith("hodlflow"):
                continue
            ratio = r["ours_over_peer"]
            if ratio is None:
                lines.append(f"    vs {r['parser']}: not measured ({r['note'] or 'no figure'})")
                continue
            lines.append(f"    vs {r['parser']}: {ratio:.2f}x")
            if ratio < 1:
                slower.append(f"{r['parser']} on {shape} ({ratio:.2f}x)")
    if slower:
        lines.append(
            "  goal (faster per core than every peer on both shapes): NOT met; slower than"
        )
        lines.append("    " + "; ".join(slower))
    else:
        lines.append("  goal (faster per core than every peer on both shapes): met")
    if ingest:
        lines.append(
            f"  end-to-end ingest: {ingest['tx_per_s']:,.0f} tx/s on {ingest['cores']} cores "
            f"({ingest['transactions']} txs in {ingest['seconds']:.1f}s)"
        )
    return lines


def simulator_figures(out: str) -> list[str]:
    """The ground-truth simulator's throughput on the demo scenario (one core)."""
    import shutil

    from hodlflow.sim.simulator import run_simulation

    target = os.path.join(out, "sim")
    shutil.rmtree(target, ignore_errors=True)
    m = run_simulation("capitulation", target)
    return [
        "== simulator (conf/scenarios/capitulation.yaml, scale 1, one core)",
        f"  {m['transactions']:,} transactions, {m['blocks']:,} blocks, {m['addresses']:,} "
        f"addresses in {m['elapsed_seconds']:.1f}s: {m['tx_per_s']:,.0f} tx/s "
        "(`hodlflow simulate --scale N` grows it linearly; scale 26 ≈ 1.06M transactions)",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the block counts")
    ap.add_argument("--runs", type=int, default=5, help="parser runs per contender (best of)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-rpc", action="store_true", help="skip the btcd RPC ingest benchmark")
    ap.add_argument(
        "--components",
        default=os.environ.get("BENCH_COMPONENTS") or "1e5,1e6,1e7",
        help="connected-components sizes, comma-separated ('none' skips)",
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, BCL_DATA_DIR=os.path.join(os.path.abspath(args.out), "bitcoinlib"))

    rep = Report()
    rep.add("\n".join(environment()))
    rep.add()
    datadir = os.path.join(args.out, "chain")
    info = generate(datadir, Sizes().scaled(args.scale), log=lambda _: None)
    rep.add("== " + describe(info))
    rep.add()

    parser_json = os.path.join(args.out, "parsers.json")
    code = rep.run(
        [os.path.join(HERE, "parser_bench.py"), datadir, "--runs", str(args.runs),
         "--json", parser_json],
        env,
    )  # fmt: skip
    failed = code != 0
    parser_rows = []
    if os.path.exists(parser_json):
        with open(parser_json) as fh:
            parser_rows = json.load(fh)
    rep.add()

    ingest = None
    if not args.skip_ingest:
        ingest_json = os.path.join(args.out, "ingest.json")
        code = rep.run([os.path.join(HERE, "ingest_bench.py"), datadir, "--json", ingest_json], env)
        failed = failed or code != 0
        if code == 0 and os.path.exists(ingest_json):
            with open(ingest_json) as fh:
                ingest = json.load(fh)
        rep.add()

    rpc_runs = None
    if not args.skip_rpc:
        rpc_json = os.path.join(args.out, "rpc.json")
        if os.path.exists(rpc_json):
            os.remove(rpc_json)
        code = rep.run([os.path.join(HERE, "rpc_bench.py"), "--json", rpc_json], env)
        failed = failed or code != 0
        if code == 0 and os.path.exists(rpc_json):
            with open(rpc_json) as fh:
                rpc_runs = json.load(fh)
        rep.add()

    components = None
    sizes = [x.strip() for x in args.components.split(",") if x.strip() not in ("", "none")]
    if sizes:
        components_json = os.path.join(args.out, "components.json")
        if os.path.exists(components_json):
            os.remove(components_json)  # a failed run must not report the last one's figures
        code = rep.run(
            [os.path.join(HERE, "components_bench.py"), *sizes, "--json", components_json], env
        )
        failed = failed or code != 0
        if os.path.exists(components_json):
            with open(components_json) as fh:
                components = json.load(fh)
        rep.add()

    rep.add("\n".join(simulator_figures(args.out)))
    rep.add()
    rep.add("\n".join(summary(parser_rows, ingest)))
    for r in rpc_runs or []:
        rep.add(
            f"  RPC ingest from btcd, local[{r['cores']}]: {r['blocks'] / r['ingest_s']:,.1f} "
            f"blocks/s, {r['transactions'] / r['ingest_s']:,.0f} tx/s end to end; fetch+parse "
            f"{r['fetch_parse_txs'] / r['fetch_parse_s']:,.0f} tx/s"
        )
    for row in components or []:
        s, x = row["spark"], row.get("networkx") or {}
        if "error" in s:
            rep.add(f"  connected components, {row['n']:,} addresses: {s['error']}")
            continue
        versus = (
            f"; networkx {x['networkx_s']:.1f}s, {x['peak_rss'] / 1e6:,.0f} MB"
            if "networkx_s" in x
            else ""
        )
        rep.add(
            f"  connected components, {row['n']:,} addresses: Spark {s['spark_s']:.1f}s, peak "
            f"RSS {s['jvm_peak_rss'] / 1e6:,.0f} MB JVM + {s['python_peak_rss'] / 1e6:,.0f} MB "
            f"Python{versus}"
        )
    rep.add(f"  whole benchmark: {time.perf_counter() - t0:.0f}s")
    report = os.path.join(args.out, "report.txt")
    with open(report, "w") as fh:
        fh.write("\n".join(rep.lines) + "\n")
    print(f"(written to {os.path.relpath(report)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

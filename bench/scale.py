"""Growth curves: the whole pipeline on simulated chains of growing size (``make bench-scale``).

For each size (transactions, default 1e5, 1e6, 1e7) it simulates ``capitulation.yaml`` at the
activity scale that gives about that many transactions, then runs every step as its own
``hodlflow`` process (the settings of ``conf/``: ``local[2]``, the default driver memory) into a
fresh warehouse and prints, per step: wall time, transactions/s, peak memory (the JVM — in local
mode driver and executor are one JVM — and the Python processes: proportional set size polled
from /proc; the JVM heap peak from Spark's event log), shuffle bytes written and read (event
log), and how each step's time grows with size: the fitted exponent b of time ~ size^b (1 =
linear); then per chain the outputs and inputs per transaction and the bytes per transaction of
the blk files and of each database. Writes ``bench-out/scale.txt`` and ``bench-out/scale.json``.

  python bench/scale.py                          # 1e5, 1e6, 1e7 (hours on 2 cores)
  python bench/scale.py --sizes 1e5,1e6          # the quick curve
  python bench/scale.py --sizes 1e5 --keep       # keep the simulated chains and warehouses
  python bench/scale.py --sizes 1e7 --sim DIR    # the steps on a kept simulation of that size
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HODLFLOW = os.path.join(os.path.dirname(sys.executable), "hodlflow")
SCENARIO = os.path.join(ROOT, "conf", "scenarios", "capitulation.yaml")
STEPS = ("simulate", "ingest", "entities", "metrics")
# capitulation.yaml at scale s holds ~73k coinbases (its blocks do not scale) and ~38k other
# transactions per unit of scale (measured: scale 1 -> 119k, scale 26 -> 1.06M).
COINBASES, PER_SCALE = 73_000, 38_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def scale_for(size: float) -> float:
    return max(0.05, (size - COINBASES) / PER_SCALE)


def _pss(pid: int) -> int:
    """A process's proportional set size: its resident pages, the ones it shares with other
    processes divided among them. PySpark forks its Python workers from one daemon, so summing
    their plain RSS counts the daemon's pages once per worker. Plain RSS where the kernel has
    no smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


class TreeMemory:
    """Peak memory (proportional set size) of a process and its descendants, split into JVM
    and Python."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.peak = {"jvm": 0, "python": 0, "total": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _children(self) -> dict[int, list[int]]:
        kids: dict[int, list[int]] = {}
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kids.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
        return kids

    def _sample(self) -> None:
        kids, todo, now = self._children(), [self.pid], {"jvm": 0, "python": 0, "total": 0}
        while todo:
            pid = todo.pop()
            todo.extend(kids.get(pid, []))
            try:
                mem = _pss(pid)
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            # The tree holds only our processes: the JVM, and Python (the hodlflow entry point,
            # whose comm is "hodlflow", and PySpark's workers).
            now["jvm" if comm == "java" else "python"] += mem
            now["total"] += mem
        for k, v in now.items():
            self.peak[k] = max(self.peak[k], v)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peak


def event_log_figures(folder: str) -> dict[str, int]:
    """Shuffle bytes and the JVM heap peak from Spark's event logs in ``folder``."""
    out = {"shuffle_write": 0, "shuffle_read": 0, "heap_peak": 0, "tasks": 0}
    # Spark 4 writes rolling logs: a folder per application holding events_N_* files.
    for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
        if not os.path.isfile(path) or os.path.basename(path).startswith("appstatus"):
            continue
        with open(path) as f:
            for line in f:
                if '"SparkListenerTaskEnd"' in line:
                    ev = json.loads(line)
                    m = ev.get("Task Metrics") or {}
                    out["tasks"] += 1
                    out["shuffle_write"] += (m.get("Shuffle Write Metrics") or {}).get(
                        "Shuffle Bytes Written", 0
                    )
                    r = m.get("Shuffle Read Metrics") or {}
                    out["shuffle_read"] += r.get("Remote Bytes Read", 0) + r.get(
                        "Local Bytes Read", 0
                    )
                elif '"SparkListenerStageExecutorMetrics"' in line or (
                    '"SparkListenerExecutorMetricsUpdate"' in line
                ):
                    ev = json.loads(line)
                    for metrics in [ev.get("Executor Metrics") or {}] + [
                        u.get("Executor Metrics") or {}
                        for u in ev.get("Executor Metrics Updated", [])
                    ]:
                        out["heap_peak"] = max(out["heap_peak"], metrics.get("JVMHeapMemory", 0))
    return out


def run_step(name: str, cmd: list[str], logs: str, eventlog: str | None) -> dict:
    os.makedirs(logs, exist_ok=True)
    if eventlog:
        os.makedirs(eventlog, exist_ok=True)
        cmd = cmd + [
            "--set", "spark.conf.spark.eventLog.enabled=true",
            "--set", f"spark.conf.spark.eventLog.dir=file://{eventlog}",
            "--set", "spark.conf.spark.eventLog.compress=false",
            "--set", "spark.conf.spark.eventLog.logStageExecutorMetrics=true",
        ]  # fmt: skip
    log_path = os.path.join(logs, f"{name}.log")
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        mem = TreeMemory(proc.pid)
        rc = proc.wait()
        peak = mem.stop()
    seconds = time.perf_counter() - started
    if rc != 0:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"step {name} failed (exit {rc}); log {log_path}:\n{tail}")
    row = {"step": name, "seconds": seconds, **{f"rss_{k}": v for k, v in peak.items()}}
    if eventlog:
        row.update(event_log_figures(eventlog))
    return row


def disk_bytes(folder: str) -> int:
    total = 0
    for root, _dirs, names in os.walk(folder):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(root, n))
            except OSError:
                pass
    return total


def rows_added(table_dir: str) -> int:
    """Rows a table received, from its Delta log's add actions (their numRecords statistics).
    Exact for the append-only chain.outputs and chain.inputs of a one-run ingest."""
    total = 0
    for path in glob.glob(os.path.join(table_dir, "_delta_log", "*.json")):
        with open(path) as f:
            for line in f:
                if line.startswith('{"add"'):
                    stats = json.loads(line)["add"].get("stats")
                    total += json.loads(stats).get("numRecords", 0) if stats else 0
    return total


def warehouse_figures(wh: str) -> dict:
    """Bytes on disk per database (Delta logs and all file versions included) and the row
    counts of the two largest chain tables."""
    dbs = sorted(d for d in os.listdir(wh) if os.path.isdir(os.path.join(wh, d)))
    return {
        "disk_bytes": {d: disk_bytes(os.path.join(wh, d)) for d in dbs},
        "outputs": rows_added(os.path.join(wh, "chain", "outputs")),
        "inputs": rows_added(os.path.join(wh, "chain", "inputs")),
    }


def run_size(size: float, work: str, sim: str | None = None) -> dict:
    """Simulate (unless ``sim`` names a finished simulation to reuse), then run every step."""
    wh = os.path.join(work, "warehouse")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    logs = os.path.join(work, "logs")
    scale = scale_for(size)
    rows = []
    if sim is None:
        sim = os.path.join(work, "sim")
        rows.append(
            run_step(
                "simulate",
                [
                    HODLFLOW,
                    "simulate",
                    "--scenario",
                    SCENARIO,
                    "--out",
                    sim,
                    "--scale",
                    f"{scale:.3f}",
                ],
                logs,
                None,
            )  # fmt: skip
        )
    with open(os.path.join(sim, "manifest.json")) as f:
        manifest = json.load(f)
    files = manifest.get("files", {})
    common = ["--warehouse", wh, "--set", "check_pow=false"]
    steps = {
        "ingest": [
            "ingest", "--blocks-dir", os.path.join(sim, "blocks"),
            "--set", f"ingest.start_hash={manifest['start_hash']}",
            "--set", f"ingest.start_height={manifest['start_height']}",
        ],
        "entities": [
            "entities",
            "--set", "entities.pools=conf/pools.json,"
            + os.path.join(sim, files.get("pools", "labels/pools.json")),
            "--set", "entities.label_seeds=conf/labels/exchanges.csv,"
            + os.path.join(sim, files.get("exchange_labels", "labels/exchanges.csv")),
        ],
        "metrics": ["metrics", "--prices", os.path.join(sim, "prices.csv")],
    }  # fmt: skip
    for name, args in steps.items():
        print(f"  {name} ...", flush=True)
        rows.append(
            run_step(name, [HODLFLOW, *args, *common], logs, os.path.join(work, "eventlog", name))
        )
    tx = int(manifest["transactions"])
    for r in rows:
        r["tx_per_s"] = tx / r["seconds"]
    return {"target": size, "scale": scale, "transactions": tx, "blocks": manifest.get("blocks"),
            "days": manifest.get("days"), "addresses": manifest.get("addresses"),
            "blocks_bytes": manifest.get("blocks_bytes"), **warehouse_figures(wh),
            "steps": rows}  # fmt: skip


def fit_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) over log(x)."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else None


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def report(results: list[dict]) -> list[str]:
    lines = [
        f"{'size':>10} {'step':<9} {'seconds':>8} {'tx/s':>9} {'JVM PSS MiB':>12} "
        f"{'heap MiB':>9} {'Python PSS':>11} {'shuffle w MiB':>14} {'shuffle r MiB':>14} {'tasks':>7}"
    ]
    for res in results:
        for r in res["steps"]:
            lines.append(
                f"{res['transactions']:>10,} {r['step']:<9} {r['seconds']:>8.1f} "
                f"{r['tx_per_s']:>9,.0f} {mib(r['rss_jvm']):>12} {mib(r.get('heap_peak', 0)):>9} "
                f"{mib(r['rss_python']):>11} {mib(r.get('shuffle_write', 0)):>14} "
                f"{mib(r.get('shuffle_read', 0)):>14} {r.get('tasks', 0):>7,}"
            )
    lines += [
        "",
        "per chain: outputs and inputs per transaction; bytes per transaction of the "
        "blk files and of each database of the warehouse (all Delta file versions):",
    ]
    for res in results:
        tx = res["transactions"]
        dbs = "  ".join(f"{d} {b / tx:,.0f}" for d, b in res.get("disk_bytes", {}).items())
        lines.append(
            f"{tx:>10,}  outputs/tx {res.get('outputs', 0) / tx:.2f}  inputs/tx "
            f"{res.get('inputs', 0) / tx:.2f}  blk {(res.get('blocks_bytes') or 0) / tx:,.0f}  {dbs}"
        )
    if len(results) > 1:
        lines += ["", "growth exponent b (time ~ transactions^b; 1 = linear), fitted over all "
                  "sizes and per step between consecutive sizes:"]  # fmt: skip
        for step in STEPS:
            pts = [(res["transactions"], r["seconds"]) for res in results
                   for r in res["steps"] if r["step"] == step]  # fmt: skip
            if len(pts) < 2:
                continue  # a step not run at every size (a reused simulation)
            pair = [fit_exponent(pts[i : i + 2]) for i in range(len(pts) - 1)]
            b = fit_exponent(pts)
            lines.append(
                f"  {step:<9} b = {b:.2f}   ("
                + ", ".join(f"{x:.2f}" for x in pair)
                + ")"
                + ("   grows faster than linearly" if b and b > 1.15 else "")
            )
        common = set.intersection(*({r["step"] for r in res["steps"]} for res in results))
        total = [(res["transactions"], sum(r["seconds"] for r in res["steps"]
                                           if r["step"] in common)) for res in results]  # fmt: skip
        lines.append(f"  {'all':<9} b = {fit_exponent(total):.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", default="1e5,1e6,1e7", help="transactions per chain, comma-separated"
    )
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    ap.add_argument("--work", default=None, help="scratch folder (default <out>/scale-work)")
    ap.add_argument("--keep", action="store_true", help="keep the chains and warehouses")
    ap.add_argument(
        "--sim", default=None,
        help="a finished simulation (the folder holding manifest.json) to run the steps on "
        "instead of simulating; one size only (kept: it is not under the scratch folder)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",") if s]
    if args.sim and len(sizes) != 1:
        ap.error("--sim reuses one simulation: give one size")
    if args.sim and not os.path.exists(os.path.join(args.sim, "manifest.json")):
        ap.error(f"--sim {args.sim}: no manifest.json there (not a finished simulation)")
    work = args.work or os.path.join(args.out, "scale-work")
    os.makedirs(args.out, exist_ok=True)
    results = []
    for size in sizes:
        print(f"size {size:,.0f} transactions (scale {scale_for(size):.2f}) ...", flush=True)
        folder = os.path.join(work, f"{size:.0e}")
        results.append(run_size(size, folder, args.sim))
        print("\n".join(report(results[-1:])), flush=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()
    lines = [
        f"growth curves, capitulation.yaml, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end",
        *report(results),
    ]
    text = "\n".join(lines)
    print("\n" + text)
    with open(os.path.join(args.out, "scale.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "scale.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

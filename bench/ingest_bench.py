"""End-to-end ingest throughput: ``run_ingest`` on the generated chain, Spark ``local[2]``.

A fresh warehouse in a temporary directory, the ``local`` settings with the chain's first block
as ``ingest.start_hash`` and ``check_pow=False`` (nothing is mined). Prints blocks,
transactions, seconds and transactions per second, then where the time went:

* session start (JVM, Delta jars), not counted in the ingest time;
* the phases of ``run_ingest``, cut at its own log lines: setting up the tables and scanning
  the headers, then parsing + resolving inputs + the Delta writes (one Spark pipeline: the
  parse is lazy), then the final count;
* a separate parse-only pass afterwards (the same parsing tasks, rows counted, nothing
  written): how much of the ingest the Python parsing accounts for.

Usage: ``python bench/ingest_bench.py DATADIR [--cores 2] [--blocks-per-task 4]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime

from gen_chain import ChainInfo, load_chain
from hodlflow.chain.blkfile import list_blk_files, read_block, read_xor_key, scan_records
from hodlflow.chain.block import parse_block
from hodlflow.chain.network import get_network
from hodlflow.config import load_settings
from hodlflow.ingest.best_chain import best_chain
from hodlflow.ingest.blocks_dir import parse_chain_blocks, scan_headers
from hodlflow.ingest.job import run_ingest
from hodlflow.ingest.rows import block_rows
from hodlflow.spark import build_session


def bench_ingest(info: ChainInfo, cores: int, blocks_per_task: int) -> tuple[list[str], dict]:
    """Ingest the chain into a fresh warehouse; return report lines and the headline figures."""
    out = []
    figures: dict = {}
    total_txs = sum(g.txs for g in info.groups.values())
    with tempfile.TemporaryDirectory(prefix="hodlflow-bench-warehouse-") as warehouse:
        settings = load_settings(
            "local",
            {
                "warehouse.path": warehouse,
                "network": "main",
                "check_pow": False,
                "ingest.blocks_dir": info.blocks_dir,
                "ingest.start_hash": info.start_hash,
                "ingest.start_height": 0,
                "ingest.blocks_per_task": blocks_per_task,
                "spark.master": f"local[{cores}]",
                # The UI's REST API gives the job timings for the split below.
                "spark.conf.spark.ui.enabled": "true",
            },
        )
        t0 = time.perf_counter()
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        t_session = time.perf_counter() - t0
        try:
            marks: list[tuple[float, str]] = []
            start = time.perf_counter()
            result = run_ingest(
                spark, settings, log=lambda m: marks.append((time.perf_counter(), m))
            )
            end = time.perf_counter()
            seconds = end - start
            figures = {
                "cores": cores,
                "blocks": result.blocks,
                "transactions": result.transactions,
                "seconds": seconds,
                "tx_per_s": result.transactions / seconds,
            }
            out.append(
                f"  ingested {result.blocks} blocks, {result.transactions} transactions "
                f"(generated: {total_txs}) in {seconds:.1f}s: "
                f"{result.transactions / seconds:,.0f} tx/s on {cores} cores "
                f"(blocks_per_task={blocks_per_task}; session start {t_session:.1f}s not counted)"
            )
            out.append("  phases of run_ingest (cut at its first log line):")
            first_log = marks[0][0] if marks else end
            out.append(f"    {first_log - start:>6.1f}s  tables set-up, header scan, best chain")
            out.append(
                f"    {end - first_log:>6.1f}s  parse, resolve inputs, Delta writes, "
                "unspent merge, count"
            )
            out.extend(spark_job_split(spark, start, end))

            # Parse only: the same tasks as the ingest's parse stage, rows counted.
            network = get_network(settings.network)
            files = list_blk_files(info.blocks_dir)
            key = read_xor_key(info.blocks_dir)
            headers = scan_headers(spark, files, network, key, False)
            chain, _ = best_chain(headers, info.start_hash, 0)
            t1 = time.perf_counter()
            rows = parse_chain_blocks(
                spark, files, chain, network, key, blocks_per_task, 2**62
            ).count()
            t_parse = time.perf_counter() - t1
            out.append(
                f"  parse-only pass (the ingest's parse tasks, {rows:,} rows into Spark, nothing "
                f"written): "
                f"{t_parse:.1f}s = {result.transactions / t_parse:,.0f} tx/s on {cores} cores, "
                f"{100 * t_parse / seconds:.0f}% of the ingest time"
            )
            out.append(rows_one_core(info))
        finally:
            spark.stop()
    return out, figures


def rows_one_core(info: ChainInfo) -> str:
    """Parse every block and build its Spark rows (``block_rows``) in this process, no Spark:
    what one ingest task does before PySpark serializes the rows."""
    network = get_network("main")
    n_tx = n_rows = 0
    t0 = time.perf_counter()
    for path in list_blk_files(info.blocks_dir):
        with open(path, "rb") as fh:
            for rec in scan_records(path, network, None):
                block = parse_block(read_block(path, rec, None, fh))
                n_tx += len(block.txs)
                n_rows += sum(1 for _ in block_rows(block, 0, 0, network))
    dt = time.perf_counter() - t0
    return (
        f"  parse + block_rows in one process, no Spark: {dt:.1f}s = {n_tx / dt:,.0f} tx/s on one "
        f"core ({n_rows:,} rows; merkle check included)"
    )


def _gmt(stamp: str) -> float:
    when = datetime.strptime(stamp.replace("GMT", ""), "%Y-%m-%dT%H:%M:%S.%f")
    return when.replace(tzinfo=UTC).timestamp()


def _job_label(job: dict) -> str:
    """A short kind for a Spark job: our own call site, or what Delta says it does."""
    desc = (job.get("description") or "").replace("Delta: Delta: ", "Delta: ")
    if "Compute snapshot" in desc:
        return "Delta: compute a table snapshot (read its log)"
    if desc and not desc.startswith("$anonfun"):
        return desc
    verb, _, where = job["name"].partition(" at ")
    if ".py:" in where:
        return f"{verb} at {os.path.basename(where)} (hodlflow)"
    if verb == "save":
        return "save (Delta write of a table)"
    return "other Delta/Spark internal jobs"


def spark_job_split(spark, start: float, end: float, top: int = 6) -> list[str]:
    """Spark jobs run during ``[start, end]`` (perf_counter times) from the UI's REST API:
    time inside jobs vs on the driver between them, and the job kinds that took longest."""
    sc = spark.sparkContext
    try:
        url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/jobs"
        with urllib.request.urlopen(url, timeout=10) as resp:
            jobs = json.load(resp)
    except Exception as exc:  # noqa: BLE001 - the split is optional
        return [f"  (no Spark job split: {type(exc).__name__}: {exc})"]
    # perf_counter -> epoch seconds
    offset = time.time() - time.perf_counter()
    t0, t1 = start + offset, end + offset
    spans, kinds = [], {}
    for job in jobs:
        if "completionTime" not in job:
            continue
        a, b = _gmt(job["submissionTime"]), _gmt(job["completionTime"])
        if a < t0 or b > t1:
            continue
        spans.append((a, b))
        label = _job_label(job)
        kinds[label] = kinds.get(label, 0.0) + (b - a)
    busy, last = 0.0, t0
    for a, b in sorted(spans):
        a = max(a, last)
        if b > a:
            busy += b - a
            last = b
    lines = [
        f"  Spark jobs: {len(spans)}; {busy:.1f}s with a job running, {t1 - t0 - busy:.1f}s on "
        "the driver between jobs (Delta table creation and commits, planning)",
        "  job kinds by summed job time:",
    ]
    for label, secs in sorted(kinds.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {secs:>6.1f}s  {label}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datadir", help="a datadir written by gen_chain.py")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--blocks-per-task", type=int, default=4)
    ap.add_argument("--json", help="also write the headline figures here (for run.py)")
    args = ap.parse_args(argv)
    info = load_chain(args.datadir)
    print(f"== end-to-end ingest (run_ingest, Spark local[{args.cores}], fresh warehouse)")
    lines, figures = bench_ingest(info, args.cores, args.blocks_per_task)
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

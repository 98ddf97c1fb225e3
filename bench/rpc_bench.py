"""RPC ingest throughput against a local btcd (regtest), Spark ``local[1]`` against ``local[2]``.

Starts btcd (from ``make setup``) on loopback with a temporary data directory and hands it a
chain built with hodlflow's chain builder (``submitblock``): 101 blocks to mature the first
coinbase, a fan-out transaction, then ``--blocks`` blocks of ``--txs`` real transactions each
(anyone-can-spend P2SH outputs, so the node validates them without signatures). Then, per core
count, in a child process with its own JVM and a fresh warehouse:

* fetch + parse only: the RPC tasks (``getblockhash``/``getblock HASH 0`` in batches, parsing)
  with the rows counted and nothing written — the part that spreads over executors;
* the whole ``run_rpc_ingest`` (fetch, parse, resolve inputs, Delta writes, unspent merge).

Usage: ``python bench/rpc_bench.py [--blocks 100] [--txs 400] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.support.btcd import (  # noqa: E402
    ANYONE_P2SH,
    ANYONE_SCRIPT_SIG,
    RPC_PASS,
    RPC_USER,
    cleanup,
    start_btcd,
)

from hodlflow.chain.network import REGTEST  # noqa: E402
from hodlflow.sim.builder import ChainBuilder, Spend  # noqa: E402

FEE = 1_000


def build_chain(n_blocks: int, n_txs: int) -> list[bytes]:
    """Raw blocks on regtest's genesis: 101 coinbase-only blocks, a fan-out of block 1's coinbase
    into ``n_txs`` outputs, then ``n_blocks`` blocks each moving every one of those coins once."""
    b = ChainBuilder(REGTEST, start_height=1, prev_hash=REGTEST.genesis_hash,
                     payout_script=ANYONE_P2SH, start_time=1_700_000_000)  # fmt: skip
    blocks = [b.add_block() for _ in range(101)]
    cb = blocks[0].coinbase
    each = (cb.outputs[0][0] - FEE) // n_txs
    fan = b.tx([Spend(cb.txid, 0, script_sig=ANYONE_SCRIPT_SIG)], [(each, ANYONE_P2SH)] * n_txs)
    blocks.append(b.add_block([fan]))
    coins = [(fan.txid, i, each) for i in range(n_txs)]
    for _ in range(n_blocks):
        txs = [
            b.tx([Spend(txid, vout, script_sig=ANYONE_SCRIPT_SIG)], [(value - FEE, ANYONE_P2SH)])
            for txid, vout, value in coins
        ]
        blocks.append(b.add_block(txs))
        coins = [(t.txid, 0, value - FEE) for t, (_, _, value) in zip(txs, coins, strict=True)]
    return [x.raw for x in blocks]


def measure(url: str, cores: int, tip: int) -> dict:
    """One child process: a session on ``local[cores]``, fetch+parse only, then the ingest."""
    from hodlflow.config import load_settings
    from hodlflow.ingest.follow import rpc_config, run_rpc_ingest
    from hodlflow.ingest.rpc_source import fetch_chain_blocks
    from hodlflow.spark import build_session

    with tempfile.TemporaryDirectory(prefix="hodlflow-rpc-bench-") as wh:
        settings = load_settings("local", {
            "warehouse.path": wh, "network": "regtest", "spark.master": f"local[{cores}]",
            "ingest.rpc.url": url, "ingest.rpc.user": RPC_USER, "ingest.rpc.password": RPC_PASS,
            "ingest.rpc.confirmations": 0, "ingest.rpc.blocks_per_task": 20,
            "ingest.rpc.batch_blocks": 10,
        })  # fmt: skip
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        try:
            rpc = settings.ingest.rpc
            fetch_chain_blocks(spark, rpc_config(settings), REGTEST, 0, 10, 0, 20, 10).count()
            t0 = time.perf_counter()
            rows = fetch_chain_blocks(
                spark, rpc_config(settings), REGTEST, 0, tip, 0, rpc.blocks_per_task,
                rpc.batch_blocks,
            ).filter("kind = 't'").count()  # fmt: skip
            fetch_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = run_rpc_ingest(spark, settings, log=lambda _m: None)
            ingest_s = time.perf_counter() - t0
        finally:
            spark.stop()
    return {"cores": cores, "blocks": result.blocks, "transactions": result.transactions,
            "fetch_parse_s": fetch_s, "fetch_parse_txs": rows, "ingest_s": ingest_s}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=100)
    ap.add_argument("--txs", type=int, default=400)
    ap.add_argument("--json")
    ap.add_argument("--measure", nargs=3, metavar=("URL", "CORES", "TIP"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        url, cores, tip = args.measure
        print(json.dumps(measure(url, int(cores), int(tip))))
        return 0

    print("== RPC ingest from a local btcd (regtest), Spark local[1] vs local[2]", flush=True)
    t0 = time.perf_counter()
    raws = build_chain(args.blocks, args.txs)
    built_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="hodlflow-rpc-bench-btcd-") as tmp:
        from pathlib import Path

        node = start_btcd(Path(tmp))
        try:
            t0 = time.perf_counter()
            for raw in raws:
                answer = node.call("submitblock", raw.hex())
                if answer is not None:
                    raise RuntimeError(f"btcd refused a benchmark block: {answer}")
            submit_s = time.perf_counter() - t0
            tip = node.call("getblockcount")
            mb = sum(len(r) for r in raws) / 1e6
            print(f"  chain: {tip + 1} blocks ({args.blocks} of {args.txs} txs), {mb:.1f} MB; "
                  f"built in {built_s:.1f}s, btcd validated it in {submit_s:.1f}s", flush=True)  # fmt: skip
            runs = []
            for cores in (1, 2):
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", node.url, str(cores), str(tip)],
                    capture_output=True, text=True, cwd=ROOT,
                )  # fmt: skip
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    return 1
                r = json.loads(out.stdout.strip().splitlines()[-1])
                runs.append(r)
                print(
                    f"  local[{cores}]: fetch+parse {r['blocks'] / r['fetch_parse_s']:,.0f} "
                    f"blocks/s, {r['fetch_parse_txs'] / r['fetch_parse_s']:,.0f} tx/s "
                    f"({r['fetch_parse_s']:.1f}s); whole ingest {r['blocks']} blocks, "
                    f"{r['transactions']} txs in {r['ingest_s']:.1f}s = "
                    f"{r['blocks'] / r['ingest_s']:,.1f} blocks/s, "
                    f"{r['transactions'] / r['ingest_s']:,.0f} tx/s (load average "
                    f"{os.getloadavg()[0]:.1f} after)",
                    flush=True,
                )
            one, two = runs
            print(
                f"  1 → 2 cores: fetch+parse {one['fetch_parse_s'] / two['fetch_parse_s']:.2f}x, "
                f"whole ingest {one['ingest_s'] / two['ingest_s']:.2f}x (the btcd node shares "
                "the same cores)"
            )
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(runs, fh)
        finally:
            cleanup(node)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``hodlflow`` command: parses options and calls one library function per subcommand.

Settings come from ``conf/`` (``--env`` picks the environment overlay, default from
HODLFLOW_ENV or ``local``); ``--set key.path=value`` overrides single settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from hodlflow.config import CONF_DIR, ConfigError, Settings, load_settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _settings(args: argparse.Namespace, extra: dict | None = None) -> Settings:
    overrides = {}
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key.path=value, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k] = _scalar(v)
    overrides.update({k: v for k, v in (extra or {}).items() if v is not None})
    return load_settings(args.env, overrides)


def _scalar(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        return text


def _session(settings: Settings):
    from hodlflow.spark import build_session

    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def cmd_inspect(args: argparse.Namespace) -> int:
    from hodlflow.chain.inspect import inspect_path
    from hodlflow.chain.network import get_network

    network = get_network(args.network)
    for record in inspect_path(args.path, network, with_txs=args.txs, check=not args.no_check):
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    return EXIT_OK


def cmd_fetch_jars(args: argparse.Namespace) -> int:
    from hodlflow.spark import fetch_jars

    settings = _settings(args)
    jars = fetch_jars(settings.spark.jars_cache)
    print(f"{len(jars)} Delta Lake jar(s) cached in {settings.spark.jars_cache}")
    return EXIT_OK


RPC_PASSWORD_ENV = "HODLFLOW_RPC_PASSWORD"


def _ingest_settings(args: argparse.Namespace, environ=os.environ) -> tuple[Settings, bool]:
    """Settings of an ingest run and whether it follows a node (True) or reads a blocks dir."""
    if args.rpc and args.blocks_dir:
        raise ConfigError("give either --rpc or --blocks-dir, not both")
    if args.rpc_cookie and args.rpc_user:
        raise ConfigError("give either --rpc-cookie or --rpc-user, not both")
    extra = {
        "ingest.blocks_dir": args.blocks_dir,
        "network": args.network,
        "ingest.rpc.url": args.rpc,
        "ingest.rpc.cookie_file": args.rpc_cookie,
        "ingest.rpc.user": args.rpc_user,
        "ingest.rpc.confirmations": args.confirmations,
    }
    # The command line's choice of login replaces the settings' ("" clears a setting).
    if args.rpc_cookie:
        extra.update({"ingest.rpc.user": "", "ingest.rpc.password": ""})
    if args.rpc_user:
        extra["ingest.rpc.cookie_file"] = ""
    password = environ.get(RPC_PASSWORD_ENV)
    if password:
        extra["ingest.rpc.password"] = password
    settings = _settings(args, extra)
    rpc = settings.ingest.rpc
    if args.rpc:
        use_rpc = True
    elif args.blocks_dir:
        use_rpc = False
    elif rpc.url and settings.ingest.blocks_dir:
        raise ConfigError(
            "both ingest.rpc.url and ingest.blocks_dir are set: choose with --rpc or --blocks-dir"
        )
    else:
        use_rpc = bool(rpc.url)
    if use_rpc and rpc.user and rpc.password is None:
        raise ConfigError(
            f"RPC user {rpc.user!r} has no password: put it in the environment variable "
            f"{RPC_PASSWORD_ENV} (or the setting ingest.rpc.password)"
        )
    return settings, use_rpc


def cmd_ingest(args: argparse.Namespace) -> int:
    settings, use_rpc = _ingest_settings(args)
    spark = _session(settings)
    if use_rpc:
        from hodlflow.ingest.follow import run_rpc_ingest

        result = run_rpc_ingest(spark, settings, args.start_height, args.end_height)
    else:
        from hodlflow.ingest.job import run_ingest

        result = run_ingest(spark, settings, args.start_height, args.end_height)
    print(result.summary())
    return EXIT_OK


def cmd_entities(args: argparse.Namespace) -> int:
    from hodlflow.entities.job import run_entities

    settings = _settings(args)
    spark = _session(settings)
    result = run_entities(spark, settings, args.from_height, args.end_height)
    print(result.summary())
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hodlflow.entities.evaluate import evaluate_entities, format_scores

    settings = _settings(args)
    spark = _session(settings)
    truth = os.path.join(args.sim, "truth", "addresses.csv")
    print(format_scores(evaluate_entities(spark, settings, truth)))
    from hodlflow import tables
    from hodlflow.metrics.evaluate import evaluate_miner_series

    if tables.exists(spark, settings, "metrics.miner_pressure"):
        miner_truth = os.path.join(args.sim, "truth", "miner_daily.csv")
        print("miner series against truth/miner_daily.csv")
        print(format_scores(evaluate_miner_series(spark, settings, miner_truth)))
    if tables.exists(spark, settings, "metrics.holder_migration"):
        from hodlflow.metrics.evaluate import daily_flow_comparison, evaluate_flow_series

        flows_truth = os.path.join(args.sim, "truth", "daily_flows.csv")
        print("flow series against truth/daily_flows.csv")
        print(format_scores(evaluate_flow_series(spark, settings, flows_truth)))
        per_day = os.path.join(args.sim, "evaluation", "daily_flows.csv")
        os.makedirs(os.path.dirname(per_day), exist_ok=True)
        daily = daily_flow_comparison(spark, settings, flows_truth)
        with open(per_day, "w") as out:  # one row per day: small
            out.write(",".join(daily.columns) + "\n")
            for r in daily.toLocalIterator():
                out.write(",".join(str(v) for v in r) + "\n")
        print(f"per-day comparison (ours vs truth): {per_day}")
    return EXIT_OK


def cmd_prices(args: argparse.Namespace) -> int:
    from hodlflow.metrics.prices import load_prices

    settings = _settings(args)
    spark = _session(settings)
    first, last = load_prices(spark, settings, args.file)
    print(f"market.prices: {(last - first).days + 1} day(s) {first}..{last} from {args.file}")
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace) -> int:
    import datetime as dt

    from hodlflow.metrics.job import run_metrics

    settings = _settings(args)
    spark = _session(settings)
    from_day = dt.date.fromisoformat(args.from_day) if args.from_day else None
    print(run_metrics(spark, settings, from_day).summary())
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from hodlflow.ingest.check import run_check

    settings = _settings(args)
    spark = _session(settings)
    report = run_check(spark, settings)
    print(report.text())
    return EXIT_OK if report.ok else EXIT_FAIL


def cmd_simulate(args: argparse.Namespace) -> int:
    from hodlflow.sim.simulator import run_simulation

    manifest = run_simulation(
        args.scenario, args.out, seed=args.seed, scale=args.scale, xor=not args.no_xor
    )
    print(json.dumps(manifest, indent=2, default=str))
    labels = manifest.get("files", {})
    print(
        f"\ningest it with:\n  hodlflow ingest --blocks-dir {os.path.join(args.out, 'blocks')} "
        f"--set check_pow=false --set ingest.start_hash={manifest['start_hash']} "
        f"--set ingest.start_height={manifest['start_height']}"
        f"\nthen cluster it with the simulator's published labels and score it:\n"
        f"  hodlflow entities --set entities.pools=conf/pools.json,"
        f"{os.path.join(args.out, labels.get('pools', 'labels/pools.json'))} "
        f"--set entities.label_seeds=conf/labels/exchanges.csv,"
        f"{os.path.join(args.out, labels.get('exchange_labels', 'labels/exchanges.csv'))}\n"
        f"  hodlflow evaluate --sim {args.out}"
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from hodlflow.demo import run_demo

    return run_demo(_settings(args), args.out, scenario=args.scenario)


def cmd_sql(args: argparse.Namespace) -> int:
    settings = _settings(args)
    spark = _session(settings)
    spark.sql(args.query).show(args.limit, truncate=False)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hodlflow",
        description="Bitcoin on-chain analytics on Spark and Delta Lake. Steps: ingest a "
        "blocks directory into chain.* tables, check them, cluster addresses into entities, "
        "evaluate them against a simulation, query them.",
    )
    # --env/--set are accepted before or after the subcommand (spark-submit jobs pass them after).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", default=argparse.SUPPRESS,
                        help="settings environment from conf/environments/ (default: local, "
                        "or HODLFLOW_ENV)")  # fmt: skip
    common.add_argument("--set", action="append", metavar="KEY=VALUE", default=argparse.SUPPRESS,
                        help="override one setting, e.g. --set warehouse.path=/data/wh")  # fmt: skip
    p.add_argument("--env", default=os.environ.get("HODLFLOW_ENV", "local"), help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "inspect", help="decode a raw block, hex block or blk*.dat file to JSON lines"
    )
    s.add_argument("path")
    s.add_argument("--txs", action="store_true", help="also one line per transaction")
    s.add_argument("--network", default="main", help="main, testnet, testnet4, signet, regtest")
    s.add_argument("--no-check", action="store_true", help="skip the merkle-root check")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser(
        "ingest",
        parents=[common],
        help="blocks directory or a running node → chain.blocks/transactions/outputs/inputs",
        description="Ingest the best chain into the chain tables, from a Bitcoin Core blocks/ "
        "directory (--blocks-dir) or from a running node over JSON-RPC (--rpc; Bitcoin Core or "
        "btcd), up to the node's tip minus ingest.rpc.confirmations. Resumes after the last "
        "stored height; reorged heights are rolled back and rewritten. With --rpc-user the "
        f"password comes from the environment variable {RPC_PASSWORD_ENV} (or the setting "
        "ingest.rpc.password), never from the command line.",
    )
    s.add_argument("--blocks-dir", help="Bitcoin Core blocks/ directory (ingest.blocks_dir)")
    s.add_argument("--rpc", metavar="URL",
                   help="follow the node at this JSON-RPC URL, e.g. http://127.0.0.1:8332 "
                   "(ingest.rpc.url)")  # fmt: skip
    s.add_argument("--rpc-cookie", metavar="FILE",
                   help="the node's cookie file, e.g. ~/.bitcoin/.cookie (ingest.rpc.cookie_file)")  # fmt: skip
    s.add_argument("--rpc-user", metavar="USER",
                   help=f"RPC user; its password from {RPC_PASSWORD_ENV} (ingest.rpc.user)")  # fmt: skip
    s.add_argument("--confirmations", type=int,
                   help="blocks below the node's tip to stop at (ingest.rpc.confirmations)")  # fmt: skip
    s.add_argument("--network", help="override the network setting")
    s.add_argument("--start-height", type=int, help="first height (default: resume after the last)")
    s.add_argument("--end-height", type=int, help="last height (default: the tip)")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser(
        "entities", parents=[common],
        help="chain tables → entities.* (address clusters, types, labels, holder classes)",
        description="Cluster addresses into entities (common-input ownership, coinjoins "
        "excluded), type them (miners from coinbases and pool tags, exchanges from label seeds "
        "and sweeps, coinjoins) and class holders per day. Resumes after the last run; a reorg "
        "or new blocks of a day already processed re-process from there.",
    )  # fmt: skip
    s.add_argument("--from-height", type=int,
                   help="re-process from the run holding this height (default: resume)")  # fmt: skip
    s.add_argument("--end-height", type=int, help="last height (default: the chain tables' tip)")
    s.set_defaults(func=cmd_entities)

    s = sub.add_parser(
        "evaluate", parents=[common],
        help="score the entities against a simulation's ground truth",
        description="Pairwise precision/recall and adjusted Rand index of the clustering, "
        "miner/exchange/coinjoin recall and precision, holder-class accuracy, against "
        "<sim>/truth/addresses.csv of `hodlflow simulate`.",
    )  # fmt: skip
    s.add_argument("--sim", required=True, help="output folder of `hodlflow simulate`")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser(
        "prices", parents=[common],
        help="load a daily price CSV (day,close_usd) into market.prices",
        description="Check a CSV of daily close prices (header day,close_usd; every day between "
        "the first and the last, once, with a positive price) and replace those days in "
        "market.prices. `hodlflow simulate` writes one (prices.csv).",
    )  # fmt: skip
    s.add_argument("file", help="CSV with header day,close_usd")
    s.set_defaults(func=cmd_prices)

    s = sub.add_parser(
        "metrics", parents=[common],
        help="chain tables + market.prices → metrics.* (miner pressure, ...)",
        description="Compute the daily gold tables from the last stored day to the chain "
        "tables' last day: metrics.miner_pressure (revenue, hash rate, hash ribbons, hashprice, "
        "production cost, price/cost, Puell multiple).",
    )  # fmt: skip
    s.add_argument("--from-day", help="recompute from this day (YYYY-MM-DD), e.g. after new prices")
    s.set_defaults(func=cmd_metrics)

    s = sub.add_parser(
        "check", parents=[common], help="reconcile the chain tables (supply, spends, fees)"
    )
    s.set_defaults(func=cmd_check)

    s = sub.add_parser(
        "sql", parents=[common], help="run one Spark SQL query on the project's catalog"
    )
    s.add_argument("query")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser(
        "fetch-jars", parents=[common], help="cache the Delta Lake jars from Maven Central (once)"
    )
    s.set_defaults(func=cmd_fetch_jars)

    s = sub.add_parser(
        "demo", parents=[common], help="build a small chain, ingest it, check it, show the tables"
    )
    s.add_argument("--out", default="demo-out", help="where the simulated chain goes")
    s.add_argument("--scenario", default=str(CONF_DIR / "scenarios" / "capitulation.yaml"))
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "simulate", parents=[common],
        help="write a simulated chain (blocks dir, prices, ground truth) from a scenario",
    )  # fmt: skip
    s.add_argument("--scenario", default=str(CONF_DIR / "scenarios" / "capitulation.yaml"),
                   help="scenario YAML (default: conf/scenarios/capitulation.yaml)")  # fmt: skip
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, help="override the scenario's seed")
    s.add_argument("--scale", type=float, help="multiply the scenario's activity")
    s.add_argument("--no-xor", action="store_true", help="write no xor.dat obfuscation key")
    s.set_defaults(func=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"hodlflow: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"hodlflow {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())

"""The pipeline's commands: simulate, ingest, tip, entities, prices, metrics, report, check,
evaluate, evaluate-suite, maintain, inspect, fetch-jars, demo. Each parses its options and
calls one library function; its docstring is its help."""

from __future__ import annotations

import argparse
import json
import os
import sys

from hodlflow import envvars
from hodlflow.cli.options import (
    EXIT_FAIL,
    EXIT_NOT_YET,
    EXIT_OK,
    command,
    day,
    session,
    settings_from,
    timestamp,
)
from hodlflow.config import CONF_DIR, ConfigError, Settings

SIM_SETS = "--set check_pow=false --set ingest.start_hash=HASH --set ingest.start_height=N"


def cmd_inspect(args: argparse.Namespace) -> int:
    """decode a raw block, hex block or blk*.dat file to JSON lines"""
    from hodlflow.chain.inspect import inspect_path
    from hodlflow.chain.network import get_network

    network = get_network(args.network)
    for record in inspect_path(args.path, network, with_txs=args.txs, check=not args.no_check):
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """write a simulated chain (blocks dir, prices, ground truth) from a scenario"""
    from hodlflow.sim.simulator import next_steps, run_simulation

    manifest = run_simulation(
        args.scenario, args.out, seed=args.seed, scale=args.scale, xor=not args.no_xor
    )
    print(json.dumps(manifest, indent=2, default=str))
    print("\n" + next_steps(manifest, args.out))
    return EXIT_OK


def ingest_settings(args: argparse.Namespace, environ=os.environ) -> tuple[Settings, bool]:
    """Settings of an ingest run and whether it follows a node (True) or reads a blocks dir;
    the options that do not go together are a :class:`ConfigError`."""
    if args.rpc and args.blocks_dir:
        raise ConfigError("give either --rpc or --blocks-dir, not both")
    if args.rpc_cookie and args.rpc_user:
        raise ConfigError("give either --rpc-cookie or --rpc-user, not both")
    extra = {
        "ingest.blocks_dir": args.blocks_dir or None,
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
    password = environ.get(envvars.RPC_PASSWORD)
    if password:
        extra["ingest.rpc.password"] = password
    settings = settings_from(args, extra)
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
            f"{envvars.RPC_PASSWORD} (or the setting ingest.rpc.password)"
        )
    if use_rpc and (getattr(args, "chunk_blocks", None) is not None or args.until is not None):
        raise ConfigError("--chunk-blocks and --until read a blocks directory, not --rpc")
    if getattr(args, "chunk_blocks", None) is not None and args.start_height is not None:
        raise ConfigError("--chunk-blocks resumes after the last stored height: no --start-height")
    return settings, use_rpc


def cmd_ingest(args: argparse.Namespace) -> int:
    """blocks directory or a running node -> chain.blocks/transactions/outputs/inputs/unspent

    Read the best chain of a Bitcoin Core blocks directory (xor.dat, blocks out of order, stale
    blocks dropped) into the chain tables. Without a range it resumes after the last stored
    height; heights already stored are never rolled back by a lower end, so re-running a
    finished range changes nothing. With --rpc it follows a running node (Bitcoin Core or
    btcd) over JSON-RPC up to its tip minus ingest.rpc.confirmations; reorged heights are
    rolled back and rewritten. With --rpc-user the password comes from the environment variable
    {envvars.RPC_PASSWORD} (or the setting ingest.rpc.password), never from the command line.
    """
    from hodlflow.ingest.command import ingest

    settings, use_rpc = ingest_settings(args)
    print(ingest(session(settings), settings, use_rpc=use_rpc, start_height=args.start_height,
                 end_height=args.end_height, until=args.until, chunk_blocks=args.chunk_blocks))  # fmt: skip
    return EXIT_OK


def cmd_tip(args: argparse.Namespace) -> int:
    """print the blocks directory's best-chain tip (headers only, no Spark)

    Print the best chain's last height, hash and time as JSON. With --after TIME it also says
    whether the first block at or after TIME has the confirmation depth
    (ingest.confirmations): exit 0 when it has, 3 when not yet.
    """
    from hodlflow.ingest.tip import read_tip

    extra = {
        "ingest.blocks_dir": args.blocks_dir or None,
        "network": args.network,
        "ingest.confirmations": args.confirmations,
    }
    tip = read_tip(settings_from(args, extra), args.after)
    print(json.dumps(tip.as_dict()))
    return EXIT_NOT_YET if tip.ready is False else EXIT_OK


def cmd_entities(args: argparse.Namespace) -> int:
    """chain tables -> entities.* (address clusters, types, labels, holder classes)

    Cluster addresses into entities (common-input ownership, coinjoins excluded, change
    heuristics), type them (miners from coinbases and pool tags, exchanges from label seeds,
    sweeps and their hot wallets' payments, coinjoins) and class holders per day. Resumes after
    the last run; a reorg or new blocks of a day already processed re-process from there.
    """
    from hodlflow.entities.job import run_entities

    settings = settings_from(args)
    print(run_entities(session(settings), settings, args.from_height, args.end_height).summary())
    return EXIT_OK


def cmd_prices(args: argparse.Namespace) -> int:
    """load a daily price CSV (day,close_usd) into market.prices

    Check a CSV of daily close prices (header day,close_usd; every day between the first and
    the last, once, with a positive price) and replace those days in market.prices.
    `hodlflow simulate` writes one (prices.csv).
    """
    from hodlflow.metrics.prices import load_prices

    settings = settings_from(args)
    first, last = load_prices(session(settings), settings, args.file)
    print(f"market.prices: {(last - first).days + 1} day(s) {first}..{last} from {args.file}")
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace) -> int:
    """chain tables + entities + market.prices -> metrics.* (gold tables)

    Compute the daily gold tables from the last stored day to the chain tables' last day:
    metrics.miner_pressure (revenue, hash rate, hash ribbons, hashprice, production cost,
    price/cost, Puell multiple, MPI, miner reserve), metrics.entity_flows,
    metrics.exchange_flows, metrics.holder_migration (weak→strong, LTH maturing,
    concentration), metrics.supply_cohorts (HODL waves, LTH/STH, realized cap, MVRV, CDD,
    SOPR), metrics.entity_balance_cohorts. Also recomputes the days a reorg or a newer entities
    run changed. With --prices, the price CSV is loaded first, in the same hold of the
    warehouse's lease.
    """
    from hodlflow.metrics.job import run_metrics_with_prices

    settings = settings_from(args)
    from_day = day(args.from_day) if args.from_day else None
    print(run_metrics_with_prices(session(settings), settings, args.prices, from_day).summary())
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """draw the gold tables: one self-contained report.html plus a PNG per chart

    Read metrics.miner_pressure, metrics.holder_migration, metrics.supply_cohorts,
    metrics.exchange_flows and market.prices and write OUT/report.html: key facts (first day
    the price closed below the production cost, miner outflow around it, ...) and seven charts:
    price vs production cost, miner outflow and MPI, weak -> strong migration, what strong and
    weak hands hold, long/short-term holder supply, HODL waves, exchange balance. The page
    embeds its data and draws the charts itself: no network is needed to open it. The same
    charts are written as OUT/<chart>.png. A range longer than report.max_daily_points days is
    charted by week (weekly means). A gap in a line is a day without data (no price, or past
    the entities step's last day). Run `hodlflow metrics` first.
    """
    from hodlflow.report.job import run_report

    settings = settings_from(args)
    result = run_report(session(settings), settings, args.out, args.from_day, args.to_day)
    print(result.summary())
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """reconcile the chain tables (supply, spends, fees); exit 1 on a mismatch"""
    from hodlflow.ingest.check import run_check

    settings = settings_from(args)
    report = run_check(session(settings), settings)
    print(report.text())
    return EXIT_OK if report.ok else EXIT_FAIL


def cmd_evaluate(args: argparse.Namespace) -> int:
    """score the entities against a simulation's ground truth

    Pairwise precision/recall and adjusted Rand index of the clustering,
    miner/exchange/coinjoin recall and precision, holder-class accuracy, against
    <sim>/truth/addresses.csv of `hodlflow simulate`; miner, flow and balance series once
    metrics ran (per day, ours vs truth, in <sim>/evaluation/daily_flows.csv).
    """
    from hodlflow.evaluation import evaluate_simulation, format_evaluation

    settings = settings_from(args)
    print(format_evaluation(evaluate_simulation(session(settings), settings, args.sim)))
    return EXIT_OK


def cmd_evaluate_suite(args: argparse.Namespace) -> int:
    """simulate, process and evaluate several markets; one table of the measures

    Runs capitulation, distribution and N scenarios drawn from --seed (simulate -> ingest ->
    entities -> metrics -> evaluate, each in OUT/<scenario>/, its scenario.yaml written there)
    in one Spark session and prints one table: clustering precision and ARI, exchange and miner
    recall, holder decisions, net weak->strong migration against the truth, exchange and miner
    flow errors, the worst of each and whether its goal is met (also in OUT/suite.txt). The
    same seed gives the same table.
    """
    from hodlflow.suite import run_suite, write_suite_report

    named = tuple(n for n in (args.scenarios or "").split(",") if n)
    result = run_suite(settings_from(args), args.out, seed=args.seed, random_count=args.random,
                       quick=args.quick, named=named, resume=args.resume)  # fmt: skip
    print(write_suite_report(result, args.out))
    return EXIT_OK


def cmd_maintain(args: argparse.Namespace) -> int:
    """compact (OPTIMIZE) and clean (VACUUM) every Delta table

    OPTIMIZE every existing table, then VACUUM files older than
    maintenance.vacuum_retention_hours (at least 168). Table contents do not change.
    """
    from hodlflow.maintain import run_maintenance

    settings = settings_from(args)
    print(run_maintenance(session(settings), settings).summary())
    return EXIT_OK


def cmd_fetch_jars(args: argparse.Namespace) -> int:
    """cache the Delta Lake jars from Maven Central (once)"""
    from hodlflow.spark import prepare_jars

    print(prepare_jars(settings_from(args).spark.jars_cache))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """build a small chain, run every step, show the tables"""
    from hodlflow.demo import run_demo

    return run_demo(settings_from(args), args.out, scenario=args.scenario)


def register(sub, common) -> None:
    """Add the pipeline's subcommands to ``sub`` (``common``: the shared options' parser)."""
    p = [common]
    s = command(sub, "inspect", cmd_inspect,
                "  hodlflow inspect ~/.bitcoin/blocks/blk00000.dat | head -3\n"
                "  hodlflow inspect block.hex --txs --network testnet\n")  # fmt: skip
    s.add_argument("path")
    s.add_argument("--txs", action="store_true", help="also one line per transaction")
    s.add_argument("--network", default="main", help="main, testnet, testnet4, signet, regtest")
    s.add_argument("--no-check", action="store_true", help="skip the merkle-root check")

    s = command(sub, "simulate", cmd_simulate,
                "  hodlflow simulate --scenario conf/scenarios/tiny.yaml --out sim\n"
                "  hodlflow simulate --out sim --scale 26 --seed 1   # ~1M transactions\n", p)  # fmt: skip
    s.add_argument("--scenario", default=str(CONF_DIR / "scenarios" / "capitulation.yaml"),
                   help="scenario YAML (default: conf/scenarios/capitulation.yaml)")  # fmt: skip
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, help="override the scenario's seed")
    s.add_argument("--scale", type=float, help="multiply the scenario's activity")
    s.add_argument("--no-xor", action="store_true", help="write no xor.dat obfuscation key")

    s = command(sub, "ingest", cmd_ingest,
                "  hodlflow ingest --blocks-dir ~/.bitcoin/blocks             # resume to the tip\n"
                "  hodlflow ingest --rpc http://127.0.0.1:8332 --rpc-cookie ~/.bitcoin/.cookie  # follow a node\n"
                "  {envvars.RPC_PASSWORD}=... hodlflow ingest --rpc http://127.0.0.1:8332 --rpc-user me\n"
                "  hodlflow ingest --until 2025-03-02                         # blocks before that UTC midnight\n"
                "  hodlflow ingest --chunk-blocks 10000                       # backfill, resumable per chunk\n"
                "  hodlflow ingest --start-height 880000 --end-height 880143  # re-ingest a range\n"
                f"  hodlflow ingest --blocks-dir sim/blocks {SIM_SETS}\n", p)  # fmt: skip
    s.add_argument("--blocks-dir", help="Bitcoin Core blocks/ directory (ingest.blocks_dir)")
    s.add_argument("--rpc", metavar="URL",
                   help="follow the node at this JSON-RPC URL, e.g. http://127.0.0.1:8332 "
                   "(ingest.rpc.url)")  # fmt: skip
    s.add_argument("--rpc-cookie", metavar="FILE",
                   help="the node's cookie file, e.g. ~/.bitcoin/.cookie (ingest.rpc.cookie_file)")  # fmt: skip
    s.add_argument("--rpc-user", metavar="USER",
                   help=f"RPC user; its password from {envvars.RPC_PASSWORD} (ingest.rpc.user)")  # fmt: skip
    s.add_argument("--confirmations", type=int,
                   help="blocks below the node's tip to stop at (ingest.rpc.confirmations)")  # fmt: skip
    s.add_argument("--network", help="override the network setting")
    s.add_argument("--start-height", type=int, help="first height (default: resume after the last)")
    s.add_argument("--end-height", type=int, help="last height (default: the tip)")
    s.add_argument("--until", type=timestamp, metavar="TIME",
                   help="stop before the first block whose time is at or after TIME (a date = "
                   "its UTC midnight, or an ISO date-time): the end of a scheduler's interval")  # fmt: skip
    s.add_argument("--chunk-blocks", type=int, metavar="N",
                   help="ingest in atomic steps of N heights (a bulk backfill that dies resumes "
                   "after the last finished step)")  # fmt: skip

    s = command(sub, "tip", cmd_tip,
                "  hodlflow tip --blocks-dir ~/.bitcoin/blocks\n"
                "  hodlflow tip --after 2025-03-02 --confirmations 6 && echo 'day 2025-03-01 is final'\n",
                p)  # fmt: skip
    s.add_argument("--blocks-dir", help="Bitcoin Core blocks/ directory (ingest.blocks_dir)")
    s.add_argument("--network", help="override the network setting")
    s.add_argument("--after", type=timestamp, metavar="TIME",
                   help="a date (its UTC midnight) or an ISO date-time")  # fmt: skip
    s.add_argument("--confirmations", type=int, help="override ingest.confirmations")

    s = command(sub, "entities", cmd_entities,
                "  hodlflow entities                     # resume after the last run\n"
                "  hodlflow entities --end-height 880143\n"
                "  hodlflow entities --from-height 880000  # re-process from the run holding it\n",
                p)  # fmt: skip
    s.add_argument("--from-height", type=int,
                   help="re-process from the run holding this height (default: resume)")  # fmt: skip
    s.add_argument("--end-height", type=int, help="last height (default: the chain tables' tip)")

    s = command(sub, "prices", cmd_prices, "  hodlflow prices sim/prices.csv\n", p)
    s.add_argument("file", help="CSV with header day,close_usd")

    s = command(sub, "metrics", cmd_metrics,
                "  hodlflow metrics\n"
                "  hodlflow metrics --prices sim/prices.csv      # load prices first, then compute\n"
                "  hodlflow metrics --from-day 2025-03-01        # recompute after new prices\n", p)  # fmt: skip
    s.add_argument("--from-day", help="recompute from this day (YYYY-MM-DD), e.g. after new prices")
    s.add_argument("--prices", metavar="CSV", help="load this price CSV into market.prices first")

    s = command(sub, "report", cmd_report,
                "  hodlflow report                                    # every day, into ./report\n"
                "  hodlflow report --out /tmp/r --from 2025-01-01     # from a day to the last\n"
                "  hodlflow report --from 2024-03-01 --to 2024-06-30  # one range\n"
                "  chromium report/report.html                        # opens offline\n", p)  # fmt: skip
    s.add_argument("--out", default="report", metavar="DIR",
                   help="folder for report.html and the PNGs (default: ./report)")  # fmt: skip
    s.add_argument("--from", dest="from_day", type=day, metavar="DAY",
                   help="first day, YYYY-MM-DD (default: the first day of the gold tables)")  # fmt: skip
    s.add_argument("--to", dest="to_day", type=day, metavar="DAY",
                   help="last day, YYYY-MM-DD (default: the last day of the gold tables)")  # fmt: skip

    command(sub, "check", cmd_check, "  hodlflow check || echo 'chain tables inconsistent'\n", p)

    s = command(sub, "evaluate", cmd_evaluate, "  hodlflow evaluate --sim sim\n", p)
    s.add_argument("--sim", required=True, help="output folder of `hodlflow simulate`")

    s = command(sub, "evaluate-suite", cmd_evaluate_suite,
                "  hodlflow evaluate-suite --out suite-out              # capitulation, distribution, 3 random\n"
                "  hodlflow evaluate-suite --out /tmp/s --seed 7 --random 5\n"
                "  hodlflow evaluate-suite --out /tmp/q --quick --random 2   # tiny random ones only\n",
                p)  # fmt: skip
    s.add_argument("--out", default="suite-out", help="folder of the scenarios' runs")
    s.add_argument("--seed", type=int, default=1, help="seed of the random scenarios (default 1)")
    s.add_argument("--random", type=int, default=3, metavar="N",
                   help="how many random scenarios (default 3)")  # fmt: skip
    s.add_argument("--scenarios", default="capitulation,distribution",
                   help="named scenarios to run first, comma-separated (empty: none)")  # fmt: skip
    s.add_argument("--quick", action="store_true",
                   help="only tiny-sized random scenarios (a couple of weeks each)")  # fmt: skip
    s.add_argument("--resume", action="store_true",
                   help="keep the scenarios already measured in OUT (same scenario.yaml)")  # fmt: skip

    command(sub, "maintain", cmd_maintain,
            "  hodlflow maintain\n"
            "  hodlflow maintain --set maintenance.vacuum_retention_hours=336\n", p)  # fmt: skip
    command(sub, "fetch-jars", cmd_fetch_jars, "  hodlflow fetch-jars\n", p)

    s = command(sub, "demo", cmd_demo, "  hodlflow demo --out demo-out\n", p)
    s.add_argument("--out", default="demo-out", help="where the simulated chain goes")
    s.add_argument("--scenario", default=str(CONF_DIR / "scenarios" / "capitulation.yaml"))

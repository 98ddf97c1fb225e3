"""The ``hodlflow`` command: parses options and calls one library function per subcommand.

Settings come from ``conf/`` (``--env`` picks the environment overlay, default from
HODLFLOW_ENV or ``local``); ``--set key.path=value`` overrides single settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from hodlflow import envvars
from hodlflow.config import CONF_DIR, ConfigError, Settings, load_settings, read_overlay

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# `hodlflow tip --after`: the chain has not passed that time by the confirmation depth yet.
EXIT_NOT_YET = 3


def _settings(args: argparse.Namespace, extra: dict | None = None) -> Settings:
    overrides = {}
    for path in getattr(args, "conf_file", None) or []:
        if path:  # an empty value (an unset Airflow Variable) means none
            overrides.update(read_overlay(path))
    if getattr(args, "warehouse", None):  # empty (an unset Airflow Variable): from the settings
        overrides["warehouse.path"] = args.warehouse
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key.path=value, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k] = _scalar(v)
    overrides.update({k: v for k, v in (extra or {}).items() if v is not None})
    if os.environ.get(METASTORE_PASSWORD_ENV):
        overrides["spark.metastore.password"] = os.environ[METASTORE_PASSWORD_ENV]
    return load_settings(args.env, overrides)


METASTORE_PASSWORD_ENV = envvars.METASTORE_PASSWORD


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
    from hodlflow.metastore import postgres_jar
    from hodlflow.spark import fetch_jars, write_submit_properties

    settings = _settings(args)
    jars = fetch_jars(settings.spark.jars_cache)
    print(f"{len(jars)} Delta Lake jar(s) cached in {settings.spark.jars_cache}")
    print(f"PostgreSQL JDBC driver (metastore): {postgres_jar(settings.spark.jars_cache)}")
    print(f"spark-submit properties file: {write_submit_properties(settings.spark.jars_cache)}")
    return EXIT_OK


RPC_PASSWORD_ENV = envvars.RPC_PASSWORD


def _ingest_settings(args: argparse.Namespace, environ=os.environ) -> tuple[Settings, bool]:
    """Settings of an ingest run and whether it follows a node (True) or reads a blocks dir."""
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


def _timestamp(text: str) -> int | None:
    """``2025-03-02`` (midnight UTC) or an ISO date-time (UTC unless it names a zone) → Unix s;
    an empty value (an unset Airflow parameter) → None."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date (2025-03-02) or an ISO date-time (2025-03-02T00:00:00Z), got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def cmd_ingest(args: argparse.Namespace) -> int:
    settings, use_rpc = _ingest_settings(args)
    spark = _session(settings)
    if use_rpc:
        from hodlflow.ingest.follow import run_rpc_ingest

        if args.chunk_blocks is not None or args.until is not None:
            raise ConfigError("--chunk-blocks and --until read a blocks directory, not --rpc")
        result = run_rpc_ingest(spark, settings, args.start_height, args.end_height)
        print(result.summary())
        return EXIT_OK
    from hodlflow.ingest.job import run_ingest, run_ingest_chunks

    if args.chunk_blocks is not None:
        if args.start_height is not None:
            raise ConfigError(
                "--chunk-blocks resumes after the last stored height: no --start-height"
            )
        done = run_ingest_chunks(
            spark, settings, args.chunk_blocks, args.end_height, until=args.until
        )
        print(f"{len(done)} chunk(s) ingested" if done else "chain tables already up to date")
        return EXIT_OK
    result = run_ingest(spark, settings, args.start_height, args.end_height, until=args.until)
    print(result.summary())
    return EXIT_OK


def cmd_tip(args: argparse.Namespace) -> int:
    from hodlflow.ingest.tip import read_tip

    settings = _settings(
        args, {"ingest.blocks_dir": args.blocks_dir or None, "network": args.network}
    )
    if args.confirmations is not None:
        settings = settings.with_overrides({"ingest.confirmations": args.confirmations})
    tip = read_tip(settings, args.after)
    print(json.dumps(tip.as_dict()))
    if tip.ready is False:
        return EXIT_NOT_YET
    return EXIT_OK


def cmd_maintain(args: argparse.Namespace) -> int:
    from hodlflow.maintain import run_maintenance

    settings = _settings(args)
    print(run_maintenance(_session(settings), settings).summary())
    return EXIT_OK


def cmd_entities(args: argparse.Namespace) -> int:
    from hodlflow.entities.job import run_entities

    settings = _settings(args)
    spark = _session(settings)
    result = run_entities(spark, settings, args.from_height, args.end_height)
    print(result.summary())
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hodlflow.evaluation import evaluate_simulation, format_evaluation

    settings = _settings(args)
    spark = _session(settings)
    print(format_evaluation(evaluate_simulation(spark, settings, args.sim)))
    return EXIT_OK


def cmd_evaluate_suite(args: argparse.Namespace) -> int:
    from hodlflow.suite import format_suite_table, format_times, run_suite

    settings = _settings(args)
    named = tuple(n for n in (args.scenarios or "").split(",") if n)
    result = run_suite(settings, args.out, seed=args.seed, random_count=args.random,
                       quick=args.quick, named=named, resume=args.resume)  # fmt: skip
    table = format_suite_table(result.scenarios)
    times = format_times(result.runs)
    with open(os.path.join(args.out, "suite.txt"), "w", encoding="utf-8") as fh:
        fh.write(f"{table}\n\n{times}\n\n{format_suite_table(result.scenarios, markdown=True)}\n")
    print(f"\n{table}\n\nwall seconds per step:\n{times}")
    print(f"\nper scenario: {args.out}/<scenario>/evaluation.txt; this table: {args.out}/suite.txt")
    return EXIT_OK


def cmd_prices(args: argparse.Namespace) -> int:
    from hodlflow.metrics.prices import load_prices

    settings = _settings(args)
    spark = _session(settings)
    first, last = load_prices(spark, settings, args.file)
    print(f"market.prices: {(last - first).days + 1} day(s) {first}..{last} from {args.file}")
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace) -> int:
    from hodlflow.lease import warehouse_lease
    from hodlflow.metrics.job import run_metrics

    settings = _settings(args)
    spark = _session(settings)
    with warehouse_lease(spark, settings, "metrics"):  # the prices and the metrics: one step
        if args.prices:
            from hodlflow.metrics.prices import load_prices

            first, last = load_prices(spark, settings, args.prices)
            print(
                f"market.prices: {(last - first).days + 1} day(s) {first}..{last} from {args.prices}"
            )
        from_day = dt.date.fromisoformat(args.from_day) if args.from_day else None
        print(run_metrics(spark, settings, from_day).summary())
    return EXIT_OK


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day YYYY-MM-DD, got {text!r}") from None


def cmd_report(args: argparse.Namespace) -> int:
    from hodlflow.report.job import run_report

    settings = _settings(args)
    result = run_report(_session(settings), settings, args.out, args.from_day, args.to_day)
    print(result.summary())
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
    query = args.execute if args.execute is not None else args.query
    if args.execute is not None and args.query is not None:
        raise ConfigError("give the query either as an argument or with -e, not both")
    settings = _settings(args)
    if query is None or args.spark_sql:
        import signal
        import subprocess

        from hodlflow.metastore import secret_properties_file
        from hodlflow.spark import check_metastore_usable
        from hodlflow.sql import spark_env, spark_sql_command

        check_metastore_usable(settings)
        env = spark_env(os.environ)
        with secret_properties_file(settings.spark.metastore) as secrets:
            cmd = spark_sql_command(settings, query, secrets)
            if query is None and secrets is None:
                # The interactive shell takes over this process (terminal, Ctrl-C).
                os.execve(cmd[0], cmd, env)
            if query is None:  # stay, to delete the password file: Ctrl-C is the shell's
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            code = subprocess.run(cmd, env=env).returncode
        return EXIT_OK if code == 0 else EXIT_FAIL
    spark = _session(settings)
    spark.sql(query).show(args.limit, truncate=False)
    return EXIT_OK


def cmd_serve_sql(args: argparse.Namespace) -> int:
    from hodlflow.metastore import secret_properties_file
    from hodlflow.spark import check_metastore_usable
    from hodlflow.sql import (
        check_exposure,
        check_keystore,
        check_serve_files,
        jdbc_url,
        run_foreground,
        serve_secret_conf,
        spark_env,
        thrift_server_command,
    )
    from hodlflow.sqlauth import KEYSTORE_PASSWORD_ENV

    extra = {
        "serve.host": args.host,
        "serve.port": args.port,
        "serve.password_file": args.password_file,
        "serve.tls_keystore": args.tls_keystore,
        "serve.allow_unauthenticated": True if args.insecure_no_auth else None,
        "serve.tls_keystore_password": os.environ.get(KEYSTORE_PASSWORD_ENV) or None,
    }
    settings = _settings(args, extra)
    serve = settings.serve
    host, port = serve.host, serve.port
    check_exposure(serve)
    check_serve_files(serve)
    secret = serve_secret_conf(serve)
    check_keystore(serve)
    check_metastore_usable(settings)
    # The passwords reach spark-submit in the private properties file only: not through the
    # environment its JVM (and anything it starts) inherits either.
    env = spark_env(os.environ)
    for name in envvars.SECRETS:
        env.pop(name, None)
    with secret_properties_file(settings.spark.metastore, secret) as secrets:
        cmd = thrift_server_command(settings, host, port, secrets)
        logins = (
            f"logins: the users of {serve.password_file}"
            if serve.password_file
            else "no logins (anyone who reaches the port reads every table)"
        )
        tls = f"TLS: {serve.tls_keystore}" if serve.tls_keystore else "no TLS"
        user = " -n USER -w PASSWORD_FILE" if serve.password_file else ""
        print(
            f"Spark Thrift JDBC/ODBC server on {host}:{port} over {settings.warehouse} "
            f"(ready in ~20-30 s; Ctrl-C stops it)\n  {logins}; {tls}\n"
            f"  beeline -u '{jdbc_url(serve, host, port)}'{user}",
            flush=True,
        )
        code = run_foreground(cmd, env)
    return EXIT_OK if code == 0 else EXIT_FAIL


SERVE_USER_PASSWORD_ENV = envvars.SERVE_USER_PASSWORD


def _new_password(args: argparse.Namespace, environ=os.environ) -> str:
    """The new password of ``serve-sql-user add``: from the environment variable, standard
    input (``--password-stdin``: its first line) or typed twice at a prompt; never an
    argument (it would show in ``ps`` and the shell's history)."""
    import getpass

    if environ.get(SERVE_USER_PASSWORD_ENV):
        return environ[SERVE_USER_PASSWORD_ENV]
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise ConfigError(
            "no terminal to ask the password at: pass it on standard input with "
            f"--password-stdin, or in the environment variable {SERVE_USER_PASSWORD_ENV}"
        )
    first = getpass.getpass(f"password of {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ; nothing changed")
    return first


def cmd_serve_sql_user(args: argparse.Namespace) -> int:
    from hodlflow.sqlauth import check_user_name, read_password_file, remove_user, set_password

    settings = _settings(args, {"serve.password_file": args.password_file})
    path = settings.serve.password_file
    if not path:
        raise ConfigError(
            "no password file: set serve.password_file in conf/ (the file serve-sql reads) "
            "or pass --password-file PATH"
        )
    if args.action == "list":
        for entry in read_password_file(path):
            print(entry.user)
        return EXIT_OK
    if not args.name:
        raise ConfigError(f"serve-sql-user {args.action} needs the user NAME")
    check_user_name(args.name)
    if args.action == "remove":
        remove_user(path, args.name)
        print(f"user {args.name!r} removed from {path}")
        return EXIT_OK
    new = set_password(path, args.name, _new_password(args), args.iterations)
    print(
        f"user {args.name!r} {'added to' if new else 'given a new password in'} {path} (mode "
        "0600); a running serve-sql reads it at the next login"
    )
    return EXIT_OK


SIM_SETS = "--set check_pow=false --set ingest.start_hash=HASH --set ingest.start_height=N"

EPILOG = """\
steps, in pipeline order:
  simulate   write a simulated chain with ground truth        hodlflow simulate --scenario tiny --out sim
  ingest     blocks directory -> chain.*                       hodlflow ingest --blocks-dir ~/.bitcoin/blocks
  entities   chain.* -> entities.* (clusters, types, classes)  hodlflow entities
  prices     price CSV -> market.prices                        hodlflow prices sim/prices.csv
  metrics    chain.* + entities.* + prices -> metrics.*        hodlflow metrics
  report     metrics.* -> report.html + PNG charts             hodlflow report --out report
  check      reconcile the chain tables                        hodlflow check
  evaluate   score entities against a simulation's truth      hodlflow evaluate --sim sim
  evaluate-suite  several simulated markets, one table         hodlflow evaluate-suite --out suite-out
  maintain   OPTIMIZE + VACUUM every table                     hodlflow maintain
  sql        spark-sql shell, or one query (-e)                hodlflow sql -e "SELECT * FROM metrics.miner_pressure"
  serve-sql  Thrift JDBC/ODBC server for BI tools              hodlflow serve-sql --port 10000
  serve-sql-user  add/remove the logins of serve-sql           hodlflow serve-sql-user add analyst

settings: conf/hodlflow.yaml, overlaid by conf/environments/ENV.yaml (--env, default local or
$HODLFLOW_ENV), then by --conf-file FILE (YAML of the same shape), then --set key.path=value.
exit codes: 0 success, 1 failure (message on stderr), 2 usage or configuration error,
3 `tip --after`: the chain has not passed that time by the confirmation depth yet.
`hodlflow COMMAND --help` shows each command's options and examples.
"""


def _sub(sub, name: str, help: str, epilog: str, parents=(), description: str | None = None):
    return sub.add_parser(
        name,
        parents=list(parents),
        help=help,
        description=description or help,
        epilog="examples:\n" + epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    from hodlflow.sqlauth import DEFAULT_ITERATIONS as DEFAULT_PBKDF2_ITERATIONS
    from hodlflow.sqlauth import KEYSTORE_PASSWORD_ENV

    p = argparse.ArgumentParser(
        prog="hodlflow",
        description="Bitcoin on-chain analytics on Spark and Delta Lake: a node's blocks "
        "directory -> chain tables -> entities -> daily gold metrics, queried with Spark SQL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # --env/--set are accepted before or after the subcommand (spark-submit jobs pass them after).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", default=argparse.SUPPRESS,
                        help="settings environment from conf/environments/ (default: local, "
                        "or HODLFLOW_ENV)")  # fmt: skip
    common.add_argument("--conf-file", action="append", metavar="FILE", default=argparse.SUPPRESS,
                        help="YAML overlay of settings, same shape as conf/hodlflow.yaml "
                        "(an empty value is ignored)")  # fmt: skip
    common.add_argument("--warehouse", metavar="PATH", default=argparse.SUPPRESS,
                        help="warehouse.path: root of the tables and catalog (an empty value "
                        "is ignored)")  # fmt: skip
    common.add_argument("--set", action="append", metavar="KEY=VALUE", default=argparse.SUPPRESS,
                        help="override one setting, e.g. --set warehouse.path=/data/wh")  # fmt: skip
    p.add_argument("--env", default=os.environ.get("HODLFLOW_ENV", "local"), help=argparse.SUPPRESS)
    p.add_argument("--conf-file", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--warehouse", default=None, help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = _sub(sub, "inspect", "decode a raw block, hex block or blk*.dat file to JSON lines",
             "  hodlflow inspect ~/.bitcoin/blocks/blk00000.dat | head -3\n"
             "  hodlflow inspect block.hex --txs --network testnet\n")  # fmt: skip
    s.add_argument("path")
    s.add_argument("--txs", action="store_true", help="also one line per transaction")
    s.add_argument("--network", default="main", help="main, testnet, testnet4, signet, regtest")
    s.add_argument("--no-check", action="store_true", help="skip the merkle-root check")
    s.set_defaults(func=cmd_inspect)

    s = _sub(sub, "simulate", "write a simulated chain (blocks dir, prices, ground truth) from a scenario",
             "  hodlflow simulate --scenario conf/scenarios/tiny.yaml --out sim\n"
             "  hodlflow simulate --out sim --scale 26 --seed 1   # ~1M transactions\n",
             parents=[common])  # fmt: skip
    s.add_argument("--scenario", default=str(CONF_DIR / "scenarios" / "capitulation.yaml"),
                   help="scenario YAML (default: conf/scenarios/capitulation.yaml)")  # fmt: skip
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, help="override the scenario's seed")
    s.add_argument("--scale", type=float, help="multiply the scenario's activity")
    s.add_argument("--no-xor", action="store_true", help="write no xor.dat obfuscation key")
    s.set_defaults(func=cmd_simulate)

    s = _sub(sub, "ingest", "blocks directory or a running node -> chain.blocks/transactions/outputs/inputs/unspent",
             "  hodlflow ingest --blocks-dir ~/.bitcoin/blocks             # resume to the tip\n"
             "  hodlflow ingest --rpc http://127.0.0.1:8332 --rpc-cookie ~/.bitcoin/.cookie  # follow a node\n"
             f"  {RPC_PASSWORD_ENV}=... hodlflow ingest --rpc http://127.0.0.1:8332 --rpc-user me\n"
             "  hodlflow ingest --until 2025-03-02                         # blocks before that UTC midnight\n"
             "  hodlflow ingest --chunk-blocks 10000                       # backfill, resumable per chunk\n"
             "  hodlflow ingest --start-height 880000 --end-height 880143  # re-ingest a range\n"
             f"  hodlflow ingest --blocks-dir sim/blocks {SIM_SETS}\n",
             parents=[common],
             description="Read the best chain of a Bitcoin Core blocks directory (xor.dat, blocks "
             "out of order, stale blocks dropped) into the chain tables. Without a range it "
             "resumes after the last stored height; heights already stored are never rolled back "
             "by a lower end, so re-running a finished range changes nothing. With --rpc it "
             "follows a running node (Bitcoin Core or btcd) over JSON-RPC up to its tip minus "
             "ingest.rpc.confirmations; reorged heights are rolled back and rewritten. With "
             f"--rpc-user the password comes from the environment variable {RPC_PASSWORD_ENV} "
             "(or the setting ingest.rpc.password), never from the command line.")  # fmt: skip
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
    s.add_argument("--until", type=_timestamp, metavar="TIME",
                   help="stop before the first block whose time is at or after TIME (a date = "
                   "its UTC midnight, or an ISO date-time): the end of a scheduler's interval")  # fmt: skip
    s.add_argument("--chunk-blocks", type=int, metavar="N",
                   help="ingest in atomic steps of N heights (a bulk backfill that dies resumes "
                   "after the last finished step)")  # fmt: skip
    s.set_defaults(func=cmd_ingest)

    s = _sub(sub, "tip", "print the blocks directory's best-chain tip (headers only, no Spark)",
             "  hodlflow tip --blocks-dir ~/.bitcoin/blocks\n"
             "  hodlflow tip --after 2025-03-02 --confirmations 6 && echo 'day 2025-03-01 is final'\n",
             parents=[common],
             description="Print the best chain's last height, hash and time as JSON. With --after "
             "TIME it also says whether the first block at or after TIME has the confirmation "
             "depth (ingest.confirmations): exit 0 when it has, 3 when not yet.")  # fmt: skip
    s.add_argument("--blocks-dir", help="Bitcoin Core blocks/ directory (ingest.blocks_dir)")
    s.add_argument("--network", help="override the network setting")
    s.add_argument("--after", type=_timestamp, metavar="TIME",
                   help="a date (its UTC midnight) or an ISO date-time")  # fmt: skip
    s.add_argument("--confirmations", type=int, help="override ingest.confirmations")
    s.set_defaults(func=cmd_tip)

    s = _sub(sub, "entities", "chain tables -> entities.* (address clusters, types, labels, holder classes)",
             "  hodlflow entities                     # resume after the last run\n"
             "  hodlflow entities --end-height 880143\n"
             "  hodlflow entities --from-height 880000  # re-process from the run holding it\n",
             parents=[common],
             description="Cluster addresses into entities (common-input ownership, coinjoins "
             "excluded), type them (miners from coinbases and pool tags, exchanges from label seeds "
             "and sweeps, coinjoins) and class holders per day. Resumes after the last run; a reorg "
             "or new blocks of a day already processed re-process from there.")  # fmt: skip
    s.add_argument("--from-height", type=int,
                   help="re-process from the run holding this height (default: resume)")  # fmt: skip
    s.add_argument("--end-height", type=int, help="last height (default: the chain tables' tip)")
    s.set_defaults(func=cmd_entities)

    s = _sub(sub, "prices", "load a daily price CSV (day,close_usd) into market.prices",
             "  hodlflow prices sim/prices.csv\n", parents=[common],
             description="Check a CSV of daily close prices (header day,close_usd; every day between "
             "the first and the last, once, with a positive price) and replace those days in "
             "market.prices. `hodlflow simulate` writes one (prices.csv).")  # fmt: skip
    s.add_argument("file", help="CSV with header day,close_usd")
    s.set_defaults(func=cmd_prices)

    s = _sub(sub, "metrics", "chain tables + entities + market.prices -> metrics.* (gold tables)",
             "  hodlflow metrics\n"
             "  hodlflow metrics --prices sim/prices.csv      # load prices first, then compute\n"
             "  hodlflow metrics --from-day 2025-03-01        # recompute after new prices\n",
             parents=[common],
             description="Compute the daily gold tables from the last stored day to the chain "
             "tables' last day: metrics.miner_pressure (revenue, hash rate, hash ribbons, hashprice, "
             "production cost, price/cost, Puell multiple, MPI, miner reserve), "
             "metrics.entity_flows, metrics.exchange_flows, metrics.holder_migration "
             "(weak→strong, LTH maturing, concentration), metrics.supply_cohorts (HODL waves, "
             "LTH/STH, realized cap, MVRV, CDD, SOPR), metrics.entity_balance_cohorts. Also "
             "recomputes the days a reorg or a newer entities run changed.")  # fmt: skip
    s.add_argument("--from-day", help="recompute from this day (YYYY-MM-DD), e.g. after new prices")
    s.add_argument("--prices", metavar="CSV", help="load this price CSV into market.prices first")
    s.set_defaults(func=cmd_metrics)

    s = _sub(sub, "report", "draw the gold tables: one self-contained report.html plus a PNG per chart",
             "  hodlflow report                                    # every day, into ./report\n"
             "  hodlflow report --out /tmp/r --from 2025-01-01     # from a day to the last\n"
             "  hodlflow report --from 2024-03-01 --to 2024-06-30  # one range\n"
             "  chromium report/report.html                        # opens offline\n",
             parents=[common],
             description="Read metrics.miner_pressure, metrics.holder_migration, "
             "metrics.supply_cohorts, metrics.exchange_flows and market.prices and write "
             "OUT/report.html: key facts (first day the price closed below the production cost, "
             "miner outflow around it, ...) and seven charts: price vs production cost, miner outflow "
             "and MPI, weak -> strong migration, what strong and weak hands hold, "
             "long/short-term holder supply, HODL waves, "
             "exchange balance. The page embeds its data and draws the charts itself: no network "
             "is needed to open it. The same charts are written as OUT/<chart>.png. A range "
             "longer than report.max_daily_points days is charted by week (weekly means). A gap "
             "in a line is a day without data (no price, or past the entities step's last day). "
             "Run `hodlflow metrics` first.")  # fmt: skip
    s.add_argument("--out", default="report", metavar="DIR",
                   help="folder for report.html and the PNGs (default: ./report)")  # fmt: skip
    s.add_argument("--from", dest="from_day", type=_day, metavar="DAY",
                   help="first day, YYYY-MM-DD (default: the first day of the gold tables)")  # fmt: skip
    s.add_argument("--to", dest="to_day", type=_day, metavar="DAY",
                   help="last day, YYYY-MM-DD (default: the last day of the gold tables)")  # fmt: skip
    s.set_defaults(func=cmd_report)

    s = _sub(sub, "check", "reconcile the chain tables (supply, spends, fees); exit 1 on a mismatch",
             "  hodlflow check || echo 'chain tables inconsistent'\n", parents=[common])  # fmt: skip
    s.set_defaults(func=cmd_check)

    s = _sub(sub, "evaluate", "score the entities against a simulation's ground truth",
             "  hodlflow evaluate --sim sim\n", parents=[common],
             description="Pairwise precision/recall and adjusted Rand index of the clustering, "
             "miner/exchange/coinjoin recall and precision, holder-class accuracy, against "
             "<sim>/truth/addresses.csv of `hodlflow simulate`.")  # fmt: skip
    s.add_argument("--sim", required=True, help="output folder of `hodlflow simulate`")
    s.set_defaults(func=cmd_evaluate)

    s = _sub(sub, "evaluate-suite",
             "simulate, process and evaluate several markets; one table of the measures",
             "  hodlflow evaluate-suite --out suite-out              # capitulation, distribution, 3 random\n"
             "  hodlflow evaluate-suite --out /tmp/s --seed 7 --random 5\n"
             "  hodlflow evaluate-suite --out /tmp/q --quick --random 2   # tiny random ones only\n",
             parents=[common],
             description="Runs capitulation, distribution and N scenarios drawn from --seed "
             "(simulate -> ingest -> entities -> metrics -> evaluate, each in OUT/<scenario>/, "
             "its scenario.yaml written there) in one Spark session and prints one table: "
             "clustering precision and ARI, exchange and miner recall, holder decisions, net "
             "weak->strong migration against the truth, exchange and miner flow errors, the "
             "worst of each and whether its goal is met. The same seed gives the same table.")  # fmt: skip
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
    s.set_defaults(func=cmd_evaluate_suite)

    s = _sub(sub, "maintain", "compact (OPTIMIZE) and clean (VACUUM) every Delta table",
             "  hodlflow maintain\n"
             "  hodlflow maintain --set maintenance.vacuum_retention_hours=336\n",
             parents=[common],
             description="OPTIMIZE every existing table, then VACUUM files older than "
             "maintenance.vacuum_retention_hours (at least 168). Table contents do not change.")  # fmt: skip
    s.set_defaults(func=cmd_maintain)

    s = _sub(sub, "sql", "open the spark-sql shell on the project's catalog, or run one query",
             "  hodlflow sql                                          # interactive spark-sql\n"
             "  hodlflow sql -e 'SHOW TABLES IN metrics'              # one query, through PySpark\n"
             "  hodlflow sql -e 'SELECT * FROM chain.blocks LIMIT 5' --spark-sql\n"
             "  hodlflow sql 'SELECT day, price_to_cost FROM metrics.miner_pressure' --limit 500\n",
             parents=[common],
             description="Without a query: the spark-sql shell (pyspark's bin/spark-sql) on the same "
             "warehouse and metastore, Delta loaded from the jar cache. With a query: run it "
             "through PySpark and print up to --limit rows (--spark-sql: through spark-sql).")  # fmt: skip
    s.add_argument("query", nargs="?", help="the query (same as -e)")
    s.add_argument("-e", "--execute", metavar="QUERY", help="run this query and exit")
    s.add_argument("--limit", type=int, default=50, help="rows to print (PySpark; default 50)")
    s.add_argument("--spark-sql", action="store_true", help="run -e QUERY through spark-sql")
    s.set_defaults(func=cmd_sql)

    s = _sub(sub, "serve-sql", "serve the catalog to BI tools over JDBC/ODBC (Spark Thrift server)",
             "  hodlflow serve-sql                               # 127.0.0.1:10000 (conf: serve.*)\n"
             "  hodlflow serve-sql --host 0.0.0.0 --port 10001\n"
             "  beeline -u jdbc:hive2://127.0.0.1:10000/default -e 'SELECT * FROM metrics.miner_pressure'\n",
             parents=[common],
             description="Start Spark's Thrift JDBC/ODBC server (HiveThriftServer2) in the "
             "foreground over the project's warehouse and metastore; Ctrl-C or SIGTERM stops it. "
             "With the default embedded Derby metastore no other Spark process can open the "
             "catalog while it runs.")  # fmt: skip
    s.add_argument("--host", help="bind address (serve.host, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (serve.port, default 10000)")
    s.add_argument(
        "--password-file",
        metavar="PATH",
        help="require logins of the users in this file (serve.password_file; "
        "`hodlflow serve-sql-user add NAME` writes it)",
    )
    s.add_argument(
        "--tls-keystore",
        metavar="PATH",
        help="speak TLS with this Java keystore (serve.tls_keystore); its password "
        f"from ${KEYSTORE_PASSWORD_ENV}",
    )
    s.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="listen on a non-loopback host without logins "
        "(serve.allow_unauthenticated); refused otherwise",
    )
    s.set_defaults(func=cmd_serve_sql)

    s = _sub(sub, "serve-sql-user", "add, change or remove a login of serve-sql",
             "  hodlflow serve-sql-user add analyst                       # asks the password twice\n"
             "  printf '%s\\n' \"$PW\" | hodlflow serve-sql-user add analyst --password-stdin\n"
             "  hodlflow serve-sql-user remove analyst\n"
             "  hodlflow serve-sql-user list --password-file /etc/hodlflow/users\n",
             parents=[common],
             description="Maintain the password file of serve-sql (serve.password_file, or "
             "--password-file): one line per user with a salted PBKDF2-HMAC-SHA256 hash, mode "
             "0600. The password is asked at the terminal, read from standard input "
             f"(--password-stdin) or from ${SERVE_USER_PASSWORD_ENV}; never an argument. A "
             "running server reads the file at each login.")  # fmt: skip
    s.add_argument(
        "action",
        choices=("add", "remove", "list"),
        help="add (or change the password of) a user, remove one, list the names",
    )
    s.add_argument("name", nargs="?", help="the user name (add, remove)")
    s.add_argument("--password-file", metavar="PATH", help="the file (serve.password_file)")
    s.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input's first line",
    )
    s.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_PBKDF2_ITERATIONS,
        help=f"PBKDF2 iterations (default {DEFAULT_PBKDF2_ITERATIONS:,})",
    )
    s.set_defaults(func=cmd_serve_sql_user)

    s = _sub(sub, "fetch-jars", "cache the Delta Lake jars from Maven Central (once)",
             "  hodlflow fetch-jars\n", parents=[common])  # fmt: skip
    s.set_defaults(func=cmd_fetch_jars)

    s = _sub(sub, "demo", "build a small chain, run every step, show the tables",
             "  hodlflow demo --out demo-out\n", parents=[common])  # fmt: skip
    s.add_argument("--out", default="demo-out", help="where the simulated chain goes")
    s.add_argument("--scenario", default=str(CONF_DIR / "scenarios" / "capitulation.yaml"))
    s.set_defaults(func=cmd_demo)
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

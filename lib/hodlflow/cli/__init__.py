"""The ``hodlflow`` command: parses options and calls one library function per subcommand.

Settings come from ``conf/`` (``--env`` picks the environment overlay, default from
HODLFLOW_ENV or ``local``); ``--set key.path=value`` overrides single settings. The commands
live in :mod:`hodlflow.cli.steps` (the pipeline) and :mod:`hodlflow.cli.serving` (SQL); what
they share in :mod:`hodlflow.cli.options`; a command's help is its function's docstring.
"""

from __future__ import annotations

import argparse
import sys

from hodlflow.cli import serving, steps
from hodlflow.cli.options import (
    EXIT_FAIL,
    EXIT_NOT_YET,
    EXIT_OK,
    EXIT_USAGE,
    add_top_level_options,
    common_options,
)
from hodlflow.config import ConfigError

__all__ = ["EXIT_FAIL", "EXIT_NOT_YET", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

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


def build_parser() -> argparse.ArgumentParser:
    """The ``hodlflow`` parser: shared options, then one subcommand per step."""
    p = argparse.ArgumentParser(
        prog="hodlflow",
        description="Bitcoin on-chain analytics on Spark and Delta Lake: a node's blocks "
        "directory -> chain tables -> entities -> daily gold metrics, queried with Spark SQL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_top_level_options(p)
    common = common_options()
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    steps.register(sub, common)
    serving.register(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``hodlflow`` with ``argv``; the exit code (0 ok, 1 failure, 2 usage or
    configuration, 3 not yet)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"hodlflow: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"hodlflow {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAIL

"""What every command shares: settings from the command line, exit codes, value parsers, the
Spark session, and a subcommand built from its function's docstring."""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
from collections.abc import Callable

from hodlflow import envvars
from hodlflow.config import ConfigError, Settings, load_settings, read_overlay

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# `hodlflow tip --after`: the chain has not passed that time by the confirmation depth yet.
EXIT_NOT_YET = 3


# The options every command takes, before or after its name: (flag, argparse keywords, help).
COMMON_OPTIONS = (
    ("--env", {}, "settings environment from conf/environments/ (default: local, or HODLFLOW_ENV)"),
    ("--conf-file", {"action": "append", "metavar": "FILE"},
     "YAML overlay of settings, same shape as conf/hodlflow.yaml (an empty value is ignored)"),
    ("--warehouse", {"metavar": "PATH"},
     "warehouse.path: root of the tables and catalog (an empty value is ignored)"),
    ("--set", {"action": "append", "metavar": "KEY=VALUE"},
     "override one setting, e.g. --set warehouse.path=/data/wh"),
)  # fmt: skip


def common_options() -> argparse.ArgumentParser:
    """:data:`COMMON_OPTIONS` after the subcommand (spark-submit jobs pass them there)."""
    common = argparse.ArgumentParser(add_help=False)
    for flag, extra, text in COMMON_OPTIONS:
        common.add_argument(flag, default=argparse.SUPPRESS, help=text, **extra)
    return common


def add_top_level_options(p: argparse.ArgumentParser) -> None:
    """:data:`COMMON_OPTIONS` before the subcommand, with their defaults."""
    defaults = {"--env": os.environ.get("HODLFLOW_ENV", "local"), "--conf-file": [],
                "--warehouse": None, "--set": []}  # fmt: skip
    for flag, extra, _text in COMMON_OPTIONS:
        action = {"action": extra["action"]} if "action" in extra else {}
        p.add_argument(flag, default=defaults[flag], help=argparse.SUPPRESS, **action)


def settings_from(args: argparse.Namespace, extra: dict | None = None) -> Settings:
    """The settings of a command: conf/ for ``--env``, then each ``--conf-file``, then
    ``--warehouse``, each ``--set``, ``extra`` (the command's own options; None values are
    skipped) and the metastore password from its environment variable."""
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
        overrides[k] = scalar(v)
    overrides.update({k: v for k, v in (extra or {}).items() if v is not None})
    if os.environ.get(envvars.METASTORE_PASSWORD):
        overrides["spark.metastore.password"] = os.environ[envvars.METASTORE_PASSWORD]
    return load_settings(args.env, overrides)


def scalar(text: str):
    """A ``--set`` value: true/false, null/none, an integer, else the text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        return text


def session(settings: Settings):
    """The Spark session of a command (:func:`hodlflow.spark.build_session`), quiet."""
    from hodlflow.spark import build_session

    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def timestamp(text: str) -> int | None:
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


def day(text: str) -> dt.date:
    """A day YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day YYYY-MM-DD, got {text!r}") from None


def command(
    sub, name: str, fn: Callable[[argparse.Namespace], int], examples: str, parents=()
) -> argparse.ArgumentParser:
    """The subcommand ``name`` running ``fn``: its one-line help is the first line of ``fn``'s
    docstring, its description the whole docstring, ``examples`` its epilog. ``{envvars.X}``
    in either stands for the name of the environment variable :data:`hodlflow.envvars.X`."""
    doc = with_envvars(inspect.cleandoc(fn.__doc__ or ""))
    if not doc:
        raise TypeError(f"command {name}: {fn.__qualname__} has no docstring to show as its help")
    s = sub.add_parser(
        name,
        parents=list(parents),
        help=doc.splitlines()[0],
        description=doc,
        epilog="examples:\n" + with_envvars(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.set_defaults(func=fn)
    return s


def with_envvars(text: str) -> str:
    """``text`` with each ``{envvars.X}`` replaced by :data:`hodlflow.envvars.X`."""
    for key, value in vars(envvars).items():
        if key.isupper() and isinstance(value, str):
            text = text.replace(f"{{envvars.{key}}}", value)
    return text

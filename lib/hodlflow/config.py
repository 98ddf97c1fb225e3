"""Typed settings loaded from ``conf/``.

``conf/hodlflow.yaml`` holds the defaults; ``conf/environments/<env>.yaml`` overlays it; the
command line overrides single keys with ``key.path=value``. The library never reads environment
variables: callers pass a :class:`Settings` explicitly.

A new setting is one field in its section's class below (its check in ``setting(...)``) and its
default, with a comment for users, in ``conf/hodlflow.yaml``; tests/unit/test_config.py checks
that the two list the same keys.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from hodlflow import envvars
from hodlflow.paths import local_path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value; the message names it."""


# --- how a setting is declared --------------------------------------------------------------
# Each settings class below declares its keys once, as dataclass fields: the field's name is the
# key, its ``setting(parse)`` metadata says how a value is checked and converted, and a field
# holding another settings class is a nested section. Reading a section, refusing unknown keys
# and naming a bad value by its dotted path all follow from the declarations (:func:`_build`).
# Defaults live in conf/hodlflow.yaml; ``absent`` is what a key missing there stands for.
# A rule across keys of one section is that class's ``_check`` (run once the section is built).


@dataclass(frozen=True)
class _Spec:
    parse: Callable[[Any, str], Any]  # (value, dotted name) -> the setting, or ConfigError
    absent: Any = None  # the value of a key the mapping does not hold


def setting(parse: Callable[[Any, str], Any], absent: Any = None, **kw: Any) -> Any:
    """A declared setting: ``parse(value, name)`` checks and converts it."""
    return field(metadata={"setting": _Spec(parse, absent)}, **kw)


def section(optional: bool = False) -> Any:
    """A nested section (a field whose type is a settings class); ``optional``: a missing or
    null one reads as empty."""
    return field(metadata={"section": optional})


def number(kind: type, low: float, high: float | None = None) -> Callable[[Any, str], Any]:
    """An int (``kind`` int: no float, no bool) or a number, ≥ ``low`` and ≤ ``high``."""

    def parse(value: Any, name: str) -> Any:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            bounds = f"≥ {low}" + (f" and ≤ {high}" if high is not None else "")
            raise ConfigError(f"setting {name} must be a number {bounds}, got {value!r}")
        return kind(value)

    return parse


def positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"setting {name} must be a positive integer, got {value!r}")
    return int(value)


def boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"setting {name} must be true or false, got {value!r}")


def paths(value: Any, name: str) -> tuple[str, ...]:
    """A list of paths, or one comma-separated string of them (``--set a=x,y``); null = none."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"setting {name} must be a list of paths, got {value!r}")
    return tuple(value)


def names_of(known: tuple[str, ...], what: str) -> Callable[[Any, str], tuple[str, ...]]:
    """A list (as :func:`paths`) of names out of ``known``."""

    def parse(value: Any, name: str) -> tuple[str, ...]:
        chosen = paths(value, name)
        unknown = [h for h in chosen if h not in known]
        if unknown:
            raise ConfigError(f"unknown {what}(s) {unknown} in {name}; known: {list(known)}")
        return chosen

    return parse


def one_of(known: tuple[str, ...]) -> Callable[[Any, str], str]:
    def parse(value: Any, name: str) -> str:
        if value not in known:
            raise ConfigError(f"setting {name} must be one of {known}, got {value!r}")
        return value

    return parse


def as_is(value: Any, _name: str) -> Any:
    """Taken as written (a path, a URL or null)."""
    return value


def text(value: Any, _name: str) -> str:
    return str(value)


def text_or_none(value: Any, _name: str) -> str | None:
    """Empty or null reads as not set."""
    return str(value) if value not in (None, "") else None


def spark_conf(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"setting {name} must be a mapping, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _build(cls: type, raw: Any, where: str = "") -> Any:
    """An instance of the settings class ``cls`` from the mapping ``raw`` found at ``where``
    (the dotted path of the section; empty at the top)."""
    label = where or "settings"
    if not isinstance(raw, dict):
        raise ConfigError(f"setting {label!r} must be a mapping, got {raw!r}")
    declared = fields(cls)
    known = {f.name for f in declared}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} in {label}; known: {sorted(known)}")
    types = get_type_hints(cls)
    values = {}
    for f in declared:
        name = f"{where}.{f.name}" if where else f.name
        if "section" in f.metadata:
            sub = raw.get(f.name)
            if f.metadata["section"] and sub is None:  # optional: absent or null is empty
                sub = {}
            values[f.name] = _build(types[f.name], sub, name)
        else:
            spec = f.metadata["setting"]
            values[f.name] = spec.parse(raw.get(f.name, spec.absent), name)
    built = cls(**values)
    check = getattr(built, "_check", None)
    if check is not None:
        check()
    return built


# --- the settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MetastoreSettings:
    """``spark.metastore``: the Hive metastore database every Spark start shares. ``derby`` =
    embedded, one process at a time; ``postgres`` = a PostgreSQL database at ``url``.
    ``password`` never shows in ``repr``."""

    kind: str = setting(lambda v, n: one_of(METASTORE_KINDS)(str(v or "derby"), n))
    url: str | None = setting(text_or_none)
    user: str | None = setting(text_or_none)
    password: str | None = setting(text_or_none, repr=False)

    def _check(self) -> None:
        if self.kind != "postgres":
            return
        if not isinstance(self.url, str) or not self.url.startswith("jdbc:postgresql://"):
            raise ConfigError(
                "setting spark.metastore.url must be jdbc:postgresql://host[:port]/database "
                f"when spark.metastore.kind=postgres, got {self.url!r}"
            )
        if "password=" in self.url.lower():
            # The URL is shown in messages and on command lines: the password goes elsewhere.
            raise ConfigError(
                "setting spark.metastore.url must not hold the password: put it in the "
                f"environment variable {envvars.METASTORE_PASSWORD} (or spark.metastore.password)"
            )
        if not self.user:
            raise ConfigError(
                "setting spark.metastore.user is needed when spark.metastore.kind=postgres"
            )


METASTORE_KINDS = ("derby", "postgres")


@dataclass(frozen=True)
class SparkSettings:
    master: str | None = setting(as_is)
    app_name: str = setting(text, absent="hodlflow")
    jars_cache: str = setting(text)
    metastore_dir: str | None = setting(as_is)
    metastore: MetastoreSettings = section(optional=True)
    conf: dict[str, str] = setting(spark_conf)


@dataclass(frozen=True)
class RpcSettings:
    """``ingest.rpc``: the node to follow. ``password`` never shows in ``repr``."""

    url: str | None = setting(lambda v, _n: v or None)
    cookie_file: str | None = setting(lambda v, _n: v or None)
    user: str | None = setting(lambda v, _n: v or None)
    password: str | None = setting(text_or_none, repr=False)
    confirmations: int = setting(number(int, 0))
    blocks_per_task: int = setting(number(int, 1))
    batch_blocks: int = setting(number(int, 1))
    timeout_s: float = setting(number(float, 0.001))
    retries: int = setting(number(int, 0))

    def _check(self) -> None:
        if self.cookie_file and self.user:
            raise ConfigError("set either ingest.rpc.cookie_file or ingest.rpc.user, not both")


@dataclass(frozen=True)
class IngestSettings:
    blocks_dir: str | None = setting(as_is)
    start_hash: str | None = setting(as_is)
    start_height: int = setting(lambda v, _n: int(v or 0))
    blocks_per_task: int = setting(positive_int)
    task_mb: float = setting(number(float, 0.001))
    confirmations: int = setting(number(int, 1))
    rpc: RpcSettings = section()


@dataclass(frozen=True)
class HolderSettings:
    lth_days: float = setting(number(float, 0))
    strong_min_weight: float = setting(number(float, 0, 1))
    accumulation_min_receives: int = setting(number(int, 0))
    large_holder_min_btc: float = setting(number(float, 0))
    held_days: float = setting(number(float, 0))
    seller_min_hold_days: float = setting(number(float, 0))
    revision_days: int = setting(number(int, 0))


CHANGE_HEURISTICS = (
    "fresh_change",
    "script_type_change",
    "peel_change",
    "deposit_change",
    "fingerprint_change",
)
# The heuristics that read the chain tables days before a run (entities.transforms.window_edges).
WINDOW_CHANGE_HEURISTICS = ("peel_change", "deposit_change", "fingerprint_change")


@dataclass(frozen=True)
class EntitiesSettings:
    pools: tuple[str, ...] = setting(paths)
    label_seeds: tuple[str, ...] = setting(paths)
    change_heuristics: tuple[str, ...] = setting(names_of(CHANGE_HEURISTICS, "change heuristic"))
    peel_min_ratio: float = setting(number(float, 1))
    peel_max_days: int = setting(number(int, 0))
    deposit_max_days: int = setting(number(int, 0))
    fingerprint_max_days: int = setting(number(int, 0))
    checkpoint_dir: str | None = setting(as_is)
    sweep_min_inputs: int = setting(number(int, 2))
    exchange_min_sweeps: int = setting(number(int, 1))
    exchange_min_addresses: int = setting(number(int, 1))
    exchange_flow_min_share: float = setting(number(float, 0, 1))
    exchange_min_peel_steps: int = setting(number(int, 0))
    exchange_peel_days: int = setting(number(int, 1))
    hot_wallet_type_change: bool = setting(boolean)
    one_hop_min_share: float = setting(number(float, 0, 1))
    coinjoin_min_share: float = setting(number(float, 0, 1))
    retype_days: int = setting(number(int, 0))
    holder: HolderSettings = section()


@dataclass(frozen=True)
class CostSettings:
    efficiency_j_per_th: float = setting(number(float, 0))
    power_usd_per_kwh: float = setting(number(float, 0))
    pue: float = setting(number(float, 1))


@dataclass(frozen=True)
class MetricsSettings:
    cost: CostSettings = section()


# Delta refuses VACUUM under 7 days without disabling its safety check; failed steps and
# entities runs are rolled back by restoring earlier table versions, which needs their files.
MIN_VACUUM_RETENTION_HOURS = 168
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


@dataclass(frozen=True)
class MaintenanceSettings:
    # An integer ≥ MIN_VACUUM_RETENTION_HOURS, or ≥ 0 where Delta's own check is off: a rule
    # across sections, checked by Settings._check.
    vacuum_retention_hours: int = setting(as_is)
    optimize_min_files: int = setting(number(int, 1))
    parallel_tables: int = setting(number(int, 1))


def _host(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"setting {name} must be a host name or address, got {value!r}")
    return value


@dataclass(frozen=True)
class ServeSettings:
    """``serve``: where ``hodlflow serve-sql`` listens and who may log in
    (docs/sql-and-bi.md). ``password_file``: users and password hashes (``hodlflow
    serve-sql-user``), logins required when set; ``allow_unauthenticated``: bind a non-loopback
    host without logins anyway; ``tls_keystore``: a Java keystore (PKCS12 or JKS) whose key
    and certificate the server speaks TLS with, its password in ``tls_keystore_password``
    (from ``envvars.SERVE_KEYSTORE_PASSWORD``; never shows in ``repr``)."""

    host: str = setting(_host)
    port: int = setting(number(int, 1, 65535))
    password_file: str | None = setting(text_or_none)
    allow_unauthenticated: bool = setting(boolean, absent=False)
    tls_keystore: str | None = setting(text_or_none)
    tls_keystore_password: str | None = setting(text_or_none, repr=False)

    def _check(self) -> None:
        if self.tls_keystore_password and not self.tls_keystore:
            raise ConfigError(
                "setting serve.tls_keystore_password is set but serve.tls_keystore is not: "
                "name the keystore (serve.tls_keystore or serve-sql --tls-keystore)"
            )


@dataclass(frozen=True)
class ReportSettings:
    max_daily_points: int = setting(number(int, 2))


@dataclass(frozen=True)
class WarehouseSettings:
    """``warehouse``: read as a section, kept on :class:`Settings` as ``warehouse`` (the path)
    and ``db_prefix``."""

    path: str = setting(text)
    db_prefix: str = setting(lambda v, _n: str(v or ""))


def _network(value: Any, name: str) -> str:
    from hodlflow.chain.network import NETWORKS

    network = str(value)
    if network not in NETWORKS:
        raise ConfigError(f"setting {name}={network!r} is not one of {sorted(NETWORKS)}")
    return network


@dataclass(frozen=True)
class _Root:
    """The top level of the settings mapping, as declared; :class:`Settings` is built from it."""

    network: str = setting(_network)
    check_pow: bool = setting(boolean, absent=True)
    warehouse: WarehouseSettings = section()
    spark: SparkSettings = section()
    ingest: IngestSettings = section()
    entities: EntitiesSettings = section()
    metrics: MetricsSettings = section()
    maintenance: MaintenanceSettings = section()
    serve: ServeSettings = section()
    report: ReportSettings = section()


@dataclass(frozen=True)
class Settings:
    network: str
    check_pow: bool
    warehouse: str
    db_prefix: str
    spark: SparkSettings
    ingest: IngestSettings
    entities: EntitiesSettings
    metrics: MetricsSettings
    maintenance: MaintenanceSettings
    serve: ServeSettings
    report: ReportSettings
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """Return new settings with dotted keys replaced (``{"ingest.blocks_dir": "x"}``)."""
        raw = copy.deepcopy(self.raw)
        for key, value in overrides.items():
            _set_dotted(raw, key, value)
        return settings_from_dict(raw)

    def _check(self) -> None:
        # Below the floor only where Delta's own safety check is switched off on purpose (tests).
        delta_check = self.spark.conf.get(RETENTION_CHECK, "true").lower() != "false"
        floor = MIN_VACUUM_RETENTION_HOURS if delta_check else 0
        number(int, floor)(
            self.maintenance.vacuum_retention_hours, "maintenance.vacuum_retention_hours"
        )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            # spark.conf keys contain dots themselves: the rest of the key is one name.
            if isinstance(node, dict) and part == "conf":
                break
            raise ConfigError(
                f"unknown setting {key!r}: {'.'.join(parts[: i + 1])!r} is not a section"
            )
        node = nxt
        if part == "conf":
            node[".".join(parts[i + 1 :])] = value
            return
    node[parts[-1]] = value


def settings_from_dict(raw: dict[str, Any]) -> Settings:
    """Validate a merged settings mapping and build :class:`Settings`."""
    root = _build(_Root, raw)
    settings = Settings(
        network=root.network,
        check_pow=root.check_pow,
        warehouse=root.warehouse.path,
        db_prefix=root.warehouse.db_prefix,
        spark=root.spark,
        ingest=root.ingest,
        entities=root.entities,
        metrics=root.metrics,
        maintenance=root.maintenance,
        serve=root.serve,
        report=root.report,
        raw=raw,
    )
    settings._check()
    return settings


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make relative local paths absolute against the project root (URIs stay as they are)."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and "://" not in value and not Path(value).is_absolute():
            return str((base / value).resolve())
        return value

    raw["warehouse"]["path"] = fix(raw["warehouse"]["path"])
    ent = raw.get("entities")
    if isinstance(ent, dict):
        for key in ("pools", "label_seeds"):
            value = ent.get(key)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            if isinstance(value, list):
                # Relative to where the command runs, else to the checkout (the conf/ defaults).
                ent[key] = [
                    v
                    if not isinstance(v, str) or (base / v).exists()
                    else str((PROJECT_ROOT / v).resolve())
                    if (PROJECT_ROOT / v).exists()
                    else v
                    for v in value
                ]
                ent[key] = [fix(v) for v in ent[key]]
    jars = raw["spark"]["jars_cache"]
    if not Path(jars).is_absolute():
        # The jar cache belongs to the checkout, wherever the command runs from.
        raw["spark"]["jars_cache"] = str((PROJECT_ROOT / jars).resolve())


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (the keys ``--set`` takes); lists stay values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_overlay(path: str) -> dict[str, Any]:
    """Read a settings overlay file (YAML, same shape as conf/hodlflow.yaml) as dotted keys."""
    try:
        raw = yaml.safe_load(Path(local_path(path, "--conf-file")).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings file {path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"settings file {path} must hold a mapping, got {type(raw).__name__}")
    return flatten(raw)


def load_settings(
    env: str = "local",
    overrides: dict[str, Any] | None = None,
    conf_dir: Path = CONF_DIR,
) -> Settings:
    """Load ``conf/hodlflow.yaml`` overlaid with ``conf/environments/<env>.yaml`` and overrides.

    Example::

        settings = load_settings("test", {"warehouse.path": "/tmp/wh"})
    """
    base_file = conf_dir / "hodlflow.yaml"
    raw = yaml.safe_load(base_file.read_text()) or {}
    env_file = conf_dir / "environments" / f"{env}.yaml"
    if not env_file.exists():
        known = sorted(p.stem for p in (conf_dir / "environments").glob("*.yaml"))
        raise ConfigError(f"unknown environment {env!r}: no {env_file}; known: {known}")
    raw = _merge(raw, yaml.safe_load(env_file.read_text()) or {})
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    _resolve_paths(raw, Path.cwd())
    return settings_from_dict(raw)

"""Typed settings loaded from ``conf/``.

``conf/hodlflow.yaml`` holds the defaults; ``conf/environments/<env>.yaml`` overlays it; the
command line overrides single keys with ``key.path=value``. The library never reads environment
variables: callers pass a :class:`Settings` explicitly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hodlflow.paths import local_path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value; the message names it."""


@dataclass(frozen=True)
class MetastoreSettings:
    """``spark.metastore``: the Hive metastore database every Spark start shares. ``derby`` =
    embedded, one process at a time; ``postgres`` = a PostgreSQL database at ``url``.
    ``password`` never shows in ``repr``."""

    kind: str
    url: str | None
    user: str | None
    password: str | None = field(repr=False)


METASTORE_KINDS = ("derby", "postgres")


@dataclass(frozen=True)
class SparkSettings:
    master: str | None
    app_name: str
    jars_cache: str
    metastore_dir: str | None
    metastore: MetastoreSettings
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RpcSettings:
    """``ingest.rpc``: the node to follow. ``password`` never shows in ``repr``."""

    url: str | None
    cookie_file: str | None
    user: str | None
    password: str | None = field(repr=False)
    confirmations: int
    blocks_per_task: int
    batch_blocks: int
    timeout_s: float
    retries: int


@dataclass(frozen=True)
class IngestSettings:
    blocks_dir: str | None
    start_hash: str | None
    start_height: int
    blocks_per_task: int
    confirmations: int
    rpc: RpcSettings


@dataclass(frozen=True)
class HolderSettings:
    lth_days: float
    strong_min_weight: float
    accumulation_min_receives: int
    accumulation_min_btc: float
    dormant_days: float
    seller_min_hold_days: float


@dataclass(frozen=True)
class EntitiesSettings:
    pools: tuple[str, ...]
    label_seeds: tuple[str, ...]
    change_heuristics: tuple[str, ...]
    peel_min_ratio: float
    peel_max_days: int
    deposit_max_days: int
    checkpoint_dir: str | None
    sweep_min_inputs: int
    exchange_min_sweeps: int
    exchange_min_addresses: int
    exchange_flow_min_share: float
    one_hop_min_share: float
    coinjoin_min_share: float
    retype_days: int
    holder: HolderSettings


@dataclass(frozen=True)
class CostSettings:
    efficiency_j_per_th: float
    power_usd_per_kwh: float
    pue: float


@dataclass(frozen=True)
class MetricsSettings:
    cost: CostSettings


@dataclass(frozen=True)
class MaintenanceSettings:
    vacuum_retention_hours: int
    optimize_min_files: int
    parallel_tables: int


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int


@dataclass(frozen=True)
class ReportSettings:
    max_daily_points: int


# Delta refuses VACUUM under 7 days without disabling its safety check; failed steps and
# entities runs are rolled back by restoring earlier table versions, which needs their files.
MIN_VACUUM_RETENTION_HOURS = 168
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"

CHANGE_HEURISTICS = ("fresh_change", "script_type_change", "peel_change", "deposit_change")


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


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if not isinstance(value, dict):
        raise ConfigError(f"setting {name!r} must be a mapping, got {value!r}")
    return value


def _known(section: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} in {where}; known: {sorted(allowed)}")


def settings_from_dict(raw: dict[str, Any]) -> Settings:
    """Validate a merged settings mapping and build :class:`Settings`."""
    _known(
        raw,
        {
            "network",
            "check_pow",
            "warehouse",
            "spark",
            "ingest",
            "entities",
            "metrics",
            "maintenance",
            "serve",
            "report",
        },
        "settings",
    )
    wh = _section(raw, "warehouse")
    _known(wh, {"path", "db_prefix"}, "warehouse")
    sp = _section(raw, "spark")
    _known(sp, {"master", "app_name", "jars_cache", "metastore_dir", "metastore", "conf"}, "spark")
    ing = _section(raw, "ingest")
    _known(
        ing,
        {"blocks_dir", "start_hash", "start_height", "blocks_per_task", "confirmations", "rpc"},
        "ingest",
    )
    from hodlflow.chain.network import NETWORKS

    network = str(raw.get("network"))
    if network not in NETWORKS:
        raise ConfigError(f"setting network={network!r} is not one of {sorted(NETWORKS)}")
    for key in ("blocks_per_task",):
        if not isinstance(ing.get(key), int) or ing[key] < 1:
            raise ConfigError(
                f"setting ingest.{key} must be a positive integer, got {ing.get(key)!r}"
            )
    return Settings(
        network=network,
        check_pow=_as_bool(raw.get("check_pow", True), "check_pow"),
        warehouse=str(wh["path"]),
        db_prefix=str(wh.get("db_prefix") or ""),
        spark=SparkSettings(
            master=sp.get("master"),
            app_name=str(sp.get("app_name", "hodlflow")),
            jars_cache=str(sp["jars_cache"]),
            metastore_dir=sp.get("metastore_dir"),
            metastore=_metastore(sp.get("metastore") or {}),
            conf={str(k): str(v) for k, v in (sp.get("conf") or {}).items()},
        ),
        ingest=IngestSettings(
            blocks_dir=ing.get("blocks_dir"),
            start_hash=ing.get("start_hash"),
            start_height=int(ing.get("start_height") or 0),
            blocks_per_task=int(ing["blocks_per_task"]),
            confirmations=_number(ing, "confirmations", "ingest", int, 1),
            rpc=_rpc(_section(ing, "rpc")),
        ),
        entities=_entities(_section(raw, "entities")),
        metrics=_metrics(_section(raw, "metrics")),
        maintenance=_maintenance(
            _section(raw, "maintenance"),
            str((sp.get("conf") or {}).get(RETENTION_CHECK, "true")).lower() != "false",
        ),
        serve=_serve(_section(raw, "serve")),
        report=_report(_section(raw, "report")),
        raw=raw,
    )


def _paths(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"setting {name} must be a list of paths, got {value!r}")
    return tuple(value)


def _number(section: dict[str, Any], key: str, where: str, kind: type, low: float, high=None):
    value = section.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bounds = f"≥ {low}" + (f" and ≤ {high}" if high is not None else "")
        raise ConfigError(f"setting {where}.{key} must be a number {bounds}, got {value!r}")
    return kind(value)


def _rpc(rpc: dict[str, Any]) -> RpcSettings:
    _known(
        rpc,
        {"url", "cookie_file", "user", "password", "confirmations", "blocks_per_task",
         "batch_blocks", "timeout_s", "retries"},
        "ingest.rpc",
    )  # fmt: skip
    if rpc.get("cookie_file") and rpc.get("user"):
        raise ConfigError("set either ingest.rpc.cookie_file or ingest.rpc.user, not both")
    return RpcSettings(
        url=rpc.get("url") or None,
        cookie_file=rpc.get("cookie_file") or None,
        user=rpc.get("user") or None,
        password=str(rpc["password"]) if rpc.get("password") else None,
        confirmations=_number(rpc, "confirmations", "ingest.rpc", int, 0),
        blocks_per_task=_number(rpc, "blocks_per_task", "ingest.rpc", int, 1),
        batch_blocks=_number(rpc, "batch_blocks", "ingest.rpc", int, 1),
        timeout_s=_number(rpc, "timeout_s", "ingest.rpc", float, 0.001),
        retries=_number(rpc, "retries", "ingest.rpc", int, 0),
    )


def _metastore(sec: dict[str, Any]) -> MetastoreSettings:
    if not isinstance(sec, dict):
        raise ConfigError(f"setting spark.metastore must be a mapping, got {sec!r}")
    _known(sec, {"kind", "url", "user", "password"}, "spark.metastore")
    kind = str(sec.get("kind") or "derby")
    if kind not in METASTORE_KINDS:
        raise ConfigError(
            f"setting spark.metastore.kind must be one of {METASTORE_KINDS}, got {kind!r}"
        )
    url, user = sec.get("url") or None, sec.get("user") or None
    if kind == "postgres":
        if not isinstance(url, str) or not url.startswith("jdbc:postgresql://"):
            raise ConfigError(
                "setting spark.metastore.url must be jdbc:postgresql://host[:port]/database "
                f"when spark.metastore.kind=postgres, got {url!r}"
            )
        if "password=" in url.lower():
            # The URL is shown in messages and on command lines: the password goes elsewhere.
            raise ConfigError(
                "setting spark.metastore.url must not hold the password: put it in the "
                "environment variable HODLFLOW_METASTORE_PASSWORD (or spark.metastore.password)"
            )
        if not user:
            raise ConfigError(
                "setting spark.metastore.user is needed when spark.metastore.kind=postgres"
            )
    password = sec.get("password")
    return MetastoreSettings(
        kind=kind,
        url=str(url) if url else None,
        user=str(user) if user else None,
        password=str(password) if password not in (None, "") else None,
    )


def _maintenance(sec: dict[str, Any], delta_check: bool = True) -> MaintenanceSettings:
    _known(sec, {"vacuum_retention_hours", "optimize_min_files", "parallel_tables"}, "maintenance")
    # Below the floor only where Delta's own safety check is switched off on purpose (tests).
    floor = MIN_VACUUM_RETENTION_HOURS if delta_check else 0
    hours = _number(sec, "vacuum_retention_hours", "maintenance", int, floor)
    return MaintenanceSettings(
        vacuum_retention_hours=hours,
        optimize_min_files=_number(sec, "optimize_min_files", "maintenance", int, 1),
        parallel_tables=_number(sec, "parallel_tables", "maintenance", int, 1),
    )


def _serve(sec: dict[str, Any]) -> ServeSettings:
    _known(sec, {"host", "port"}, "serve")
    host = sec.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"setting serve.host must be a host name or address, got {host!r}")
    return ServeSettings(host=host, port=_number(sec, "port", "serve", int, 1, 65535))


def _report(sec: dict[str, Any]) -> ReportSettings:
    _known(sec, {"max_daily_points"}, "report")
    return ReportSettings(max_daily_points=_number(sec, "max_daily_points", "report", int, 2))


def _metrics(met: dict[str, Any]) -> MetricsSettings:
    _known(met, {"cost"}, "metrics")
    cost = _section(met, "cost")
    _known(cost, {"efficiency_j_per_th", "power_usd_per_kwh", "pue"}, "metrics.cost")
    return MetricsSettings(
        cost=CostSettings(
            efficiency_j_per_th=_number(cost, "efficiency_j_per_th", "metrics.cost", float, 0),
            power_usd_per_kwh=_number(cost, "power_usd_per_kwh", "metrics.cost", float, 0),
            pue=_number(cost, "pue", "metrics.cost", float, 1),
        )
    )


def _entities(ent: dict[str, Any]) -> EntitiesSettings:
    _known(
        ent,
        {"pools", "label_seeds", "change_heuristics", "peel_min_ratio", "peel_max_days",
         "deposit_max_days", "checkpoint_dir", "sweep_min_inputs",
         "exchange_min_sweeps", "exchange_min_addresses", "exchange_flow_min_share",
         "one_hop_min_share", "coinjoin_min_share", "retype_days", "holder"},
        "entities",
    )  # fmt: skip
    heuristics = _paths(ent.get("change_heuristics"), "entities.change_heuristics")
    unknown = [h for h in heuristics if h not in CHANGE_HEURISTICS]
    if unknown:
        raise ConfigError(
            f"unknown change heuristic(s) {unknown} in entities.change_heuristics; "
            f"known: {list(CHANGE_HEURISTICS)}"
        )
    hold = _section(ent, "holder")
    _known(
        hold,
        {
            "lth_days",
            "strong_min_weight",
            "accumulation_min_receives",
            "accumulation_min_btc",
            "dormant_days",
            "seller_min_hold_days",
        },
        "entities.holder",
    )
    return EntitiesSettings(
        pools=_paths(ent.get("pools"), "entities.pools"),
        label_seeds=_paths(ent.get("label_seeds"), "entities.label_seeds"),
        change_heuristics=heuristics,
        peel_min_ratio=_number(ent, "peel_min_ratio", "entities", float, 1),
        peel_max_days=_number(ent, "peel_max_days", "entities", int, 0),
        deposit_max_days=_number(ent, "deposit_max_days", "entities", int, 0),
        checkpoint_dir=ent.get("checkpoint_dir"),
        sweep_min_inputs=_number(ent, "sweep_min_inputs", "entities", int, 2),
        exchange_min_sweeps=_number(ent, "exchange_min_sweeps", "entities", int, 1),
        exchange_min_addresses=_number(ent, "exchange_min_addresses", "entities", int, 1),
        exchange_flow_min_share=_number(ent, "exchange_flow_min_share", "entities", float, 0, 1),
        one_hop_min_share=_number(ent, "one_hop_min_share", "entities", float, 0, 1),
        coinjoin_min_share=_number(ent, "coinjoin_min_share", "entities", float, 0, 1),
        retype_days=_number(ent, "retype_days", "entities", int, 0),
        holder=HolderSettings(
            lth_days=_number(hold, "lth_days", "entities.holder", float, 0),
            strong_min_weight=_number(hold, "strong_min_weight", "entities.holder", float, 0, 1),
            accumulation_min_receives=_number(
                hold, "accumulation_min_receives", "entities.holder", int, 0
            ),
            accumulation_min_btc=_number(hold, "accumulation_min_btc", "entities.holder", float, 0),
            dormant_days=_number(hold, "dormant_days", "entities.holder", float, 0),
            seller_min_hold_days=_number(hold, "seller_min_hold_days", "entities.holder", float, 0),
        ),
    )


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"setting {name} must be true or false, got {value!r}")


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

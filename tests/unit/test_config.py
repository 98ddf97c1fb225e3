"""Settings declared once: keys, checks and the paths in messages follow from the declarations."""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

import pytest
import yaml

from hodlflow.config import CONF_DIR, ConfigError, _Root, flatten, load_settings


def _declared(cls, prefix: str = "") -> set[str]:
    """Dotted keys of every declared setting under ``cls``."""
    keys, types = set(), get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "section" in f.metadata:
            keys |= _declared(types[f.name], f"{prefix}{f.name}.")
        else:
            keys.add(prefix + f.name)
    return keys


def test_the_defaults_file_holds_every_declared_setting_and_no_other():
    written = flatten(yaml.safe_load((CONF_DIR / "hodlflow.yaml").read_text()))
    # spark.conf is one setting: a mapping of Spark's own keys.
    written = {k for k in written if not k.startswith("spark.conf.")} | {"spark.conf"}
    assert written == _declared(_Root)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # A bound, named by its full path.
        ("entities.holder.strong_min_weight", 2,
         "setting entities.holder.strong_min_weight must be a number ≥ 0 and ≤ 1, got 2"),
        ("ingest.rpc.timeout_s", 0, "setting ingest.rpc.timeout_s must be a number ≥ 0.001, got 0"),
        ("serve.port", 70000, "setting serve.port must be a number ≥ 1 and ≤ 65535, got 70000"),
        ("entities.retype_days", 1.5, "setting entities.retype_days must be a number ≥ 0, got 1.5"),
        ("check_pow", "maybe", "setting check_pow must be true or false, got 'maybe'"),
        ("serve.allow_unauthenticated", "maybe",
         "setting serve.allow_unauthenticated must be true or false, got 'maybe'"),
        ("serve.tls_keystore_password", "pw",
         "setting serve.tls_keystore_password is set but serve.tls_keystore is not"),
        # A nested section that is not a mapping.
        ("entities.holder", None, "setting 'entities.holder' must be a mapping, got None"),
        ("ingest.rpc", 5, "setting 'ingest.rpc' must be a mapping, got 5"),
        # Rules across keys of one section.
        ("ingest.rpc.cookie_file", "/c", "set either ingest.rpc.cookie_file or ingest.rpc.user"),
        ("spark.metastore.kind", "postgres",
         "setting spark.metastore.url must be jdbc:postgresql://host[:port]/database"),
    ],
)  # fmt: skip
def test_a_bad_value_is_named_by_its_path(key, value, message):
    overrides = {key: value}
    if key == "ingest.rpc.cookie_file":
        overrides["ingest.rpc.user"] = "u"
    with pytest.raises(ConfigError) as err:
        load_settings("local", overrides)
    assert str(err.value).startswith(message), str(err.value)


def test_an_unknown_key_names_its_section_and_the_declared_keys():
    with pytest.raises(ConfigError) as err:
        load_settings("local", {"entities.holder.lth_day": 150})
    assert str(err.value) == (
        "unknown setting(s) ['lth_day'] in entities.holder; known: ['accumulation_min_receives', "
        "'held_days', 'large_holder_min_btc', 'lth_days', 'revision_days', "
        "'seller_min_hold_days', 'strong_min_weight']"
    )
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['bogus'\] in settings; known"):
        load_settings("local", {"bogus": 1})


def test_values_are_converted_as_declared():
    s = load_settings(
        "local",
        {"entities.change_heuristics": "peel_change,deposit_change", "ingest.rpc.password": "",
         "spark.metastore": None, "entities.holder.lth_days": 100},
    )  # fmt: skip
    assert s.entities.change_heuristics == ("peel_change", "deposit_change")
    assert s.ingest.rpc.password is None  # empty reads as not set
    assert s.spark.metastore.kind == "derby"  # an optional section, absent: its defaults
    assert s.entities.holder.lth_days == 100.0 and isinstance(s.entities.holder.lth_days, float)
    with pytest.raises(ConfigError, match=r"unknown change heuristic\(s\) \['foo'\]"):
        load_settings("local", {"entities.change_heuristics": "peel_change,foo"})

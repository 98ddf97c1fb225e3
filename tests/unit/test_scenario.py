"""Scenario files: the shipped ones load; every bad value is reported with the file and the path
to it, in words a scenario author can act on."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml

from hodlflow.sim.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

MINIMAL = {
    "price": {"start_usd": 90_000},
    "phases": [{"name": "calm", "days": 3, "end_usd": 80_000}],
    "agents": {
        "pools": [
            {"name": "a", "tag": "/a/", "hashrate_share": 1},
            {"name": "b", "tag": "/b/", "hashrate_share": 1},
            {"name": "c", "tag": "/c/", "hashrate_share": 1},
        ],
        "exchanges": [{"name": "x", "market_share": 1}],
    },
}


def _with(path: str, value):
    """MINIMAL with the value at a dotted path (list items as [i]) replaced."""
    data = copy.deepcopy(MINIMAL)
    node = data
    keys = path.replace("]", "").replace("[", ".").split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


def _error(data, source="s.yaml") -> str:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, source)
    return str(err.value)


def test_the_shipped_scenarios_load():
    cap = load_scenario("capitulation")
    assert cap.name == "capitulation" and cap.scale == 1.0
    assert cap.chain.start_height == 840_000 and cap.days > 365
    assert [p.name for p in cap.phases][-4:] == ["calm", "decline", "capitulation", "recovery"]
    tiny = load_scenario(str(SCENARIO_DIR / "tiny.yaml"))
    assert tiny.days <= 10
    assert "scale" in yaml.safe_load((SCENARIO_DIR / "capitulation.yaml").read_text())
    dist = load_scenario("distribution")
    assert [p.name for p in dist.phases][-4:] == ["rally", "euphoria", "top", "decline"]
    history = sum(p.days for p in dist.phases if p.name.startswith("history"))
    assert history > 155 and all(p.blocks_per_day >= 144 for p in dist.phases)
    assert dist.agents.strong_holders.take_profit_above is not None
    assert dist.agents.late_buyers.count > 0
    assert any(not ex.change_to_hot_address for ex in dist.agents.exchanges)


def test_defaults_fill_what_a_scenario_leaves_out():
    s = parse_scenario(MINIMAL, "m.yaml")
    assert s.name == "m" and s.seed == 0 and s.scale == 1.0
    assert s.chain.start_height == 880_000 and s.phases[0].blocks_per_day == 144
    assert s.agents.pools[0].payout_every_days == 1
    assert s.agents.strong_holders.count == 0
    assert s.first_day == dt.date(2024, 1, 1) and s.days == 3


def test_a_bad_value_names_the_file_and_the_path_to_it():
    msg = _error(_with("agents.pools[2].payout_every_days", -1), "conf/scenarios/x.yaml")
    assert msg == (
        "conf/scenarios/x.yaml: agents.pools[2].payout_every_days: "
        "must be a positive integer, got -1"
    )


def test_an_unknown_key_is_an_error_with_a_suggestion():
    msg = _error(_with("agents.pools[1].payout_evry_days", 2))
    assert msg.startswith("s.yaml: agents.pools[1].payout_evry_days: unknown key")
    assert "did you mean 'payout_every_days'?" in msg


def test_an_unknown_top_level_key_is_an_error():
    assert _error({**MINIMAL, "agentz": {}}).startswith("s.yaml: agentz: unknown key")


def test_a_missing_required_key_is_named():
    data = copy.deepcopy(MINIMAL)
    del data["phases"][0]["end_usd"]
    assert _error(data) == "s.yaml: phases[0].end_usd: is required"
    assert _error({"phases": MINIMAL["phases"]}) == "s.yaml: price: is required"


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("seed", -3, "must be a non-negative integer, got -3"),
        ("scale", 0, "must be a positive number up to 10000, got 0"),
        ("phases[0].days", 2.5, "must be a positive integer, got 2.5"),
        ("phases[0].days", True, "must be a positive integer, got True"),
        ("phases[0].activity", "busy", "must be a number from 0 to 100, got 'busy'"),
        ("phases[0].fee_rate_sat_vb", [20, 2], "low must not exceed high, got [20.0, 2.0]"),
        ("phases[0].fee_rate_sat_vb", 5, "must be a pair [low, high] of sat/vB, got 5"),
        ("chain.start_date", "2024-13-01", "must be a date like 2024-01-31, got '2024-13-01'"),
        ("chain.retarget", "yes", "must be true or false, got 'yes'"),
        ("cost_model.pue", 0.9, "must be a number from 1 to 5, got 0.9"),
        ("agents.pools[0].fee", 1.5, "must be a number from 0 to 1, got 1.5"),
        ("agents.pools[0].tag", "/pööl/", "must be printable ASCII (coinbase tag), got '/pööl/'"),
        ("agents.pools[0].coinbase_script", "p2wpk", "must be one of p2pk, p2pkh, p2sh_p2wpkh, "
         "p2sh_multisig, p2wpkh, p2wsh, p2tr, got 'p2wpk'"),
        ("agents.pools[0].member_scripts", {"p2tr": 0}, "needs at least one script kind with a weight > 0"),
        ("agents.exchanges", [], "must have at least 1 item(s), got 0"),
        ("agents.exchanges[0].name", "Bit, Inc", "must be letters, digits, spaces, '_', '.' or "
         "'-', got 'Bit, Inc'"),
        ("agents.exchanges[0].withdrawal_batch", 0, "must be an integer from 1 to 2000, got 0"),
        ("agents.weak_traders", {"hold_days": [0, 3]}, "must be a positive integer, got 0"),
        ("agents.strong_holders", {"take_profit_above": 0.9}, "must be a number over 1 up to 100, got 0.9"),
        ("agents.strong_holders", {"take_profit_above": 1}, "must be a number over 1 up to 100, got 1"),
        ("agents.strong_holders", {"take_profit_above": "soon"}, "must be a number over 1 up to 100, got 'soon'"),
        ("agents.strong_holders", {"take_profit_fraction": 0.7}, "must be a number over 0 up to 0.6, got 0.7"),
        ("agents.strong_holders", {"take_profit_fraction": 0}, "must be a number over 0 up to 0.6, got 0"),
        ("agents.late_buyers", {"count": -1}, "must be a non-negative integer, got -1"),
        ("agents.late_buyers", {"momentum_days": 0}, "must be an integer from 1 to 365, got 0"),
        ("agents.late_buyers", {"enter_above_momentum": 0.8}, "must be a number over 1 up to 10, got 0.8"),
        ("agents.late_buyers", {"purchases": [0, 2]}, "must be an integer from 1 to 10, got 0"),
        ("agents.late_buyers", {"purchase_gap_days": 3}, "must be a pair [low, high] of positive integers (days), got 3"),
        ("agents.late_buyers", {"stop_loss": 1.0}, "must be a number from 0 to 0.95, got 1"),
        ("agents.late_buyers", {"max_hold_days": 0}, "must be a positive integer, got 0"),
        ("agents.late_buyers", {"flip_share": -0.1}, "must be a number from 0 to 1, got -0.1"),
        ("agents.late_buyers", {"flip_hold_days": [5, 2]}, "low must not exceed high, got [5, 2]"),
        ("agents.late_buyers", {"position_usd": 0}, "must be a positive number, got 0"),
        ("agents.coinjoin", {"participants": [1, 5]}, "must be an integer from 2 to 500, got 1"),
        ("agents.payments", {"users": 5}, "must be > 0 when users pay merchants"),
    ],
)  # fmt: skip
def test_bad_values_are_explained(path, value, problem):
    msg = _error(_with(path, value))
    assert msg.startswith("s.yaml: ")
    assert msg.endswith(problem), msg


def test_the_path_of_a_nested_bad_value_is_complete():
    msg = _error(_with("agents.weak_traders", {"hold_days": [0, 3]}))
    assert msg.startswith("s.yaml: agents.weak_traders.hold_days[0]: ")
    msg = _error(_with("agents.payments", {"users": 5}))
    assert msg.startswith("s.yaml: agents.payments.merchants: ")


def test_take_profit_settings_are_read_and_named_in_errors():
    s = parse_scenario(_with("agents.strong_holders", {"take_profit_above": 2, "count": 3}))
    assert s.agents.strong_holders.take_profit_above == 2.0
    assert s.agents.strong_holders.take_profit_fraction == 0.1
    off = parse_scenario(_with("agents.strong_holders", {"take_profit_above": None}))
    assert off.agents.strong_holders.take_profit_above is None
    assert parse_scenario(MINIMAL).agents.strong_holders.take_profit_above is None
    msg = _error(_with("agents.strong_holders", {"take_profit_fraction": 0.9}))
    assert msg.startswith("s.yaml: agents.strong_holders.take_profit_fraction: ")
    msg = _error(_with("agents.strong_holders", {"take_profit_abve": 2}))
    assert msg.startswith("s.yaml: agents.strong_holders.take_profit_abve: unknown key")
    assert "did you mean 'take_profit_above'?" in msg


def test_late_buyer_settings_are_read_and_named_in_errors():
    assert parse_scenario(MINIMAL).agents.late_buyers.count == 0  # old scenarios have none
    s = parse_scenario(_with("agents.late_buyers", {"count": 5, "purchases": [2, 2]}))
    late = s.agents.late_buyers
    assert (late.count, late.purchases, late.momentum_days, late.stop_loss) == (5, (2, 2), 30, 0.15)
    msg = _error(_with("agents.late_buyers", {"purchases": [0, 2]}))
    assert msg.startswith("s.yaml: agents.late_buyers.purchases[0]: ")
    msg = _error(_with("agents.late_buyers", {"stop_los": 0.1}))
    assert msg.startswith("s.yaml: agents.late_buyers.stop_los: unknown key")
    assert "did you mean 'stop_loss'?" in msg


def test_duplicate_names_and_tags_are_errors():
    data = _with("agents.pools[2].name", "a")
    assert _error(data) == "s.yaml: agents.pools[2].name: duplicates agents.pools[0]: 'a'"
    data = _with("agents.pools[1].tag", "/a/")
    assert _error(data) == "s.yaml: agents.pools[1].tag: duplicates agents.pools[0]: '/a/'"


def test_numbers_written_as_yaml_text_are_read_as_numbers():
    # PyYAML (YAML 1.1) reads 1.1e14 as text: its floats need a signed exponent (1.1e+14).
    data = yaml.safe_load("difficulty: 1.1e14\nstart_height: 880_000\n")
    assert isinstance(data["difficulty"], str)
    s = parse_scenario({**MINIMAL, "chain": data})
    assert s.chain.difficulty == 1.1e14 and s.chain.start_height == 880_000


def test_a_scenario_that_is_not_a_mapping_is_an_error():
    assert _error([1, 2]) == "s.yaml: (top level): must be a mapping, got [1, 2]"
    assert _error(_with("agents.pools[0]", "pool")) == (
        "s.yaml: agents.pools[0]: must be a mapping, got 'pool'"
    )


def test_a_file_that_is_not_yaml_or_missing_is_named(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("phases: [\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML"):
        load_scenario(str(bad))
    with pytest.raises(ScenarioError, match=r"no-such: no such scenario file .*capitulation"):
        load_scenario("no-such")


def test_a_file_error_names_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_with("phases[0].blocks_per_day", 0)))
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path))
    assert str(err.value) == (
        f"{path}: phases[0].blocks_per_day: must be an integer from 1 to 1000, got 0"
    )


def test_overrides_replace_seed_and_scale_and_are_checked():
    s = parse_scenario(MINIMAL).with_overrides(seed=9, scale=2)
    assert (s.seed, s.scale) == (9, 2.0)
    with pytest.raises(ScenarioError, match="scale must be a positive number, got -1"):
        s.with_overrides(scale=-1)
    with pytest.raises(ScenarioError, match="seed must be a non-negative integer"):
        s.with_overrides(seed=-2)


def test_a_chain_past_the_last_subsidy_is_refused():
    data = _with("chain.start_height", 6_719_000)
    data["phases"][0]["days"] = 10
    assert _error(data) == "s.yaml: phases: the chain would run past the last block with a subsidy"

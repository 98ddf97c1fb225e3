"""The `hodlflow` command's contract for scripts and schedulers: a subcommand per step with
examples in its help, exit codes (0 ok, 1 failure, 2 usage, 3 not yet), settings overlays, and
the time boundary the daily schedule cuts the chain at."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hodlflow.cli import build_parser, main
from hodlflow.config import ConfigError, load_settings
from hodlflow.ingest.best_chain import ChainBlock, HeaderLoc, first_block_at_or_after
from hodlflow.sim.simulator import run_simulation

STEPS = ("simulate", "ingest", "tip", "entities", "prices", "metrics", "report", "check",
         "evaluate", "maintain", "sql", "serve-sql", "serve-sql-user")  # fmt: skip


@pytest.mark.parametrize("step", STEPS)
def test_every_step_has_a_subcommand_whose_help_shows_examples(step, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([step, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert f"hodlflow {step}" in text.split("examples:")[1]


def test_top_level_help_lists_the_steps_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for step in STEPS:
        assert step in text
    assert "0 success, 1 failure" in text and "2 usage" in text


def test_a_bad_option_value_is_a_usage_error_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", "--until", "yesterday"])
    assert exit_.value.code == 2
    assert "expected a date (2025-03-02)" in capsys.readouterr().err


def test_an_unknown_setting_in_a_conf_file_exits_2_and_names_it(tmp_path, capsys):
    site = tmp_path / "site.yaml"
    site.write_text("ingest:\n  blocks_dirr: /data/blocks\n")
    assert main(["tip", "--conf-file", str(site)]) == 2
    err = capsys.readouterr().err
    assert "blocks_dirr" in err and "configuration error" in err


def test_a_conf_file_overlays_the_environment_and_set_overrides_it(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(
        "ingest: {confirmations: 3}\nserve: {port: 10099}\nspark: {conf: {spark.x.y: z}}\n"
    )
    args = build_parser().parse_args(
        ["serve-sql", "--conf-file", str(site), "--set", "serve.port=10100", "--warehouse", ""]
    )
    from hodlflow.cli.options import settings_from

    settings = settings_from(args)
    assert settings.ingest.confirmations == 3
    assert settings.serve.port == 10100
    assert settings.spark.conf["spark.x.y"] == "z"
    assert settings.warehouse == load_settings("local").warehouse  # empty --warehouse: ignored


def test_vacuum_retention_under_seven_days_is_refused():
    with pytest.raises(ConfigError, match="vacuum_retention_hours must be a number ≥ 168"):
        load_settings("local", {"maintenance.vacuum_retention_hours": 24})


def test_vacuum_retention_under_seven_days_only_with_deltas_check_switched_off():
    check = "spark.conf.spark.databricks.delta.retentionDurationCheck.enabled"
    with pytest.raises(ConfigError, match="vacuum_retention_hours must be a number ≥ 168"):
        load_settings("local", {"maintenance.vacuum_retention_hours": 0, check: "true"})
    settings = load_settings("local", {"maintenance.vacuum_retention_hours": 0, check: "false"})
    assert settings.maintenance.vacuum_retention_hours == 0


def _chain(times: list[int]) -> list[ChainBlock]:
    return [
        ChainBlock(100 + i, t, HeaderLoc(f"h{i}", f"h{i - 1}", 0, t, 0, 0, 0))
        for i, t in enumerate(times)
    ]


def test_a_time_boundary_cuts_at_the_first_block_past_it_even_when_times_go_back():
    chain = _chain([10, 30, 20, 40])
    assert first_block_at_or_after(chain, 25).height == 101
    assert first_block_at_or_after(chain, 30).height == 101
    assert first_block_at_or_after(chain, 10).height == 100
    assert first_block_at_or_after(chain, 41) is None


@pytest.fixture(scope="module")
def tiny_sim(tmp_path_factory):
    from hodlflow.config import CONF_DIR

    out = tmp_path_factory.mktemp("tip-sim")
    manifest = run_simulation(str(CONF_DIR / "scenarios" / "tiny.yaml"), str(out))
    return out, manifest


def _tip(sim, *extra, capsys):
    out, manifest = sim
    code = main([
        "tip", "--env", "test", "--blocks-dir", str(out / "blocks"), "--set", "check_pow=false",
        "--set", f"ingest.start_hash={manifest['start_hash']}",
        "--set", f"ingest.start_height={manifest['start_height']}", *extra,
    ])  # fmt: skip
    return code, json.loads(capsys.readouterr().out)


def test_tip_is_the_simulators_tip(tiny_sim, capsys):
    code, tip = _tip(tiny_sim, capsys=capsys)
    assert code == 0
    assert (tip["tip_height"], tip["tip_hash"]) == (
        tiny_sim[1]["tip_height"],
        tiny_sim[1]["tip_hash"],
    )
    assert tip["tip_time"].startswith(tiny_sim[1]["last_day"])


def test_tip_after_a_time_is_ready_only_with_the_confirmation_depth(tiny_sim, capsys):
    # The simulated chain runs 2025-03-01..03-06: a boundary inside it is deeply confirmed,
    # one after its last block is not reached yet (exit 3, the scheduler's "wait").
    code, tip = _tip(tiny_sim, "--after", "2025-03-02", capsys=capsys)
    assert code == 0 and tip["ready"] is True
    assert tip["boundary_confirmations"] == tip["tip_height"] - tip["boundary_height"] + 1
    code, tip = _tip(tiny_sim, "--after", "2025-03-07", capsys=capsys)
    assert code == 3 and tip["ready"] is False and tip["boundary_height"] is None
    # The last block of the chain has exactly one confirmation: not final with 6 required.
    last = dt.datetime.fromisoformat(tip["tip_time"].replace("Z", "+00:00"))
    code, tip = _tip(tiny_sim, "--after", last.isoformat(), "--confirmations", "6", capsys=capsys)
    assert code == 3 and tip["boundary_confirmations"] >= 1
    code, tip = _tip(tiny_sim, "--after", last.isoformat(), "--confirmations", "1", capsys=capsys)
    assert code == 0 and tip["ready"] is True


def test_maintenance_parallel_tables_is_at_least_one():
    with pytest.raises(ConfigError, match="parallel_tables"):
        load_settings("local", {"maintenance.parallel_tables": 0})
    assert (
        load_settings("local", {"maintenance.parallel_tables": 1}).maintenance.parallel_tables == 1
    )

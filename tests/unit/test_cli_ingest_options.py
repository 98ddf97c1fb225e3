"""`hodlflow ingest` options: which road (RPC or blocks dir) and where the RPC login comes from."""

from __future__ import annotations

import pytest

from hodlflow.cli import build_parser
from hodlflow.cli.steps import ingest_settings
from hodlflow.config import ConfigError


def parse(*argv):
    return build_parser().parse_args(["--env", "test", "ingest", *argv])


def test_rpc_user_takes_the_password_from_the_environment():
    settings, use_rpc = ingest_settings(
        parse("--rpc", "http://127.0.0.1:8332", "--rpc-user", "alice", "--confirmations", "3"),
        environ={"HODLFLOW_RPC_PASSWORD": "pw-from-env"},
    )
    rpc = settings.ingest.rpc
    assert use_rpc and (rpc.url, rpc.user, rpc.password, rpc.confirmations) == (
        "http://127.0.0.1:8332", "alice", "pw-from-env", 3)  # fmt: skip
    assert "pw-from-env" not in repr(settings)


def test_rpc_user_without_a_password_names_the_environment_variable():
    with pytest.raises(ConfigError, match="HODLFLOW_RPC_PASSWORD"):
        ingest_settings(parse("--rpc", "http://127.0.0.1:8332", "--rpc-user", "alice"), environ={})


def test_a_cookie_on_the_command_line_replaces_a_configured_user():
    args = parse("--rpc", "http://n:8332", "--rpc-cookie", "/data/.cookie",
                 "--set", "ingest.rpc.user=bob", "--set", "ingest.rpc.password=x")  # fmt: skip
    settings, use_rpc = ingest_settings(args, environ={})
    rpc = settings.ingest.rpc
    assert use_rpc and (rpc.cookie_file, rpc.user, rpc.password) == ("/data/.cookie", None, None)


def test_the_blocks_dir_road_is_the_default_without_a_node():
    settings, use_rpc = ingest_settings(parse("--blocks-dir", "/data/blocks"), environ={})
    assert not use_rpc and settings.ingest.blocks_dir == "/data/blocks"


def test_both_roads_at_once_is_refused():
    with pytest.raises(ConfigError, match="either --rpc or --blocks-dir"):
        ingest_settings(parse("--rpc", "http://n:8332", "--blocks-dir", "/b"), environ={})
    args = parse("--set", "ingest.rpc.url=http://n:8332", "--set", "ingest.blocks_dir=/b")
    with pytest.raises(ConfigError, match="choose with --rpc or --blocks-dir"):
        ingest_settings(args, environ={})


def test_confirmations_must_not_be_negative():
    with pytest.raises(ConfigError, match="ingest.rpc.confirmations"):
        ingest_settings(parse("--rpc", "http://n:8332", "--confirmations", "-1"), environ={})

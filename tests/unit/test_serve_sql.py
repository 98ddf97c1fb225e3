"""serve-sql's exposure rules and command: no non-loopback host without logins unless the user
says so, logins and TLS as --hiveconf options that hold no secret, the keystore password only
in the private properties file, settings errors that name the setting to change."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from hodlflow.cli import EXIT_USAGE, main
from hodlflow.config import ConfigError, load_settings
from hodlflow.metastore import secret_properties_file
from hodlflow.sql import (
    check_exposure,
    check_keystore,
    check_serve_files,
    is_loopback,
    serve_secret_conf,
    thrift_server_command,
)
from hodlflow.sqlauth import JAVA_SOURCE, set_password


def jars_cache(tmp_path) -> str:
    """A jar cache holding (empty) files named as Delta's jars and as our provider's."""
    cache = tmp_path / "jars"
    cache.mkdir(exist_ok=True)
    digest = hashlib.sha1(JAVA_SOURCE.read_bytes()).hexdigest()[:12]
    for name in ("io.delta_delta-spark_4.2_2.13-4.4.0.jar", "io.delta_delta-storage-4.4.0.jar",
                 f"hodlflow-sqlauth-{digest}.jar"):  # fmt: skip
        (cache / name).write_bytes(b"")
    return str(cache)


def serve_settings(tmp_path, **serve):
    overrides = {"warehouse.path": str(tmp_path / "wh"), "spark.jars_cache": jars_cache(tmp_path)}
    overrides.update({f"serve.{k}": v for k, v in serve.items()})
    return load_settings("test", overrides)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_recognised(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.20", "bi.example.org"])
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


def test_a_non_loopback_host_without_logins_is_refused_naming_host_and_settings(tmp_path):
    settings = serve_settings(tmp_path, host="0.0.0.0", port=10001)
    with pytest.raises(ConfigError) as err:
        check_exposure(settings.serve)
    assert str(err.value) == (
        "serve-sql will not listen on 0.0.0.0:10001 (serve.host) without authentication: anyone "
        "who reaches that address could read every table. Set serve.password_file (or "
        "--password-file; add users with `hodlflow serve-sql-user add NAME`), or listen on "
        "loopback (serve.host: 127.0.0.1), or, on a network you trust, pass --insecure-no-auth "
        "(serve.allow_unauthenticated: true)"
    )


def test_a_non_loopback_host_is_served_with_logins_or_when_said_explicitly(tmp_path):
    check_exposure(serve_settings(tmp_path, host="0.0.0.0", password_file="/x").serve)
    check_exposure(serve_settings(tmp_path, host="0.0.0.0", allow_unauthenticated=True).serve)
    check_exposure(serve_settings(tmp_path, host="127.0.0.1").serve)  # the default


def test_the_cli_refuses_before_starting_anything(tmp_path, capsys):
    code = main(["serve-sql", "--env", "test", "--warehouse", str(tmp_path / "wh"),
                 "--host", "192.168.1.20", "--port", "10002"])  # fmt: skip
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "will not listen on 192.168.1.20:10002 (serve.host) without authentication" in err
    assert "--insecure-no-auth" in err
    assert not (tmp_path / "wh").exists()  # no Spark started


def test_a_keystore_needs_its_password_named_by_its_environment_variable(tmp_path):
    settings = serve_settings(tmp_path, tls_keystore="/etc/hodlflow/server.p12")
    with pytest.raises(ConfigError) as err:
        serve_secret_conf(settings.serve)
    assert str(err.value) == (
        "serve.tls_keystore=/etc/hodlflow/server.p12 needs its password: put it in the "
        "environment variable HODLFLOW_SERVE_KEYSTORE_PASSWORD (or the setting "
        "serve.tls_keystore_password)"
    )


def test_the_keystore_password_never_shows_in_the_settings_repr(tmp_path):
    settings = serve_settings(tmp_path, tls_keystore="/k.p12", tls_keystore_password="kp-secret")
    assert "kp-secret" not in repr(settings)


def test_the_password_file_must_hold_a_user_and_the_keystore_must_exist(tmp_path):
    empty = tmp_path / "users"
    empty.write_text("# nobody yet\n")
    with pytest.raises(ConfigError) as err:
        check_serve_files(serve_settings(tmp_path, password_file=str(empty)).serve)
    assert str(err.value) == (
        f"serve.password_file={empty} holds no user: add one with "
        f"`hodlflow serve-sql-user add NAME --password-file {empty}`"
    )
    with pytest.raises(ConfigError, match="serve.password_file: cannot read the password file"):
        check_serve_files(serve_settings(tmp_path, password_file=str(tmp_path / "no")).serve)
    with pytest.raises(ConfigError, match=f"serve.tls_keystore={tmp_path}/no.p12 is not a file"):
        check_serve_files(serve_settings(tmp_path, tls_keystore=str(tmp_path / "no.p12")).serve)


def test_logins_and_tls_are_hiveconf_options_and_the_keystore_password_is_only_in_the_file(
    tmp_path,
):
    users = str(tmp_path / "users")
    set_password(users, "alice", "alice-pw", iterations=10)
    settings = serve_settings(
        tmp_path, password_file=users, tls_keystore=str(tmp_path / "k.p12"),
        tls_keystore_password="kp-secret",
    )  # fmt: skip
    with secret_properties_file(settings.spark.metastore, serve_secret_conf(settings.serve)) as f:
        cmd = thrift_server_command(settings, "0.0.0.0", 10003, f)
        assert "spark.hadoop.hive.server2.keystore.password=kp-secret\n" in open(f).read()
    text = " ".join(cmd)
    assert "kp-secret" not in text and "alice-pw" not in text
    hiveconf = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--hiveconf"]
    assert hiveconf[3:] == [
        "hive.server2.authentication=CUSTOM",
        "hive.server2.custom.authentication.class=hodlflow.sqlauth.PasswordFileAuthenticator",
        f"hodlflow.serve.password_file={users}",
        "hive.server2.enable.doAs=false",
        "hive.server2.use.SSL=true",
        f"hive.server2.keystore.path={tmp_path}/k.p12",
    ]
    classpath = next(a for a in cmd if a.startswith("spark.driver.extraClassPath="))
    jars = classpath.split("=", 1)[1].split(os.pathsep)
    assert any("delta-spark" in j for j in jars)  # Delta's jars stay
    assert os.path.basename(jars[-1]).startswith("hodlflow-sqlauth-")


def test_without_logins_or_tls_the_command_is_as_before(tmp_path):
    cmd = thrift_server_command(serve_settings(tmp_path), "127.0.0.1", 10004)
    hiveconf = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--hiveconf"]
    assert hiveconf == ["hive.server2.thrift.bind.host=127.0.0.1",
                        "hive.server2.thrift.port=10004", "hive.server2.transport.mode=binary"]  # fmt: skip
    assert "--properties-file" not in cmd


def keytool(*args: str, password: str) -> None:
    subprocess.run(["keytool", *args, "-storepass:env", "PW"], env={"PW": password},
                   check=True, capture_output=True, timeout=60)  # fmt: skip


def test_a_keystore_that_its_password_does_not_open_is_refused_before_the_server_starts(
    tmp_path,
):
    keystore, cert, trust = tmp_path / "k.p12", tmp_path / "k.crt", tmp_path / "t.p12"
    keytool(
        "-genkeypair",
        "-alias",
        "a",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-dname",
        "CN=localhost",
        "-keystore",
        str(keystore),
        "-storetype",
        "PKCS12",
        password="pw-one-1",
    )
    keytool(
        "-exportcert",
        "-alias",
        "a",
        "-keystore",
        str(keystore),
        "-file",
        str(cert),
        password="pw-one-1",
    )
    keytool("-importcert", "-noprompt", "-alias", "a", "-file", str(cert), "-keystore",
            str(trust), "-storetype", "PKCS12", password="pw-two-2")  # fmt: skip
    check_keystore(
        serve_settings(tmp_path, tls_keystore=str(keystore), tls_keystore_password="pw-one-1").serve
    )
    wrong = serve_settings(tmp_path, tls_keystore=str(keystore), tls_keystore_password="pw-wrong")
    with pytest.raises(ConfigError) as err:
        check_keystore(wrong.serve)
    assert str(err.value).startswith(
        f"serve.tls_keystore={keystore} does not open with its password "
        "(HODLFLOW_SERVE_KEYSTORE_PASSWORD or serve.tls_keystore_password): "
    )
    assert "pw-wrong" not in str(err.value)
    # A truststore (the clients' file) given by mistake: no key of the server's own.
    mistaken = serve_settings(tmp_path, tls_keystore=str(trust), tls_keystore_password="pw-two-2")
    with pytest.raises(ConfigError, match=f"serve.tls_keystore={trust} holds no private key"):
        check_keystore(mistaken.serve)

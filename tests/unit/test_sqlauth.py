"""The password file of serve-sql: entries hashed as PBKDF2-HMAC-SHA256 (checked against a
published test vector and a PBKDF2 written out here with hmac, not hashlib's), written whole
with mode 0600, read with errors naming file and line; the Java provider (our jar, run as a
program) accepts exactly what the Python side wrote; `hodlflow serve-sql-user` maintains it
without the password on its command line."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import stat
import subprocess

import pytest

from hodlflow.cli import EXIT_OK, EXIT_USAGE, main
from hodlflow.config import PROJECT_ROOT, ConfigError
from hodlflow.sql import spark_home
from hodlflow.sqlauth import (
    AUTH_CLASS,
    PasswordFileError,
    auth_jar,
    check_user_name,
    make_entry,
    read_password_file,
    remove_user,
    set_password,
    verify,
)

JARS_CACHE = str(PROJECT_ROOT / ".cache" / "jars")  # where `make setup` builds the jar


def pbkdf2_sha256_one_block(password: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 8018's PBKDF2 for one 32-byte block, from HMAC-SHA256 alone."""
    u = hmac.new(password, salt + b"\x00\x00\x00\x01", hashlib.sha256).digest()
    out = bytearray(u)
    for _ in range(iterations - 1):
        u = hmac.new(password, u, hashlib.sha256).digest()
        out = bytearray(a ^ b for a, b in zip(out, u, strict=True))
    return bytes(out)


def test_an_entry_is_the_published_pbkdf2_hmac_sha256_vector():
    # RFC 7914 section 11: PBKDF2-HMAC-SHA256(P="passwd", S="salt", c=1), first 32 bytes.
    expected = bytes.fromhex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")
    entry = make_entry("alice", "passwd", iterations=1, salt=b"salt")
    assert entry.line() == f"alice:pbkdf2-sha256:1:c2FsdA==:{base64.b64encode(expected).decode()}"


def test_an_entry_hashes_the_utf8_bytes_with_its_salt_and_iterations():
    salt = bytes(range(16))
    entry = make_entry("bob", "Pässwort-1", iterations=1000, salt=salt)
    assert entry.hash == pbkdf2_sha256_one_block("Pässwort-1".encode(), salt, 1000)
    assert verify(entry, "Pässwort-1")
    assert not verify(entry, "Passwort-1")
    assert not verify(entry, "")


def test_each_entry_gets_its_own_random_salt():
    a, b = make_entry("a", "same", iterations=1), make_entry("b", "same", iterations=1)
    assert len(a.salt) == 16 and a.salt != b.salt and a.hash != b.hash


def test_a_user_name_with_a_separator_or_space_and_an_empty_password_are_refused():
    with pytest.raises(ConfigError, match="user name 'a:b' is not allowed"):
        check_user_name("a:b")
    with pytest.raises(ConfigError, match="user name 'a b' is not allowed"):
        make_entry("a b", "pw")
    with pytest.raises(ConfigError, match="the password of user 'a' is empty"):
        make_entry("a", "")


def test_the_file_is_written_0600_whatever_the_umask_and_holds_no_password(tmp_path):
    path = str(tmp_path / "users")
    old = os.umask(0)
    try:
        assert set_password(path, "alice", "alice-pw", iterations=10) is True
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "alice-pw" not in open(path).read()
    [entry] = read_password_file(path)
    assert entry.user == "alice" and verify(entry, "alice-pw")


def test_adding_changing_and_removing_users_keeps_the_others(tmp_path):
    path = str(tmp_path / "users")
    set_password(path, "alice", "a1", iterations=10)
    set_password(path, "bob", "b1", iterations=10)
    assert set_password(path, "alice", "a2", iterations=10) is False  # a new password
    alice, bob = read_password_file(path)
    assert (alice.user, bob.user) == ("alice", "bob")
    assert verify(alice, "a2") and not verify(alice, "a1") and verify(bob, "b1")
    remove_user(path, "alice")
    assert [e.user for e in read_password_file(path)] == ["bob"]
    with pytest.raises(ConfigError, match=f"no user 'alice' in the password file {path}"):
        remove_user(path, "alice")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("alice:pbkdf2-sha256:10:c2FsdA==", "has 4 ':'-separated fields, not 5"),
        ("alice:md5:10:c2FsdA==:" + "A" * 44, "has the scheme 'md5', not 'pbkdf2-sha256'"),
        ("alice:pbkdf2-sha256:ten:c2FsdA==:" + "A" * 44, "has iterations 'ten'"),
        ("alice:pbkdf2-sha256:10:c2FsdA==:AAAA", "needs a salt and a 32-byte hash"),
        ("alice:pbkdf2-sha256:10:!!:" + "A" * 44, "has a salt or hash that is not base64"),
    ],
)
def test_a_malformed_line_is_named_by_file_and_line(tmp_path, line, problem):
    path = tmp_path / "users"
    path.write_text(f"# users\n\n{line}\n")
    with pytest.raises(PasswordFileError) as err:
        read_password_file(str(path))
    assert str(err.value).startswith(f"password file {path} line 3 {problem}"), str(err.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(PasswordFileError, match=f"cannot read the password file {tmp_path}/no"):
        read_password_file(str(tmp_path / "no"))


def java_check(path: str, user: str, password: str) -> subprocess.CompletedProcess:
    """Our Java provider, run as a program, on the password given on its standard input."""
    classpath = os.pathsep.join([auth_jar(JARS_CACHE), os.path.join(spark_home(), "jars", "*")])
    return subprocess.run(
        ["java", "-cp", classpath, AUTH_CLASS, path, user],
        input=(password + "\n").encode(), capture_output=True, timeout=60,
    )  # fmt: skip


def test_the_java_provider_accepts_exactly_the_passwords_python_wrote(tmp_path):
    path = str(tmp_path / "users")
    set_password(path, "alice", "Pässwort-1", iterations=1000)
    set_password(path, "bob", "bob-pw", iterations=1000)
    assert java_check(path, "alice", "Pässwort-1").stdout == b"accepted\n"
    assert java_check(path, "bob", "bob-pw").returncode == 0
    for user, password in [("alice", "Passwort-1"), ("alice", ""), ("alice", "bob-pw"),
                           ("carol", "bob-pw")]:  # fmt: skip
        done = java_check(path, user, password)
        assert done.returncode == 1
        assert done.stdout.decode().startswith(
            f"refused: hodlflow: wrong user name or password (user '{user}'"
        )
        if password:
            assert password.encode() not in done.stdout + done.stderr


def test_the_java_provider_refuses_everyone_when_a_line_is_malformed(tmp_path):
    path = str(tmp_path / "users")
    set_password(path, "alice", "alice-pw", iterations=10)
    with open(path, "a") as fh:
        fh.write("bob:plain:bob-pw\n")
    done = java_check(path, "alice", "alice-pw")
    assert done.returncode == 1
    assert f"the password file {path} line 4 is not NAME:pbkdf2-sha256" in done.stdout.decode()


def test_serve_sql_user_reads_the_password_from_stdin_never_an_argument(
    tmp_path, monkeypatch, capsys
):
    path = str(tmp_path / "users")
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-pw\nignored\n"))
    args = ["serve-sql-user", "add", "alice", "--password-file", path, "--password-stdin",
            "--iterations", "10"]  # fmt: skip
    assert main(args) == EXIT_OK
    assert f"user 'alice' added to {path}" in capsys.readouterr().out
    [entry] = read_password_file(path)
    assert verify(entry, "from-stdin-pw")
    assert main(["serve-sql-user", "list", "--password-file", path]) == EXIT_OK
    assert capsys.readouterr().out == "alice\n"
    # No terminal and no --password-stdin: refused, not read from a pipe by surprise.
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    assert main(["serve-sql-user", "add", "bob", "--password-file", path]) == EXIT_USAGE
    assert "no terminal to ask the password at" in capsys.readouterr().err


def test_serve_sql_user_takes_the_password_from_the_environment(tmp_path, monkeypatch):
    path = str(tmp_path / "users")
    monkeypatch.setenv("HODLFLOW_SERVE_USER_PASSWORD", "from-env-pw")
    assert main(["serve-sql-user", "add", "carol", "--password-file", path,
                 "--iterations", "10"]) == EXIT_OK  # fmt: skip
    assert verify(read_password_file(path)[0], "from-env-pw")


def test_serve_sql_user_without_a_password_file_says_which_setting_to_set(capsys):
    assert main(["serve-sql-user", "list"]) == EXIT_USAGE
    assert "set serve.password_file in conf/" in capsys.readouterr().err

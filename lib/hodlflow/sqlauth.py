"""Who may reach ``hodlflow serve-sql``: the password file that Spark's Thrift server checks every
JDBC/ODBC login against, through our own provider class
(``lib/hodlflow/java/PasswordFileAuthenticator.java``, built into the jar cache by
``make setup``).

The file holds one line per user, never a password::

    NAME:pbkdf2-sha256:ITERATIONS:SALT:HASH

SALT (16 random bytes per entry) and HASH in standard base64, HASH = PBKDF2-HMAC-SHA256 of the
password's UTF-8 bytes, 32 bytes long. Blank lines and ``#`` lines are comments. The file is
written whole (a new file, then renamed over the old one) and readable by its owner only
(0600). The Java provider reads it on every login, so a user added or removed counts at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hodlflow import envvars
from hodlflow.config import ConfigError

SCHEME = "pbkdf2-sha256"
# OWASP's figure for PBKDF2-HMAC-SHA256 (2023): a login costs the server well under a second.
DEFAULT_ITERATIONS = 600_000
SALT_BYTES = 16
HASH_BYTES = 32
# Letters, digits and . _ @ -: no ':' (the field separator), no spaces, no control characters.
USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")

JAVA_SOURCE = Path(__file__).resolve().parent / "java" / "PasswordFileAuthenticator.java"
AUTH_CLASS = "hodlflow.sqlauth.PasswordFileAuthenticator"
# The JVM system property the class reads the password file's path from.
FILE_PROPERTY = "hodlflow.serve.password_file"
# Where `hodlflow serve-sql` takes the TLS keystore's password from (the CLI reads it).
KEYSTORE_PASSWORD_ENV = envvars.SERVE_KEYSTORE_PASSWORD


class PasswordFileError(ValueError):
    """The password file is unreadable or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    """One user's line: the hash parameters, never the password."""

    user: str
    iterations: int
    salt: bytes
    hash: bytes

    def line(self) -> str:
        b64 = base64.b64encode
        return (
            f"{self.user}:{SCHEME}:{self.iterations}:{b64(self.salt).decode()}:"
            f"{b64(self.hash).decode()}"
        )


def check_user_name(user: str) -> str:
    """``user`` if it can be a name in the file (``USER_NAME``), else :class:`ConfigError`."""
    if not USER_NAME.fullmatch(user):
        raise ConfigError(
            f"user name {user!r} is not allowed: use 1-64 letters, digits, '.', '_', '@' or '-'"
        )
    return user


def make_entry(
    user: str, password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> Entry:
    """The entry of ``user`` with ``password`` (a fresh random salt unless one is given).
    An empty password is refused."""
    check_user_name(user)
    if not password:
        raise ConfigError(f"the password of user {user!r} is empty")
    if iterations < 1:
        raise ConfigError(f"iterations must be ≥ 1, got {iterations}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return Entry(user, iterations, salt, digest)


def verify(entry: Entry, password: str) -> bool:
    """Whether ``password`` is ``entry``'s (constant-time comparison of the hashes)."""
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), entry.salt, entry.iterations, HASH_BYTES
    )
    return bool(password) and hmac.compare_digest(digest, entry.hash)


def parse_line(line: str, where: str) -> Entry:
    """The entry written on ``line`` (no comment, no blank), or :class:`PasswordFileError`
    naming ``where`` (file and line)."""
    parts = line.split(":")
    problem = None
    if len(parts) != 5:
        problem = f"has {len(parts)} ':'-separated fields, not 5"
    elif not USER_NAME.fullmatch(parts[0]):
        problem = f"has a bad user name {parts[0]!r}"
    elif parts[1] != SCHEME:
        problem = f"has the scheme {parts[1]!r}, not {SCHEME!r}"
    elif not parts[2].isdigit() or int(parts[2]) < 1:
        problem = f"has iterations {parts[2]!r}, not a positive integer"
    if problem is None:
        try:
            salt = base64.b64decode(parts[3], validate=True)
            digest = base64.b64decode(parts[4], validate=True)
        except ValueError:
            problem = "has a salt or hash that is not base64"
        else:
            if not salt or len(digest) != HASH_BYTES:
                problem = f"needs a salt and a {HASH_BYTES}-byte hash"
    if problem is not None:
        raise PasswordFileError(
            f"{where} {problem}: expected NAME:{SCHEME}:ITERATIONS:SALT:HASH "
            "(written by `hodlflow serve-sql-user add`)"
        )
    return Entry(parts[0], int(parts[2]), salt, digest)


def read_password_file(path: str) -> list[Entry]:
    """The entries of the password file at ``path``, in file order; :class:`PasswordFileError`
    naming the file (and line) when it is missing or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PasswordFileError(
            f"cannot read the password file {path}: {exc.strerror or exc}"
        ) from None
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            entries.append(parse_line(line, f"password file {path} line {number}"))
    return entries


HEADER = (
    "# hodlflow serve-sql users: NAME:pbkdf2-sha256:ITERATIONS:SALT:HASH (no passwords).\n"
    "# Written by `hodlflow serve-sql-user add/remove`; read by the Thrift server on each login.\n"
)


def write_password_file(path: str, entries: list[Entry]) -> None:
    """Replace the file at ``path`` with ``entries`` atomically (a private temporary file in
    the same folder, renamed over it): mode 0600 whatever the umask."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".hodlflow-users-", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(HEADER)
            fh.writelines(e.line() + "\n" for e in entries)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def set_password(path: str, user: str, password: str, iterations: int = DEFAULT_ITERATIONS) -> bool:
    """Add ``user`` to the password file at ``path`` (created if missing) or change their
    password; the other users stay as they were. Returns True when the user was new."""
    entry = make_entry(user, password, iterations)
    entries = read_password_file(path) if os.path.exists(path) else []
    new = all(e.user != user for e in entries)
    entries = [entry if e.user == user else e for e in entries] + ([entry] if new else [])
    write_password_file(path, entries)
    return new


def remove_user(path: str, user: str) -> None:
    """Remove ``user`` from the password file; :class:`ConfigError` when not there."""
    entries = read_password_file(path)
    if all(e.user != user for e in entries):
        raise ConfigError(f"no user {user!r} in the password file {path}")
    write_password_file(path, [e for e in entries if e.user != user])


def manage_users(
    path: str | None,
    action: str,
    name: str | None,
    new_password: Callable[[], str],
    iterations: int = DEFAULT_ITERATIONS,
) -> str:
    """`hodlflow serve-sql-user`: ``list`` the users of the password file ``path``, ``remove``
    user ``name``, or ``add`` it (or give it a new password: ``new_password()``, asked only
    then); returns what to show. A missing file setting, a missing or bad name is a
    :class:`ConfigError`."""
    if not path:
        raise ConfigError(
            "no password file: set serve.password_file in conf/ (the file serve-sql reads) "
            "or pass --password-file PATH"
        )
    if action == "list":
        return "\n".join(entry.user for entry in read_password_file(path))
    if not name:
        raise ConfigError(f"serve-sql-user {action} needs the user NAME")
    check_user_name(name)
    if action == "remove":
        remove_user(path, name)
        return f"user {name!r} removed from {path}"
    new = set_password(path, name, new_password(), iterations)
    return (
        f"user {name!r} {'added to' if new else 'given a new password in'} {path} (mode "
        "0600); a running serve-sql reads it at the next login"
    )


def auth_jar(jars_cache: str) -> str:
    """The provider's jar in ``jars_cache``, named by the hash of the Java source it was built
    from (``make setup`` builds it), or :class:`ConfigError` saying how to build it."""
    digest = hashlib.sha1(JAVA_SOURCE.read_bytes()).hexdigest()[:12]
    path = os.path.abspath(os.path.join(jars_cache, f"hodlflow-sqlauth-{digest}.jar"))
    if not os.path.isfile(path):
        raise ConfigError(
            f"the password check of serve-sql ({path}, built from {JAVA_SOURCE}) is missing: "
            "run `make setup` (it needs javac, JDK 17 or later)"
        )
    return path

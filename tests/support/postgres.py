"""A real PostgreSQL server for the tests, from Debian's package (``make system-packages``):
a fresh cluster in a temporary folder, listening on a free loopback port, with one database
owned by one user who logs in with a password (SCRAM, as a real deployment would).

initdb and postgres refuse to run as root: as root the cluster belongs to the ``postgres``
user the Debian package creates (else ``nobody``); as anyone else, to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from tests.support.ports import free_port


def pg_bin() -> str:
    """The newest installed PostgreSQL server's bin folder."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise RuntimeError("no PostgreSQL server installed: run `make system-packages`")
    return os.path.dirname(found[-1])


@dataclass
class Postgres:
    host: str
    port: int
    database: str
    user: str
    password: str
    folder: str

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"


def _owner() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None for the current user."""
    if os.getuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and neither user postgres nor nobody exists")


def start_postgres(database: str, user: str, password: str) -> Postgres:
    """initdb + pg_ctl start; the caller stops it with :func:`stop_postgres`."""
    owner = _owner()
    # Not under pytest's tmp folder: as root that is private to root (0700), out of reach of
    # the server's user.
    folder = tempfile.mkdtemp(prefix="hodlflow-pg-")
    data, sock = os.path.join(folder, "data"), os.path.join(folder, "sock")
    os.mkdir(sock)
    pwfile = os.path.join(folder, "superuser.pw")
    with open(pwfile, "w") as fh:
        fh.write("superuser-pw\n")
    run_as = {}
    if owner:
        for path in (folder, sock, pwfile):
            os.chown(path, *owner)
        run_as = {"user": owner[0], "group": owner[1], "extra_groups": []}
    binary = pg_bin()

    def run(*cmd: str) -> None:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, cwd=folder, **run_as
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")

    run(os.path.join(binary, "initdb"), "-D", data, "-U", "pgadmin", f"--pwfile={pwfile}",
        "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8")  # fmt: skip
    port = free_port()
    run(os.path.join(binary, "pg_ctl"), "-D", data, "-l", os.path.join(folder, "server.log"),
        "-w", "-t", "120", "-o", f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off", "start")  # fmt: skip
    pg = Postgres("127.0.0.1", port, database, user, password, folder)
    psql = [os.path.join(binary, "psql"), "-h", sock, "-p", str(port), "-U", "pgadmin",
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]  # fmt: skip
    quoted = password.replace("'", "''")
    run(*psql, "-c", f"CREATE ROLE {user} LOGIN PASSWORD '{quoted}'")
    run(*psql, "-c", f"CREATE DATABASE {database} OWNER {user}")
    return pg


def stop_postgres(pg: Postgres) -> None:
    owner = _owner()
    run_as = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
    try:
        subprocess.run([os.path.join(pg_bin(), "pg_ctl"), "-D", os.path.join(pg.folder, "data"),
                        "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=120, cwd=pg.folder, **run_as)  # fmt: skip
    finally:
        shutil.rmtree(pg.folder, ignore_errors=True)

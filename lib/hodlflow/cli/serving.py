"""The commands that serve the tables: sql, serve-sql and serve-sql-user. Each parses its
options and calls one library function; its docstring is its help."""

from __future__ import annotations

import argparse
import os
import sys

from hodlflow import envvars
from hodlflow.cli.options import EXIT_FAIL, EXIT_OK, command, session, settings_from
from hodlflow.config import ConfigError


def cmd_sql(args: argparse.Namespace) -> int:
    """open the spark-sql shell on the project's catalog, or run one query

    Without a query: the spark-sql shell (pyspark's bin/spark-sql) on the same warehouse and
    metastore, Delta loaded from the jar cache. With a query: run it through PySpark and print
    up to --limit rows (--spark-sql: through spark-sql).
    """
    if args.execute is not None and args.query is not None:
        raise ConfigError("give the query either as an argument or with -e, not both")
    query = args.execute if args.execute is not None else args.query
    settings = settings_from(args)
    if query is None or args.spark_sql:
        from hodlflow.sql import run_spark_sql

        return EXIT_OK if run_spark_sql(settings, query) == 0 else EXIT_FAIL
    session(settings).sql(query).show(args.limit, truncate=False)
    return EXIT_OK


def cmd_serve_sql(args: argparse.Namespace) -> int:
    """serve the catalog to BI tools over JDBC/ODBC (Spark Thrift server)

    Start Spark's Thrift JDBC/ODBC server (HiveThriftServer2) in the foreground over the
    project's warehouse and metastore; Ctrl-C or SIGTERM stops it. Logins are checked against
    a password file (--password-file, `hodlflow serve-sql-user`), TLS spoken with a Java
    keystore (--tls-keystore, its password from {envvars.SERVE_KEYSTORE_PASSWORD}); a host
    other than loopback is refused without logins unless --insecure-no-auth. With the default
    embedded Derby metastore no other Spark process can open the catalog while it runs.
    """
    from hodlflow.sql import serve

    extra = {
        "serve.host": args.host,
        "serve.port": args.port,
        "serve.password_file": args.password_file,
        "serve.tls_keystore": args.tls_keystore,
        "serve.allow_unauthenticated": True if args.insecure_no_auth else None,
        "serve.tls_keystore_password": os.environ.get(envvars.SERVE_KEYSTORE_PASSWORD) or None,
    }
    code = serve(settings_from(args, extra), log=lambda line: print(line, flush=True))
    return EXIT_OK if code == 0 else EXIT_FAIL


def new_password(args: argparse.Namespace, environ=os.environ) -> str:
    """The new password of ``serve-sql-user add``: from the environment variable, standard
    input (``--password-stdin``: its first line) or typed twice at a prompt; never an
    argument (it would show in ``ps`` and the shell's history)."""
    import getpass

    if environ.get(envvars.SERVE_USER_PASSWORD):
        return environ[envvars.SERVE_USER_PASSWORD]
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise ConfigError(
            "no terminal to ask the password at: pass it on standard input with "
            f"--password-stdin, or in the environment variable {envvars.SERVE_USER_PASSWORD}"
        )
    first = getpass.getpass(f"password of {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ; nothing changed")
    return first


def cmd_serve_sql_user(args: argparse.Namespace) -> int:
    """add, change or remove a login of serve-sql

    Maintain the password file of serve-sql (serve.password_file, or --password-file): one line
    per user with a salted PBKDF2-HMAC-SHA256 hash, mode 0600. The password is asked at the
    terminal, read from standard input (--password-stdin) or from
    ${envvars.SERVE_USER_PASSWORD}; never an argument. A running server reads the file at each
    login.
    """
    from hodlflow.sqlauth import manage_users

    settings = settings_from(args, {"serve.password_file": args.password_file})
    shown = manage_users(settings.serve.password_file, args.action, args.name,
                         lambda: new_password(args), args.iterations)  # fmt: skip
    if shown:
        print(shown)
    return EXIT_OK


def register(sub, common) -> None:
    """Add the serving subcommands to ``sub`` (``common``: the shared options' parser)."""
    from hodlflow.sqlauth import DEFAULT_ITERATIONS

    p = [common]
    s = command(sub, "sql", cmd_sql,
                "  hodlflow sql                                          # interactive spark-sql\n"
                "  hodlflow sql -e 'SHOW TABLES IN metrics'              # one query, through PySpark\n"
                "  hodlflow sql -e 'SELECT * FROM chain.blocks LIMIT 5' --spark-sql\n"
                "  hodlflow sql 'SELECT day, price_to_cost FROM metrics.miner_pressure' --limit 500\n",
                p)  # fmt: skip
    s.add_argument("query", nargs="?", help="the query (same as -e)")
    s.add_argument("-e", "--execute", metavar="QUERY", help="run this query and exit")
    s.add_argument("--limit", type=int, default=50, help="rows to print (PySpark; default 50)")
    s.add_argument("--spark-sql", action="store_true", help="run -e QUERY through spark-sql")

    s = command(sub, "serve-sql", cmd_serve_sql,
                "  hodlflow serve-sql                               # 127.0.0.1:10000 (conf: serve.*)\n"
                "  hodlflow serve-sql --host 0.0.0.0 --port 10001 --password-file users --tls-keystore ks.p12\n"
                "  beeline -u jdbc:hive2://127.0.0.1:10000/default -e 'SELECT * FROM metrics.miner_pressure'\n",
                p)  # fmt: skip
    s.add_argument("--host", help="bind address (serve.host, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (serve.port, default 10000)")
    s.add_argument("--password-file", metavar="PATH",
                   help="require logins of the users in this file (serve.password_file; "
                   "`hodlflow serve-sql-user add NAME` writes it)")  # fmt: skip
    s.add_argument("--tls-keystore", metavar="PATH",
                   help="speak TLS with this Java keystore (serve.tls_keystore); its password "
                   f"from ${envvars.SERVE_KEYSTORE_PASSWORD}")  # fmt: skip
    s.add_argument("--insecure-no-auth", action="store_true",
                   help="listen on a non-loopback host without logins "
                   "(serve.allow_unauthenticated); refused otherwise")  # fmt: skip

    s = command(sub, "serve-sql-user", cmd_serve_sql_user,
                "  hodlflow serve-sql-user add analyst                       # asks the password twice\n"
                "  printf '%s\\n' \"$PW\" | hodlflow serve-sql-user add analyst --password-stdin\n"
                "  hodlflow serve-sql-user remove analyst\n"
                "  hodlflow serve-sql-user list --password-file /etc/hodlflow/users\n", p)  # fmt: skip
    s.add_argument("action", choices=("add", "remove", "list"),
                   help="add (or change the password of) a user, remove one, list the names")  # fmt: skip
    s.add_argument("name", nargs="?", help="the user name (add, remove)")
    s.add_argument("--password-file", metavar="PATH", help="the file (serve.password_file)")
    s.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input's first line")  # fmt: skip
    s.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                   help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS:,})")  # fmt: skip

"""
The benchmarks' throwaway databases: SQLite in a temporary directory (the default), or a database
of its own on the machine's PostgreSQL (``--database postgres``; trust auth, as ``make test``
uses it), created for the run and dropped after it.
"""

import argparse
import os

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--database sqlite|postgres`` and ``--postgres-url``."""
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite", help="(default %(default)s)")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="the PostgreSQL server for --database postgres (default %(default)s)",
    )


def throwaway_database(args: argparse.Namespace, workdir: str, name: str) -> tuple[str, callable]:
    """
    The ``DATABASE_URL`` of a new, empty database for ``args.database`` and a function dropping it:
    ``<workdir>/bench.sqlite3``, or ``<name>_<pid>`` created on ``args.postgres_url``'s server.
    """
    if args.database == "sqlite":
        return f"sqlite:///{workdir}/bench.sqlite3", lambda: None
    import environ
    import psycopg

    config = environ.Env.db_url_config(args.postgres_url)
    database = f"{name}_{os.getpid()}"
    params = {
        "dbname": "postgres",
        "user": config["USER"],
        "password": config["PASSWORD"] or None,
        "host": config["HOST"] or "127.0.0.1",
        "port": config["PORT"] or 5432,
        "autocommit": True,
    }
    with psycopg.connect(**params) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(**params) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    auth = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    return f"postgres://{auth}@{params['host']}:{params['port']}/{database}", drop

"""Exit 0 when the PostgreSQL server of the DATABASE_URL given as argv[1] accepts a connection."""

import sys

import environ
import psycopg

config = environ.Env.db_url_config(sys.argv[1])
try:
    psycopg.connect(
        dbname="postgres",
        user=config["USER"],
        password=config["PASSWORD"] or None,
        host=config["HOST"] or "localhost",
        port=config["PORT"] or 5432,
        connect_timeout=3,
    ).close()
except psycopg.OperationalError:
    sys.exit(1)

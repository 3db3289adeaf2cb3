"""
Running ORM code from the event loop: ``await database_call(fn, *args)``.

asgiref runs each ``sync_to_async`` call in a copy of the caller's context, and Django keeps
its connections in context-local storage. A connection opened inside the call is therefore
invisible to the ``close_old_connections()`` that Channels' ``database_sync_to_async`` runs
around it, and each call leaves one connection open until garbage collection (measured on
PostgreSQL: 50 calls, 50 connections, none reused). ``database_call`` closes the connection
inside the call instead; on PostgreSQL that returns it to psycopg's pool (config/settings.py),
the setup Django recommends under ASGI.

On SQLite the calls of one process take turns (``_sqlite_turn``). SQLite admits one writer at
a time, and a writer that finds the lock taken polls it with sleeps that grow to 100 ms: ten
chat messages arriving together waited up to 230 ms for a 1 ms commit (``make bench-floods``,
p99 of 100 users in 10 rooms). Taking turns on a lock instead hands the database to the next
call the moment the last one ends. Other processes (a second Daphne, the batch worker) still
meet SQLite's own polling; PostgreSQL is not concerned (its lock waits are queues).

On SQLite each worker thread also keeps its connection from one call to the next
(``_sqlite_kept``). A new SQLite connection runs the ``init_command`` pragmas and parses the
schema again on its first statement: a ``chat.send`` cost 9.2 ms with a new connection and 4.8 ms
with a kept one (300 sends in a loop on this machine), and ``make bench-chat`` topped out at 100
messages/s with new connections. A kept connection is in autocommit mode between calls (a call
that leaves a transaction open has its connection closed instead).
"""

import functools
import threading
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

__all__ = ["database_call"]

P = ParamSpec("P")
R = TypeVar("R")


_sqlite_turn = threading.Lock()
_sqlite_kept = threading.local()


def _closing_connections(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if connections["default"].vendor == "sqlite":
            with _sqlite_turn:
                return _call_on_kept_connection(fn, args, kwargs)
        return _call_and_close(fn, args, kwargs)

    return run


def _call_on_kept_connection(fn, args, kwargs):
    kept = getattr(_sqlite_kept, "connection", None)
    if kept is not None:
        # This call runs in a copy of its caller's context: install the thread's connection there.
        connections["default"] = kept
    try:
        return fn(*args, **kwargs)
    finally:
        connection = connections["default"]
        if connection.connection is not None and not connection.in_atomic_block and connection.get_autocommit():
            _sqlite_kept.connection = connection
        else:
            _sqlite_kept.connection = None
            connections.close_all()


def _call_and_close(fn, args, kwargs):
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()


def database_call(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
    """
    Run ``fn(*args, **kwargs)`` in a worker thread of the event loop's executor and return its
    result (exceptions propagate); the thread's database connections are closed when it ends.

    Calls run concurrently (``thread_sensitive=False``): handlers of different connections do
    not queue behind one shared database thread (docs/platform-facts.md); on SQLite they take turns
    (module doc).
    """
    return sync_to_async(_closing_connections(fn), thread_sensitive=False)(*args, **kwargs)

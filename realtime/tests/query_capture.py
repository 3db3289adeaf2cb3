"""
Counting the SQL of the consumer's database work, whichever worker thread runs it (the
``database_queries`` fixture in the root conftest.py; the query-count tests of every app use it).

Django's ``CaptureQueriesContext`` (behind pytest-django's ``django_assert_num_queries``) reads
the queries of one connection: the calling thread's. The consumer runs every database call in a
worker thread of its own (``realtime.db.database_call`` through asgiref's ``sync_to_async``), on
a connection the test thread never sees, so those tools count nothing there.

``DatabaseQueries`` instead wraps each ``database_call`` while it records: inside the worker
thread, on the connection that call really uses (the kept SQLite connection, or the pooled
PostgreSQL one), it installs Django's public ``connection.execute_wrapper`` for the length of the
call. Everything else stays real (the ASGI stack, the middleware, the group commit, the channel
layer), so the counts are those of a client's connect or frame, not of a handler called alone.
A statement counts as Django's query capture counts it: one per ``execute`` or ``executemany``,
the ``BEGIN`` and ``SAVEPOINT`` statements included (SQLite runs ``BEGIN`` as a statement;
PostgreSQL's driver opens its transactions without one, so SQLite counts one more per
transaction).

The server's rule is that all its database work goes through ``database_call`` (the consumer,
its auth middleware, presence, the periodic jobs), so a query added on these paths is counted; one
made around it (a bare ``sync_to_async``, another database alias than ``default``) would not be.
The fixture puts the periodic jobs an hour apart, so none runs while a test records.
"""

import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, connections

from realtime import db, registry
from realtime.signals import presence_changed

# The database calls of a WebSocket connect (realtime/tests/test_query_counts.py), by name.
TOKEN_USER = "realtime.consumer.auth._authenticate_token_sync"  # the token's user (simplejwt's get_user)
# The new session's one call: presence_changed when the user came online, then every registered
# session-group provider (realtime.delivery.presence.open_connection).
OPEN_SESSION = "realtime.delivery.presence._open_session"


@dataclass
class RecordedCall:
    """One ``database_call``: the function it ran and the SQL statements it executed, in order."""

    name: str
    args: tuple
    queries: list[str] = field(default_factory=list)


class DatabaseQueries:
    """
    The ``database_call`` calls made while ``recording()``, with their queries.

    ``calls`` lists every call (in the order they started); ``counts()`` gives ``[(name, queries)]``.
    """

    def __init__(self):
        self.calls: list[RecordedCall] = []
        self._lock = threading.Lock()
        self._recording = False

    def wrap(self, fn: Callable) -> Callable:
        """``fn``, recording its queries (on the connection of the thread it runs in) while recording."""

        @functools.wraps(fn)
        def run(*args, **kwargs):
            if not self._recording:
                return fn(*args, **kwargs)
            call = RecordedCall(f"{fn.__module__}.{fn.__qualname__}", args)
            with self._lock:
                self.calls.append(call)

            def record(execute, sql, params, many, context):
                call.queries.append(sql)
                return execute(sql, params, many, context)

            # Installed on the connection this call uses: realtime.db has just put it in place.
            with connections["default"].execute_wrapper(record):
                return fn(*args, **kwargs)

        return run

    @contextmanager
    def recording(self) -> Iterator["DatabaseQueries"]:
        """Record the database calls started inside the block (the ones before it are forgotten)."""
        with self._lock:
            self.calls = []
        self._recording = True
        try:
            yield self
        finally:
            self._recording = False

    def counts(self) -> list[tuple[str, int]]:
        """``[(function, number of queries)]``, one per recorded call."""
        return [(call.name, len(call.queries)) for call in self.calls]

    def report(self) -> str:
        """Every recorded call and its SQL, for an assertion's message."""
        lines = []
        for call in self.calls:
            lines.append(f"{call.name}: {len(call.queries)} queries")
            lines.extend(f"    {n}. {sql}" for n, sql in enumerate(call.queries, 1))
        return "\n".join(lines) or "no database calls"


def per_vendor(*, sqlite: int, postgresql: int) -> int:
    """The count expected on the test database's vendor (they differ by SQLite's ``BEGIN`` statements)."""
    return {"sqlite": sqlite, "postgresql": postgresql}[connection.vendor]


def install(monkeypatch, settings) -> DatabaseQueries:
    """
    Wrap every ``realtime.db.database_call`` in a new ``DatabaseQueries`` (undone by ``monkeypatch``)
    and put the server's periodic database jobs an hour apart (``settings``), so none runs in a test.
    """
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_SWEEP_S": 3600, "SESSION_RECHECK_S": 3600}
    settings.TASK_SWEEP_S = 3600
    queries = DatabaseQueries()
    closing_connections = db._closing_connections
    # database_call looks this function up at each call: the worker-thread wrapper gets ours inside it.
    monkeypatch.setattr(db, "_closing_connections", lambda fn: closing_connections(queries.wrap(fn)))
    return queries


def only_app(monkeypatch, package: str) -> None:
    """
    Leave only the session-group providers and ``presence_changed`` receivers of ``package`` (an
    app's module path, ``"chat"``) registered, undone by ``monkeypatch``: as if it were the one
    domain app installed, so a connect's queries are the core's and that app's alone, and each
    app's tests pin its own without counting the others'.
    """

    def of_package(fn) -> bool:
        module = getattr(fn, "__module__", "") or ""
        return module == package or module.startswith(f"{package}.")

    def receiver(entry):  # Signal.receivers: (lookup key, receiver or a weak reference to it, is_async)
        return entry[1]() if isinstance(entry[1], weakref.ReferenceType) else entry[1]

    monkeypatch.setattr(
        registry, "_session_group_providers", [p for p in registry._session_group_providers if of_package(p)]
    )
    monkeypatch.setattr(
        presence_changed, "receivers", [r for r in presence_changed.receivers if of_package(receiver(r))]
    )

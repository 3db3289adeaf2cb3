"""
Presence: a user is online while any of their connections is open on any server process.

The connection registry (realtime.delivery.connection_registry) decides the transitions; this module
announces them through the ``presence_changed`` signal (apps decide who is told) and answers
"who is online" for views and handlers.
"""

from collections.abc import Callable
from typing import TypeVar

from realtime.conf import realtime_settings
from realtime.signals import presence_changed

from .connection_registry import ConnectionRecord, get_registry
from .outbox import publishing_call, publishing_call_excluding

T = TypeVar("T")


async def announce(user_id: int, *, online: bool, last_seen: int | None = None) -> None:
    """
    Send ``presence_changed`` for ``user_id`` in a worker thread (``last_seen``: epoch ms, when
    going offline); what its receivers publish leaves once they all returned.
    """
    await publishing_call(presence_changed.send, sender=None, user_id=user_id, online=online, last_seen=last_seen)


def presence_of(user_ids: list[int]) -> dict[int, dict]:
    """Return ``{user_id: {"online": bool, "last_seen": epoch ms or None}}`` from the registry (sync)."""
    return get_registry().presence(list(user_ids))


def online_user_ids() -> list[int]:
    """Return the ids of every user with an open connection on any process (sync)."""
    return get_registry().online_user_ids()


async def connection_opened(registry, record: ConnectionRecord) -> bool:
    """
    Register an authenticated connection of any endpoint (the consumer's sessions, a Socket.IO
    socket) in ``registry``: return False, registered no more, when its user already has
    ``MAX_CONNECTIONS_PER_USER`` open connections on every process and protocol together;
    announce the user online when it is their first.

    Raise the registry's errors (Redis away), leaving the record unregistered.
    """
    opened, _ = await open_connection(registry, record, None)
    return opened


async def open_connection(
    registry, record: ConnectionRecord, session_call: Callable[[], T] | None
) -> tuple[bool, T | None]:
    """
    ``connection_opened``, with ``session_call`` (sync, database work of the new session) run in
    the same worker-thread call as the presence announcement: one thread hop per connect instead
    of two (bench/idle.py --profile). Return ``(False, None)`` when refused, else ``(True,
    session_call's result)``; ``session_call``'s errors propagate, the record unregistered.
    """
    registered = await registry.register(record)
    try:
        if registered.user_connections > realtime_settings.MAX_CONNECTIONS_PER_USER:
            await registry.unregister(record)
            return False, None
        if registered.came_online or session_call is not None:
            # Announced to the others: this connection subscribes its groups after the call.
            result = await publishing_call_excluding(
                record.connection_id, _open_session, record.user_id, registered.came_online, session_call
            )
        else:
            result = None
    except BaseException:
        await registry.unregister(record)
        raise
    return True, result


def _open_session(user_id: int, came_online: bool, session_call: Callable[[], T] | None) -> T | None:
    if came_online:
        presence_changed.send(sender=None, user_id=user_id, online=True, last_seen=None)
    return session_call() if session_call is not None else None


async def connection_closed(registry, record: ConnectionRecord) -> None:
    """
    Unregister a connection ``connection_opened`` registered; announce its user offline (with
    ``last_seen``) when it was their last on every process. Raise the registry's errors (the
    record then expires after ``REGISTRY_TTL_S``).
    """
    last_seen = await registry.unregister(record)
    if last_seen is not None:
        await announce(record.user_id, online=False, last_seen=last_seen)


async def connections_drained(registry, records: list[ConnectionRecord]) -> None:
    """
    Unregister together the connections a draining process closed (SIGTERM, 1001), once they have
    all gone: their clients are reconnecting to another process or this one's successor. A user
    whose last connection one was stays online ``PRESENCE_DRAIN_GRACE_S`` more: back by then,
    nobody hears offline-then-online (a restart of 5,000 clients made 10,000 announcements, each
    to every co-member, and the database work to address them: ``make bench-storm``); not back,
    the sweep says offline. With no grace (0) they are announced offline here. Raise the
    registry's errors (the records then expire after ``REGISTRY_TTL_S``).
    """
    for user_id, last_seen in await registry.unregister_many(records, realtime_settings.PRESENCE_DRAIN_GRACE_S):
        await announce(user_id, online=False, last_seen=last_seen)

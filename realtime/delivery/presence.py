"""
Presence: a user is online while any of their connections is open on any server process.

The connection registry (realtime.delivery.connection_registry) decides the transitions; this module
announces them through the ``presence_changed`` signal (apps decide who is told) and answers
"who is online" for views and handlers.
"""

from realtime.conf import realtime_settings
from realtime.db import database_call
from realtime.signals import presence_changed

from .connection_registry import ConnectionRecord, get_registry


async def announce(user_id: int, *, online: bool, last_seen: int | None = None) -> None:
    """Send ``presence_changed`` for ``user_id`` in a worker thread (``last_seen``: epoch ms, when going offline)."""
    await database_call(presence_changed.send, sender=None, user_id=user_id, online=online, last_seen=last_seen)


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
    registered = await registry.register(record)
    try:
        if registered.user_connections > realtime_settings.MAX_CONNECTIONS_PER_USER:
            await registry.unregister(record)
            return False
        if registered.came_online:
            await announce(record.user_id, online=True)
    except BaseException:
        await registry.unregister(record)
        raise
    return True


async def connection_closed(registry, record: ConnectionRecord) -> None:
    """
    Unregister a connection ``connection_opened`` registered; announce its user offline (with
    ``last_seen``) when it was their last on every process. Raise the registry's errors (the
    record then expires after ``REGISTRY_TTL_S``).
    """
    last_seen = await registry.unregister(record)
    if last_seen is not None:
        await announce(record.user_id, online=False, last_seen=last_seen)

"""
Presence: a user is online while any of their connections is open on any server process.

The connection registry (realtime.delivery.connection_registry) decides the transitions; this module
announces them through the ``presence_changed`` signal (apps decide who is told) and answers
"who is online" for views and handlers.
"""

from realtime.db import database_call
from realtime.signals import presence_changed

from .connection_registry import get_registry


async def announce(user_id: int, *, online: bool, last_seen: int | None = None) -> None:
    """Send ``presence_changed`` for ``user_id`` in a worker thread (``last_seen``: epoch ms, when going offline)."""
    await database_call(presence_changed.send, sender=None, user_id=user_id, online=online, last_seen=last_seen)


def presence_of(user_ids: list[int]) -> dict[int, dict]:
    """Return ``{user_id: {"online": bool, "last_seen": epoch ms or None}}`` from the registry (sync)."""
    return get_registry().presence(list(user_ids))


def online_user_ids() -> list[int]:
    """Return the ids of every user with an open connection on any process (sync)."""
    return get_registry().online_user_ids()

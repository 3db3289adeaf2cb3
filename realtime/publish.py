"""
The publish API of the real-time core: how a domain app tells connections what happened.

``publish(group, type, data)`` and ``publish_on_commit(...)`` send an event to every connection
following ``group``, on every server process; the membership calls add or remove a user's open
connections to or from a group; ``close_user_connections`` ends a user's connections. Each event
is encoded to JSON once, crosses the channel layer once per server process that has members of
the group, and is handed to each local connection as is (realtime.delivery.hub).

Callable from sync code (services, admin, management commands). Inside a consumer's handler the
events wait until the handler's reply is sent, so the sender sees its ``ack`` first. The channel
layer is best-effort: a failure is logged, never raised, because the write that caused the event
is already committed; the group's members are told to catch up with a ``resync`` event.
"""

from typing import Any

from django.db import transaction

from realtime.delivery import (
    close_message,
    event_message,
    membership_message,
    multicast_message,
    send_hub_message,
    send_hub_message_async,
)

from .errors import ProtocolError
from .groups import HUBS_GROUP, user_group

__all__ = [
    "close_user_connections",
    "publish",
    "publish_async",
    "publish_on_commit",
    "publish_to_groups",
    "subscribe_user_on_commit",
    "unsubscribe_user_on_commit",
]


def publish(group: str, event_type: str, data: Any, *, exclude_connection: str | None = None) -> None:
    """
    Publish event ``event_type`` with JSON-safe ``data`` to every connection subscribed to ``group``
    (but the one whose id is ``exclude_connection``, seed 003's "room except one connection").
    """
    send_hub_message(group, event_message(group, event_type, data, exclude_connection=exclude_connection))


async def publish_async(group: str, event_type: str, data: Any, *, exclude_connection: str | None = None) -> None:
    """
    ``publish`` from the event loop, for handlers that run there rather than in a consumer's
    worker thread (the Socket.IO endpoint, rooms/compat/seed003.py): the same hub message, sent at
    once. Never raises (the layer's failures are logged and the group told to resync).
    """
    await send_hub_message_async(group, event_message(group, event_type, data, exclude_connection=exclude_connection))


def publish_to_groups(groups: list[str], event_type: str, data: Any) -> None:
    """
    Publish one event to the members of several groups: each connection that follows any of
    ``groups`` receives it once. One layer message per server process, however many groups
    (``publish`` to each would cost one per group: a user in 2,000 conversations going online
    queued 2,000 messages ahead of everyone's chat in each process's layer channel, and other
    users' p99 went to 0.9 s in ``make bench-floods``). Every process receives it, members or not,
    so it suits events to many groups, not one.
    """
    if groups:
        send_hub_message(HUBS_GROUP, multicast_message(groups, event_type, data))


def publish_on_commit(group: str, event_type: str, data: Any, *, using: str | None = None) -> None:
    """Publish after the current transaction commits (at once outside a transaction); never if it rolls back."""
    transaction.on_commit(lambda: publish(group, event_type, data), using=using)


def subscribe_user_on_commit(user_group_name: str, target: str, event: tuple[str, Any] | None = None) -> None:
    """
    After commit, subscribe every open connection in ``user_group_name`` (on every process) to
    ``target``. Sent on the same path as events, so it reaches each process before any event
    published after it to the same user group.

    ``event`` (``(type, data)``) is written to those connections right after they subscribe: the
    way to tell a new member "you were added" exactly once. Published to ``target`` instead, it
    could miss them (their process may not be in ``target``'s layer group yet) or, published both
    ways, reach them twice.
    """
    transaction.on_commit(
        lambda: send_hub_message(user_group_name, membership_message(user_group_name, target, "add", event))
    )


def unsubscribe_user_on_commit(user_group_name: str, target: str) -> None:
    """After commit, unsubscribe every open connection in ``user_group_name`` from ``target``."""
    transaction.on_commit(
        lambda: send_hub_message(user_group_name, membership_message(user_group_name, target, "discard", None))
    )


def close_user_connections(user_id: int, code: int, error: ProtocolError) -> None:
    """
    Close every open connection of ``user_id``, on every process, with close ``code`` after an
    ``error`` frame carrying ``error`` (the reason; Daphne drops close reasons). Used by the
    admin's "disconnect" action.
    """
    send_hub_message(user_group(user_id), close_message(user_id, code, error))

"""
The publish API of the real-time core: how a domain app tells connections what happened.

``publish(group, type, data)`` and ``publish_on_commit(...)`` send an event to every connection
following ``group``, on every server process; ``publish_to_connection`` to one connection,
``publish_to_everyone`` to every authenticated connection; the membership calls add or remove a user's open
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
    get_registry,
    membership_message,
    multicast_message,
    send_hub_message,
)

from .errors import ProtocolError
from .groups import EVERYONE_GROUP, HUBS_GROUP, user_group

__all__ = [
    "close_user_connections",
    "publish",
    "publish_on_commit",
    "publish_to_connection",
    "publish_to_everyone",
    "publish_to_groups",
    "subscribe_user_on_commit",
    "unsubscribe_user_on_commit",
]


def publish(
    group: str,
    event_type: str,
    data: Any,
    *,
    exclude_connection: str | None = None,
    order: tuple[str, int] | None = None,
) -> None:
    """
    Publish event ``event_type`` with JSON-safe ``data`` to every connection subscribed to ``group``
    (but the one whose id is ``exclude_connection``, seed 003's "room except one connection").

    ``order`` (``(stream, seq)``, seq counting 1, 2, 3, ... within the stream, e.g. a
    conversation's messages) has each server process write the stream's events in seq order even
    when two processes publish them in the opposite order; a gap waits at most
    ``REALTIME["SEQUENCE_GAP_WAIT_S"]`` (realtime.delivery.ordering).
    """
    send_hub_message(group, event_message(group, event_type, data, exclude_connection=exclude_connection, order=order))


def publish_to_connection(connection_id: str, event_type: str, data: Any) -> bool:
    """
    Publish one event to the open connection ``connection_id`` (the id its ``welcome`` gave), on
    whichever process holds it; return False, sending nothing, when the connection registry knows
    no such open connection. Sent through its user's group with that one connection as target, so
    it costs one registry read and one layer message per process of that user, where a layer group
    per connection (Socket.IO's room per socket, behind seed 003's ``sendToClient``) would cost a
    group add and discard in Redis on every connect and disconnect.
    """
    record = get_registry().connection(connection_id)
    if record is None:
        return False
    group = user_group(record.user_id)
    send_hub_message(group, event_message(group, event_type, data, only_connection=connection_id))
    return True


def publish_to_everyone(event_type: str, data: Any) -> None:
    """
    Publish one event to every authenticated connection on every process (``EVERYONE_GROUP``): one
    layer message per server process, each hub writing the frame it encoded once to its local
    connections. Connections still authenticating do not receive it.
    """
    publish(EVERYONE_GROUP, event_type, data)


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


def publish_on_commit(
    group: str, event_type: str, data: Any, *, using: str | None = None, order: tuple[str, int] | None = None
) -> None:
    """
    ``publish`` after the current transaction commits (at once outside a transaction); never if it rolls back.
    """
    transaction.on_commit(lambda: publish(group, event_type, data, order=order), using=using)


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

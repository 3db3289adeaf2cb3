"""
Server-side publishing to generic rooms, users, connections and everyone: the one write path of
the ``room.publish`` handler, the HTTP publish API (rooms.views) and the admin's announcement.

Seed 003's server could send to one connection, to a user (all their connections), to a room
(optionally except one connection) and to everyone; these are those four. Rooms are ephemeral
(no table): a publish to a room nobody joined reaches nobody. Nothing is stored, so events go out
at once (there is no transaction to wait for), best-effort like every event (realtime.publish).

Two event shapes (docs/protocol.md, "Rooms"):

- ``room.message {room, event, data, from, connection_id}`` to a room's connections: ``from`` is
  the sending user (``user_ref``) and ``connection_id`` their connection, both null when a
  back-end service published;
- ``server.message {event, data, to}`` to a user, a connection or everyone: ``to`` is
  ``"user"``, ``"connection"`` or ``"everyone"``.
"""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from realtime.errors import NotFound
from realtime.groups import user_group
from realtime.publish import publish, publish_to_connection, publish_to_everyone
from realtime.users import user_ref

from .policy import room_group, rule_for

__all__ = [
    "ANNOUNCEMENT_EVENT",
    "announce",
    "note_key_used",
    "publish_to_room",
    "send_to_connection",
    "send_to_everyone",
    "send_to_user",
]

# The ``event`` of the admin's announcements inside ``server.message``.
ANNOUNCEMENT_EVENT = "announcement"
# How stale a service key's ``last_used`` may be: a busy service does not write once per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def publish_to_room(
    *, room: str, event: str, data: Any, sender=None, connection_id: str | None = None, except_self: bool = False
) -> dict:
    """
    Publish ``room.message`` to every connection that joined ``room``; return its data.

    ``sender`` and ``connection_id`` name the client that published (None for a back-end
    service); ``except_self`` leaves that connection out (seed 003's "room except the sender").
    Authorisation is the caller's (``policy.check_publish`` for clients; back-end services may
    publish to any room). Raise ``Invalid`` / ``NotFound`` (``policy.rule_for``) for a bad name or
    a room no namespace of ``settings.ROOMS`` matches.
    """
    rule_for(room)
    message = {
        "room": room,
        "event": event,
        "data": data,
        "from": user_ref(sender) if sender is not None else None,
        "connection_id": connection_id,
    }
    publish(room_group(room), "room.message", message, exclude_connection=connection_id if except_self else None)
    return message


def send_to_user(*, user_id: int, event: str, data: Any) -> dict:
    """
    Send ``server.message {event, data, to: "user"}`` to every open connection of ``user_id``, on
    every process (none when they are offline: nothing is kept for later); return its data.
    """
    message = {"event": event, "data": data, "to": "user"}
    publish(user_group(user_id), "server.message", message)
    return message


def send_to_connection(*, connection_id: str, event: str, data: Any) -> dict:
    """
    Send ``server.message {event, data, to: "connection"}`` to the one open connection
    ``connection_id`` (``welcome``'s id); return its data. Raise ``NotFound`` when no such
    connection is open (the connection registry's view, at most ``REGISTRY_TTL_S`` late).
    """
    message = {"event": event, "data": data, "to": "connection"}
    if not publish_to_connection(connection_id, "server.message", message):
        raise NotFound("No such open connection")
    return message


def send_to_everyone(*, event: str, data: Any) -> dict:
    """
    Send ``server.message {event, data, to: "everyone"}`` to every authenticated connection on
    every process (one layer message per process); return its data.
    """
    message = {"event": event, "data": data, "to": "everyone"}
    publish_to_everyone("server.message", message)
    return message


def announce(*, text: str, sender) -> dict:
    """
    The admin's announcement to everyone online: ``server.message`` with event ``announcement``
    and data ``{text, from: user_ref(sender)}`` (``sender``: the staff user who sent it).
    """
    return send_to_everyone(event=ANNOUNCEMENT_EVENT, data={"text": text, "from": user_ref(sender)})


def note_key_used(service_key) -> None:
    """Set ``service_key.last_used`` to now when it is unset or older than ``LAST_USED_PRECISION``."""
    now = timezone.now()
    if service_key.last_used is None or now - service_key.last_used >= LAST_USED_PRECISION:
        type(service_key).objects.filter(pk=service_key.pk).update(last_used=now)
        service_key.last_used = now

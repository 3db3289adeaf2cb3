"""
The one publish path: ``publish(group, type, data)`` and ``publish_on_commit(...)``.

An event is encoded to JSON once here, crosses the channel layer once per server process that
has members of the group (realtime.hub), and is handed to each local connection as is.

While a consumer runs a handler, publishes are collected and sent after the handler's reply,
so the sender always sees its ``ack`` before the events the command caused.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from . import metrics, resync
from .envelope import error_frame, event_frame
from .errors import ProtocolError
from .groups import HUBS_GROUP, user_group
from .layers import RedisChannelLayer

logger = logging.getLogger(__name__)

# The channel-layer message types every hub handles:
# {"type": "realtime.event", "group", "text"}: write ``text`` to the group's local members;
# {"type": "realtime.membership", "group", "target", "action", "text"?}: subscribe ("add") or
# unsubscribe ("discard") every local member of ``group`` (a user group) to or from ``target``,
# then write ``text`` (a pre-encoded event) to each of them when given.
# {"type": "realtime.close", "group", "code", "text", "exclude"?}: write ``text`` (an error frame
# saying why) to every local member of ``group`` but ``exclude``, then close them with ``code``.
# {"type": "realtime.multicast", "groups", "text"}: sent to every hub (HUBS_GROUP); write ``text``
# once to each local connection that is a member of any of ``groups``.
# Events carry "event" (the frame type, for metrics), "ts" (epoch s at publish, for latency) and
# optionally "exclude" (a connection id not to write to).
LAYER_EVENT_TYPE = "realtime.event"
LAYER_MEMBERSHIP_TYPE = "realtime.membership"
LAYER_CLOSE_TYPE = "realtime.close"
LAYER_MULTICAST_TYPE = "realtime.multicast"

_collected: ContextVar[list[tuple[str, dict]] | None] = ContextVar("realtime_collected", default=None)


async def send_to_layer(group: str, message: dict) -> None:
    """
    Hand one hub message (an event or a membership change) to the channel layer for ``group``; raise the layer's errors.
    """
    await get_channel_layer().group_send(group, message)


def _groups_of(message: dict) -> list[str]:
    """The groups whose members a hub message was for (a multicast names several)."""
    return message["groups"] if message["type"] == LAYER_MULTICAST_TYPE else [message["group"]]


async def announce_lost() -> None:
    """
    Send the ``resync`` announcement of the groups whose events this process lost, if any
    (realtime.resync); keep them for the next try when the layer still refuses. Never raises.
    """
    taken = resync.take_lost_message()
    if taken is None:
        return
    groups, message = taken
    try:
        await send_to_layer(resync.announcement_target(), message)
    except Exception:
        resync.give_back(groups)
        logger.warning("resync announcement for %d groups failed; retried", len(groups))


async def _send_now(group: str, message: dict) -> None:
    if resync.has_lost():
        await announce_lost()
    try:
        await send_to_layer(group, message)
    except Exception:
        resync.note_lost(_groups_of(message))
        logger.exception("send to %s failed; its members are told to resync", group)


def _dispatch(group: str, message: dict) -> None:
    # Inside a consumer's handler: held back until its reply is sent (ack before events).
    collected = _collected.get()
    if collected is not None:
        collected.append((group, message))
        return
    try:
        async_to_sync(_send_now)(group, message)
    except Exception:  # _send_now never raises: this is async_to_sync refusing to run here
        resync.note_lost(_groups_of(message))
        logger.exception("send to %s failed; its members are told to resync", group)


def publish(group: str, event_type: str, data: Any, *, exclude_connection: str | None = None) -> None:
    """
    Publish event ``event_type`` with JSON-safe ``data`` to every connection subscribed to ``group``
    (but the one whose id is ``exclude_connection``, seed 003's "room except one connection").

    Callable from sync code (services, admin, management commands). Inside a consumer's handler
    it is deferred until the handler's reply is sent. The channel layer is best-effort: a failure
    is logged, never raised, because the write that caused the event is already committed; the
    group's members are told to catch up with a ``resync`` event (realtime.resync).
    """
    message = {
        "type": LAYER_EVENT_TYPE,
        "group": group,
        "text": event_frame(event_type, data),
        "event": event_type,
        "ts": time.time(),
    }
    if exclude_connection is not None:
        message["exclude"] = exclude_connection
    _dispatch(group, message)


def publish_to_groups(groups: list[str], event_type: str, data: Any) -> None:
    """
    Publish one event to the members of several groups: each connection that follows any of
    ``groups`` receives it once. One layer message per server process, however many groups
    (``publish`` to each would cost one per group: a user in 2,000 conversations going online
    queued 2,000 messages ahead of everyone's chat in each process's layer channel, and other
    users' p99 went to 0.9 s in ``make bench-floods``). Every process receives it, members or not,
    so it suits events to many groups, not one. Deferred and best-effort like ``publish``.
    """
    if not groups:
        return
    message = {
        "type": LAYER_MULTICAST_TYPE,
        "groups": list(groups),
        "text": event_frame(event_type, data),
        "event": event_type,
        "ts": time.time(),
    }
    _dispatch(HUBS_GROUP, message)


def close_message(user_id: int, code: int, error: ProtocolError, exclude_connection: str | None = None) -> dict:
    """The hub message closing ``user_id``'s connections (but ``exclude_connection``) with ``code`` after ``error``."""
    message = {"type": LAYER_CLOSE_TYPE, "group": user_group(user_id), "code": int(code), "text": error_frame(error)}
    if exclude_connection is not None:
        message["exclude"] = exclude_connection
    return message


def close_user_connections(user_id: int, code: int, error: ProtocolError) -> None:
    """
    Close every open connection of ``user_id``, on every process, with close ``code`` after an
    ``error`` frame carrying ``error`` (the reason; Daphne drops close reasons). Sync; used by the
    admin's "disconnect" action.
    """
    _dispatch(user_group(user_id), close_message(user_id, code, error))


def _send_membership(user_group_name: str, target: str, action: str, event: tuple[str, Any] | None = None) -> None:
    message = {"type": LAYER_MEMBERSHIP_TYPE, "group": user_group_name, "target": target, "action": action}
    if event is not None:
        message.update(text=event_frame(*event), event=event[0], ts=time.time())
    _dispatch(user_group_name, message)


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
    transaction.on_commit(lambda: _send_membership(user_group_name, target, "add", event))


def unsubscribe_user_on_commit(user_group_name: str, target: str) -> None:
    """After commit, unsubscribe every open connection in ``user_group_name`` from ``target``."""
    transaction.on_commit(lambda: _send_membership(user_group_name, target, "discard"))


def publish_on_commit(group: str, event_type: str, data: Any, *, using: str | None = None) -> None:
    """Publish after the current transaction commits (at once outside a transaction); never if it rolls back."""
    transaction.on_commit(lambda: publish(group, event_type, data), using=using)


@contextmanager
def collecting_publishes() -> Iterator[list[tuple[str, dict]]]:
    """Collect the ``(group, message)`` pairs published in this context instead of sending them."""
    collected: list[tuple[str, dict]] = []
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


async def flush_collected(collected: list[tuple[str, dict]]) -> None:
    """
    Send what ``collecting_publishes`` gathered, in order; log (never raise) layer failures.

    On Redis, one ``group_send_many`` for the lot (realtime.layers); a process channel's
    deliveries refused over capacity count as failed deliveries (``/metrics``).
    """
    if not collected:
        return
    layer = get_channel_layer()
    if not isinstance(layer, RedisChannelLayer):
        for group, message in collected:  # other layers (in-memory in tests) have no batch send
            await _send_now(group, message)
        return
    if resync.has_lost():
        await announce_lost()
    try:
        refused = await layer.group_send_many(collected)
    except Exception:
        refused = None
        logger.exception("send of %d events failed; their members are told to resync", len(collected))
    if refused is None or refused:
        # Refused over a channel's capacity: some process missed them, which one is not known.
        resync.note_lost(group for _, message in collected for group in _groups_of(message))
    if refused:
        metrics.DELIVERY_FAILURES.inc(refused)

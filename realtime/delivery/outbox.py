"""
The outbox of every server and worker process: how a published event or a membership change
leaves the process for the channel layer.

``send(group, message)`` hands one hub message to the layer, or, inside a consumer's handler,
holds it until the handler's reply is sent (``collecting_publishes``), so the sender always sees
its ``ack`` before the events the command caused. The layer is best-effort: a failed send is
logged and the groups it was for are noted as lost (realtime.delivery.resync), whose members are
told to catch up. The message shapes below are what every hub (realtime.delivery.hub) reads.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime import metrics
from realtime.db import database_call
from realtime.envelope import error_frame, event_frame
from realtime.errors import CloseCode, ProtocolError, SessionReplaced
from realtime.groups import user_group

from . import resync
from .coalesce import Coalescer
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
# once to each local connection that is a member of any of ``groups`` (but "exclude", if given).
# Events carry "event" (the frame type, for metrics), "ts" (epoch s at publish, for latency) and
# optionally "exclude" (a connection id not to write to) or "only" (the one connection id to write
# to), and "order" ([stream, seq]: written in seq order per stream, realtime.delivery.ordering).
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


async def replace_sessions(user_id: int, keep_connection: str, codec: str | None = None) -> None:
    """
    Close ``user_id``'s other connections on every process (all but ``keep_connection``; with
    ``codec``, only those of that wire protocol) with ``session_replaced`` and 4409: single-session
    mode (``REALTIME["SINGLE_SESSION"]``, seed 004's single sign-on). Raise the layer's errors.
    """
    await send_to_layer(
        user_group(user_id),
        close_message(
            user_id, CloseCode.SESSION_REPLACED, SessionReplaced(), exclude_connection=keep_connection, codec=codec
        ),
    )


def _groups_of(message: dict) -> list[str]:
    """The groups whose members a hub message was for (a multicast names several)."""
    return message["groups"] if message["type"] == LAYER_MULTICAST_TYPE else [message["group"]]


async def announce_lost() -> None:
    """
    Send the ``resync`` announcement of the groups whose events this process lost, if any
    (realtime.delivery.resync); keep them for the next try when the layer still refuses. Never raises.
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


def send_hub_message(group: str, message: dict) -> None:
    """
    Send hub ``message`` for ``group`` from sync code; inside a consumer's handler, hold it until
    the handler's reply is sent. Never raises: a failure is logged and the groups noted as lost.
    """
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


def close_message(
    user_id: int, code: int, error: ProtocolError, exclude_connection: str | None = None, codec: str | None = None
) -> dict:
    """
    The hub message closing ``user_id``'s connections (but ``exclude_connection``; only those of
    the endpoints whose wire protocol is named ``codec``, realtime.codec, when given) with ``code``
    after ``error``.
    """
    message = {"type": LAYER_CLOSE_TYPE, "group": user_group(user_id), "code": int(code), "text": error_frame(error)}
    if exclude_connection is not None:
        message["exclude"] = exclude_connection
    if codec is not None:
        message["codec"] = codec
    return message


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

    On Redis, one ``group_send_many`` for the lot and for the other flushes made while the
    previous one was in flight (realtime.delivery.layers, .coalesce); a process channel's
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
        await _layer_sends.submit(collected)
    except Exception:
        resync.note_lost(group for _, message in collected for group in _groups_of(message))
        logger.exception("send of %d events failed; their members are told to resync", len(collected))


async def _send_many(collections: list[list[tuple[str, dict]]]) -> list[None]:
    sends = [send for collected in collections for send in collected]
    refused = await get_channel_layer().group_send_many(sends)
    if refused:
        # Refused over a channel's capacity: some process missed them, which one is not known.
        resync.note_lost(group for _, message in sends for group in _groups_of(message))
        metrics.DELIVERY_FAILURES.inc(refused)
    return [None] * len(collections)


# The flushes made while one ``group_send_many`` is in flight go out together, in order: the
# connects of a reconnect storm each announce their user online (realtime.delivery.coalesce).
_layer_sends: Coalescer[list[tuple[str, dict]], None] = Coalescer(_send_many, name="layer-send", max_batch=100)


def event_message(
    group: str,
    event_type: str,
    data: Any,
    *,
    exclude_connection: str | None = None,
    only_connection: str | None = None,
    order: tuple[str, int] | None = None,
) -> dict:
    """
    The hub message writing event ``event_type`` (``data``, JSON-safe) to ``group``'s members: all
    of them, all but ``exclude_connection``, or only ``only_connection`` (connection ids). With
    ``order`` (``(stream, seq)``), each hub writes it after the events of ``stream`` numbered
    before it (realtime.delivery.ordering).
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
    if only_connection is not None:
        message["only"] = only_connection
    if order is not None:
        message["order"] = list(order)
    return message


def multicast_message(groups: list[str], event_type: str, data: Any) -> dict:
    """
    The hub message writing one event once to each local connection in any of ``groups`` (but the
    one whose id is the message's ``exclude``, when set).
    """
    return {
        "type": LAYER_MULTICAST_TYPE,
        "groups": list(groups),
        "text": event_frame(event_type, data),
        "event": event_type,
        "ts": time.time(),
    }


def membership_message(user_group_name: str, target: str, action: str, event: tuple[str, Any] | None) -> dict:
    """The hub message subscribing (``action`` "add") or unsubscribing ("discard") ``user_group_name``'s
    connections to or from ``target``, then writing ``event`` (``(type, data)``) to them when given."""
    message = {"type": LAYER_MEMBERSHIP_TYPE, "group": user_group_name, "target": target, "action": action}
    if event is not None:
        message.update(text=event_frame(*event), event=event[0], ts=time.time())
    return message


async def publishing_call(fn, /, *args, **kwargs):
    """
    ``await database_call(fn, *args, **kwargs)`` (realtime.db) for ``fn`` that publishes: its
    events are collected and sent from the event loop once it returns (or raises), in order.

    Published from the worker thread, each event would cross back to the event loop
    (``async_to_sync``) while the call still holds the process's SQLite turn: with 50 clients
    connecting, every connect waited on the presence announcements of the ones before it
    (``bench/connect_profile.py``: 900 of 1,450 samples of a worker thread waiting for the turn).
    """
    return await publishing_call_excluding(None, fn, *args, **kwargs)


async def publishing_call_excluding(connection_id: str | None, fn, /, *args, **kwargs):
    """
    ``publishing_call``, the events ``fn`` publishes written to every member but the connection
    ``connection_id`` (when given): a connection's own opening announced to the others
    (realtime.delivery.presence). That connection subscribes its groups right after the call, so
    without this whether it heard its own announcement depended on which of the hub's read and
    its subscription ran first.
    """
    with collecting_publishes() as collected:
        try:
            return await database_call(fn, *args, **kwargs)
        finally:
            if connection_id is not None:
                for _, message in collected:
                    if message["type"] in (LAYER_EVENT_TYPE, LAYER_MULTICAST_TYPE):
                        message.setdefault("exclude", connection_id)
            await flush_collected(collected)

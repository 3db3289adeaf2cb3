"""
Delivery: how an event reaches every connection that follows its group, on every server process.

- ``layers``: the Redis channel layer with batched sends, reads and group changes;
- ``outbox``: hub messages leaving a process (held during a handler, sent after its reply);
- ``hub``: one per process; follows groups in the layer for its connections and writes each
  event's frame, built once, to every local member;
- ``group_commit``: batched handlers (``chat.send``) committed together;
- ``process``: a server process's lifecycle (hub, registry, periodic jobs, drain on SIGTERM);
- ``connection_registry`` and ``presence``: who is connected where, who is online;
- ``resync``: groups whose events were lost, and the ``resync`` event telling their members.

Layers above (the consumer, the publish API, ops) import the names below, never the modules.
"""

from .connection_registry import ConnectionRecord, RedisConnectionRegistry, get_registry
from .group_commit import GroupCommit
from .layers import RedisChannelLayer
from .outbox import (
    close_message,
    collecting_publishes,
    event_message,
    flush_collected,
    membership_message,
    multicast_message,
    publishing_call,
    replace_sessions,
    send_hub_message,
    send_to_layer,
)
from .presence import (
    announce,
    connection_opened,
    online_user_ids,
    open_connection,
    presence_of,
)
from .process import ServerProcess, close_process, get_process
from .stats import WINDOW_S, ProcessStats

__all__ = [
    "WINDOW_S",
    "ConnectionRecord",
    "GroupCommit",
    "ProcessStats",
    "RedisChannelLayer",
    "RedisConnectionRegistry",
    "ServerProcess",
    "announce",
    "close_message",
    "close_process",
    "connection_opened",
    "collecting_publishes",
    "event_message",
    "flush_collected",
    "get_process",
    "get_registry",
    "membership_message",
    "multicast_message",
    "online_user_ids",
    "open_connection",
    "presence_of",
    "publishing_call",
    "replace_sessions",
    "send_hub_message",
    "send_to_layer",
]

"""
Lost events are announced, never left to chance (docs/protocol.md, "resync").

The channel layer is best-effort: a publish can fail (Redis away, a dropped connection), be
refused over a channel's capacity, or go to a hub that was not reading (its Redis connection was
lost, Redis restarted empty and forgot its groups). The writes behind those events are committed,
so a client recovers them from the database; what it needs is to know that it must. Every loss
becomes a ``resync`` event to the connections that may have missed something, and clients then
catch up (chat from ``chat.join {after_seq}``, a task from its snapshot, lists by fetching them).

- A process whose publish failed or was refused remembers the groups (``note_lost``, from any
  thread) and, as soon as the layer takes messages again, multicasts ``resync`` to every member of
  them on every process (``announce_lost``): before its next publish, and every ``HUB_RETRY_S``
  from the hub of a server process, so a quiet publisher still tells.
- A hub that could not read its channel tells every local connection (``realtime.delivery.hub``), after it
  has rejoined its groups.
"""

import threading
import time
from collections.abc import Iterable

from realtime import metrics
from realtime.envelope import event_frame
from realtime.groups import HUBS_GROUP

RESYNC_EVENT = "resync"

_lock = threading.Lock()
_lost_groups: set[str] = set()


def resync_frame(reason: str) -> str:
    """The ``resync`` event, ``{"reason": "publish_failed" | "hub_reconnected"}``: catch up on everything shown."""
    return event_frame(RESYNC_EVENT, {"reason": reason})


def note_lost(groups: Iterable[str]) -> None:
    """Remember that events to ``groups`` may not have reached every member (thread-safe); count one lost publish."""
    give_back(groups)
    metrics.LOST_PUBLISHES.inc()


def give_back(groups: Iterable[str]) -> None:
    """Remember ``groups`` again after their announcement failed (thread-safe; not a new loss, so not counted)."""
    groups = set(groups)
    with _lock:
        _lost_groups.update(groups)


def has_lost() -> bool:
    """Whether some groups wait for their ``resync`` announcement."""
    return bool(_lost_groups)


def take_lost_message() -> tuple[set[str], dict] | None:
    """
    Take the remembered groups and return them with the layer message that announces them (a
    multicast to every hub, realtime.publish's ``realtime.multicast``); None when there are none.
    The caller sends it and gives the groups back with ``give_back`` if the send fails.
    """
    with _lock:
        if not _lost_groups:
            return None
        groups = set(_lost_groups)
        _lost_groups.clear()
    message = {
        "type": "realtime.multicast",
        "groups": sorted(groups),
        "text": resync_frame("publish_failed"),
        "event": RESYNC_EVENT,
        "ts": time.time(),
    }
    return groups, message


def announcement_target() -> str:
    """The layer group the announcement goes to: every hub."""
    return HUBS_GROUP

"""
Capture what the services publish, without a server or a channel layer: ``capture_publishes``.

Every hub message a sync caller publishes (``publish``, ``publish_to_groups``, ``publish_on_commit``,
``subscribe_user_on_commit`` with an event, ``close_user_connections``, and the ``resync``
announcement of lost groups) leaves the process through ``realtime.delivery.outbox.send_to_layer``, so that
one function is replaced. Not seen: what a consumer writes to its own socket (``welcome``, ``pong``,
replies) and what it hands to the layer itself; drive a consumer for those.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from realtime.delivery import outbox


@dataclass(frozen=True)
class Published:
    """
    One hub message as it left the process.

    ``kind``: the layer message type (``realtime.event``, ``realtime.multicast``,
    ``realtime.membership``, ``realtime.close``); ``groups``: the group it was for, or each group of
    a multicast; ``frame``: the frame its connections receive, JSON-decoded
    (``{"type", "data", "ts"}`` for an event, ``{"type": "error", "ref", "error"}`` before a
    close), or None for a membership change that carries no event.
    """

    kind: str
    groups: tuple[str, ...]
    frame: dict | None

    @property
    def type(self) -> str | None:
        """The frame's ``type`` (``"chat.message"``, ``"error"``...), None without a frame."""
        return self.frame["type"] if self.frame is not None else None

    @property
    def data(self) -> Any:
        """The frame's ``data`` (None without a frame, or for a frame with no ``data`` such as ``error``)."""
        return self.frame.get("data") if self.frame is not None else None


class Publishes(list[Published]):
    """What ``capture_publishes`` recorded, in the order it was sent."""

    def frames(self) -> list[Published]:
        """The messages that carry a frame for the clients (membership changes without an event left out)."""
        return [p for p in self if p.frame is not None]

    def types(self) -> set[str]:
        """Every frame type published, e.g. ``{"chat.message", "workspace.created"}``."""
        return {p.type for p in self.frames()}

    def data_of(self, frame_type: str) -> list[Any]:
        """The ``data`` of each frame of ``frame_type``, in order."""
        return [p.data for p in self.frames() if p.type == frame_type]


def capture_publishes(monkeypatch) -> Publishes:
    """
    Record every hub message sent from now on, instead of sending it; return the (growing) list.

    ``publish_on_commit`` and ``subscribe_user_on_commit`` send after commit: in a test that runs in
    a transaction (pytest-django's ``db``), call the services inside
    ``django_capture_on_commit_callbacks(execute=True)``.
    """
    captured = Publishes()

    async def record(group: str, message: dict) -> None:
        text = message.get("text")
        groups = message["groups"] if message["type"] == outbox.LAYER_MULTICAST_TYPE else [group]
        captured.append(Published(message["type"], tuple(groups), orjson.loads(text) if text else None))

    monkeypatch.setattr(outbox, "send_to_layer", record)
    return captured

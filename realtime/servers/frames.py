"""
What the hub hands a server's direct write path: an event's frame, built once per process.

A server frame is not masked (RFC 6455 section 5.1), so its bytes are the same for every member
of a group: ``PreparedFrame`` encodes and frames the text once, with Autobahn's
``PreparedMessage`` (its API for broadcast), and each server's ``FrameWriter`` writes those bytes
to one connection.
"""

from typing import Protocol

from autobahn.websocket.protocol import PreparedMessage

__all__ = ["FrameWriter", "PreparedFrame"]


class PreparedFrame:
    """One event's text, encoded and framed once for every local member (unmasked, uncompressed)."""

    __slots__ = ("prepared", "size", "text")

    def __init__(self, text: str):
        self.text = text
        payload = text.encode("utf-8")
        self.size = len(payload)
        self.prepared = PreparedMessage(payload, False, False, True)


class FrameWriter(Protocol):
    """Writes ``PreparedFrame``s straight to one connection of one server (``writer_for``)."""

    def write(self, frame: PreparedFrame) -> bool:
        """Write ``frame``; False when it was not written (not open, or the client is too slow)."""

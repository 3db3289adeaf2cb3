"""
Wire codecs: how one endpoint's frames map onto the native protocol (docs/protocol.md).

Every endpoint runs the same consumer, handlers, services and fan-out; only the bytes on the wire
differ. ``Codec`` is the native protocol itself. A compatibility endpoint for an older client
(``docs/migration.md``: the seed servers' protocols) subclasses it and translates:

- ``decode(text)``: one client frame into a native ``Frame`` (``type``, ``ref``, ``data``), or a
  ``ProtocolError`` answered in that protocol's error shape;
- ``ack(frame, data)``, ``error(code, message, details, ref)``, ``event(type, data)``: native
  replies and events into that protocol's frames, or None when it has no such frame (then nothing
  is sent);
- ``opened()``: a frame sent as soon as the socket is accepted (seed 001's and 002's
  ``connected``), or None;
- ``auth_frame``: False when the protocol has no ``auth`` frame: a connection the handshake did
  not authenticate (session cookie, ``?token=``) is refused at once (4401) instead of waiting for one.

Events reach every member of a group already encoded in the native shape (realtime.publish
encodes once per event); the hub calls ``translate`` once per event and codec, not per member, so
a compatibility endpoint costs one translation per event and process.
"""

from typing import Any

import orjson

from .envelope import Frame, encode, now_ms, parse_frame
from .errors import ProtocolError

__all__ = ["NATIVE", "AdapterCodec", "Codec"]


class Codec:
    """The native protocol: envelopes ``{type, ref, data}``, ``ack``, ``error`` and events as docs/protocol.md shows."""

    name = "native"
    # Whether a connection may authenticate after the handshake with an ``auth`` frame.
    auth_frame = True

    def decode(self, text: str) -> Frame:
        """One client text frame as a native ``Frame``; raise ``ProtocolError`` (``bad_json``, ``bad_frame``...)."""
        return parse_frame(text)

    def ack(self, frame: Frame, data: Any) -> str | None:
        """The reply to ``frame`` whose handler returned ``data``."""
        return encode({"type": "ack", "ref": frame.ref, "data": data})

    def error(self, code: str, message: str, details: Any, ref: Any) -> str:
        """The error frame for error ``code`` (realtime.errors.ErrorCode) answering ``ref`` (None: unsolicited)."""
        error = {"code": code, "message": message}
        if details is not None:
            error["details"] = details
        return encode({"type": "error", "ref": ref, "error": error})

    def event(self, event_type: str, data: Any) -> str | None:
        """A server event (``welcome``, ``chat.message``...) in this protocol, or None when it has none."""
        return encode({"type": event_type, "data": data, "ts": now_ms()})

    def pong(self, frame: Frame) -> str | None:
        """The answer to a ``ping`` frame."""
        return encode({"type": "pong", "ref": frame.ref, "ts": now_ms()})

    def check_auth(self, frame: Frame, user) -> None:
        """
        Raise ``ProtocolError`` when an ``auth`` frame's other fields disagree with its token's
        ``user`` (seed 002's ``user_id`` must be the token's); the native ``auth`` has none.
        """

    def opened(self) -> str | None:
        """A frame to send when the socket is accepted, before authentication; None in the native protocol."""
        return None

    def error_for(self, exc: ProtocolError, ref: Any = None) -> str:
        """``error`` for a raised ``ProtocolError``."""
        error = exc.as_dict()
        return self.error(error["code"], error["message"], error.get("details"), ref)

    def translate(self, text: str) -> str | None:
        """
        A frame the server encoded natively for every member (an event, or the error frame before a
        server close) in this protocol; None when it has no such frame. Native: ``text`` as is.
        """
        return text


NATIVE = Codec()


class AdapterCodec(Codec):
    """A compatibility protocol: ``translate`` re-encodes the server's native frames with its own methods."""

    def translate(self, text: str) -> str | None:
        """The native frame ``text`` through ``error`` or ``event``."""
        frame = orjson.loads(text)
        if frame["type"] == "error":
            error = frame["error"]
            return self.error(error["code"], error["message"], error.get("details"), frame.get("ref"))
        return self.event(frame["type"], frame.get("data"))

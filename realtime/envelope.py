"""
The wire envelope (docs/protocol.md): parse client frames, build server frames.

Client -> server: ``{"type": str, "ref"?: str | int, "data"?: object}``.
Server -> client: ``ack``, ``error`` and events ``{"type", "data", "ts"}`` with ``ts`` in epoch ms.
JSON is encoded with orjson, which also refuses NaN/Infinity and lone surrogates on the way in.
"""

import time
from typing import Any, NamedTuple

import orjson

from .conf import realtime_settings
from .errors import BadFrame, BadJson, ProtocolError

__all__ = [
    "Frame",
    "ack_frame",
    "encode",
    "error_frame",
    "event_frame",
    "is_ref",
    "load_object",
    "now_ms",
    "parse_frame",
]


class Frame(NamedTuple):
    """A parsed client frame: ``type`` (non-empty str), ``ref`` (str, int or None), ``data`` (dict)."""

    type: str
    ref: str | int | None
    data: dict


def now_ms() -> int:
    """Return the server's wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def encode(obj: Any) -> str:
    """Return ``obj`` as compact JSON text."""
    return orjson.dumps(obj).decode()


def load_object(text: str, what: str = "Frame") -> dict:
    """``text`` as a JSON object; raise ``BadJson`` if it is not JSON, ``BadFrame`` if not an object."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadJson() from None
    if not isinstance(obj, dict):
        raise BadFrame(f"{what} must be a JSON object")
    return obj


def is_ref(value) -> bool:
    """Whether ``value`` can be a correlation id: a string or integer (not a bool) of at most ``MAX_REF_CHARS``."""
    # bool is an int subclass: a ref of true is a client bug, not a correlation id.
    return (
        not isinstance(value, bool)
        and isinstance(value, (str, int))
        and len(str(value)) <= realtime_settings.MAX_REF_CHARS
    )


def parse_frame(text: str) -> Frame:
    """
    Parse one text frame into a ``Frame``.

    Raise ``BadJson`` if it is not JSON, ``BadFrame`` if it is not an envelope: not an object,
    ``type`` not a non-empty string, ``ref`` not a string or integer of at most
    ``REALTIME["MAX_REF_CHARS"]`` characters, or ``data`` present but not an object. A
    ``BadFrame`` carries the frame's ``ref`` whenever that ref is itself well-formed, so the client
    can fail the command it sent (docs/protocol.md, "Errors").
    """
    obj = load_object(text)
    ref = obj.get("ref")
    if ref is not None:
        # bool is an int subclass: a ref of true is a client bug, not a correlation id.
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            raise BadFrame("'ref' must be a string or an integer")
        if len(str(ref)) > realtime_settings.MAX_REF_CHARS:
            raise BadFrame(f"'ref' is longer than {realtime_settings.MAX_REF_CHARS} characters")
    frame_type = obj.get("type")
    if not isinstance(frame_type, str) or not frame_type:
        raise BadFrame("Frame needs a non-empty string 'type'", ref=ref)
    data = obj.get("data", {})
    if not isinstance(data, dict):
        raise BadFrame("'data' must be a JSON object", ref=ref)
    return Frame(frame_type, ref, data)


def ack_frame(ref: str | int | None, data: Any) -> str:
    """Return the ``ack`` frame answering the command with ``ref``."""
    return encode({"type": "ack", "ref": ref, "data": data})


def error_frame(exc: ProtocolError, ref: str | int | None = None) -> str:
    """Return the ``error`` frame for ``exc``; ``details`` only when the error has some."""
    return encode({"type": "error", "ref": ref, "error": exc.as_dict()})


def event_frame(event_type: str, data: Any) -> str:
    """Return a server event frame ``{"type", "data", "ts"}``, encoded once for every recipient."""
    return encode({"type": event_type, "data": data, "ts": now_ms()})

"""
Seed 000's protocol (the Node ``ws`` workspace server) on ``/compat/000/ws``: docs/migration.md,
"Seed 000".

A thin translation onto the native handlers (workspaces.handlers) and their events, through
``realtime.codec``:

- client frames are flat objects: ``{"type": "workspace.update", "id": 7, "version": 3,
  "changes": {...}}``; every field but ``type`` is the native command's ``data``. Only the seed's
  four commands (and ``ping``) exist here; any other type is ``unknown message type: X``;
- errors are ``{"type": "error", "message": ..., "code": ...}`` (the seed's shape, plus the native
  code and ``details`` when there are some); a handler failure is an error frame, never a closed
  socket (the consumer's rule);
- there is no reply to a command: the seed's answer is its ``broadcast``, which every open
  connection of every member of the workspace receives, the sender's included, as
  ``{"type": "workspace.updated", ...data}`` (the native event's ``data`` at the top level);
- no ``auth`` frame: the handshake authenticates (session cookie or ``?token=``), as natively.
"""

from typing import Any

from realtime.codec import AdapterCodec
from realtime.envelope import Frame, encode, load_object
from realtime.errors import BadFrame, UnknownType

__all__ = ["COMMANDS", "EVENTS", "Seed000Codec"]

# The seed's message router (``handleMessage``): each is the native command of the same name.
COMMANDS = frozenset({"workspace.create", "workspace.update", "workspace.delete", "workspace.reorder"})
# The native events a seed 000 client receives (a member's workspaces appearing or going, and
# the changes to them); every other event (chat, presence, tasks, welcome, resync) has no frame here.
EVENTS = frozenset(
    {
        "workspace.created",
        "workspace.updated",
        "workspace.deleted",
        "workspace.reordered",
        "workspace.shared",
        "workspace.unshared",
    }
)


class Seed000Codec(AdapterCodec):
    """Seed 000's flat ``{type, ...fields}`` frames onto the native workspace commands and events."""

    name = "seed000"
    auth_frame = False

    def decode(self, text: str) -> Frame:
        obj = load_object(text)
        frame_type = obj.get("type")
        if not isinstance(frame_type, str) or not frame_type:
            raise BadFrame("Frame needs a non-empty string 'type'")
        if frame_type != "ping" and frame_type not in COMMANDS:
            raise UnknownType(frame_type)
        return Frame(frame_type, None, {key: value for key, value in obj.items() if key != "type"})

    def ack(self, frame: Frame, data: Any) -> str | None:
        return None  # the seed answers with its broadcast, which the sender receives too

    def error(self, code: str, message: str, details: Any, ref: Any) -> str:
        if code == "unknown_type":
            message = message[:1].lower() + message[1:]  # the seed's "unknown message type: X"
        error = {"type": "error", "message": message, "code": code}
        if details is not None:
            error["details"] = details
        return encode(error)

    def event(self, event_type: str, data: Any) -> str | None:
        if event_type not in EVENTS:
            return None
        return encode({**data, "type": event_type})

    def pong(self, frame: Frame) -> str | None:
        return encode({"type": "pong"})

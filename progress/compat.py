"""
Seed 001's protocol (ExcelMind's progress server) on ``/compat/001/ws``: docs/migration.md,
"Seed 001".

A thin translation onto the native task handlers (progress.handlers) and events, through
``realtime.codec``:

- every frame is the seed's envelope ``{type, payload, timestamp, id}``; a client's fields are
  read from ``payload``, or from the frame itself (the seed's own example sends
  ``{"type": "subscribe", "taskIds": [...], "rooms": [...]}``);
- ``subscribe``/``unsubscribe`` (``taskIds``, ``rooms``) and ``join_room``/``leave_room``
  (``room``) are ``task.subscribe``/``task.unsubscribe``; a room is ``task:<task id>``, any other
  room name is refused (``invalid``) and nothing is subscribed; the reply is ``subscription_ack``;
- ``ping`` -> ``pong``; ``connected`` when the socket opens; errors ``{type: "error", payload:
  {code, message, details?, requestId?}}``;
- the native ``task.*`` events become ``task_started``... and ``document_generated``/``failed``
  with the seed's camelCase progress payload (``estimatedTimeRemaining`` in ms).

A reply's ``payload.requestId`` is the ``id`` of the frame it answers (when it had one); every
frame the server sends has an ``id`` of its own, as in the seed.

Batching (the seed's broadcaster: ``batchSize`` 10, ``broadcastInterval`` 100 ms, on by default):
``Seed001Consumer`` gathers a connection's ``task_progress`` messages (``ProgressBatch``) and
sends them together, settings ``PROGRESS_SEED001_BATCH_SIZE`` / ``_INTERVAL_MS`` (0: off).
"""

import asyncio
import logging
import re
import uuid
from typing import Any, NamedTuple

import orjson
from django.conf import settings

from realtime.codec import AdapterCodec
from realtime.conf import realtime_settings
from realtime.consumer import RealtimeConsumer
from realtime.envelope import Frame, encode, is_ref, load_object, now_ms
from realtime.errors import BadFrame, Invalid, UnknownType
from realtime.servers import FrameWriter, PreparedFrame, writer_for

__all__ = ["EVENTS", "SEED001", "ProgressBatch", "Seed001Codec", "Seed001Consumer", "progress_payload"]

logger = logging.getLogger(__name__)

# Native event -> seed 001 message type.
EVENTS = {
    "task.started": "task_started",
    "task.progress": "task_progress",
    # The seed has no "resumed": a resumed task is running again, which a progress message says.
    "task.resumed": "task_progress",
    "task.completed": "task_completed",
    "task.failed": "task_failed",
    "task.paused": "task_paused",
    "task.cancelled": "task_cancelled",
    "task.document_generated": "document_generated",
    "task.document_failed": "document_failed",
}
# Client message type -> the native command it is.
COMMANDS = {
    "subscribe": "task.subscribe",
    "join_room": "task.subscribe",
    "unsubscribe": "task.unsubscribe",
    "leave_room": "task.unsubscribe",
}
ENVELOPE_KEYS = frozenset({"type", "payload", "timestamp", "id"})
ROOM = re.compile(r"task:([1-9][0-9]{0,18})")
TASK_ID = re.compile(r"[1-9][0-9]{0,18}")


class Request(NamedTuple):
    """A command's ``ref``: the seed's message type (for its reply) and the client's ``id``."""

    kind: str
    id: str | int | None


def _task_id(value):
    """A task id as the native commands take it: an integer or the seed's string of one; else as is (refused there)."""
    if isinstance(value, str) and TASK_ID.fullmatch(value):
        return int(value)
    return value


def _room_task_id(room, request_id) -> int:
    match = ROOM.fullmatch(room) if isinstance(room, str) else None
    if match is None:
        error = Invalid(f"unknown room: {str(room)[:100]}", details={"rooms": ["Rooms are 'task:<task id>'."]})
        error.ref = request_id
        raise error
    return int(match.group(1))


def progress_payload(task: dict) -> dict:
    """Seed 001's ``TaskProgressMessage`` (camelCase) from a native task snapshot (progress.events.task_snapshot)."""
    payload = {
        "taskId": str(task["task_id"]),
        "name": task["name"],
        "status": task["status"],
        "progress": task["progress"],
        "current": task["current"],
        "total": task["total"],
        "stage": task["stage"],
        "message": task["message"],
        "succeeded": task["succeeded"],
        "failed": task["failed"],
    }
    if task["eta_ms"] is not None:
        payload["estimatedTimeRemaining"] = task["eta_ms"]
    return payload


def _envelope(message_type: str, payload: Any) -> str:
    return encode({"type": message_type, "payload": payload, "timestamp": now_ms(), "id": uuid.uuid4().hex})


class Seed001Codec(AdapterCodec):
    """Seed 001's ``{type, payload, timestamp, id}`` messages onto the native task commands and events."""

    name = "seed001"
    auth_frame = False

    def decode(self, text: str) -> Frame:
        obj = load_object(text, "Message")
        request_id = obj.get("id")
        if request_id is not None and not is_ref(request_id):
            limit = realtime_settings.MAX_REF_CHARS
            raise BadFrame(f"'id' must be a string or an integer of at most {limit} characters")
        message_type = obj.get("type")
        if not isinstance(message_type, str) or not message_type:
            raise BadFrame("Message needs a non-empty string 'type'", ref=Request("", request_id))
        payload = obj.get("payload")
        if payload is not None and not isinstance(payload, dict):
            raise BadFrame("'payload' must be a JSON object", ref=Request(message_type, request_id))
        ref = Request(message_type, request_id)
        if message_type == "ping":
            return Frame("ping", ref, {})
        command = COMMANDS.get(message_type)
        if command is None:
            error = UnknownType(message_type)
            error.ref = ref
            raise error
        fields = {key: value for key, value in obj.items() if key not in ENVELOPE_KEYS} | (payload or {})
        task_ids = self._task_ids(message_type, fields, ref)
        return Frame(command, ref, {} if task_ids is None else {"task_ids": task_ids})

    @staticmethod
    def _task_ids(message_type: str, fields: dict, ref: Request):
        if message_type in ("join_room", "leave_room"):
            return [_room_task_id(fields.get("room"), ref)]
        task_ids, rooms = fields.get("taskIds"), fields.get("rooms")
        if rooms is None:
            return task_ids if not isinstance(task_ids, list) else [_task_id(value) for value in task_ids]
        if not isinstance(rooms, list):
            error = Invalid("Invalid data", details={"rooms": ["Expected a list of room names."]})
            error.ref = ref
            raise error
        from_rooms = [_room_task_id(room, ref) for room in rooms]
        if task_ids is None:
            return from_rooms
        if not isinstance(task_ids, list):
            return task_ids  # refused by the command's validation, named taskIds
        return [_task_id(value) for value in task_ids] + from_rooms

    def ack(self, frame: Frame, data: Any) -> str | None:
        ref = frame.ref
        if frame.type == "task.subscribe":
            task_ids = [task["task_id"] for task in data["tasks"]]
            extra = {"tasks": [progress_payload(task) for task in data["tasks"]]}
        else:
            task_ids, extra = data["task_ids"], {}
        payload = {
            "action": ref.kind,
            "success": True,
            "taskIds": [str(task_id) for task_id in task_ids],
            "rooms": [f"task:{task_id}" for task_id in task_ids],
            **extra,
        }
        if ref.id is not None:
            payload["requestId"] = ref.id
        return _envelope("subscription_ack", payload)

    def error(self, code: str, message: str, details: Any, ref: Any) -> str:
        payload: dict[str, Any] = {"code": code, "message": message}
        if details is not None:
            if isinstance(details, dict) and "task_ids" in details:
                details = {("taskIds" if key == "task_ids" else key): value for key, value in details.items()}
            payload["details"] = details
        if isinstance(ref, Request) and ref.id is not None:
            payload["requestId"] = ref.id
        return _envelope("error", payload)

    def event(self, event_type: str, data: Any) -> str | None:
        message_type = EVENTS.get(event_type)
        if message_type is None:
            return None
        if message_type.startswith("document_"):
            payload = {
                "taskId": str(data["task_id"]),
                "index": data["index"],
                "status": data["status"],
                "outputName": data["output_name"],
                "error": data["error"],
            }
            return _envelope(message_type, payload)
        payload = progress_payload(data)
        if message_type == "task_completed":
            payload["result"] = {"succeeded": data["succeeded"], "failed": data["failed"], "total": data["total"]}
        elif message_type == "task_failed":
            payload["error"] = data["error"]
        return _envelope(message_type, payload)

    def pong(self, frame: Frame) -> str | None:
        payload = {"requestId": frame.ref.id} if frame.ref.id is not None else {}
        return _envelope("pong", payload)

    def opened(self) -> str | None:
        return _envelope("connected", {"message": "Connected", "serverTime": now_ms()})


SEED001 = Seed001Codec()
# How every task_progress message of this endpoint begins: _envelope encodes with orjson, which
# keeps the key order ("type" first) and writes no spaces.
_PROGRESS_PREFIX = '{"type":"task_progress",'


class _Shared:
    """
    The last progress message parsed and the last batch framed in this process. Every connection
    following a task is handed the same event text (the hub translates once per event and codec),
    and windows opened by the same event gather the same updates: so each event is parsed, and
    each batch encoded and framed, once per process instead of once per connection (``make
    bench-adapters``: the per-connection work made seed 001 cost 1.33x the native endpoint's CPU
    per delivery). A shared batch has one ``id``, as an unbatched event already has (translated once).
    """

    text: str | None = None
    payload: dict | None = None
    updates: list[dict] = []
    frame: PreparedFrame | None = None

    @classmethod
    def payload_of(cls, text: str) -> dict:
        """The progress payload of a ``task_progress`` message ``text``."""
        if text is not cls.text:
            cls.text, cls.payload = text, orjson.loads(text)["payload"]
        return cls.payload

    @classmethod
    def frame_of(cls, updates: list[dict]) -> PreparedFrame:
        """The message for ``updates`` (payloads from ``payload_of``): one alone, or their list."""
        last = cls.updates
        if len(updates) != len(last) or any(update is not other for update, other in zip(updates, last, strict=True)):
            text = _envelope("task_progress", updates if len(updates) > 1 else updates[0])
            cls.updates, cls.frame = updates, PreparedFrame(text)
        return cls.frame


class ProgressBatch:
    """
    One connection's ``task_progress`` messages, gathered as the seed's broadcaster gathered them
    ("up to ``batchSize`` (10) updates per ``broadcastInterval`` (100 ms) in one message"): the
    first update opens a window of ``interval_s`` seconds; at its end, or as soon as ``size``
    updates are in, they go out as one message. One update alone is the seed's single
    ``task_progress`` (``payload``: the progress object); several are one ``task_progress`` whose
    ``payload`` is the list of progress objects, oldest first.

    ``send`` wraps the connection's ASGI send: any other message (a status change, an ack, an
    error, the close) first sends the gathered updates, so nothing overtakes an earlier update.
    With the server's direct ``writer`` (realtime.servers.writer_for; None: ASGI), a batch is
    written through it, the frame built once per process for every connection that gathered the
    same updates (``_Shared``); the server's ASGI send writes at once too, so the order holds.
    """

    def __init__(self, send, size: int, interval_s: float, writer: FrameWriter | None = None):
        self._send = send
        self._writer = writer
        self.size = size
        self.interval_s = interval_s
        self.pending: list[dict] = []
        self._window: asyncio.Task | asyncio.TimerHandle | None = None

    async def send(self, message: dict) -> None:
        """The connection's ASGI send: gather a ``task_progress`` message; send any other after the gathered."""
        text = message.get("text") if message["type"] == "websocket.send" else None
        if text is not None and text.startswith(_PROGRESS_PREFIX):
            self.pending.append(_Shared.payload_of(text))
            if len(self.pending) >= self.size:
                await self.flush()
            elif self._window is None:
                if self._writer is not None:  # a synchronous write: a timer, not a task per window
                    self._window = asyncio.get_running_loop().call_later(self.interval_s, self._write_at_window_end)
                else:
                    self._window = asyncio.create_task(self._flush_at_window_end())
            return
        await self.flush()
        await self._send(message)

    def _take(self) -> PreparedFrame | None:
        """Close the window; the gathered updates' message, or None when there are none."""
        if self._window is not None and self._window is not asyncio.current_task():
            self._window.cancel()
        self._window = None
        if not self.pending:
            return None
        updates, self.pending = self.pending, []
        return _Shared.frame_of(updates)

    async def flush(self) -> None:
        """Send the gathered updates now (one message) and close the window."""
        frame = self._take()
        if frame is None:
            return
        if self._writer is not None:
            self._writer.write(frame)  # False: the connection is closing, or closed as too slow (4413)
        else:
            await self._send({"type": "websocket.send", "text": frame.text})

    async def _flush_at_window_end(self) -> None:
        await asyncio.sleep(self.interval_s)
        try:
            await self.flush()
        except Exception:  # the client went while the window was open: nothing to deliver to
            logger.debug("a progress batch found its connection closed", exc_info=True)

    def _write_at_window_end(self) -> None:
        self._window = None
        frame = self._take()
        if frame is not None:
            try:
                self._writer.write(frame)
            except Exception:
                logger.debug("a progress batch found its connection closed", exc_info=True)

    def close(self) -> None:
        """Drop what is gathered and the window (the connection has ended)."""
        if self._window is not None:
            self._window.cancel()
        self._window = None
        self.pending.clear()


class Seed001Consumer(RealtimeConsumer):
    """
    The consumer with seed 001's codec and, unless ``settings.PROGRESS_SEED001_BATCH_INTERVAL_MS``
    is 0, its progress batching (``ProgressBatch``, at most ``PROGRESS_SEED001_BATCH_SIZE``
    updates a message). A batching connection's frames go through ASGI ``send`` (the wrapper),
    its batches through the server's direct write path when it has one (``ProgressBatch``).
    """

    codec = SEED001

    async def __call__(self, scope, receive, send):
        interval_ms = settings.PROGRESS_SEED001_BATCH_INTERVAL_MS
        if interval_ms <= 0:
            await super().__call__(scope, receive, send)
            return
        batch = ProgressBatch(send, settings.PROGRESS_SEED001_BATCH_SIZE, interval_ms / 1000, writer_for(send))
        try:
            await super().__call__(scope, receive, batch.send)
        finally:
            batch.close()

"""
``RealtimeConsumer``: the one WebSocket consumer behind ``/ws/``.

It owns the plumbing every app shares, one job per module: the connection's lifecycle and
limits here (accept, per-process and per-IP caps, close, clean-up), the frame gate
(realtime.consumer.gate), the session (realtime.consumer.session), group subscriptions
(realtime.consumer.subscriptions) and dispatch to handlers (realtime.consumer.dispatch). App
code never touches ``websocket_*`` messages or the channel layer.
"""

import asyncio
import functools
import logging
import time
import uuid

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import InterfaceError, OperationalError

from realtime import metrics, registry
from realtime.codec import NATIVE, Codec
from realtime.conf import realtime_settings
from realtime.delivery import ConnectionRecord, get_process
from realtime.errors import CloseCode, GoingAway, LimitExceeded, ProtocolError, Unavailable
from realtime.servers import PreparedFrame, writer_for

from .connect_rate import HANDSHAKE_KEY, HANDSHAKES_LIMIT, OVER_BUDGET_KEY
from .dispatch import DispatchMixin
from .gate import FrameGate, Refusal
from .session import SessionMixin, header, layer_unavailable
from .subscriptions import SubscriptionsMixin

logger = logging.getLogger(__name__)
connection_log = logging.getLogger("realtime.connections")


def _error_text(codec: Codec, exc: ProtocolError, ref) -> str:
    """
    ``exc``'s encoded error frame answering ``ref``; a ``server_error`` frame (the bug logged)
    when ``exc`` cannot be encoded, so a bad ``details`` never drops the connection with 1011.
    """
    try:
        return codec.error_for(exc, ref)
    except Exception:
        logger.exception("could not encode a %s error; answered server_error instead", exc.code.value)
        return codec.error_for(ProtocolError(), ref)


def _is_ping(codec: Codec, message: dict) -> bool:
    """Whether a ``websocket.receive`` message is a well-formed ``ping`` frame (small: checked cheaply)."""
    text = message.get("text")
    if text is None or len(text) > 256 or "ping" not in text:
        return False
    try:
        return codec.decode(text).type == "ping"
    except ProtocolError:
        return False


class RealtimeConsumer(SessionMixin, SubscriptionsMixin, DispatchMixin, AsyncWebsocketConsumer):
    """
    Authenticate the connection, then dispatch each JSON frame to its registered handler.

    Every command frame gets exactly one reply, ``ack`` or ``error``, echoing its ``ref``; a
    handler exception is logged and answered with ``server_error``, never a dropped connection.
    Limits (``REALTIME`` settings, docs/protocol.md) are enforced here: frame size (1009), frame
    rate (``rate_limited``, then 4429), connections per process, per IP and per user (1013),
    subscriptions per connection (``limit_exceeded``).

    ``codec`` (``as_asgi(codec=...)``) is the endpoint's wire protocol: the native one, or a
    compatibility endpoint's translation onto it (realtime.codec).
    """

    codec: Codec = NATIVE
    # Channels' groups to join at connect: none (the hub does it), and no list per consumer.
    groups = ()

    # A connection's state, in slots: CPython 3.11 keeps instance attributes in a compact array
    # only for names its class registered early, and every new instance shrinks the room for
    # more (Objects/dictobject.c, init_inline_values). With many connections opening at once, the
    # names set after the first await came too late and each consumer got a dict of its own
    # (832 bytes, make bench-heap).
    __slots__ = (
        "scope",
        "channel_layer",
        "base_send",
        "frame_writer",
        "in_flight",
        "connection_id",
        "user",
        "record",
        "session_key",
        "token_expires_at",
        "closing",
        "opened_at",
        "subscriptions",
        "server_groups",
        "membership_changes",
        "held",
        "gate",
        "_timers",
        "ip",
        "process",
        "hub",
    )

    @classmethod
    def as_asgi(cls, **initkwargs):
        """
        Channels' ``as_asgi``, except that the application hands over the new consumer's
        coroutine instead of awaiting it: Channels' ``app`` coroutine stayed suspended for each
        connection's whole life (about 250 bytes, bench/heap.py).
        """
        channels_app = super().as_asgi(**initkwargs)

        def app(scope, receive, send):
            return cls(**initkwargs)(scope, receive, send)

        functools.update_wrapper(app, channels_app)  # consumer_class, consumer_initkwargs, name, doc
        app._asgi_single_callable = True  # an ASGI 3 application, for asgiref's guarantee_single_callable
        return app

    def __init__(self, *args, codec: Codec | None = None, **kwargs):
        # Channels' as_asgi passes its keyword arguments here; its consumers' __init__ drops them.
        super().__init__(*args, **kwargs)
        if codec is not None:
            self.codec = codec

    async def __call__(self, scope, receive, send):
        # Events reach this connection through the process hub, so unlike a stock Channels
        # consumer it takes no channel of its own in the layer (no per-connection layer read).
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.frame_writer = writer_for(send)
        # The frame being handled, in a task of its own so that a ping can be read and answered
        # while it waits (on the database, say); every other frame waits for it (replies in order).
        self.in_flight: asyncio.Task | None = None
        # Channels' await_many_dispatch would wrap each receive in a task of its own (an object and
        # a wake-up per frame, and about 1.7 KB per idle connection, bench/idle.py): with a single
        # source, a plain loop does the same.
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message):
        # Stock dispatch runs close_old_connections in a thread for every message; all database
        # work here goes through realtime.db.database_call, which closes its own connections.
        message_type = message["type"]
        if message_type == "websocket.receive":
            if self.in_flight is not None:
                if not self.in_flight.done() and _is_ping(self.codec, message):
                    # A liveness probe, not a command: answered at once, ahead of the reply still
                    # owed (docs/protocol.md, "ping"), so a slow command never looks like a dead server.
                    await self.websocket_receive(message)
                    return
                # Not read meanwhile: the frames wait in the server's queue, then in TCP
                # (realtime/servers/daphne/receive_queue.py).
                await self._finish_in_flight()
            self.in_flight = asyncio.create_task(self.websocket_receive(message))
        elif message_type == "websocket.connect":
            await self.websocket_connect(message)
        elif message_type == "websocket.disconnect":
            try:
                await self._finish_in_flight()
            except Exception:
                # A reply to a client that has gone can fail; the clean-up below must still run
                # (registry, presence, hub groups), or the connection would outlive its socket.
                logger.warning(
                    "last frame of connection %s failed after the client left", self.connection_id, exc_info=True
                )
            await self.websocket_disconnect(message)

    async def websocket_disconnect(self, message):
        # Channels' version also runs close_old_connections in a worker thread: a thread hop for
        # each of a drain's thousands of disconnects, for connections database_call has closed.
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def _finish_in_flight(self) -> None:
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            await in_flight  # its errors are the consumer's, as when it ran inline

    # -- lifecycle ------------------------------------------------------------------------

    async def connect(self):
        try:
            await self._open()
        finally:
            # Its session started (welcome sent) or was refused: no longer a handshake in progress.
            if (handshake := self.scope.get(HANDSHAKE_KEY)) is not None:
                handshake.finish()

    async def _open(self) -> None:
        self.connection_id = uuid.uuid4().hex
        self.user = None
        self.record: ConnectionRecord | None = None  # set while registered (authenticated)
        self.session_key: str | None = None  # set for session-cookie connections
        self.token_expires_at: int | None = None  # epoch s, for token connections
        self.closing = False
        self.opened_at = time.monotonic()
        self.subscriptions: set[str] = set()
        # Of those, the ones the server chose (the user's own groups, membership changes): they
        # do not count against MAX_SUBSCRIPTIONS, which bounds what the client asks to follow.
        self.server_groups: set[str] = set()
        # Counts subscribe/unsubscribe calls, so a refresh of the server's groups can tell that
        # a membership change happened during its database read.
        self.membership_changes = 0
        # welcome is the first frame of a session: events that arrive while it is being set up wait.
        self.held: list[dict] | None = []
        self.gate = FrameGate(self.codec)
        self._timers: dict[str, asyncio.TimerHandle | asyncio.Task] = {}  # SessionMixin._after
        client = self.scope.get("client") or ("", 0)
        self.ip = client[0] or ""
        try:
            self.process = await get_process()
        except Exception:
            # The channel layer (Redis) is away: the process cannot start its hub. Refuse with a
            # retryable close rather than an HTTP 500; the next connection tries the start again.
            logger.warning(
                "server process could not start; refusing connection %s with 1013", self.connection_id, exc_info=True
            )
            self.process = None
            self.closing = True
            await self.accept()
            await self.send(self.codec.error_for(layer_unavailable()))
            await self.close(code=CloseCode.TRY_AGAIN_LATER)
            return
        self.hub = self.process.hub
        await self.accept()
        self.process.connections[self.connection_id] = self
        self.process.stats.opened()
        connection_log.info(
            "connect conn=%s ip=%s ua=%r", self.connection_id, self.ip, header(self.scope, b"user-agent")[:200]
        )
        if self.process.draining:
            await self.refuse(GoingAway(), CloseCode.GOING_AWAY)
            return
        if (opened := self.codec.opened()) is not None:
            await self.send_frame(opened, "opened")
        if not await self._admit():
            return
        await self.begin_session()

    async def _admit(self) -> bool:
        """Apply the per-process and per-IP connection caps; refuse (1013) and return False when over."""
        if len(self.process.connections) > realtime_settings.MAX_CONNECTIONS_PER_PROCESS:
            await self.refuse_limit("MAX_CONNECTIONS_PER_PROCESS", "This server is full; try another or retry later")
            return False
        if (limit := self.scope.get(OVER_BUDGET_KEY)) == HANDSHAKES_LIMIT:  # checked before authentication
            await self.refuse_limit(limit, "This server is busy with other connections; retry in a few seconds")
            return False
        if limit:  # counted before authentication (connect_rate.py)
            # A client reconnecting in a loop waits for each refusal: it is slowed to this pace
            # instead of keeping the server busy with handshakes (make bench-floods).
            await asyncio.sleep(realtime_settings.CONNECT_REFUSAL_DELAY_S)
            await self.refuse_limit(limit, "Too many new connections from this address")
            return False
        return True

    async def disconnect(self, code):
        self.closing = True
        if self.process is None:  # refused before the process started: nothing to undo
            return
        for timer in self._timers.values():
            timer.cancel()
        # A cancelled timer still holds its callback (a cancelled task, its exception's frame),
        # whose ``self`` is this consumer: kept in ``_timers``, that cycle left each closed
        # connection's objects for the next full garbage collection instead of freeing them at once.
        self._timers.clear()
        self.process.stats.closed(self.record is not None)
        try:
            await self.hub.unsubscribe(self.subscriptions, self)
            self.subscriptions.clear()
            if self.record is not None:
                record, self.record = self.record, None
                try:
                    await self.process.connection_closed(record)
                except Exception:
                    logger.warning("could not unregister %s; its record expires", record.connection_id, exc_info=True)
        finally:
            # Listed until its clean-up is done, so a draining process waits for it.
            self.process.connections.pop(self.connection_id, None)
        connection_log.info(
            "disconnect conn=%s user=%s code=%s duration_s=%.1f",
            self.connection_id,
            self.user.pk if self.user else None,
            code,
            time.monotonic() - self.opened_at,
        )

    async def send_frame(self, text: str, frame_type: str) -> None:
        """Write one encoded frame of ``frame_type`` to this connection (counted in stats)."""
        self.process.stats.frames_out(frame_type)
        # Straight to the socket when the server's write path is installed, as the hub writes
        # events (an ack per chat.send: Channels' send and Daphne's handle_reply cost more than
        # the write); through ASGI when that path did not write it (not open yet, closing,
        # over the send buffer), which then does what it always did.
        if self.frame_writer is not None and self.frame_writer.write(PreparedFrame(text)):
            return
        await self.send(text)

    async def send_error(self, exc: ProtocolError, ref=None) -> None:
        """Send ``exc`` as an ``error`` frame answering ``ref``."""
        metrics.ERRORS.labels(exc.code.value).inc()
        await self.send_frame(_error_text(self.codec, exc, ref), "error")

    async def refuse(self, exc: ProtocolError, close_code: int, ref=None) -> None:
        """Send ``exc`` as an error frame, then close with ``close_code`` (the frame carries the reason)."""
        if self.closing:
            return
        metrics.ERRORS.labels(exc.code.value).inc()
        await self._close_after(_error_text(self.codec, exc, ref), close_code)

    async def close_with(self, text: str, code: int) -> None:
        """Write the natively encoded error frame ``text`` and close with ``code`` (admin disconnects, drain)."""
        if self.closing:
            return
        connection_log.info(
            "server close conn=%s user=%s code=%s", self.connection_id, self.user and self.user.pk, code
        )
        await self._close_after(self.codec.translate(text), code)

    async def _close_after(self, text: str | None, code: int) -> None:
        # Daphne drops close reasons (docs/platform-facts.md): the error frame before the close says why.
        self.closing = True
        metrics.CLOSES.labels(str(int(code))).inc()
        if text is not None:
            await self.send_frame(text, "error")
        await self.close(code=int(code))

    async def refuse_limit(self, limit: str, message: str) -> None:
        """Refuse the connection over the cap named ``limit`` (a REALTIME setting): error, close 1013."""
        metrics.LIMIT_REFUSALS.labels(limit).inc()
        connection_log.warning("limit conn=%s ip=%s limit=%s", self.connection_id, self.ip, limit)
        await self.refuse(LimitExceeded(message, details={"limit": limit}), CloseCode.TRY_AGAIN_LATER)

    # -- frames ---------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        try:
            frame = self.gate.admit(text_data)
            known = frame.type in registry.RESERVED_TYPES or registry.get_handler(frame.type) is not None
            self.process.stats.frame_in(frame.type if known else "unknown")
            self.gate.admit_type(frame)
        except Refusal as refusal:
            await self._refused(refusal)
            return
        ref = frame.ref
        try:
            await self.handle_frame(frame)
        except ProtocolError as exc:
            await self.send_error(exc, ref)
        except (OperationalError, InterfaceError):
            # The handler's transaction did not commit: a retryable answer, never an ack.
            logger.warning(
                "database unavailable on connection %s (type %s)", self.connection_id, frame.type, exc_info=True
            )
            await self.send_error(Unavailable(), ref)
        except Exception:
            logger.exception("handler error on connection %s (type %s)", self.connection_id, frame.type)
            await self.send_error(ProtocolError(), ref)

    async def _refused(self, refusal: Refusal) -> None:
        if refusal.stat is not None:
            self.process.stats.frame_in(refusal.stat)
        if refusal.close_code is None:
            await self.send_error(refusal.error, refusal.ref)
            return
        connection_log.warning(
            "limit conn=%s ip=%s user=%s limit=%s: closing %s",
            self.connection_id,
            self.ip,
            self.user and self.user.pk,
            refusal.limit,
            int(refusal.close_code),
        )
        await self.refuse(refusal.error, refusal.close_code, refusal.ref)

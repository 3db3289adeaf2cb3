"""
``RealtimeConsumer``: the one WebSocket consumer behind ``/ws/``.

It owns the plumbing every app shares: the auth gate, frame decoding, dispatch through the
handler registry, error frames, group subscriptions in the process hub, and relaying events.
App code never touches ``websocket_*`` messages or the channel layer.
"""

import asyncio
import logging
import uuid

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.utils import await_many_dispatch

from . import registry
from .auth import TokenRefused, authenticate_token
from .conf import realtime_settings
from .db import database_call
from .context import HandlerContext
from .envelope import Frame, ack_frame, encode, error_frame, event_frame, now_ms, parse_frame
from .errors import BadFrame, CloseCode, Invalid, MessageTooBig, ProtocolError, Unauthorized, UnknownType
from .groups import user_group
from .hub import get_hub
from .publish import collecting_publishes, flush_collected

logger = logging.getLogger(__name__)


class RealtimeConsumer(AsyncWebsocketConsumer):
    """
    Authenticate the connection, then dispatch each JSON frame to its registered handler.

    Every command frame gets exactly one reply, ``ack`` or ``error``, echoing its ``ref``; a
    handler exception is logged and answered with ``server_error``, never a dropped connection.
    """

    async def __call__(self, scope, receive, send):
        # Events reach this connection through the process hub, so unlike a stock Channels
        # consumer it takes no channel of its own in the layer (no per-connection layer read).
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass

    async def dispatch(self, message):
        # Stock dispatch runs close_old_connections in a thread for every message; all database
        # work here goes through realtime.db.database_call, which closes its own connections.
        message_type = message["type"]
        if message_type == "websocket.receive":
            await self.websocket_receive(message)
        elif message_type == "websocket.connect":
            await self.websocket_connect(message)
        elif message_type == "websocket.disconnect":
            await self.websocket_disconnect(message)

    # -- lifecycle ------------------------------------------------------------------------

    async def connect(self):
        self.connection_id = uuid.uuid4().hex
        self.user = None
        self.closing = False
        self.subscriptions: set[str] = set()
        self.hub = await get_hub()
        self._auth_deadline: asyncio.Task | None = None
        await self.accept()
        user = self.scope.get("user")
        if self.scope.get("auth_error"):
            await self.refuse(Unauthorized(self.scope["auth_error"]), CloseCode.UNAUTHORIZED)
        elif user is not None and user.is_authenticated:
            await self.start_session(user)
        else:
            self._auth_deadline = asyncio.create_task(self._close_if_not_authenticated())

    async def disconnect(self, code):
        self.closing = True
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
        await self.hub.unsubscribe_all(self, self.subscriptions)
        self.subscriptions.clear()

    async def refuse(self, exc: ProtocolError, close_code: int, ref=None) -> None:
        """Send ``exc`` as an error frame, then close with ``close_code`` (the frame carries the reason)."""
        self.closing = True
        await self.send(error_frame(exc, ref))
        await self.close(code=int(close_code))

    async def _close_if_not_authenticated(self) -> None:
        await asyncio.sleep(realtime_settings.AUTH_TIMEOUT_S)
        if self.user is None and not self.closing:
            await self.refuse(Unauthorized("No auth frame within the time allowed"), CloseCode.AUTH_TIMEOUT)

    async def start_session(self, user) -> None:
        """Mark the connection authenticated as ``user``, subscribe its user group, send ``welcome``."""
        self.user = user
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
        await self.subscribe(user_group(user.pk))
        groups = await database_call(registry.groups_for_session, user)
        for group in groups:
            await self.subscribe(group)
        await self.send(
            event_frame(
                "welcome",
                {
                    "user": {"id": user.pk, "username": user.get_username()},
                    "connection_id": self.connection_id,
                    "heartbeat_s": realtime_settings.HEARTBEAT_S,
                    "server_time": now_ms(),
                },
            )
        )

    async def subscribe(self, group: str) -> None:
        """Subscribe this connection to ``group`` in the process hub."""
        await self.hub.subscribe(group, self)
        self.subscriptions.add(group)

    async def unsubscribe(self, group: str) -> None:
        """Unsubscribe this connection from ``group``."""
        self.subscriptions.discard(group)
        await self.hub.unsubscribe(group, self)

    # -- frames ---------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        if text_data is None:
            await self.send(error_frame(BadFrame("Binary frames are not accepted; send JSON text")))
            return
        limit = realtime_settings.MAX_FRAME_BYTES
        # A str has at most 4 UTF-8 bytes per character: encode only when it could be over.
        if len(text_data) > limit or (len(text_data) * 4 > limit and len(text_data.encode("utf-8", "surrogatepass")) > limit):
            await self.refuse(MessageTooBig(f"Frames are limited to {limit} bytes"), CloseCode.MESSAGE_TOO_BIG)
            return
        ref = None
        try:
            frame = parse_frame(text_data)
            ref = frame.ref
            await self.handle_frame(frame)
        except ProtocolError as exc:
            await self.send(error_frame(exc, ref))
        except Exception:
            logger.exception("handler error on connection %s", self.connection_id)
            await self.send(error_frame(ProtocolError(), ref))

    async def handle_frame(self, frame: Frame) -> None:
        """Answer ``ping`` and ``auth`` here; run every other type's registered handler."""
        if frame.type == "ping":
            await self.send(encode({"type": "pong", "ref": frame.ref, "ts": now_ms()}))
            return
        if frame.type == "auth":
            await self.authenticate_frame(frame)
            return
        if self.user is None:
            raise Unauthorized("Authenticate first: send an 'auth' frame with a token")
        handler = registry.get_handler(frame.type)
        if handler is None:
            raise UnknownType(frame.type)
        ctx = HandlerContext(user=self.user, connection_id=self.connection_id)
        with collecting_publishes() as collected:
            try:
                result = await database_call(handler, ctx, frame.data)
                for group in ctx.unsubscribes:
                    await self.unsubscribe(group)
                for group in ctx.subscribes:
                    await self.subscribe(group)
                await self.send(ack_frame(frame.ref, result))
            finally:
                # Events of committed writes go out even if the reply failed.
                await flush_collected(collected)

    async def authenticate_frame(self, frame: Frame) -> None:
        """First-frame auth: ``{"type": "auth", "data": {"token": <access JWT>}}``."""
        if self.user is not None:
            raise Invalid("Connection is already authenticated")
        token = frame.data.get("token")
        if not isinstance(token, str) or not token:
            raise Invalid("'token' must be a non-empty string", details={"token": ["This field is required."]})
        try:
            result = await authenticate_token(token)
        except TokenRefused as exc:
            await self.refuse(Unauthorized(str(exc)), CloseCode.UNAUTHORIZED, ref=frame.ref)
            return
        self.scope["auth_expires_at"] = result.expires_at
        await self.start_session(result.user)

"""
``RealtimeConsumer``: the one WebSocket consumer behind ``/ws/``.

It owns the plumbing every app shares: the auth gate, frame decoding, dispatch through the
handler registry, error frames, group subscriptions in the process hub, and relaying events.
App code never touches ``websocket_*`` messages or the channel layer.
"""

import asyncio
import logging
import time
import uuid

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.utils import await_many_dispatch
from django.db import InterfaceError, OperationalError

from . import metrics, registry
from .auth import TokenRefused, authenticate_token
from .conf import realtime_settings
from .connect_rate import OVER_BUDGET_KEY
from .connection_registry import ConnectionRecord
from .context import HandlerContext
from .daphne_writes import direct_writer
from .db import database_call
from .envelope import Frame, ack_frame, encode, error_frame, event_frame, now_ms, parse_frame
from .errors import (
    BadFrame,
    CloseCode,
    Forbidden,
    GoingAway,
    Invalid,
    LimitExceeded,
    MessageTooBig,
    ProtocolError,
    RateLimited,
    SessionReplaced,
    Unauthorized,
    Unavailable,
    UnknownType,
)
from .groups import user_group
from .limits import FrameRateLimiter, Verdict
from .presence import announce
from .process import get_process
from .publish import close_message, collecting_publishes, flush_collected, send_to_layer
from .uvicorn_writes import uvicorn_writer

logger = logging.getLogger(__name__)
connection_log = logging.getLogger("realtime.connections")

# Database reads a refresh of the server's groups makes before giving up on a quiet moment.
_REFRESH_ATTEMPTS = 3


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return ""


def _ref_of(text: str | None):
    """The ``ref`` of a refused frame, when it is readable (``parse_frame``) within the size limit; else None."""
    if text is None or len(text) > realtime_settings.MAX_FRAME_BYTES:
        return None
    try:
        return parse_frame(text).ref
    except BadFrame as exc:
        return exc.ref
    except ProtocolError:
        return None


def _error_text(exc: ProtocolError, ref) -> str:
    """
    ``exc``'s encoded ``error`` frame answering ``ref``; a ``server_error`` frame (the bug logged)
    when ``exc`` cannot be encoded, so a bad ``details`` never drops the connection with 1011.
    """
    try:
        return error_frame(exc, ref)
    except Exception:
        logger.exception("could not encode a %s error; answered server_error instead", exc.code.value)
        return error_frame(ProtocolError(), ref)


def _layer_unavailable() -> Unavailable:
    """The error sent before a 1013 close when Redis (the channel layer or the registry) is away."""
    retry_after_ms = int(realtime_settings.HUB_RETRY_S * 1000)
    return Unavailable(
        f"The server cannot reach Redis for a moment; reconnect after {retry_after_ms} ms",
        details={"retry_after_ms": retry_after_ms},
    )


def _is_ping(message: dict) -> bool:
    """Whether a ``websocket.receive`` message is a well-formed ``ping`` frame (small: checked cheaply)."""
    text = message.get("text")
    if text is None or len(text) > 256 or "ping" not in text:
        return False
    try:
        return parse_frame(text).type == "ping"
    except ProtocolError:
        return False


class RealtimeConsumer(AsyncWebsocketConsumer):
    """
    Authenticate the connection, then dispatch each JSON frame to its registered handler.

    Every command frame gets exactly one reply, ``ack`` or ``error``, echoing its ``ref``; a
    handler exception is logged and answered with ``server_error``, never a dropped connection.
    Limits (``REALTIME`` settings, docs/protocol.md) are enforced here: frame size (1009), frame
    rate (``rate_limited``, then 4429), connections per process, per IP and per user (1013),
    subscriptions per connection (``limit_exceeded``).
    """

    async def __call__(self, scope, receive, send):
        # Events reach this connection through the process hub, so unlike a stock Channels
        # consumer it takes no channel of its own in the layer (no per-connection layer read).
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.frame_writer = direct_writer(send) or uvicorn_writer(send)
        # The frame being handled, in a task of its own so that a ping can be read and answered
        # while it waits (on the database, say); every other frame waits for it (replies in order).
        self.in_flight: asyncio.Task | None = None
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass

    async def dispatch(self, message):
        # Stock dispatch runs close_old_connections in a thread for every message; all database
        # work here goes through realtime.db.database_call, which closes its own connections.
        message_type = message["type"]
        if message_type == "websocket.receive":
            if self.in_flight is not None:
                if not self.in_flight.done() and _is_ping(message):
                    # A liveness probe, not a command: answered at once, ahead of the reply still
                    # owed (docs/protocol.md, "ping"), so a slow command never looks like a dead server.
                    await self.websocket_receive(message)
                    return
                # Not read meanwhile: the frames wait in the server's queue, then in TCP
                # (realtime/receive_backpressure.py).
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

    async def _finish_in_flight(self) -> None:
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            await in_flight  # its errors are the consumer's, as when it ran inline

    # -- lifecycle ------------------------------------------------------------------------

    async def connect(self):
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
        self.limiter = FrameRateLimiter()
        self._timers: dict[str, asyncio.Task] = {}
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
            await self.send(error_frame(_layer_unavailable()))
            await self.close(code=CloseCode.TRY_AGAIN_LATER)
            return
        self.hub = self.process.hub
        await self.accept()
        self.process.connections[self.connection_id] = self
        self.process.stats.opened()
        connection_log.info(
            "connect conn=%s ip=%s ua=%r", self.connection_id, self.ip, _header(self.scope, b"user-agent")[:200]
        )
        if self.process.draining:
            await self.refuse(GoingAway(), CloseCode.GOING_AWAY)
            return
        if not await self._admit():
            return
        user = self.scope.get("user")
        if self.scope.get("auth_error"):
            await self.refuse_auth(self.scope["auth_error"])
        elif user is not None and user.is_authenticated:
            if "auth_expires_at" in self.scope:
                self.token_expires_at = self.scope["auth_expires_at"]
            else:
                self.session_key = self.scope["session"].session_key
            await self.start_session(user)
        else:
            self._timers["auth"] = asyncio.create_task(self._close_if_not_authenticated())

    async def _admit(self) -> bool:
        """Apply the per-process and per-IP connection caps; refuse (1013) and return False when over."""
        if len(self.process.connections) > realtime_settings.MAX_CONNECTIONS_PER_PROCESS:
            await self.refuse_limit("MAX_CONNECTIONS_PER_PROCESS", "This server is full; try another or retry later")
            return False
        if limit := self.scope.get(OVER_BUDGET_KEY):  # counted before authentication (realtime/connect_rate.py)
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
        # A cancelled timer's exception holds its frame, whose ``self`` is this consumer: kept in
        # ``_timers``, that cycle left each closed connection's objects for the next full garbage
        # collection instead of freeing them at once.
        self._timers.clear()
        self.process.stats.closed(self.record is not None)
        try:
            await self.hub.unsubscribe(self.subscriptions, self)
            self.subscriptions.clear()
            if self.record is not None:
                record, self.record = self.record, None
                try:
                    last_seen = await self.process.registry.unregister(record)
                    if last_seen is not None:
                        await announce(record.user_id, online=False, last_seen=last_seen)
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
        await self.send(text)

    async def send_error(self, exc: ProtocolError, ref=None) -> None:
        """Send ``exc`` as an ``error`` frame answering ``ref``."""
        metrics.ERRORS.labels(exc.code.value).inc()
        await self.send_frame(_error_text(exc, ref), "error")

    async def refuse(self, exc: ProtocolError, close_code: int, ref=None) -> None:
        """Send ``exc`` as an error frame, then close with ``close_code`` (the frame carries the reason)."""
        if self.closing:
            return
        metrics.ERRORS.labels(exc.code.value).inc()
        await self._close_after(_error_text(exc, ref), close_code)

    async def close_with(self, text: str, code: int) -> None:
        """Write the encoded error frame ``text`` and close with ``code`` (admin disconnects, drain)."""
        if self.closing:
            return
        connection_log.info(
            "server close conn=%s user=%s code=%s", self.connection_id, self.user and self.user.pk, code
        )
        await self._close_after(text, code)

    async def _close_after(self, text: str, code: int) -> None:
        # Daphne drops close reasons (docs/platform-facts.md): the error frame before the close says why.
        self.closing = True
        metrics.CLOSES.labels(str(int(code))).inc()
        await self.send_frame(text, "error")
        await self.close(code=int(code))

    async def refuse_limit(self, limit: str, message: str) -> None:
        """Refuse the connection over the cap named ``limit`` (a REALTIME setting): error, close 1013."""
        metrics.LIMIT_REFUSALS.labels(limit).inc()
        connection_log.warning("limit conn=%s ip=%s limit=%s", self.connection_id, self.ip, limit)
        await self.refuse(LimitExceeded(message, details={"limit": limit}), CloseCode.TRY_AGAIN_LATER)

    async def refuse_auth(self, reason: str, ref=None) -> None:
        """Refuse refused credentials: error frame with the reason, close 4401."""
        connection_log.warning("auth refused conn=%s ip=%s reason=%r", self.connection_id, self.ip, reason)
        await self.refuse(Unauthorized(reason), CloseCode.UNAUTHORIZED, ref=ref)

    async def _close_if_not_authenticated(self) -> None:
        await asyncio.sleep(realtime_settings.AUTH_TIMEOUT_S)
        if self.user is None and not self.closing:
            connection_log.warning("auth timeout conn=%s ip=%s", self.connection_id, self.ip)
            await self.refuse(Unauthorized("No auth frame within the time allowed"), CloseCode.AUTH_TIMEOUT)

    async def _close_at_token_expiry(self) -> None:
        await asyncio.sleep(max(0.0, self.token_expires_at - time.time()))
        if not self.closing:
            connection_log.info("token expired conn=%s user=%s", self.connection_id, self.user.pk)
            await self.refuse(Unauthorized("Token expired; refresh it with auth.refresh"), CloseCode.UNAUTHORIZED)

    def _schedule_token_expiry(self) -> None:
        if "expiry" in self._timers:
            self._timers["expiry"].cancel()
        if self.token_expires_at is not None:
            self._timers["expiry"] = asyncio.create_task(self._close_at_token_expiry())

    async def start_session(self, user) -> None:
        """
        Register the connection as ``user``'s (per-user cap: 1013), subscribe its user group and
        session groups, send ``welcome``. When the registry or the layer is unreachable, refuse
        with 1013 (retry later) rather than run a connection nobody can reach.
        """
        self.user = user
        if "auth" in self._timers:
            self._timers.pop("auth").cancel()
        record = ConnectionRecord(
            connection_id=self.connection_id,
            user_id=user.pk,
            username=user.get_username(),
            ip=self.ip,
            user_agent=_header(self.scope, b"user-agent")[:200],
            connected_at=now_ms(),
            process=self.process.id,
        )
        try:
            registered = await self.process.registry.register(record)
            self.record = record
            if registered.user_connections > realtime_settings.MAX_CONNECTIONS_PER_USER:
                self.record = None
                await self.process.registry.unregister(record)
                await self.refuse_limit("MAX_CONNECTIONS_PER_USER", "Too many open connections for this user")
                return
            self.process.stats.session_started()
            if registered.came_online:
                await announce(user.pk, online=True)
            await self.subscribe(user_group(user.pk), *await database_call(registry.groups_for_session, user))
            if realtime_settings.SINGLE_SESSION:
                await send_to_layer(
                    user_group(user.pk),
                    close_message(
                        user.pk, CloseCode.SESSION_REPLACED, SessionReplaced(), exclude_connection=self.connection_id
                    ),
                )
        except Exception:
            logger.warning("session start failed on connection %s", self.connection_id, exc_info=True)
            await self.refuse(_layer_unavailable(), CloseCode.TRY_AGAIN_LATER)
            return
        self._schedule_token_expiry()
        connection_log.info(
            "session conn=%s user=%s via=%s", self.connection_id, user.pk, "session" if self.session_key else "token"
        )
        await self.send_frame(
            event_frame(
                "welcome",
                {
                    "user": {"id": user.pk, "username": user.get_username()},
                    "connection_id": self.connection_id,
                    "heartbeat_s": realtime_settings.HEARTBEAT_S,
                    "server_time": now_ms(),
                    "token_expires_at": self.token_expires_at * 1000 if self.token_expires_at else None,
                },
            ),
            "welcome",
        )
        held, self.held = self.held, None
        for message in held:
            await self.base_send(message)

    async def subscribe(self, *groups: str) -> None:
        """Subscribe this connection to ``groups`` of the server's choosing (its user's groups, a new membership)."""
        self.membership_changes += 1
        await self.follow(*groups)
        self.server_groups.update(groups)

    async def refresh_server_groups(self) -> None:
        """
        Follow exactly the groups the server chooses for this user now (after ``resync``: a
        membership change sent while Redis was away may have been lost), leaving those it no
        longer may follow. The groups the client asked to follow are left as they are.

        A membership change applied while the groups are read makes the read stale (it could
        re-add a conversation the user was just removed from): the read is then done again.
        """
        for _ in range(_REFRESH_ATTEMPTS):
            if self.user is None or self.closing:
                return
            changes = self.membership_changes
            groups = {user_group(self.user.pk), *await database_call(registry.groups_for_session, self.user)}
            if changes == self.membership_changes:
                break
        else:
            return  # memberships keep changing: each change was applied as it came
        if self.closing:
            return
        stale = self.server_groups - groups
        if stale:
            await self.unsubscribe(*stale)
        if groups - self.server_groups:
            await self.subscribe(*(groups - self.server_groups))

    async def follow(self, *groups: str) -> None:
        """Subscribe this connection to ``groups`` in the process hub (one layer batch)."""
        # Listed before the await, so a disconnect meanwhile leaves these groups too.
        self.subscriptions.update(groups)
        try:
            await self.hub.subscribe(groups, self)
        except BaseException:
            self.subscriptions.difference_update(groups)
            raise
        if self.closing:
            # The disconnect's clean-up may have run before the hub added us: leave again.
            await self.hub.unsubscribe(groups, self)

    async def unsubscribe(self, *groups: str) -> None:
        """Unsubscribe this connection from ``groups``."""
        self.membership_changes += 1
        self.subscriptions.difference_update(groups)
        self.server_groups.difference_update(groups)
        await self.hub.unsubscribe(groups, self)

    # -- frames ---------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        verdict = self.limiter.check_frame()
        if verdict.retry_after_ms:
            self.process.stats.frame_in("refused")
            # Echo the command's ref, so a client can fail the command it is waiting on.
            await self._rate_limited(verdict, _ref_of(text_data))
            return
        if text_data is None:
            self.process.stats.frame_in("invalid")
            await self.send_error(BadFrame("Binary frames are not accepted; send JSON text"))
            return
        limit = realtime_settings.MAX_FRAME_BYTES
        # A str has at most 4 UTF-8 bytes per character: encode only when it could be over.
        if len(text_data) > limit or (
            len(text_data) * 4 > limit and len(text_data.encode("utf-8", "surrogatepass")) > limit
        ):
            self.process.stats.frame_in("invalid")
            connection_log.warning("limit conn=%s ip=%s limit=MAX_FRAME_BYTES", self.connection_id, self.ip)
            await self.refuse(MessageTooBig(f"Frames are limited to {limit} bytes"), CloseCode.MESSAGE_TOO_BIG)
            return
        try:
            frame = parse_frame(text_data)
        except ProtocolError as exc:
            self.process.stats.frame_in("invalid")
            await self.send_error(exc, getattr(exc, "ref", None))
            return
        ref = frame.ref
        known = frame.type in registry.RESERVED_TYPES or registry.get_handler(frame.type) is not None
        self.process.stats.frame_in(frame.type if known else "unknown")
        verdict = self.limiter.check_type(frame.type)
        if verdict.retry_after_ms:
            await self._rate_limited(verdict, ref)
            return
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

    async def _rate_limited(self, verdict: Verdict, ref=None) -> None:
        metrics.RATE_LIMIT_HITS.labels(verdict.scope).inc()
        error = RateLimited(details={"retry_after_ms": verdict.retry_after_ms, "limit": verdict.scope})
        if verdict.abusive:
            connection_log.warning(
                "rate abuse conn=%s ip=%s user=%s: closing 4429",
                self.connection_id,
                self.ip,
                self.user and self.user.pk,
            )
            await self.refuse(error, CloseCode.RATE_LIMITED, ref)
        else:
            await self.send_error(error, ref)

    async def handle_frame(self, frame: Frame) -> None:
        """Answer ``ping``, ``auth`` and ``auth.refresh`` here; run every other type's registered handler."""
        if frame.type == "ping":
            await self.send_frame(encode({"type": "pong", "ref": frame.ref, "ts": now_ms()}), "pong")
            return
        if frame.type == "auth":
            await self.authenticate_frame(frame)
            return
        if self.user is None:
            raise Unauthorized("Authenticate first: send an 'auth' frame with a token")
        if frame.type == "auth.refresh":
            await self.refresh_token(frame)
            return
        handler = registry.get_handler(frame.type)
        if handler is None:
            raise UnknownType(frame.type)
        ctx = HandlerContext(user=self.user, connection_id=self.connection_id)
        if registry.is_batched(frame.type):
            # Committed with the calls of other connections (realtime.group_commit); the batch's
            # events go out once every caller has replied.
            call = self.process.group_commit.submit(handler, ctx, frame.data)
            try:
                await self._reply(frame, ctx, await call.outcome())
            finally:
                call.replied()
            return
        with collecting_publishes() as collected:
            try:
                await self._reply(frame, ctx, await database_call(handler, ctx, frame.data))
            finally:
                # Events of committed writes go out even if the reply failed.
                await flush_collected(collected)

    async def _reply(self, frame: Frame, ctx: HandlerContext, result) -> None:
        """Apply the handler's group changes and send its ``ack`` carrying ``result``."""
        await self.unsubscribe(*ctx.unsubscribes)
        requested = (self.subscriptions | set(ctx.subscribes)) - self.server_groups
        if len(requested) > realtime_settings.MAX_SUBSCRIPTIONS:
            metrics.LIMIT_REFUSALS.labels("MAX_SUBSCRIPTIONS").inc()
            raise LimitExceeded(
                f"A connection may follow at most {realtime_settings.MAX_SUBSCRIPTIONS} groups; leave some first",
                details={"limit": "MAX_SUBSCRIPTIONS"},
            )
        reply = ack_frame(frame.ref, result)
        limit = realtime_settings.MAX_FRAME_BYTES
        # The limit is on UTF-8 bytes (so is Daphne's 1 MiB): a str's length undercounts them.
        if len(reply) > limit or (len(reply) * 4 > limit and len(reply.encode()) > limit):
            # Daphne refuses to send it (docs/platform-facts.md): answer instead of going silent. List
            # replies are cut to fit (realtime/paging.py); only one item too big alone gets here.
            raise MessageTooBig(f"The reply would be over {limit} bytes; ask for fewer items (limit)")
        await self.follow(*ctx.subscribes)
        await self.send_frame(reply, "ack")

    @staticmethod
    def _token_argument(frame: Frame) -> str:
        token = frame.data.get("token")
        if not isinstance(token, str) or not token:
            raise Invalid("'token' must be a non-empty string", details={"token": ["This field is required."]})
        return token

    async def authenticate_frame(self, frame: Frame) -> None:
        """First-frame auth: ``{"type": "auth", "data": {"token": <access JWT>}}``."""
        if self.user is not None:
            raise Invalid("Connection is already authenticated")
        token = self._token_argument(frame)
        try:
            result = await authenticate_token(token)
        except TokenRefused as exc:
            await self.refuse_auth(str(exc), ref=frame.ref)
            return
        self.token_expires_at = result.expires_at
        await self.start_session(result.user)

    async def refresh_token(self, frame: Frame) -> None:
        """
        ``auth.refresh {token}``: swap in a newer access token of the same user before the current
        one expires; ack ``{"expires_at": epoch ms}``. A refused token is an ``unauthorized`` error
        (the connection stays up on its current credentials); another user's token is ``forbidden``.
        """
        token = self._token_argument(frame)
        try:
            result = await authenticate_token(token)
        except TokenRefused as exc:
            raise Unauthorized(str(exc)) from None
        if result.user.pk != self.user.pk:
            raise Forbidden("The token belongs to another user")
        self.token_expires_at = result.expires_at
        self._schedule_token_expiry()
        connection_log.info(
            "token refreshed conn=%s user=%s expires_at=%s", self.connection_id, self.user.pk, result.expires_at
        )
        await self.send_frame(ack_frame(frame.ref, {"expires_at": result.expires_at * 1000}), "ack")

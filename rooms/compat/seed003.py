"""
Seed 003's Socket.IO clients (the NestJS game server framework, namespace ``/game``) on
Switchboard's rooms: docs/migration.md, "Seed 003".

python-socketio's ASGI app answers ``/compat/003/socket.io/`` (``SOCKETIO_PATH``: long-polling and
WebSocket), in front of the Channels router (config/asgi.py, ``socketio_application``). A socket
is a connection of the core like any other:

- **Handshake.** The Origin check of ``/ws/`` (``AllowedHostsBrowserOriginValidator``); an access
  JWT from the ``auth`` payload ``{token}``, else ``?token=``, else ``Authorization: Bearer`` (the
  seed's ``WsAuthGuard.extractToken`` order), checked by simplejwt (``authenticate_token``). A
  refusal is a Socket.IO connect error (``connect_error`` in socket.io-client) whose ``data`` is
  the native error ``{code, message, details?}``.
- **Registry and presence.** ``connection_opened`` and ``ServerProcess.connection_closed`` (realtime.delivery), as
  native sessions: ``MAX_CONNECTIONS_PER_USER`` counts both kinds, a user is online once.
- **Delivery.** Each socket is a member of the process hub (realtime.delivery.hub) for the core's
  session groups (its user's, everyone's) and each room it joined. A room publish, whoever makes
  it (a Socket.IO ``sendToRoom``, a native ``room.publish``, a back-end service), is one
  ``room.message`` on the room's group through ``rooms.services.publish_to_room``: the hub fans it
  out once per process and this codec turns it into one Socket.IO packet per process, written to
  each local socket; ``server.message`` (to a user, a connection, everyone) likewise. A socket on
  WebSocket is written to by the server's direct writer (from the start, or once it upgraded from
  long-polling and engine.io wrote what it held: ``engineio_upgrade``); a polling one through
  engine.io's queue.
  python-socketio's own manager (``AsyncRedisManager`` with Redis) is not on that path, so no
  event arrives twice; it shares python-socketio's own state (a ``disconnect`` or ``emit`` to a
  socket id from another process).
- **Events.** ``joinRoom``, ``leaveRoom``, ``sendToRoom`` (the seed's ``MessageService`` names),
  authorised on every call by ``rooms.policy``; errors in the seed's NestJS shape (``exception``
  event ``{status: "error", message}``, plus ``code`` and ``details``), never a dropped socket.
- **Limits.** /ws/'s: the per-address connection budget (one for both), the connection caps, the
  frame rate and each event's native type's ``TYPE_RATE_LIMITS`` bucket; events are counted
  with native frames by type.
"""

import asyncio
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlparse

import socketio
from django.conf import settings
from socketio import packet

from realtime import metrics
from realtime.codec import AdapterCodec
from realtime.conf import realtime_settings
from realtime.consumer import (
    AllowedHostsBrowserOriginValidator,
    FrameRateLimiter,
    TokenRefused,
    authenticate_token,
    over_connect_budget,
    token_from_scope,
)
from realtime.delivery import (
    ConnectionRecord,
    connection_opened,
    get_process,
    publishing_call,
    replace_sessions,
)
from realtime.envelope import now_ms
from realtime.errors import (
    CloseCode,
    GoingAway,
    Invalid,
    LimitExceeded,
    ProtocolError,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnknownType,
)
from realtime.groups import core_session_groups
from realtime.redis_client import socketio_redis_url
from realtime.servers import writer_for

from .. import services
from ..policy import check_join, check_publish, room_group, rule_for
from ..serializers import EVENT_NAME
from . import engineio_upgrade
from .engineio_upgrade import TrackedPacket

logger = logging.getLogger(__name__)
connection_log = logging.getLogger("realtime.connections")

# The seed's gateway: @WebSocketGateway({namespace: "/game"}) on Socket.IO's default path, which
# nginx maps onto this one (docs/migration.md).
NAMESPACE = "/game"
SOCKETIO_PATH = "compat/003/socket.io"
ROOM_MESSAGE = "room.message"
SERVER_MESSAGE = "server.message"
# Event names socket.io-client keeps for itself (a server event "connect" would fire its connect
# listeners), and the seed's error event: never a room event's name.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener", "exception"}
)
# Longest unknown event name echoed in an error.
MAX_EVENT_NAME_CHARS = 100
# Each client event as the native frame type it stands for: its TYPE_RATE_LIMITS bucket and its
# label in the per-type frame counts (stats, switchboard_ws_frames_received); any other: "unknown".
NATIVE_TYPES = {"joinRoom": "room.join", "leaveRoom": "room.leave", "sendToRoom": "room.publish"}


# Engine.IO's MESSAGE packet type: over WebSocket, a text frame "4<Socket.IO packet>".
ENGINEIO_MESSAGE = "4"


def _packet(args: list) -> str:
    """
    A Socket.IO EVENT packet of the ``/game`` namespace as an Engine.IO MESSAGE, encoded once per
    process: the very text of the WebSocket frame, so that the hub's direct writer can send it as
    is; ``SocketIOConnection.base_send`` strips the ``4`` again for python-engineio's queue.
    """
    return ENGINEIO_MESSAGE + packet.Packet(packet.EVENT, data=args, namespace=NAMESPACE).encode()


def error_body(code: str, message: str, details: Any = None) -> dict:
    """
    The seed's error: NestJS's ``WsException`` as its ``BaseWsExceptionFilter`` emits it,
    ``{"status": "error", "message"}``, plus the native ``code`` (realtime.errors.ErrorCode) and
    ``details`` when there are some.
    """
    body = {"status": "error", "message": message, "code": code}
    if details is not None:
        body["details"] = details
    return body


class Seed003Codec(AdapterCodec):
    """
    Native events and errors as Socket.IO packets. The rooms app's two events become the event
    their publisher named, with the payload first and where it came from second (a seed client's
    handler, ``socket.on("vote", (data) => ...)``, reads the first):

    - ``room.message {room, event, data, from, connection_id}`` -> ``event(data, {room, from, connection_id})``;
    - ``server.message {event, data, to}`` -> ``event(data, {to})``.

    An error frame is the ``exception`` event. Other native events are not sent.
    """

    name = "seed003"

    def event(self, event_type: str, data: Any) -> str | None:
        if event_type == ROOM_MESSAGE:
            origin = {"room": data["room"], "from": data["from"], "connection_id": data["connection_id"]}
        elif event_type == SERVER_MESSAGE:
            origin = {"to": data["to"]}
        else:
            return None
        if data["event"] in RESERVED_EVENTS:
            return None
        return _packet([data["event"], data["data"], origin])

    def error(self, code: str, message: str, details: Any, ref: Any) -> str:
        return _packet(["exception", error_body(code, message, details)])


CODEC = Seed003Codec()


class SocketIOConnection:
    """
    One connected ``/game`` socket as the core sees a connection: a member of the process hub
    (``realtime.delivery.hub.Connection``) and of ``ServerProcess.connections`` (registry refresh,
    credential re-checks, drain on SIGTERM). ``connection_id`` is the socket's id (``socket.id``
    in the client): a uuid4 hex like every connection's, so the rooms app's publish API addresses
    it as it does a native one.
    """

    codec = CODEC
    # Written to at once: there is no ``welcome`` to wait for (Socket.IO's CONNECT is sent by python-socketio).
    held = None
    # JWT only (the seed's): no session to re-check.
    session_key = None

    def __init__(
        self, endpoint: "Seed003Endpoint", sid: str, user, record: ConnectionRecord, process, frame_writer=None
    ):
        self.endpoint = endpoint
        # A socket that connected straight over WebSocket: the hub writes events to it through the
        # server's direct writer (realtime.servers), as to a native connection, instead of one
        # python-engineio packet, queue put and writer-task wake-up per socket per event (3.6x
        # native's CPU per delivery, ``make bench-adapters``). Acks, errors and pings keep
        # engine.io's queue (the seed's server emitted a room event before its handler's ack too).
        # A long-polling socket: None until it upgrades and engine.io has written every packet it
        # queued (``write_directly``), so events stay in order.
        self.frame_writer = frame_writer
        # The last packet this connection put in engine.io's queue (tracked when the endpoint's
        # upgrades switch to direct writes, rooms/compat/engineio_upgrade.py).
        self.last_queued: TrackedPacket | None = None
        self.sid = self.connection_id = sid
        self.eio_sid = endpoint.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        self.user = user
        self.record = record
        self.process = process
        self.hub = process.hub
        self.subscriptions: set[str] = set()
        self.rooms: set[str] = set()  # the room names this socket joined
        self.closing = False
        self.expiry: asyncio.Task | None = None
        self.limiter = FrameRateLimiter()  # the native per-connection event rate (RATE_PER_MIN, RATE_BURST)

    async def base_send(self, message: dict) -> None:
        """Write one hub message (an Engine.IO MESSAGE, ``_packet``'s text) through python-engineio's queue."""
        data = message["text"].removeprefix(ENGINEIO_MESSAGE)
        engine = self.endpoint.server.eio
        if not self.endpoint.direct_upgrades:
            await engine.send(self.eio_sid, data)
            return
        try:
            socket = engine._get_socket(self.eio_sid)
        except KeyError:  # gone: engine.send ignores it too
            return
        self.last_queued = TrackedPacket(data)
        await socket.send(self.last_queued)

    def write_directly(self, send) -> bool:
        """
        Switch an upgraded socket's events to the direct writer for its WebSocket's ASGI ``send``,
        once every packet this connection queued has been taken by engine.io's writer (called by
        ``DirectUpgradeWebSocket`` right after each of its writes, so a taken packet is a written
        one). Return whether the question is settled: switched, or no direct writer for ``send``
        (another server, patches off); False while a queued packet waits.
        """
        if self.frame_writer is None:
            if self.last_queued is not None and not self.last_queued.taken:
                return False
            self.frame_writer = writer_for(send)
            self.last_queued = None
        return True

    async def subscribe(self, *groups: str) -> None:
        """Follow ``groups`` in the process hub; raise the layer's error."""
        await self.hub.subscribe(groups, self)
        self.subscriptions.update(groups)

    async def unsubscribe(self, *groups: str) -> None:
        """Stop following ``groups``."""
        await self.hub.unsubscribe(groups, self)
        self.subscriptions.difference_update(groups)

    async def refresh_server_groups(self) -> None:
        """Nothing to re-read before a resync: the only group the server chose is the user's own."""

    async def send_error(self, exc: ProtocolError) -> dict:
        """Emit ``exc`` as the ``exception`` event; return its body (for the event's acknowledgement)."""
        error = exc.as_dict()
        metrics.ERRORS.labels(error["code"]).inc()
        self.process.stats.frames_out("error")
        await self.base_send({"text": CODEC.error(error["code"], error["message"], error.get("details"), None)})
        return error_body(error["code"], error["message"], error.get("details"))

    async def rate_limited(self, verdict) -> dict | None:
        """
        Refuse an event over a rate bucket (``FrameRateLimiter``'s ``Verdict``): ``rate_limited``
        with ``retry_after_ms`` and the bucket (``limit``: "connection" or the native type), as
        /ws/'s gate does; the error body, or None when sustained abuse disconnected the socket.
        """
        metrics.RATE_LIMIT_HITS.labels(verdict.scope).inc()
        error = RateLimited(details={"retry_after_ms": verdict.retry_after_ms, "limit": verdict.scope})
        if verdict.abusive:  # RATE_ABUSE_FRAMES refused within RATE_ABUSE_WINDOW_S: as /ws/'s 4429
            await self.refuse(error, CloseCode.RATE_LIMITED)
            return None
        return await self.send_error(error)

    async def close_with(self, text: str, code: int) -> None:
        """
        Emit the natively encoded error frame ``text`` as ``exception``, then disconnect the socket
        from ``/game`` (the client sees ``disconnect`` with "io server disconnect"; the close
        ``code`` of a WebSocket has no Socket.IO counterpart).
        """
        await self._close(CODEC.translate(text), code)

    async def refuse(self, exc: ProtocolError, close_code: int) -> None:
        """``close_with`` for a raised ``ProtocolError`` (credential re-checks, token expiry)."""
        await self._close(CODEC.error_for(exc), close_code)

    async def _close(self, exception_packet: str, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        connection_log.info("socket.io close conn=%s user=%s code=%s", self.sid, self.user.pk, code)
        try:
            await self.base_send({"text": exception_packet})
        except Exception:
            logger.debug("error before a close not written to %s", self.sid, exc_info=True)
        await self.endpoint.server.disconnect(self.sid, namespace=NAMESPACE, ignore_queue=True)

    async def close_at(self, expires_at: int) -> None:
        """Disconnect when the access token expires (epoch s ``expires_at``), as native sessions end (4401)."""
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await self.refuse(Unauthorized("Token expired; reconnect with a new one"), CloseCode.UNAUTHORIZED)


def token_from_handshake(auth: Any, scope: dict) -> str | None:
    """The access token of a Socket.IO handshake: ``auth.token``, else ``?token=``, else ``Authorization: Bearer``."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str) and auth["token"]:
        return auth["token"]
    return token_from_scope(scope)


def origin_allowed(origin: str, environ: dict | None = None) -> bool:
    """Whether a request's ``Origin`` passes ``/ws/``'s check (Engine.IO asks only when there is one)."""
    return AllowedHostsBrowserOriginValidator(None).valid_origin(urlparse(origin))


def _refused(exc: ProtocolError) -> socketio.exceptions.ConnectionRefusedError:
    """The connect error for ``exc``: socket.io-client's ``err.message``, and ``err.data`` (the native error)."""
    return socketio.exceptions.ConnectionRefusedError(exc.message, exc.as_dict())


def _room_argument(payload: Any) -> str:
    if not isinstance(payload, dict) or "roomId" not in payload:
        raise Invalid("Send an object with roomId", details={"roomId": ["This field is required."]})
    rule_for(payload["roomId"])  # Invalid for a malformed name, NotFound for one no namespace rule matches
    return payload["roomId"]


class Seed003Endpoint:
    """
    The ``/game`` namespace on a ``socketio.AsyncServer`` (``server``), with its open sockets by
    id (``connections``). One per ASGI application (config/asgi.py); tests build their own.
    """

    def __init__(self):
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=self._client_manager(),
            cors_allowed_origins=origin_allowed,
            ping_interval=settings.SOCKETIO_PING_INTERVAL_S,
            ping_timeout=settings.SOCKETIO_PING_TIMEOUT_S,
            max_http_buffer_size=settings.SOCKETIO_MAX_MESSAGE_BYTES,
            # One event of a socket at a time, in order, as on /ws/: a joinRoom is done before the
            # sendToRoom sent after it is authorised.
            async_handlers=False,
            namespaces=[NAMESPACE],
        )
        # Socket ids as the core's connection ids are (uuid4 hex): the rooms app's publish API and the
        # admin address a socket by them (rooms.serializers.CONNECTION_ID).
        self.server.eio.generate_id = lambda: uuid.uuid4().hex
        self.connections: dict[str, SocketIOConnection] = {}
        # The same sockets by Engine.IO sid, for the switch of upgraded ones to direct writes.
        self.by_eio_sid: dict[str, SocketIOConnection] = {}
        self.direct_upgrades = engineio_upgrade.install(self.server.eio, self.by_eio_sid)
        self.events = {"joinRoom": self.join_room, "leaveRoom": self.leave_room, "sendToRoom": self.send_to_room}
        self.server.on("connect", self.connect, namespace=NAMESPACE)
        self.server.on("disconnect", self.disconnect, namespace=NAMESPACE)
        self.server.on("*", self.dispatch, namespace=NAMESPACE)

    @staticmethod
    def _client_manager() -> socketio.AsyncManager:
        # With Redis, python-socketio's own cross-process state (a sid's emit or disconnect from
        # another process) goes through it, on a channel of this deployment's key prefix; under
        # Sentinel its redis+sentinel:// form, so its reconnects follow a failover too.
        url = socketio_redis_url()
        if url:
            return socketio.AsyncRedisManager(url, channel=f"{realtime_settings.KEY_PREFIX}:socketio:003")
        return socketio.AsyncManager()

    async def connect(self, sid: str, environ: dict | None = None, auth: Any = None, *_: Any) -> dict | None:
        """
        Accept the socket as an authenticated connection of the token's user, or raise
        ``ConnectionRefusedError`` with the native error: ``unauthorized`` (no or a refused token),
        ``limit_exceeded`` (``MAX_CONNECTIONS_PER_PROCESS``, ``MAX_CONNECTIONS_PER_USER``),
        ``going_away`` (draining), ``unavailable`` (Redis away).
        """
        if self.server.manager.is_connected(sid, NAMESPACE):
            # python-socketio hands a connected client's event named "connect" to this handler.
            return await self.dispatch("connect", sid)
        scope = environ["asgi.scope"]
        ip = (scope.get("client") or ("", 0))[0] or ""
        # The per-address budget of /ws/ (realtime.consumer.connect_rate), shared with it and
        # counted before the token is checked, so a reconnect loop costs no database read.
        if limit := await over_connect_budget(ip):
            metrics.LIMIT_REFUSALS.labels(limit).inc()
            connection_log.warning("socket.io limit sid=%s ip=%s limit=%s", sid, ip, limit)
            # As /ws/: a client reconnecting in a loop is slowed to the refusal's pace.
            await asyncio.sleep(realtime_settings.CONNECT_REFUSAL_DELAY_S)
            raise _refused(LimitExceeded("Too many new connections from this address", details={"limit": limit}))
        try:
            process = await get_process()
        except Exception:
            logger.warning("server process could not start; socket.io connection %s refused", sid, exc_info=True)
            raise _refused(Unavailable("The server cannot reach Redis for a moment; reconnect later")) from None
        if process.draining:
            raise _refused(GoingAway())
        if len(process.connections) >= realtime_settings.MAX_CONNECTIONS_PER_PROCESS:
            raise _refused(LimitExceeded("This server is full", details={"limit": "MAX_CONNECTIONS_PER_PROCESS"}))
        raw_token = token_from_handshake(auth, scope)
        if raw_token is None:
            raise _refused(Unauthorized("Send an access token: auth {token}, ?token= or Authorization: Bearer"))
        try:
            result = await authenticate_token(raw_token)
        except TokenRefused as exc:
            connection_log.warning("socket.io auth refused sid=%s reason=%r", sid, str(exc))
            raise _refused(Unauthorized(str(exc))) from None
        user = result.user
        headers = dict(scope.get("headers", []))
        record = ConnectionRecord(
            connection_id=sid,
            user_id=user.pk,
            username=user.get_username(),
            ip=ip,
            user_agent=headers.get(b"user-agent", b"").decode("latin1")[:200],
            connected_at=now_ms(),
            process=process.id,
        )
        try:
            opened = await connection_opened(process.registry, record)
        except Exception:
            logger.warning("socket.io session start failed for %s", sid, exc_info=True)
            raise _refused(Unavailable("The server cannot reach Redis for a moment; reconnect later")) from None
        if not opened:
            raise _refused(
                LimitExceeded("Too many open connections for this user", details={"limit": "MAX_CONNECTIONS_PER_USER"})
            )
        direct = writer_for(environ["asgi.send"]) if scope["type"] == "websocket" else None
        conn = SocketIOConnection(self, sid, user, record, process, frame_writer=direct)
        self.connections[sid] = conn
        self.by_eio_sid[conn.eio_sid] = conn
        process.connections[sid] = conn
        process.stats.opened()
        process.stats.session_started()
        try:
            await conn.subscribe(*core_session_groups(user.pk))
            if realtime_settings.SINGLE_SESSION:  # the native endpoint's rule: a user's new session closes the others
                await replace_sessions(user.pk, sid)
        except Exception:
            await self.disconnect(sid, "subscribe failed")
            raise _refused(Unavailable("The server cannot reach Redis for a moment; reconnect later")) from None
        conn.expiry = asyncio.create_task(conn.close_at(result.expires_at))
        connection_log.info("socket.io session conn=%s user=%s", sid, user.pk)

    async def disconnect(self, sid: str, reason: str | None = None, *_: Any) -> dict | None:
        """Undo ``connect``: hub groups, registry record (offline presence), the process's table."""
        if self.server.manager.is_connected(sid, NAMESPACE):
            # Not a disconnect (python-socketio marks those first): a client's event named "disconnect".
            return await self.dispatch("disconnect", sid)
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        if self.by_eio_sid.get(conn.eio_sid) is conn:  # not a later /game connect of the same Engine.IO session
            del self.by_eio_sid[conn.eio_sid]
        conn.closing = True
        if conn.expiry is not None and conn.expiry is not asyncio.current_task():
            conn.expiry.cancel()
        process = conn.process
        process.stats.closed(True)
        try:
            await conn.unsubscribe(*conn.subscriptions)
            try:
                await process.connection_closed(conn.record)
            except Exception:
                logger.warning("could not unregister %s; its record expires", sid, exc_info=True)
        finally:
            process.connections.pop(sid, None)
        connection_log.info("socket.io disconnect conn=%s user=%s reason=%s", sid, conn.user.pk, reason)

    async def dispatch(self, event: Any, sid: str, *args: Any) -> dict | None:
        """
        Run one client event; return its acknowledgement (``{"status": "ok", ...}``, or the error
        body when it failed, which is also emitted as ``exception``). The first argument is the
        event's payload; an unknown event is ``unknown_type``; a bug is ``server_error``, logged.
        The native gate's limits, in its order (realtime/consumer/gate.py): the connection's
        frame rate, then the native type's own (``TYPE_RATE_LIMITS``, ``NATIVE_TYPES``), each
        ``rate_limited``; sustained, the socket is disconnected. Counted in the process stats and
        ``switchboard_ws_frames_received`` as /ws/'s frames: by native type, "unknown", "refused".
        """
        conn = self.connections.get(sid)
        if conn is None or conn.closing:
            return None
        stats = conn.process.stats
        verdict = conn.limiter.check_frame()
        if verdict.retry_after_ms:
            stats.frame_in("refused")
            return await conn.rate_limited(verdict)
        frame_type = NATIVE_TYPES.get(event) if isinstance(event, str) else None
        stats.frame_in(frame_type or "unknown")
        if frame_type is not None and (verdict := conn.limiter.check_type(frame_type)).retry_after_ms:
            return await conn.rate_limited(verdict)
        handler = self.events.get(event) if isinstance(event, str) else None
        try:
            if handler is None:
                raise UnknownType(str(event)[:MAX_EVENT_NAME_CHARS])
            result = await handler(conn, args[0] if args else None)
        except ProtocolError as exc:
            return await conn.send_error(exc)
        except Exception:
            logger.exception("socket.io event %r of %s failed", event, sid)
            return await conn.send_error(ProtocolError())
        return {"status": "ok", **result}

    async def join_room(self, conn: SocketIOConnection, payload: Any) -> dict:
        """``joinRoom {roomId}``: follow the room (``rooms.policy.check_join``; ``MAX_SUBSCRIPTIONS`` rooms at most)."""
        room = _room_argument(payload)
        check_join(conn.user, room)
        if room not in conn.rooms:
            if len(conn.rooms) >= realtime_settings.MAX_SUBSCRIPTIONS:
                raise LimitExceeded("Too many rooms joined", details={"limit": "MAX_SUBSCRIPTIONS"})
            await conn.subscribe(room_group(room))
            conn.rooms.add(room)
        return {"roomId": room}

    async def leave_room(self, conn: SocketIOConnection, payload: Any) -> dict:
        """``leaveRoom {roomId}``: stop following the room (a room not joined: nothing to do)."""
        room = _room_argument(payload)
        if room in conn.rooms:
            conn.rooms.discard(room)
            await conn.unsubscribe(room_group(room))
        return {"roomId": room}

    async def send_to_room(self, conn: SocketIOConnection, payload: Any) -> dict:
        """
        ``sendToRoom {roomId, event, data, except?}``: publish ``room.message`` to the room's
        members, native and Socket.IO, on every process, through the rooms app's one write path
        (``rooms.services.publish_to_room``, authorised by ``rooms.policy.check_publish``); with
        ``except`` (``true`` or the sender's own socket id) not to the sending socket.
        """
        room = _room_argument(payload)
        event = payload.get("event")
        if not isinstance(event, str) or not EVENT_NAME.regex.search(event) or event in RESERVED_EVENTS:
            raise Invalid(
                "event must be a name of 1-100 letters, digits, '_', '.', ':' or '-', not a reserved one",
                details={"event": [f"{EVENT_NAME.message} Not {', '.join(sorted(RESERVED_EVENTS))}."]},
            )
        excepted = payload.get("except", False)
        if not (excepted is True or excepted is False or excepted == conn.sid):
            raise Invalid("except is true or your own socket id", details={"except": ["true, false or socket.id"]})
        check_publish(conn.user, room, member=room in conn.rooms)
        # Its event leaves from the event loop once the call returns, not from the worker thread
        # while it holds the process's SQLite turn (realtime.delivery.publishing_call).
        await publishing_call(
            services.publish_to_room,
            room=room,
            event=event,
            data=payload.get("data"),
            sender=conn.user,
            connection_id=conn.sid,
            except_self=bool(excepted),
        )
        return {"roomId": room}


def socketio_application(other_asgi_app) -> socketio.ASGIApp:
    """
    The ASGI application answering ``/compat/003/socket.io/`` (HTTP long-polling and WebSocket)
    with a new ``Seed003Endpoint`` and passing every other request to ``other_asgi_app``.
    """
    return socketio.ASGIApp(Seed003Endpoint().server, other_asgi_app=other_asgi_app, socketio_path=SOCKETIO_PATH)

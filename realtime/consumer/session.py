"""
The session part of ``RealtimeConsumer``: who the connection is, and for how long.

Authentication by the handshake (session cookie or ``?token=``, realtime.consumer.auth) or by a
first ``auth`` frame; the token's expiry (close 4401 when it passes), ``auth.refresh`` to extend
it; registration in the connection registry (per-user cap, presence), the user's groups and the
``welcome`` frame. Sessions are re-checked every ``SESSION_RECHECK_S`` by the server process
(realtime.delivery.revalidation). Rules: docs/protocol.md "Authentication".
"""

import asyncio
import enum
import logging
import time

from realtime import registry
from realtime.conf import realtime_settings
from realtime.delivery import ConnectionRecord, open_connection, replace_sessions
from realtime.envelope import Frame, now_ms
from realtime.errors import CloseCode, Forbidden, Invalid, Unauthorized, Unavailable
from realtime.groups import core_session_groups

from .auth import TokenRefused, authenticate_token

logger = logging.getLogger(__name__)
connection_log = logging.getLogger("realtime.connections")


def header(scope: dict, name: bytes) -> str:
    """The value of request header ``name`` (lower-case bytes) in an ASGI ``scope``; "" when absent."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return ""


def layer_unavailable() -> Unavailable:
    """The error sent before a 1013 close when Redis (the channel layer or the registry) is away."""
    retry_after_ms = int(realtime_settings.HUB_RETRY_S * 1000)
    return Unavailable(
        f"The server cannot reach Redis for a moment; reconnect after {retry_after_ms} ms",
        details={"retry_after_ms": retry_after_ms},
    )


class SingleSession(enum.StrEnum):
    """
    What a new session closes (close 4409, seed 004's single sign-on): ``USER``, every other
    connection of its user, on any endpoint; ``ENDPOINT``, only those on an endpoint of the same
    wire protocol (``codec.name``); ``OFF``, none.
    """

    USER = "user"
    ENDPOINT = "endpoint"
    OFF = "off"


class SessionMixin:
    """
    Authentication, token expiry and refresh, and session start for ``RealtimeConsumer``.

    Uses the consumer's ``codec``, ``scope``, ``process``, ``connection_id``, ``ip``, ``closing``, ``held``,
    ``_timers``, ``subscribe``, ``send_frame``, ``refuse`` and ``refuse_limit``; sets ``user``,
    ``record``, ``session_key`` and ``token_expires_at``.
    """

    def single_session(self) -> SingleSession:
        """
        Which of its user's other connections a new session of this endpoint closes: here
        ``REALTIME["SINGLE_SESSION"]`` (every one, or none); an endpoint with a rule of its own
        (seed 004's, chat.compat.seed004) overrides this.
        """
        return SingleSession.USER if realtime_settings.SINGLE_SESSION else SingleSession.OFF

    async def begin_session(self) -> None:
        """
        Start the session the handshake authenticated (session cookie, or ``?token=`` with its
        expiry), refuse credentials the middleware refused (4401), or give an anonymous
        connection ``AUTH_TIMEOUT_S`` to send an ``auth`` frame (then 4408); a protocol without
        one (``codec.auth_frame``) refuses it at once (4401).
        """
        user = self.scope.get("user")
        if self.scope.get("auth_error"):
            await self.refuse_auth(self.scope["auth_error"])
        elif user is not None and user.is_authenticated:
            if "auth_expires_at" in self.scope:
                self.token_expires_at = self.scope["auth_expires_at"]
            else:
                self.session_key = self.scope["session"].session_key
            await self.start_session(user)
        elif not self.codec.auth_frame:
            await self.refuse_auth("Authenticate in the handshake: a session cookie or ?token=<access JWT>")
        else:
            self._after("auth", realtime_settings.AUTH_TIMEOUT_S, self._close_if_not_authenticated)

    async def refuse_auth(self, reason: str, ref=None) -> None:
        """Refuse refused credentials: error frame with the reason, close 4401."""
        connection_log.warning("auth refused conn=%s ip=%s reason=%r", self.connection_id, self.ip, reason)
        await self.refuse(Unauthorized(reason), CloseCode.UNAUTHORIZED, ref=ref)

    def _after(self, name: str, delay_s: float, close) -> None:
        """
        Run coroutine function ``close`` in a task ``delay_s`` seconds from now, kept in
        ``_timers[name]`` (a timer handle, then the task; both cancel). Not a task sleeping the
        whole while: its coroutine frame, the sleep's future and callbacks cost each idle
        connection about 1 KB more (bench/idle.py). The handle's arguments rather than a closure:
        a function and its cells cost about 200 bytes more (bench/heap.py).
        """
        self._timers[name] = asyncio.get_running_loop().call_later(max(0.0, delay_s), self._fire, name, close)

    def _fire(self, name: str, close) -> None:
        self._timers[name] = asyncio.ensure_future(close())

    async def _close_if_not_authenticated(self) -> None:
        if self.user is None and not self.closing:
            connection_log.warning("auth timeout conn=%s ip=%s", self.connection_id, self.ip)
            await self.refuse(Unauthorized("No auth frame within the time allowed"), CloseCode.AUTH_TIMEOUT)

    async def _close_at_token_expiry(self) -> None:
        if not self.closing:
            connection_log.info("token expired conn=%s user=%s", self.connection_id, self.user.pk)
            await self.refuse(Unauthorized("Token expired; refresh it with auth.refresh"), CloseCode.UNAUTHORIZED)

    def _schedule_token_expiry(self) -> None:
        if "expiry" in self._timers:
            self._timers["expiry"].cancel()
        if self.token_expires_at is not None:
            self._after("expiry", self.token_expires_at - time.time(), self._close_at_token_expiry)

    async def start_session(self, user) -> None:
        """
        Register the connection as ``user``'s (per-user cap: 1013), subscribe the core's groups (its
        user's, everyone's) and the apps' session groups, send ``welcome``. When the registry or the
        layer is unreachable, refuse with 1013 (retry later) rather than run a connection nobody
        can reach.
        """
        self.user = user
        if "auth" in self._timers:
            self._timers.pop("auth").cancel()
        record = ConnectionRecord(
            connection_id=self.connection_id,
            user_id=user.pk,
            username=user.get_username(),
            ip=self.ip,
            user_agent=header(self.scope, b"user-agent")[:200],
            connected_at=now_ms(),
            process=self.process.id,
        )
        try:
            opened, session_groups = await open_connection(
                self.process.registry, record, lambda: registry.groups_for_session(user)
            )
            if not opened:
                await self.refuse_limit("MAX_CONNECTIONS_PER_USER", "Too many open connections for this user")
                return
            self.record = record
            self.process.stats.session_started()
            await self.subscribe(*core_session_groups(user.pk), *session_groups)
            if (scope := self.single_session()) is not SingleSession.OFF:
                await replace_sessions(
                    user.pk, self.connection_id, codec=self.codec.name if scope == SingleSession.ENDPOINT else None
                )
        except Exception:
            logger.warning("session start failed on connection %s", self.connection_id, exc_info=True)
            await self.refuse(layer_unavailable(), CloseCode.TRY_AGAIN_LATER)
            return
        self._schedule_token_expiry()
        connection_log.info(
            "session conn=%s user=%s via=%s", self.connection_id, user.pk, "session" if self.session_key else "token"
        )
        welcome = self.codec.event(
            "welcome",
            {
                "user": {"id": user.pk, "username": user.get_username()},
                "connection_id": self.connection_id,
                "heartbeat_s": realtime_settings.HEARTBEAT_S,
                "server_time": now_ms(),
                "token_expires_at": self.token_expires_at * 1000 if self.token_expires_at else None,
            },
        )
        if welcome is not None:
            await self.send_frame(welcome, "welcome")
        held, self.held = self.held, None
        for message in held:
            await self.base_send(message)

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
        self.codec.check_auth(frame, result.user)  # a compatibility protocol's own rule (realtime.codec)
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
        if (reply := self.codec.ack(frame, {"expires_at": result.expires_at * 1000})) is not None:
            await self.send_frame(reply, "ack")

"""
The per-address connection budget (``REALTIME["CONNECTIONS_PER_IP_PER_MIN"]`` and
``["CONNECTIONS_PER_IP_PER_S"]``) and the process's bound on handshakes in progress
(``["MAX_HANDSHAKES_IN_PROGRESS"]``), both checked before authentication.

Authenticating a connection costs a JWT check and a database read (the token's or the
session's user). Counted in the consumer, after the auth middleware, a client opening
connections in a loop had each of them authenticated before being refused: about a hundred
database reads a second next to everyone's chat (``make bench-floods``). Counted here, first, a
connection over the budget goes straight to the consumer, which refuses it (error frame
``limit_exceeded``, close 1013) without a database read. The per-second cap spreads what the
per-minute one allows: a loop's first 60 connections in one burst, each authenticated and
announced, took the server for a few hundred milliseconds.

The handshake bound is for many addresses at once: 5,000 clients reconnecting together after a
restart (``make bench-storm``) were all authenticated, registered and welcomed side by side, each
waiting on the others, and 8,734 of their attempts outlived Daphne's 5 s handshake timeout and
were dropped (1006) after costing the server most of a connect. At the bound the process stops
accepting (``realtime.servers.pause_accepting``, under Daphne): the next connections wait in the
kernel's listen backlog, unrefused and costing nothing, and are taken as handshakes finish.
Where the server cannot pause (uvicorn, ``SERVER_PATCHES`` off), a connection beyond the bound is
refused at once (1013, ``limit_exceeded``); clients wait and come back (client.js: at least 5 s).
"""

import logging

from realtime.conf import realtime_settings
from realtime.delivery import get_registry
from realtime.servers import accepting_paused, pause_accepting, resume_accepting

logger = logging.getLogger(__name__)

# Set in the scope of a connection over its address's budget, to the name of the limit; the
# consumer refuses it.
OVER_BUDGET_KEY = "connect_budget_exceeded"
# In the scope of every connection the middleware admits: its ``Handshake``, which the consumer
# finishes once its session has started (or been refused).
HANDSHAKE_KEY = "realtime_handshake"
HANDSHAKES_LIMIT = "MAX_HANDSHAKES_IN_PROGRESS"


class Handshake:
    """
    One admitted handshake, counted in ``Handshake.in_progress`` (this process) until ``finish()``.
    The count reaching ``MAX_HANDSHAKES_IN_PROGRESS`` pauses accepting; falling below it resumes.
    """

    __slots__ = ("finished",)

    in_progress = 0

    def __init__(self):
        Handshake.in_progress += 1
        self.finished = False
        bound = realtime_settings.MAX_HANDSHAKES_IN_PROGRESS
        if bound and Handshake.in_progress >= bound:
            pause_accepting()

    def finish(self) -> None:
        """Stop counting it (idempotent)."""
        if not self.finished:
            self.finished = True
            Handshake.in_progress -= 1
            if Handshake.in_progress < realtime_settings.MAX_HANDSHAKES_IN_PROGRESS:
                resume_accepting()

    @staticmethod
    def admissible() -> bool:
        """
        Whether a new handshake may start: within ``MAX_HANDSHAKES_IN_PROGRESS`` (0: no bound), or
        accepted before the pause took effect (a connection is counted a loop turn or two after its
        accept: realtime.servers.daphne.accept_gate).
        """
        bound = realtime_settings.MAX_HANDSHAKES_IN_PROGRESS
        return not bound or Handshake.in_progress < bound or accepting_paused()


async def over_connect_budget(ip: str) -> str | None:
    """
    Count a new connection from client address ``ip``; return the name of the limit it is over
    (``"CONNECTIONS_PER_IP_PER_S"`` or ``"CONNECTIONS_PER_IP_PER_MIN"``), else None. Also None
    when the registry's Redis is unreachable (logged): nobody is refused for Redis being away.
    Used by this middleware and by seed 003's Socket.IO handshake (rooms/compat/seed003.py).
    """
    try:
        this_second, this_minute = await get_registry().count_connect(ip)
    except Exception:
        logger.warning("connection rate per IP not checked: registry unreachable", exc_info=True)
        return None
    for limit, count in (("CONNECTIONS_PER_IP_PER_S", this_second), ("CONNECTIONS_PER_IP_PER_MIN", this_minute)):
        if count > getattr(realtime_settings, limit):
            return limit
    return None


class ConnectRateMiddleware:
    """
    ASGI middleware for WebSocket scopes: beyond ``MAX_HANDSHAKES_IN_PROGRESS``, or over the
    budget of its client address (``scope["client"]``, the forwarded one under ``daphne
    --proxy-headers``), call ``refuse`` (the consumer, unauthenticated) with
    ``scope[OVER_BUDGET_KEY]`` naming the limit; else call ``inner`` (the auth stack) with the
    connection's ``Handshake`` in ``scope[HANDSHAKE_KEY]``. When the registry's Redis is unreachable the connection
    is not counted: the other limits still hold, and nobody is refused for Redis being away.
    """

    def __init__(self, inner, refuse):
        self.inner = inner
        self.refuse = refuse

    async def __call__(self, scope, receive, send):
        if not Handshake.admissible():
            return await self.refuse({**scope, OVER_BUDGET_KEY: HANDSHAKES_LIMIT}, receive, send)
        handshake = Handshake()
        try:
            limit = await over_connect_budget((scope.get("client") or ("", 0))[0] or "")
            if limit is not None:
                handshake.finish()
                return await self.refuse({**scope, OVER_BUDGET_KEY: limit}, receive, send)
            return await self.inner({**scope, HANDSHAKE_KEY: handshake}, receive, send)
        finally:
            handshake.finish()  # the client left before the consumer finished it

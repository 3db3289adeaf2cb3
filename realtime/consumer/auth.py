"""
WebSocket authentication: simplejwt access tokens from the query string, the Authorization
header (or seed 004's ``websocket`` header), or a first ``auth`` frame; the Django session
cookie, read with Django's session store and ``auth.get_user`` (``RealtimeAuthMiddleware``).

Token checks are simplejwt's own (``JWTAuthentication.get_validated_token`` and ``get_user``):
no JWT is decoded here. A refused token never becomes a 403 at the handshake, because browsers
hide why a handshake failed: the consumer accepts, sends an ``error`` frame with the reason,
then closes with 4401 (Daphne drops close reasons, docs/platform-facts.md).
"""

from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import parse_cookie
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

from realtime.db import database_call

from .connect_rate import ConnectRateMiddleware


@dataclass(frozen=True)
class TokenAuthResult:
    """An authenticated user and the token's expiry in epoch seconds."""

    user: AbstractBaseUser
    expires_at: int


class TokenRefused(Exception):
    """The token is malformed, forged, expired, of the wrong type, or its user is inactive or gone."""


def _refusal_reason(exc: AuthenticationFailed) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        # InvalidToken carries one message per token class tried; the first says why.
        messages = detail.get("messages") or []
        if messages:
            return str(messages[0]["message"])
        return str(detail.get("detail", "Token is invalid"))
    return str(detail)


def _authenticate_token_sync(raw_token: str) -> TokenAuthResult:
    jwt = JWTAuthentication()
    try:
        validated = jwt.get_validated_token(raw_token.encode())
        user = jwt.get_user(validated)
    except (InvalidToken, AuthenticationFailed) as exc:
        raise TokenRefused(_refusal_reason(exc)) from None
    return TokenAuthResult(user=user, expires_at=int(validated["exp"]))


async def authenticate_token(raw_token: str) -> TokenAuthResult:
    """
    Validate a simplejwt access token and load its user.

    Raise ``TokenRefused`` with simplejwt's reason ("Token is expired", "User is inactive", ...).
    """
    return await database_call(_authenticate_token_sync, raw_token)


def token_from_scope(scope: dict) -> str | None:
    """
    Return the token from ``?token=``, else ``Authorization: Bearer <token>`` (seed 003's order),
    else the ``websocket: <token>`` header (seed 004's clients send it there); or None.
    """
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    if query.get("token"):
        return query["token"][0]
    websocket_header = None
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"websocket" and websocket_header is None:
            websocket_header = value.decode("latin1").strip() or None
    return websocket_header


class RealtimeAuthMiddleware:
    """
    Put in the scope who the connection is, in one step: ``scope["cookies"]`` (Django's
    ``parse_cookie``), ``scope["session"]`` (the session the cookie names, read-only and loaded
    lazily) and ``scope["user"]``: a token's user (``?token=``, ``Authorization: Bearer``, seed
    004's ``websocket`` header; its expiry in ``scope["auth_expires_at"]``, a refusal's reason in
    ``scope["auth_error"]``), else the session's user by Django's ``auth.get_user`` (session key,
    backend, session hash), else ``AnonymousUser``. A token wins over a session, whose user is
    then not read.

    Channels' stack (``CookieMiddleware``, ``SessionMiddleware``, ``AuthMiddleware``) and a token
    middleware on top did the same in seven coroutines, each holding a copy of the scope for the
    connection's whole life: about 4 KB per idle connection (bench/idle.py). Channels'
    ``SessionMiddleware`` also wrapped ``send`` to save modified sessions, which cost every
    outgoing frame a lazy-object lookup and two session checks (about 15 % of the server's CPU per
    fan-out delivery, bench/fanout.py); a WebSocket never writes the session.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        # This frame lives as long as the connection, so it keeps nothing it no longer needs: the
        # token, its parse and the lookup's result stay in _identified's frame, which ends here,
        # and neither scope (the inner application has its own: URLRouter copies it). About 840
        # bytes per idle connection (bench/heap.py).
        application = self.inner(await self._identified(scope), receive, send)
        del scope
        return await application

    @staticmethod
    async def _identified(scope: dict) -> dict:
        """A copy of ``scope`` with ``cookies``, ``session``, ``user`` and the token's outcome."""
        cookies = {}
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin1"))
                break
        session = import_module(settings.SESSION_ENGINE).SessionStore(cookies.get(settings.SESSION_COOKIE_NAME))
        scope = dict(scope, cookies=cookies, session=session)
        raw_token = token_from_scope(scope)
        if raw_token is not None:
            try:
                result = await authenticate_token(raw_token)
            except TokenRefused as exc:
                scope["user"], scope["auth_error"] = AnonymousUser(), str(exc)
            else:
                scope["user"], scope["auth_expires_at"] = result.user, result.expires_at
        elif session.session_key is not None:
            scope["user"] = await database_call(auth.get_user, SimpleNamespace(session=session))
        else:
            scope["user"] = AnonymousUser()  # no credentials: nothing to look up
        return scope


def RealtimeAuthMiddlewareStack(inner):
    """
    The per-address connection budget first (over it, ``inner`` is called unauthenticated to
    refuse it: realtime/consumer/connect_rate.py), then ``RealtimeAuthMiddleware``.
    """
    return ConnectRateMiddleware(RealtimeAuthMiddleware(inner), refuse=inner)

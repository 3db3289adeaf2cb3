"""
WebSocket authentication: simplejwt access tokens from the query string, the Authorization
header (or seed 004's ``websocket`` header), or a first ``auth`` frame; the Django session
cookie through Channels' AuthMiddleware.

Token checks are simplejwt's own (``JWTAuthentication.get_validated_token`` and ``get_user``):
no JWT is decoded here. A refused token never becomes a 403 at the handshake, because browsers
hide why a handshake failed: the consumer accepts, sends an ``error`` frame with the reason,
then closes with 4401 (Daphne drops close reasons, docs/platform-facts.md).
"""

from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
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


class TokenAuthMiddleware(BaseMiddleware):
    """
    Put a token's user in ``scope["user"]`` (over any session user) and its expiry in
    ``scope["auth_expires_at"]``; on a refused token, put the reason in ``scope["auth_error"]``.
    """

    async def __call__(self, scope, receive, send):
        raw_token = token_from_scope(scope)
        if raw_token is not None:
            scope = dict(scope)
            try:
                result = await authenticate_token(raw_token)
            except TokenRefused as exc:
                scope["auth_error"] = str(exc)
            else:
                scope["user"] = result.user
                scope["auth_expires_at"] = result.expires_at
        return await super().__call__(scope, receive, send)


class SessionReadMiddleware(BaseMiddleware):
    """
    Put the Django session named by the session cookie in ``scope["session"]``, read-only.

    Channels' ``SessionMiddleware`` wraps ``send`` to save modified sessions, which costs every
    outgoing frame a lazy-object lookup and two session checks (about 15 % of the server's CPU per
    fan-out delivery, measured with bench/fanout.py). A WebSocket never writes the session: it
    only reads who is logged in, so ``send`` is passed through untouched. The store loads lazily,
    on first access, inside ``SessionAuthMiddleware``'s worker-thread call.
    """

    async def __call__(self, scope, receive, send):
        store = import_module(settings.SESSION_ENGINE).SessionStore
        session_key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        return await super().__call__(dict(scope, session=store(session_key)), receive, send)


class SessionAuthMiddleware(AuthMiddleware):
    """
    Channels' ``AuthMiddleware`` with the session user loaded through ``database_call``
    (realtime/db.py), by Django's own ``auth.get_user`` (session key, backend, session hash).
    """

    async def resolve_scope(self, scope):
        if scope["session"].session_key is None:
            # No session cookie (token clients): nobody to look up, so no worker-thread call.
            scope["user"]._wrapped = AnonymousUser()
            return
        scope["user"]._wrapped = await database_call(auth.get_user, SimpleNamespace(session=scope["session"]))


def RealtimeAuthMiddlewareStack(inner):
    """
    The per-address connection budget first (over it, ``inner`` is called unauthenticated to
    refuse it: realtime/consumer/connect_rate.py), then cookies, session, session user, and token auth on
    top (a token wins over a session).
    """
    authenticated = CookieMiddleware(SessionReadMiddleware(SessionAuthMiddleware(TokenAuthMiddleware(inner))))
    return ConnectRateMiddleware(authenticated, refuse=inner)

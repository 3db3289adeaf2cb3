"""
Re-checking open connections' credentials (every ``REALTIME["SESSION_RECHECK_S"]``).

Channels resolves the user once per connection, and access tokens cannot be revoked
(docs/platform-facts.md), so an open socket would outlive a deactivation or a logout. Each process
periodically re-checks its own connections and closes with 4401, after an error frame saying why:

- every connection whose user was deactivated or deleted;
- every session-authenticated connection whose session ended (logout, expiry, password change:
  Django's own ``auth.get_user`` answers, session hash included).

Token connections also end at their token's expiry (the consumer's timer), so a user whose
refresh token was blacklisted or rotated away loses them within ``ACCESS_TOKEN_LIFETIME``.
"""

from importlib import import_module
from types import SimpleNamespace
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model

from realtime.db import database_call
from realtime.errors import CloseCode, Unauthorized

if TYPE_CHECKING:
    from .process import ServerProcess


def _revoked(user_ids: set[int], session_keys: set[str]) -> tuple[set[int], set[str]]:
    active = set(get_user_model().objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = {key for key in session_keys if not auth.get_user(SimpleNamespace(session=store(key))).is_authenticated}
    return user_ids - active, ended


async def close_revoked_sessions(process: "ServerProcess") -> None:
    """Close (4401) ``process``'s connections whose user is inactive or gone, or whose session ended."""
    sessions = [conn for conn in process.connections.values() if conn.user is not None]
    if not sessions:
        return
    inactive, ended = await database_call(
        _revoked, {conn.user.pk for conn in sessions}, {conn.session_key for conn in sessions if conn.session_key}
    )
    for conn in sessions:
        if conn.user.pk in inactive:
            await conn.refuse(Unauthorized("User is inactive"), CloseCode.UNAUTHORIZED)
        elif conn.session_key in ended:
            await conn.refuse(Unauthorized("Session ended; log in again"), CloseCode.UNAUTHORIZED)

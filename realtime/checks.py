"""System checks for the real-time core (``manage.py check``) and the server's startup notice."""

import difflib
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from .conf import DEFAULTS, realtime_settings

logger = logging.getLogger("realtime")


def uses_in_memory_layer() -> bool:
    """True when the default channel layer is Channels' in-memory one (no REDIS_URL, no REDIS_SENTINELS)."""
    return settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "").endswith("InMemoryChannelLayer")


def log_channel_layer_mode() -> None:
    """Say at server startup when events cannot cross processes (called by config/asgi.py)."""
    if uses_in_memory_layer():
        logger.warning(
            "Neither REDIS_URL nor REDIS_SENTINELS is set: using the in-memory channel layer, single-process only "
            "(events do not cross processes)."
        )


@register()
def check_channel_layer(app_configs, **kwargs):
    """realtime.W001: the in-memory channel layer with DEBUG off cannot serve several processes."""
    if not settings.DEBUG and uses_in_memory_layer():
        return [
            Warning(
                "The in-memory channel layer serves one process only.",
                hint="Set REDIS_URL (or REDIS_SENTINELS and REDIS_SENTINEL_MASTER) so that several Daphne "
                "processes share groups.",
                id="realtime.W001",
            )
        ]
    return []


@register()
def check_realtime_keys(app_configs, **kwargs):
    """realtime.E001: a key of ``settings.REALTIME`` the core does not know; a typo would otherwise be ignored."""
    errors = []
    for name in sorted(set(getattr(settings, "REALTIME", {})) - set(DEFAULTS)):
        close = difflib.get_close_matches(name, DEFAULTS, n=1)
        errors.append(
            Error(
                f"Unknown REALTIME setting {name!r}.",
                hint=f"Did you mean {close[0]!r}?"
                if close
                else "realtime/conf.py DEFAULTS lists the settings there are.",
                id="realtime.E001",
            )
        )
    return errors


def _is_origin(value) -> bool:
    """Whether ``value`` is an origin as a browser sends it: ``http(s)://host[:port]``, nothing after."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https") and bool(parts.hostname) and not (parts.path or parts.query or parts.fragment)
    )


@register()
def check_allowed_origins(app_configs, **kwargs):
    """
    realtime.E004: an entry of ``REALTIME["ALLOWED_ORIGINS"]`` (``WEBSOCKET_ALLOWED_ORIGINS``) that
    is not a full origin: a bare host would allow every scheme and port, and a path or a query is
    no part of an origin (a browser's Origin has neither), so it is a mistake to point out.
    """
    return [
        Error(
            f"REALTIME['ALLOWED_ORIGINS'] entry {origin!r} is not an origin.",
            hint="Write scheme://host[:port], e.g. https://app.example.com (WEBSOCKET_ALLOWED_ORIGINS).",
            id="realtime.E004",
        )
        for origin in realtime_settings.ALLOWED_ORIGINS
        if not _is_origin(origin)
    ]

"""System checks for the real-time core (``manage.py check``) and the server's startup notice."""

import difflib
import logging

from django.conf import settings
from django.core.checks import Error, Warning, register

from .conf import DEFAULTS

logger = logging.getLogger("realtime")


def uses_in_memory_layer() -> bool:
    """True when the default channel layer is Channels' in-memory one (no ``REDIS_URL``)."""
    return settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "").endswith("InMemoryChannelLayer")


def log_channel_layer_mode() -> None:
    """Say at server startup when events cannot cross processes (called by config/asgi.py)."""
    if uses_in_memory_layer():
        logger.warning(
            "REDIS_URL is not set: using the in-memory channel layer, single-process only "
            "(events do not cross processes)."
        )


@register()
def check_channel_layer(app_configs, **kwargs):
    """realtime.W001: the in-memory channel layer with DEBUG off cannot serve several processes."""
    if not settings.DEBUG and uses_in_memory_layer():
        return [
            Warning(
                "The in-memory channel layer serves one process only.",
                hint="Set REDIS_URL so that several Daphne processes share groups.",
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

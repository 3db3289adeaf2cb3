"""System checks for the real-time core (``manage.py check``) and the server's startup notice."""

import logging

from django.conf import settings
from django.core.checks import Warning, register

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

"""System checks for the real-time core (``manage.py check``)."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def check_channel_layer(app_configs, **kwargs):
    """realtime.W001: the in-memory channel layer with DEBUG off cannot serve several processes."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if not settings.DEBUG and backend.endswith("InMemoryChannelLayer"):
        return [
            Warning(
                "The in-memory channel layer serves one process only.",
                hint="Set REDIS_URL so that several Daphne processes share groups.",
                id="realtime.W001",
            )
        ]
    return []

import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("realtime")


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time core"

    def ready(self):
        from . import checks  # noqa: F401  registers system checks

        backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
        if backend.endswith("InMemoryChannelLayer"):
            logger.info(
                "REDIS_URL is not set: using the in-memory channel layer, single-process only "
                "(events do not cross processes)."
            )

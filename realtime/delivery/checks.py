"""System check ``realtime.E003``: channels-redis at a version the batched layer was not written for."""

from django.conf import settings
from django.core.checks import Error

from realtime.versions import untested

from .layers import TESTED, RedisChannelLayer


def check_layer_version(app_configs, **kwargs):
    """
    realtime.E003: ``realtime.delivery.layers.RedisChannelLayer`` reads channels_redis's private
    storage; another version than ``TESTED`` may store groups and messages differently.
    """
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if backend != f"{RedisChannelLayer.__module__}.{RedisChannelLayer.__name__}":
        return []
    return [
        Error(
            f"channels-redis {found} is outside the versions the batched channel layer was written for "
            f"({requirement.specifier}).",
            hint=f"Pin channels-redis=={requirement.pinned} (requirements.txt).",
            id="realtime.E003",
        )
        for requirement, found in untested(TESTED)
    ]

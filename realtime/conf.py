"""
The real-time core's settings: ``settings.REALTIME`` merged over ``DEFAULTS``.

Read at call time (``realtime_settings.AUTH_TIMEOUT_S``), never at import time; the cache is
dropped on Django's ``setting_changed`` so tests can override values.
"""

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS = {
    # First-frame auth window for anonymous connections; on expiry, close 4408 (docs/protocol.md).
    "AUTH_TIMEOUT_S": 10,
    # Advertised in `welcome`; seed 003 pinged every 25 s, under the 60 s idle cut of common proxies.
    "HEARTBEAT_S": 25,
    # Largest text frame the application accepts (seed 003's 1 MB cap); over it: error, close 1009.
    "MAX_FRAME_BYTES": 1_048_576,
    # Longest `ref` echoed back; longer ones are a bad_frame (a ref is a correlation id, not data).
    "MAX_REF_CHARS": 64,
    # Hubs re-add their groups this often; must stay well under the layer's group_expiry (300 s).
    "HUB_REFRESH_S": 60,
    # Pause after the hub loses the channel layer (Redis away) before it reads again.
    "HUB_RETRY_S": 1.0,
}


class RealtimeSettings:
    """Attribute access to the merged ``REALTIME`` settings; raise AttributeError on unknown names."""

    def __init__(self):
        self._cache = None

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown REALTIME setting {name!r}")
        if self._cache is None:
            self._cache = {**DEFAULTS, **getattr(settings, "REALTIME", {})}
        return self._cache[name]

    def reload(self):
        self._cache = None


realtime_settings = RealtimeSettings()


def _reload(*, setting, **kwargs):
    if setting == "REALTIME":
        realtime_settings.reload()


setting_changed.connect(_reload, dispatch_uid="realtime.conf.reload")

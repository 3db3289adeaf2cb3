"""
The WebSocket endpoint ``/ws/``: what ``config/asgi.py`` mounts.

- ``security``: the Origin check (``ALLOWED_HOSTS``, ``REALTIME["ALLOWED_ORIGINS"]``) before anything else;
- ``auth`` and ``connect_rate``: the session cookie or ``?token=``, and the per-IP connection budget;
- ``consumer``: ``RealtimeConsumer``, split by job into ``gate`` (frame size, rate, parse),
  ``session`` (authentication, token expiry and refresh, single sign-on) and ``dispatch`` (handler,
  reply, events);
- ``limits``: the per-connection frame-rate buckets.
"""

from .auth import RealtimeAuthMiddlewareStack
from .consumer import RealtimeConsumer
from .routing import websocket_urlpatterns
from .security import AllowedHostsBrowserOriginValidator
from .session import SingleSession

__all__ = [
    "AllowedHostsBrowserOriginValidator",
    "RealtimeAuthMiddlewareStack",
    "RealtimeConsumer",
    "SingleSession",
    "websocket_urlpatterns",
]

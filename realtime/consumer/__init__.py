"""
The WebSocket endpoint ``/ws/``: what ``config/asgi.py`` mounts.

- ``security``: the Origin check (``ALLOWED_HOSTS``, ``REALTIME["ALLOWED_ORIGINS"]``) before anything else;
- ``auth`` and ``connect_rate``: the session cookie or ``?token=``, and the per-IP connection budget
  (``authenticate_token``, ``token_from_scope`` and ``over_connect_budget`` serve endpoints outside
  Channels too: Socket.IO's);
- ``consumer``: ``RealtimeConsumer``, split by job into ``gate`` (frame size, rate, parse),
  ``session`` (authentication, token expiry and refresh, single sign-on) and ``dispatch`` (handler,
  reply, events);
- ``limits``: the per-connection frame-rate buckets (``FrameRateLimiter``, used by Socket.IO's endpoint too);
- ``routing``: ``/ws/``, and Channels' ``ProtocolTypeRouter`` and ``URLRouter`` without a frame held
  per connection.
"""

from .auth import RealtimeAuthMiddlewareStack, TokenRefused, authenticate_token, token_from_scope
from .connect_rate import over_connect_budget
from .consumer import RealtimeConsumer
from .limits import FrameRateLimiter
from .routing import ProtocolTypeRouter, URLRouter, websocket_urlpatterns
from .security import AllowedHostsBrowserOriginValidator
from .session import SingleSession

__all__ = [
    "AllowedHostsBrowserOriginValidator",
    "FrameRateLimiter",
    "ProtocolTypeRouter",
    "RealtimeAuthMiddlewareStack",
    "RealtimeConsumer",
    "SingleSession",
    "TokenRefused",
    "URLRouter",
    "authenticate_token",
    "over_connect_budget",
    "token_from_scope",
    "websocket_urlpatterns",
]

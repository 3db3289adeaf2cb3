"""
Origin checking for WebSocket handshakes (cross-site WebSocket hijacking defence).

Channels' ``AllowedHostsOriginValidator`` refuses a handshake without an Origin header. Every
browser sends Origin on a WebSocket handshake (RFC 6455 section 4.1, Fetch), so a handshake
without one cannot be a cross-site browser request: it is a command-line, mobile or worker
client, which must still authenticate. Such handshakes are let through; a foreign Origin, or
the opaque ``null`` Origin of sandboxed pages, is still refused with HTTP 403.
"""

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """``OriginValidator`` that lets a handshake without an Origin header through."""

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def AllowedHostsBrowserOriginValidator(application):
    """Validate Origin against ``settings.ALLOWED_HOSTS``; no Origin passes (see module docstring)."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed_hosts)

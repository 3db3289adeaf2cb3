"""
Origin checking for WebSocket handshakes (cross-site WebSocket hijacking defence).

A browser sends ``Origin`` on every WebSocket handshake (RFC 6455 section 4.1, Fetch), and it
sends the target host's cookies with it whatever page opened the socket; so a handshake is let
through when its Origin is

- a host of ``settings.ALLOWED_HOSTS`` (any scheme and port): the same-site pages, as before;
- or one of ``REALTIME["ALLOWED_ORIGINS"]``: full origins ``scheme://host[:port]`` of front
  ends served elsewhere (env ``WEBSOCKET_ALLOWED_ORIGINS``; seed 004's Vue front end had its own
  origin). Scheme, host and port must all match (Channels' ``OriginValidator`` rules: no port
  means the scheme's default).

Channels' ``AllowedHostsOriginValidator`` refuses a handshake without an Origin header. Such a
handshake cannot be a cross-site browser request: it is a command-line, mobile or worker client,
which must still authenticate. It is let through; a foreign Origin, or the opaque ``null``
Origin of sandboxed pages, is refused with HTTP 403. Both lists are read per handshake, so a
settings change (tests) applies at once.
"""

from channels.security.websocket import OriginValidator
from django.conf import settings

from realtime.conf import realtime_settings

# With DEBUG on and no ALLOWED_HOSTS, Django itself serves these (its runserver rule).
DEBUG_HOSTS = ["localhost", "127.0.0.1", "[::1]"]


def allowed_origin_patterns() -> list[str]:
    """
    The patterns a handshake's Origin may match: ``ALLOWED_HOSTS`` (``DEBUG_HOSTS`` with DEBUG on
    and none set) followed by ``REALTIME["ALLOWED_ORIGINS"]``.
    """
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = DEBUG_HOSTS
    return hosts + list(realtime_settings.ALLOWED_ORIGINS)


class BrowserOriginValidator(OriginValidator):
    """
    ``OriginValidator`` over ``allowed_origin_patterns()``, read per handshake, that lets a
    handshake without an Origin header through (module docstring).
    """

    def __init__(self, application):
        super().__init__(application, allowed_origins=())

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin):
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern) for pattern in allowed_origin_patterns()
        )


def AllowedHostsBrowserOriginValidator(application):
    """The Origin check in front of every WebSocket endpoint (config/asgi.py): ``BrowserOriginValidator``."""
    return BrowserOriginValidator(application)

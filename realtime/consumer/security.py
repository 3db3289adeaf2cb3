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

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
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

    # An ASGI 3 application (asgiref's guarantee_single_callable): __call__ returns a coroutine.
    _asgi_single_callable = True

    def __init__(self, application):
        super().__init__(application, allowed_origins=())

    def __call__(self, scope, receive, send):
        """
        Channels' ``OriginValidator.__call__``, except that it hands over the application's (or
        the denier's) coroutine instead of awaiting it: Channels' coroutine stayed suspended for
        the connection's whole life, with the parsed Origin (about 300 bytes, bench/heap.py).
        """
        if scope["type"] != "websocket":
            raise ValueError("You cannot use OriginValidator on a non-WebSocket connection")
        parsed_origin = None
        for header_name, header_value in scope.get("headers", []):
            if header_name == b"origin":
                try:
                    parsed_origin = urlparse(header_value.decode("latin1"))
                except UnicodeDecodeError:
                    pass
        if self.valid_origin(parsed_origin):
            return self.application(scope, receive, send)
        return WebsocketDenier()(scope, receive, send)

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin):
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern) for pattern in allowed_origin_patterns()
        )


def AllowedHostsBrowserOriginValidator(application):
    """The Origin check in front of every WebSocket endpoint (config/asgi.py): ``BrowserOriginValidator``."""
    return BrowserOriginValidator(application)

"""
Let Daphne send the RFC 6455 close codes this protocol uses (docs/protocol.md, "Close codes").

Daphne closes a socket through Autobahn's ``sendClose``, which accepts only 1000 and 3000-4999
and raises on anything else; Daphne then drops the connection, so a consumer's close with 1001
(going away), 1009 (message too big) or 1013 (try again later) reached clients as 1011/1006
(measured here with Daphne 4.2.3, Autobahn 25). RFC 6455 section 7.4.1 defines those codes for
endpoints to send, and the IANA registry adds 1012-1014. ``allow_rfc6455_close_codes`` makes
Daphne's ``serverClose`` write them with Autobahn's lower-level ``sendCloseFrame`` (the same
frame, without the over-strict check); every other code still goes through ``sendClose``.

``free_closed_connections`` removes two reference cycles each WebSocket connection left behind,
so that its objects are freed when it ends instead of waiting for a full garbage collection
(``gc.DEBUG_SAVEALL`` in a server under ``make bench-soak``: about 80 objects per connection):
- Autobahn resolves the protocol's ``is_closed`` Deferred with the protocol itself;
- the upgraded HTTP request and its Twisted ``HTTPChannel`` point at each other (and the channel
  at the transport), though Daphne is done with both once it hands the transport over.
"""

import sys

# Codes an endpoint may send (RFC 6455 7.4.1, IANA): never 1005, 1006 or 1015 (reserved).
SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 1014})


def allow_rfc6455_close_codes() -> None:
    """Patch Daphne's ``WebSocketProtocol.serverClose`` when running under Daphne; otherwise nothing."""
    if "daphne.server" not in sys.modules:
        return
    from daphne.ws_protocol import WebSocketProtocol

    def serverClose(self, code=None):  # noqa: N802 (Daphne's name)
        code = 1000 if code is None else code
        if code in SENDABLE_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            self.sendClose(code=code)

    WebSocketProtocol.serverClose = serverClose


def free_closed_connections() -> None:
    """Patch Daphne's ``WebRequest.process`` and ``WebSocketProtocol.connectionLost`` when running
    under Daphne; otherwise nothing."""
    if "daphne.server" not in sys.modules:
        return
    import txaio
    from daphne.http_protocol import WebRequest
    from daphne.ws_protocol import WebSocketProtocol

    original_process = WebRequest.process
    original_connection_lost = WebSocketProtocol.connectionLost

    def process(self):
        original_process(self)
        # Daphne sets the request's transport to None when it hands it to a WebSocket protocol.
        if self.transport is None and self.channel is not None:
            if self in self.channel.requests:
                self.channel.requests.remove(self)
            self.channel = None

    def connectionLost(self, reason):  # noqa: N802 (Twisted's name)
        original_connection_lost(self, reason)
        # Still a resolved Deferred for anyone who looks, without the protocol in it.
        if txaio.is_called(self.is_closed):
            self.is_closed = txaio.create_future_success(None)

    WebRequest.process = process
    WebSocketProtocol.connectionLost = connectionLost

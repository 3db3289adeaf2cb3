"""
Let Daphne send the RFC 6455 close codes this protocol uses (docs/protocol.md, "Close codes").

Daphne closes a socket through Autobahn's ``sendClose``, which accepts only 1000 and 3000-4999
and raises on anything else; Daphne then drops the connection, so a consumer's close with 1001
(going away), 1009 (message too big) or 1013 (try again later) reached clients as 1011/1006
(measured here with Daphne 4.2.3, Autobahn 25). RFC 6455 section 7.4.1 defines those codes for
endpoints to send, and the IANA registry adds 1012-1014. ``allow_rfc6455_close_codes`` makes
Daphne's ``serverClose`` write them with Autobahn's lower-level ``sendCloseFrame`` (the same
frame, without the over-strict check); every other code still goes through ``sendClose``.
"""

# Codes an endpoint may send (RFC 6455 7.4.1, IANA): never 1005, 1006 or 1015 (reserved).
SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 1014})


def allow_rfc6455_close_codes() -> None:
    """
    Patch Daphne's ``WebSocketProtocol.serverClose`` (daphne/ws_protocol.py, Daphne 4.2.3), which
    closes through Autobahn's ``sendClose`` (autobahn/websocket/protocol.py, Autobahn 25 and 26):
    that refuses 1001, 1009 and 1013. Drop it when Daphne or Autobahn accept RFC 6455's codes.
    """
    from daphne.ws_protocol import WebSocketProtocol

    def serverClose(self, code=None):  # noqa: N802 (Daphne's name)
        code = 1000 if code is None else code
        if code in SENDABLE_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            self.sendClose(code=code)

    WebSocketProtocol.serverClose = serverClose

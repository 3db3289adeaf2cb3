"""
Free each closed connection at once: ``free_closed_connections`` removes two reference cycles
that each WebSocket connection left behind, so that its objects are freed when it ends instead
of waiting for a full garbage collection
(``gc.DEBUG_SAVEALL`` in a server under ``make bench-soak``: about 80 objects per connection):
- Autobahn resolves the protocol's ``is_closed`` Deferred with the protocol itself;
- the upgraded HTTP request and its Twisted ``HTTPChannel`` point at each other (and the channel
  at the transport), though Daphne is done with both once it hands the transport over.
"""


def free_closed_connections() -> None:
    """
    Patch Daphne's ``WebRequest.process`` (daphne/http_protocol.py, Daphne 4.2.3: the upgraded
    request and its ``HTTPChannel`` keep pointing at each other) and
    ``WebSocketProtocol.connectionLost`` (daphne/ws_protocol.py; Autobahn 25 and 26 resolve
    ``is_closed`` with the protocol itself, autobahn/websocket/protocol.py). Drop it when a
    closed connection's objects are freed without it (``test_gc_pauses``, ``make bench-soak``).
    """
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

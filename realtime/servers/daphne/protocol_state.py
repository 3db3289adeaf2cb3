"""
What each open WebSocket's Daphne protocol keeps, trimmed to what it uses (issue 25, memory).

Measured with ``make bench-heap`` (tracemalloc, 1,000 idle connections), three things made up about
5 KB of an idle connection's ~30 KB, all of them the same for every connection or used only
during the handshake:

- **The factory's options, copied onto each protocol.** ``WebSocketProtocol._connectionMade``
  (autobahn/websocket/protocol.py, Autobahn 25 and 26) sets each of the 29 ``CONFIG_ATTRS`` that
  the protocol does not have on the instance, from the factory. With them the instance dict holds
  about 100 attributes and grows to 256 slots (3.3 KB); without them, about 70 (128 slots, 1.6
  KB). ``options_on_the_class`` builds each protocol from a subclass of Daphne's that has the
  factory's options as class attributes, so Autobahn finds them there and copies nothing. The
  subclass is made again when the factory's options change, so a protocol keeps the options of
  the moment it connected, as the copy did.
- **The handshake.** After the opening handshake the protocol still holds the raw request and
  response, the parsed request line, headers and query (the access token in four copies), and
  Daphne's fired ``application_deferred``: about 1.5 KB that nothing reads once the connection
  is open (Daphne's log lines read ``request.path``, which stays). ``release_handshake`` sets
  them to None when the connection opens.
- **An empty ``collections.deque``** (760 bytes) per protocol for Autobahn's ``send_queue``,
  which only ``sendData(sync=True)`` and ``chopsize`` writes use; ``SendQueue``, a list with the
  deque's ``popleft``, costs 72 bytes.
"""

# Set to None once the connection is open (Autobahn's and Daphne's handshake state).
HANDSHAKE_ATTRIBUTES = (
    "http_request_data",
    "http_response_data",
    "http_status_line",
    "http_headers",
    "http_request_uri",
    "http_request_params",
    "websocket_protocols",
    "websocket_extensions",
    "_wskey",
    "application_deferred",
)


class SendQueue(list):
    """Autobahn's ``send_queue``: the ``append``, ``popleft`` and ``len`` of a deque, in a list."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


def _options_class(factory):
    """
    The subclass of ``factory``'s protocol class carrying ``factory``'s options as class
    attributes; made again when they have changed since the last connection.
    """
    base = type(factory).protocol
    options = tuple(getattr(factory, name) for name in base.CONFIG_ATTRS)
    made = factory.__dict__.get("_realtime_options_class")
    if made is not None and made[0] == options:
        return made[1]
    namespace = {"__module__": base.__module__, "__qualname__": base.__qualname__}
    for name, value in zip(base.CONFIG_ATTRS, options, strict=True):
        # A function (perMessageCompressionAccept) is the option itself, not a method.
        namespace[name] = staticmethod(value) if hasattr(type(value), "__get__") else value
    cls = type(base.__name__, (base,), namespace)
    factory._realtime_options_class = (options, cls)
    return cls


def trim_protocol_state() -> None:
    """
    Patch Daphne's ``WebSocketFactory.buildProtocol`` and ``WebSocketProtocol._connectionMade``
    and ``onOpen`` (daphne/ws_protocol.py, Daphne 4.2.3, over autobahn/websocket/protocol.py,
    Autobahn 25 and 26) as the module docstring says. Drop each part when Autobahn stops copying
    its options per connection or keeping the handshake (``make bench-heap``).
    """
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    original_build = WebSocketFactory.buildProtocol
    original_connection_made = WebSocketProtocol._connectionMade
    original_on_open = WebSocketProtocol.onOpen

    def buildProtocol(self, addr):  # noqa: N802 (Twisted's name)
        self.protocol = _options_class(self)
        return original_build(self, addr)

    def _connectionMade(self):  # noqa: N802 (Autobahn's name)
        original_connection_made(self)
        self.send_queue = SendQueue()

    def onOpen(self):  # noqa: N802 (Daphne's name)
        original_on_open(self)
        for name in HANDSHAKE_ATTRIBUTES:
            setattr(self, name, None)
        # The same dicts, held by the request Daphne keeps for its log lines (which read its path).
        self.request.headers = self.request.params = None

    WebSocketFactory.buildProtocol = buildProtocol
    WebSocketProtocol._connectionMade = _connectionMade
    WebSocketProtocol.onOpen = onOpen

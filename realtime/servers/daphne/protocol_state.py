"""
What each open WebSocket's Daphne protocol keeps, trimmed to what it uses (issue 25, memory).

Measured with ``make bench-heap`` (tracemalloc, idle authenticated connections), the protocol
object was about 6 KB of an idle connection's ~27 KB of Python heap, most of it the same for
every connection or used only during the handshake:

- **The factory's options, copied onto each protocol.** ``WebSocketProtocol._connectionMade``
  (autobahn/websocket/protocol.py, Autobahn 25 and 26) sets each of the 29 ``CONFIG_ATTRS`` that
  the protocol does not have on the instance, from the factory: with them the instance dict held
  about 100 attributes, a 256-slot table (3.3 KB). Each protocol is built instead from a subclass
  of Daphne's that has the factory's options as class attributes (``_options_class``), so
  Autobahn finds them there and copies nothing (but ``tcpNoDelay``: ``PER_INSTANCE_OPTIONS``).
  The subclass is made again when the factory's options change, so a protocol keeps the options
  of the moment it connected, as the copy did.
- **The handshake.** Once open, the protocol still held the raw request and response, the parsed
  request line, headers and query (the access token in four copies) and Daphne's fired
  ``application_deferred``: about 1.5 KB that nothing reads after the handshake (Daphne's log
  lines read ``request.path``, which stays). They are dropped when the connection opens; reading
  one gives None.
- **Flags at their initial values.** Of the ~70 attributes left, about 30 are flags and timers
  Autobahn and Daphne set to False, None or 0 at connection and change only when something
  happens (a close, a ping): ``INITIAL`` holds them as class attributes of the same subclass, and
  once open the protocol's dict is rebuilt without the ones still at those values (a dict does
  not shrink when keys are deleted): a 64-slot table of ~830 bytes instead of 128 slots and 1.6
  KB. A flag set later goes into the instance dict as before.
- **An empty ``collections.deque``** (760 bytes) per protocol for Autobahn's ``send_queue``,
  which only ``sendData(sync=True)`` and ``chopsize`` writes use: ``SendQueue``, a list with the
  deque's ``popleft``, costs 72 bytes.
"""

# Read only during the opening handshake (Autobahn's and Daphne's): dropped once it is done.
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

# Left for Autobahn to copy onto each protocol. Its Twisted connectionMade passes tcpNoDelay to
# the socket (TCP_NODELAY) before _connectionMade copies the options, so under Daphne it has
# always failed (an AttributeError Autobahn swallows) and Nagle's algorithm stayed on; found on
# the class it would apply, a change to the connections' TCP behaviour that is not this patch's.
PER_INSTANCE_OPTIONS = ("tcpNoDelay",)

# What Autobahn's _connectionMade and succeedHandshake and Daphne's onConnect set these to, until
# something happens. None of them is looked up with hasattr (Daphne's hasattr(self,
# "handshake_deferred") and hasattr(self, "application_queue") are not here).
INITIAL = {
    **dict.fromkeys(HANDSHAKE_ATTRIBUTES),
    **dict.fromkeys(
        (
            "_perMessageCompress",
            "trackedTimings",
            "wasNotCleanReason",
            "localCloseCode",
            "localCloseReason",
            "remoteCloseCode",
            "remoteCloseReason",
            "openHandshakeTimeoutCall",
            "closeHandshakeTimeoutCall",
            "autoPingTimeoutCall",
            "autoPingPending",
            "autoPingPendingCall",
            "autoPingPendingSent",
            "current_frame",
            "websocket_protocol_in_use",
            "protocol_to_accept",
        )
    ),
    **dict.fromkeys(
        (
            "wasMaxFramePayloadSizeExceeded",
            "wasMaxMessagePayloadSizeExceeded",
            "closedByMe",
            "failedByMe",
            "droppedByMe",
            "wasClean",
            "wasServerConnectionDropTimeout",
            "wasOpenHandshakeTimeout",
            "wasCloseHandshakeTimeout",
            "wasServingFlashSocketPolicyFile",
            "triggered",
            "inside_message",
        ),
        False,
    ),
    "autoPingPendingSeq": 0,
}


class SendQueue(list):
    """Autobahn's ``send_queue``: the ``append``, ``popleft`` and ``len`` of a deque, in a list."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


def _options_class(factory):
    """
    The subclass of ``factory``'s protocol class carrying ``factory``'s options and ``INITIAL``
    as class attributes; made again when the options have changed since the last connection.
    """
    base = type(factory).protocol
    options = tuple(getattr(factory, name) for name in base.CONFIG_ATTRS)
    made = factory.__dict__.get("_realtime_options_class")
    if made is not None and made[0] == options:
        return made[1]
    namespace = {"__module__": base.__module__, "__qualname__": base.__qualname__, "_initial_on_class": True, **INITIAL}
    for name, value in zip(base.CONFIG_ATTRS, options, strict=True):
        if name in PER_INSTANCE_OPTIONS:
            continue
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
        # The same dicts as http_headers and http_request_params, held by the request Daphne
        # keeps for its log lines (which read its path).
        self.request.headers = self.request.params = None
        if getattr(self, "_initial_on_class", False):  # built by _options_class: INITIAL is on the class
            self.__dict__ = {
                name: value
                for name, value in self.__dict__.items()
                if name not in HANDSHAKE_ATTRIBUTES and (name not in INITIAL or value is not INITIAL[name])
            }

    WebSocketFactory.buildProtocol = buildProtocol
    WebSocketProtocol._connectionMade = _connectionMade
    WebSocketProtocol.onOpen = onOpen

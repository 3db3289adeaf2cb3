"""
The cost of writing a frame under Daphne (issue 7): fan-out at Daphne's floor, and below it.

Profiled under ``make bench`` (1,000 members of one conversation, 20 messages/s, Daphne pinned to
one core), each frame written through ASGI cost, beyond the ``send`` syscall itself:

- Twisted's buffered write: ``FileDescriptor.write`` only appends to a buffer and registers the
  socket for writability; the next loop turn sends it and unregisters it. Two ``epoll_ctl`` calls
  and one more callback per frame: 35 % of the main thread, and every loop turn grew so long
  that one connection's ``chat.send`` awaits backed up (ack p50 1.8 s, last-delivery p99 3.9 s);
- Autobahn's ``sendData`` formats the arguments of a debug log line (``click.style`` on three
  values) for every frame, whether or not debug logging is on: 40 % of what was left;
- Daphne's ``handle_reply`` coroutine, its dispatch on the message type, the UTF-8 encode of the
  text and Autobahn's frame header, once per member although every member gets the same bytes.

What this module changes, each guarded so that anything unusual takes Daphne's own path:

1. ``write_eagerly``: the TCP transport of a WebSocket connection tries the socket at once when
   nothing is buffered (asyncio's transports do the same), with Twisted's own ``writeSomeData``
   (EAGAIN is 0 bytes, a dead peer an error). What the kernel does not take, and any write while
   bytes are still buffered, goes through the original ``write``: order is kept, and a client
   that stops reading fills Twisted's buffer as before, which ``send_buffer`` bounds (4413). TLS
   transports and HTTP connections are left alone.
2. ``sendData`` without the debug line, when the frame is written at once (Autobahn's
   ``send_queue`` empty, no ``sync``/``chopsize``); the traffic counters are kept.
3. ``direct_writer(send)``: the hub writes an event's frame, built once per process with
   Autobahn's ``PreparedMessage`` (its API for broadcast), straight to each member's protocol.

Together (``make bench-compare``, same machine, same run): see the README's performance table.
"""

import functools

from realtime.servers.frames import PreparedFrame


class DirectWriter:
    """Writes ``PreparedFrame``s straight to one Daphne WebSocket protocol, with Daphne's checks and ours."""

    __slots__ = ("frame_limit", "protocol")

    def __init__(self, protocol):
        self.protocol = protocol
        # Set from Daphne's options before the handshake, so fixed for the connection's life.
        limits = [size for size in (protocol.maxMessagePayloadSize, protocol.autoFragmentSize) if size > 0]
        self.frame_limit = min(limits, default=float("inf"))

    def write(self, frame: PreparedFrame) -> bool:
        """
        Write ``frame``; return False when it was not written: the connection is not open, or it
        is over ``MAX_SEND_BUFFER_BYTES`` (``send_buffer`` then closes it with 4413).
        Raise Autobahn's ``PayloadExceededError`` for a frame over Daphne's message size limit.
        """
        protocol = self.protocol
        if protocol.state != protocol.STATE_OPEN:
            return False
        buffer = getattr(protocol, "send_buffer", None)
        if buffer is not None and not buffer.admit(frame.size):
            return False
        if protocol._perMessageCompress is None and frame.size <= self.frame_limit:
            protocol.sendPreparedMessage(frame.prepared)
        else:
            # Fragmentation, compression or an oversize frame: Autobahn's own path decides.
            protocol.sendMessage(frame.text.encode("utf-8"), False)
        return True


def direct_writer(send) -> DirectWriter | None:
    """
    Return a ``DirectWriter`` when ``send`` is Daphne's own ASGI send for a WebSocket (the
    ``functools.partial(Server.handle_reply, protocol)`` Daphne gives each application
    instance), else None: under uvicorn, or if a middleware wrapped ``send``, frames go through
    ASGI as usual.
    """
    if not isinstance(send, functools.partial) or len(send.args) != 1:
        return None
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(send.func, "__func__", None) is not Server.handle_reply or not isinstance(
        send.args[0], WebSocketProtocol
    ):
        return None
    return DirectWriter(send.args[0])


def _eager(buffered_write, websocket_protocol):
    """
    Return a ``write(self, data)`` for Twisted's TCP server transports that sends at once when
    the transport carries a ``websocket_protocol`` and nothing is buffered, else calls
    ``buffered_write``. One function on the class, not one per connection: a closure per
    transport cost each connection about 280 bytes, and an attribute Twisted's transports do not
    otherwise have (bench/heap.py).
    """

    def write(self, data: bytes) -> None:
        if (
            data
            and not self.TLS
            and isinstance(self.protocol, websocket_protocol)
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self._tempDataLen
            and not self.dataBuffer
        ):
            sent = self.writeSomeData(data)
            if not isinstance(sent, int):
                # The peer is gone: the buffered path reports it through doWrite as usual.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        buffered_write(self, data)

    return write


def write_eagerly() -> None:
    """
    Patch Twisted's ``tcp.Server.write`` and Autobahn's ``sendData`` as Daphne's
    ``WebSocketProtocol`` has it (points 1 and 2 above): Twisted's ``FileDescriptor.write``
    (twisted/internet/abstract.py, Twisted 26) buffers every write for the next loop turn, and
    Autobahn's ``sendData`` (autobahn/websocket/protocol.py, Autobahn 25 and 26) formats a debug
    line per frame. Only WebSocket connections write eagerly: over TLS (Twisted's TLS wraps the
    TCP transport in a protocol of its own) and for HTTP, writes are Twisted's own. Drop each
    when upstream stops doing it (``make bench``).
    """
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import tcp

    original_send_data = WebSocketProtocol.sendData

    def sendData(self, data, sync=False, chopsize=None):  # noqa: N802 (Autobahn's name)
        if sync or chopsize or self.send_queue or self.logOctets or self.state != self.STATE_OPEN:
            return original_send_data(self, data, sync, chopsize)
        self.transport.write(data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)
        return None

    tcp.Server.write = _eager(tcp.Server.write, WebSocketProtocol)
    WebSocketProtocol.sendData = sendData

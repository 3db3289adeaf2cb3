"""
Bounded per-connection send buffers under Daphne: a client that stops reading is closed, never
holding memory without bound, and never slowing the others (issues 7 and 8).

Daphne hands every outgoing frame to the connection's Twisted transport at once, and the
transport buffers whatever the client has not read, without limit (docs/platform-facts.md: 40 MB for
20,000 x 2 KB frames to a client that never read). Writes never block, so fan-out to the other
members is not delayed; only memory is at stake.

Twisted's public flow control tells a registered streaming producer when the transport's buffer
passes its ``bufferSize`` (64 KiB: ``pauseProducing``) and when it drains (``resumeProducing``).
``bound_send_buffers`` registers a ``SendBuffer`` on each WebSocket transport and counts the
bytes Daphne writes while paused. Past ``REALTIME["MAX_SEND_BUFFER_BYTES"]``:

1. the connection is closed with 4413 (the close frame queues behind what the client has not
   read: a client that starts reading again gets everything, then the close, and resumes with
   ``chat.join {after_seq}``); frames after that are not written;
2. if the client has not read it all within ``REALTIME["SLOW_CLIENT_GRACE_S"]``, the TCP
   connection is aborted, which frees the buffer (the client sees 1006 and resumes likewise).

The frames written while paused are counted as failed deliveries (stats and
``switchboard_ws_delivery_failures``), and each such close in ``switchboard_ws_slow_client_closes``.
Nothing is lost for good: every chat message is in the database, every task in its snapshot.
"""

import logging
import weakref

from realtime import metrics
from realtime.conf import realtime_settings
from realtime.errors import CloseCode

logger = logging.getLogger("realtime.connections")


class SendBuffer:
    """
    Twisted streaming producer for one WebSocket transport: knows whether the transport's write
    buffer is over its ``bufferSize`` and how much was written since it went over.
    """

    __slots__ = ("_protocol", "bytes_while_paused", "frames_while_paused", "over_limit", "paused")

    def __init__(self, protocol):
        # Weak: the protocol holds this buffer, and a cycle would keep a closed connection's
        # objects until a full garbage collection (realtime/delivery/gc_pauses.py).
        self._protocol = weakref.ref(protocol)
        self.paused = False
        self.bytes_while_paused = 0
        self.frames_while_paused = 0
        self.over_limit = False

    @property
    def protocol(self):
        """The Daphne ``WebSocketProtocol``, or None once it has been freed."""
        return self._protocol()

    # Twisted's IPushProducer
    def pauseProducing(self):  # noqa: N802
        self.paused = True

    def resumeProducing(self):  # noqa: N802
        self.paused = False
        self.bytes_while_paused = 0
        self.frames_while_paused = 0

    def stopProducing(self):  # noqa: N802
        self.paused = False

    def admit(self, size: int) -> bool:
        """Count a frame of ``size`` bytes about to be written; False once the connection is over the bound."""
        if self.over_limit:
            return False
        if not self.paused:
            return True
        self.bytes_while_paused += size
        self.frames_while_paused += 1
        if self.bytes_while_paused <= realtime_settings.MAX_SEND_BUFFER_BYTES:
            return True
        self.over_limit = True
        self._close_slow_client()
        return False

    def _close_slow_client(self) -> None:
        from twisted.internet import reactor

        protocol = self.protocol
        logger.warning(
            "slow client closed: %d bytes unread over the buffer (client %s)",
            self.bytes_while_paused,
            protocol.client_addr,
        )
        metrics.SLOW_CLIENT_CLOSES.inc()
        metrics.CLOSES.labels(str(int(CloseCode.SEND_BUFFER_FULL))).inc()
        # What was buffered while paused may never reach the client.
        metrics.DELIVERY_FAILURES.inc(self.frames_while_paused)
        protocol.serverClose(code=int(CloseCode.SEND_BUFFER_FULL))
        reactor.callLater(realtime_settings.SLOW_CLIENT_GRACE_S, self._abort_if_still_open)

    def _abort_if_still_open(self) -> None:
        transport = getattr(self.protocol, "transport", None)
        if transport is not None and transport.connected:
            transport.abortConnection()


def bound_send_buffers() -> None:
    """
    Patch Daphne's ``WebSocketProtocol.onOpen`` and ``serverSend`` (daphne/ws_protocol.py, Daphne
    4.2.3), which write every frame into Twisted's transport buffer without a bound (Twisted 26,
    twisted/internet/abstract.py ``FileDescriptor.write``). Drop it when Daphne bounds the buffer.
    """
    from daphne.ws_protocol import WebSocketProtocol

    original_on_open = WebSocketProtocol.onOpen
    original_send = WebSocketProtocol.serverSend

    def onOpen(self):  # noqa: N802 (Daphne's name)
        # The HTTP channel that did the upgrade is still the transport's producer: replace it.
        if self.transport.producer is not None:
            self.transport.unregisterProducer()
        self.send_buffer = SendBuffer(self)
        self.transport.registerProducer(self.send_buffer, True)
        original_on_open(self)

    def serverSend(self, content, binary=False):  # noqa: N802
        buffer = getattr(self, "send_buffer", None)
        # Text frames are counted in characters (bytes for ASCII JSON): a bound, not a bill.
        if buffer is not None and not buffer.admit(len(content)):
            return
        original_send(self, content, binary)

    WebSocketProtocol.onOpen = onOpen
    WebSocketProtocol.serverSend = serverSend

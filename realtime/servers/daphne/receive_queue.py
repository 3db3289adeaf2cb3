"""
Receive-side backpressure under Daphne: a client that sends faster than its consumer handles
frames waits in its own TCP window instead of eating the server (issue 8, floods).

Daphne reads every byte a client sends, parses each frame and appends it to the connection's
application queue, an unbounded ``asyncio.Queue``; it never stops reading. Measured here
(``make bench-floods``): one connection sending pings in a loop put 485,000 frames in 10 s into
that queue; parsing them took the server's whole core, its consumer reached the rate limiter's
4429 only after minutes, and every other user's p99 went from 0.17 s to 9.8 s.

``bound_receive_queues`` stops reading a WebSocket's TCP socket (Twisted's
``transport.pauseProducing``) once ``REALTIME["MAX_RECEIVE_QUEUE_FRAMES"]`` frames wait in its
application queue, and reads again when the consumer has taken them down to a quarter of that
(checked every ``RESUME_POLL_S`` while paused: Daphne hands the consumer the queue's own ``get``,
so there is no hook on consumption). What the client sends meanwhile waits in the kernel's
buffers, then in the client: the rate limiter sees the flood at the pace the consumer works and
closes it with 4429 as documented, and no frame is dropped or reordered. A client that keeps
sending after the server's close frame is not read any more (Autobahn drops its TCP connection
when the close handshake times out, after 1 s).

uvicorn needs none of this: its WebSocket implementations bound the queue themselves
(``--ws-max-queue``, 32 frames by default).
"""

import weakref

from realtime.conf import realtime_settings

RESUME_POLL_S = 0.005


class ReceiveGate:
    """Pauses and resumes reading one WebSocket transport by the length of its application queue."""

    __slots__ = ("_protocol", "paused")

    def __init__(self, protocol):
        # Weak: the protocol holds this gate (no cycle to wait for a full garbage collection).
        self._protocol = weakref.ref(protocol)
        self.paused = False

    @property
    def protocol(self):
        """The Daphne ``WebSocketProtocol``, or None once it has been freed."""
        return self._protocol()

    def frame_queued(self) -> None:
        """Called after Daphne queued a frame: stop reading when the queue has reached its bound."""
        if self.paused:
            return
        protocol = self.protocol  # one weak-reference lookup per frame
        if protocol.state == protocol.STATE_CLOSING:
            # Data frames after the server's close (a flood closed with 4429 keeps sending): not
            # read at all. Autobahn drops the TCP connection when the close handshake times out.
            self.paused = True
            protocol.transport.pauseProducing()
            return
        if protocol.application_queue.qsize() >= realtime_settings.MAX_RECEIVE_QUEUE_FRAMES:
            self.paused = True
            protocol.transport.pauseProducing()
            self._resume_when_drained()

    def _resume_when_drained(self) -> None:
        from twisted.internet import reactor

        transport = getattr(self.protocol, "transport", None)
        if transport is None or not transport.connected:
            return
        if self.protocol.application_queue.qsize() <= realtime_settings.MAX_RECEIVE_QUEUE_FRAMES // 4:
            self.paused = False
            transport.resumeProducing()
        else:
            reactor.callLater(RESUME_POLL_S, self._resume_when_drained)


def bound_receive_queues() -> None:
    """
    Patch Daphne's ``WebSocketProtocol.onMessage`` (daphne/ws_protocol.py, Daphne 4.2.3), which
    puts every frame in an unbounded ``asyncio.Queue`` and never stops reading the socket. Drop it
    when Daphne bounds its application queue (uvicorn's ``--ws-max-queue`` does).
    """
    from daphne.ws_protocol import WebSocketProtocol

    original_on_message = WebSocketProtocol.onMessage

    def onMessage(self, payload, isBinary):  # noqa: N802 (Daphne's name)
        original_on_message(self, payload, isBinary)
        if not hasattr(self, "receive_gate"):
            self.receive_gate = ReceiveGate(self)
        self.receive_gate.frame_queued()

    WebSocketProtocol.onMessage = onMessage

"""
The uvicorn counterpart of ``realtime.servers.daphne.writes``: fan-out frames written straight to the transport of
uvicorn's ``websockets`` protocol (``--ws websockets``, the implementation ``uvicorn[standard]``
picks), with the send-buffer bound.

Through ASGI, every member of a group costs uvicorn's ``asgi_send``, a websockets ``Frame``
built and serialised for that member, and an awaited ``drain()`` that stalls the whole fan-out
behind one client whose buffer is over the high-water mark (``make bench-compare``: 247 ms
last-delivery p99 at N=1,000, against 35 ms for Daphne's direct path). A server frame is not
masked (RFC 6455 section 5.1), so its bytes are the same for every member: the hub's
``PreparedFrame`` carries them, and ``TransportWriter`` hands them to the asyncio transport,
which never blocks.

The transport's buffer is bounded by ``REALTIME["MAX_SEND_BUFFER_BYTES"]``, as under Daphne
(``send_buffer``): a member whose unread bytes pass it gets no more frames, is counted in
``switchboard_ws_slow_client_closes``, and is failed with 4413; websockets sends the close frame
behind what is buffered and aborts the TCP connection after its close timeout.

Nothing of uvicorn is patched, but ``TransportWriter`` reads its protocol's internals
(``uvicorn/protocols/websockets/websockets_impl.py``, uvicorn 0.54: ``asgi_send``, ``transport``;
websockets 17: ``write_frame_sync``, ``fail_connection``): ``install()`` turns the path on only
at the versions in ``TESTED``, and every other version writes through ASGI.
"""

import logging
import sys

from websockets.frames import Opcode
from websockets.protocol import State

from realtime import metrics
from realtime.conf import realtime_settings
from realtime.errors import CloseCode
from realtime.versions import Tested, describe_untested, untested

from .frames import PreparedFrame

__all__ = ["TESTED", "install", "writer_for"]

logger = logging.getLogger("realtime.connections")

TESTED = (Tested("uvicorn", ">=0.54,<0.55", "0.54.0"), Tested("websockets", ">=17.4,<18", "17.4"))

_installed = False


def install() -> bool:
    """Turn the direct write path on when uvicorn and websockets are at tested versions (or absent)."""
    global _installed
    outside = untested(TESTED)
    if outside:
        logging.getLogger(__name__).error("uvicorn direct writes off: %s", describe_untested(outside))
    _installed = not outside
    return _installed


class TransportWriter:
    """Writes ``PreparedFrame``s straight to one uvicorn ``websockets`` protocol's transport."""

    __slots__ = ("protocol",)

    def __init__(self, protocol):
        self.protocol = protocol

    def write(self, frame: PreparedFrame) -> bool:
        """
        Write ``frame``; return False when it was not written: the connection is not open, or its
        unread bytes are over ``MAX_SEND_BUFFER_BYTES`` (it is then failed with 4413).
        """
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            return False
        transport = protocol.transport
        if transport.get_write_buffer_size() > realtime_settings.MAX_SEND_BUFFER_BYTES:
            self._close_slow_client(transport.get_write_buffer_size())
            return False
        if protocol.extensions:
            # permessage-deflate was negotiated: websockets compresses each frame itself.
            protocol.write_frame_sync(True, Opcode.TEXT, frame.text.encode("utf-8"))
        else:
            transport.write(frame.prepared.payloadHybi)
        return True

    def _close_slow_client(self, unread: int) -> None:
        logger.warning("slow client closed: %d bytes unread (client %s)", unread, self.protocol.remote_address)
        metrics.SLOW_CLIENT_CLOSES.inc()
        metrics.CLOSES.labels(str(int(CloseCode.SEND_BUFFER_FULL))).inc()
        self.protocol.fail_connection(int(CloseCode.SEND_BUFFER_FULL))


def writer_for(send) -> TransportWriter | None:
    """
    Return a ``TransportWriter`` when ``send`` is uvicorn's own ASGI send of its ``websockets``
    protocol (the bound ``WebSocketProtocol.asgi_send``) and ``install()`` turned the path on;
    else None (other servers and wrapped sends go through ASGI as usual).
    """
    module = sys.modules.get("uvicorn.protocols.websockets.websockets_impl")
    if not _installed or module is None or getattr(send, "__func__", None) is not module.WebSocketProtocol.asgi_send:
        return None
    return TransportWriter(send.__self__)

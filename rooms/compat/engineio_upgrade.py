"""
Sockets that upgraded from long-polling to WebSocket get the server's direct writer, as sockets
that connected over WebSocket do (seed 003's endpoint, rooms/compat/seed003.py).

socket.io-client connects with long-polling first and then upgrades. Until this module, such a
socket kept python-engineio's per-socket path for every event after its upgrade: a queue put, a
wake-up of its writer task (``asyncio.wait_for``: a Task and a timer per packet), then its ASGI
send, 3.6x native's server CPU per delivery against 0.98x for a socket written to directly
(``make bench-adapters``, topic room). With this module, endpoint ``003-polling`` of that bench
(polling, then the upgrade): 13.9 us per delivery against 59.9 us without it, what a socket that
connected over WebSocket costs (median 1.02x of it within a run; README, "Compatibility endpoints").

Upstream, python-engineio 4.15.1: ``AsyncSocket._websocket_handler`` (engineio/async_socket.py)
sets ``upgraded`` when the client's UPGRADE packet arrives on the new WebSocket, then starts a
writer task that takes batches of packets from the socket's queue (``poll``) and writes each with
``await ws.send(pkt.encode())``, ``ws`` being the driver's ``WebSocket`` (engineio/async_drivers/asgi.py)
built for the upgrade request. From then on that task is the WebSocket's only writer, and polling
requests are refused. Events queued while the socket polled or upgraded are still in the queue,
or in the batch the writer took from it.

What this module adds, and nothing else of engine.io changes:

- ``TrackedPacket``: the MESSAGE packet the connection puts in engine.io's queue (events before
  the switch, its ``exception`` errors always); it notes when its encoding is taken, which the
  writer does just before writing it.
- ``DirectUpgradeWebSocket``: the driver's ``WebSocket`` with a check after each of its writes:
  once the socket is ``upgraded`` and the last packet the connection queued has been taken (so,
  the writer being sequential, written: that write just returned), the connection's events go to
  the server's direct writer for the upgrade request's ASGI ``send``
  (``realtime.servers.writer_for``). Nothing engine.io holds, nor a packet its writer took but has
  not written, is overtaken. (A marker packet that switched when written would not do: the
  writer may already hold, in the same batch, events queued after it.) The first write after the
  upgrade (an event, a ping, the ``/game`` CONNECT) makes the switch. Engine.IO's pings, acks and
  errors keep its queue, as for a socket that connected over WebSocket; a close ends both, since
  they write to one server connection.

``install`` applies it to one ``socketio.AsyncServer``'s engine (its own ``_async`` table, not
the driver module's) when python-engineio is at a version in ``TESTED`` and ``REALTIME
["SERVER_PATCHES"]`` is on. Otherwise upgraded sockets keep engine.io's queue (logged; system
check ``rooms.E001``).
"""

import functools
import logging

from engineio import packet
from engineio.async_drivers.asgi import WebSocket

from realtime.conf import realtime_settings
from realtime.versions import Tested, describe_untested, untested

__all__ = ["TESTED", "DirectUpgradeWebSocket", "TrackedPacket", "install"]

logger = logging.getLogger(__name__)

# The version the writer task's behaviour above was read from (requirements.txt pins it).
TESTED = (Tested("python-engineio", ">=4.15.1,<4.16", "4.15.1"),)


class TrackedPacket(packet.Packet):
    """An Engine.IO MESSAGE packet of text ``data`` that notes when its encoding is taken for writing."""

    taken = False

    def __init__(self, data: str):
        super().__init__(packet.MESSAGE, data=data)

    def encode(self, b64=False):
        self.taken = True
        return super().encode(b64)


class DirectUpgradeWebSocket(WebSocket):
    """
    engine.io's ASGI ``WebSocket`` for one request; after each write of an upgraded socket, offers
    its connection (``connections``: Engine.IO sid -> ``SocketIOConnection``) the switch to direct writes.
    """

    def __init__(self, connections: dict, handler, server):
        super().__init__(handler, server)
        self.connections = connections
        # The engine.io socket whose _websocket_handler this request runs (a bound method).
        self.socket = getattr(handler, "__self__", None)
        # The connection whose switch is settled. Per connection, not per WebSocket: a client may
        # connect to /game again on the same Engine.IO session.
        self.settled = None

    async def send(self, message):
        await super().send(message)
        if self.socket is None or not self.socket.upgraded:
            return
        conn = self.connections.get(self.socket.sid)
        if conn is not None and conn is not self.settled and conn.write_directly(self.asgi_send):
            self.settled = conn


def install(engine, connections: dict) -> bool:
    """
    Give ``engine`` (a ``socketio.AsyncServer``'s ``eio``) ``DirectUpgradeWebSocket`` for its
    WebSocket requests; return whether it did (tested python-engineio, ``SERVER_PATCHES`` on).
    """
    if not realtime_settings.SERVER_PATCHES:
        return False
    outside = untested(TESTED)
    if outside:
        logger.error("seed 003's upgraded sockets keep engine.io's queue: %s", describe_untested(outside))
        return False
    engine._async = {**engine._async, "websocket": functools.partial(DirectUpgradeWebSocket, connections)}
    return True

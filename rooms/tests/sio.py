"""
A Socket.IO v5 (Engine.IO v4) client over Channels' WebsocketCommunicator, for in-process tests
of the seed 003 endpoint: the packets socket.io-client sends and reads, decoded with
python-socketio's own ``Packet``. The real client runs in tests/e2e/test_seed003_over_daphne.py.
"""

import asyncio
import itertools
import json

from channels.testing import WebsocketCommunicator
from socketio import packet

from rooms.compat.seed003 import NAMESPACE, SOCKETIO_PATH


class SioClient:
    """One WebSocket-transport Socket.IO client of the ``/game`` namespace."""

    def __init__(self, application, *, query: str = "", headers=None):
        path = f"/{SOCKETIO_PATH}/?EIO=4&transport=websocket" + (f"&{query}" if query else "")
        # Engine.IO checks a WebSocket handshake's Upgrade and Connection headers (the communicator sends none).
        headers = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"), *(headers or [])]
        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.sid: str | None = None
        self.connect_error: dict | None = None
        self.events: list[list] = []  # EVENT packets' data ([name, *args]) not read yet
        self._ack_ids = itertools.count(1)

    async def open(self, auth: dict | None = None) -> bool:
        """Open the Engine.IO session and connect to ``/game``; True when connected, else ``connect_error`` is set."""
        connected, _ = await self.communicator.connect(timeout=5)
        if not connected:
            return False
        opening = await self._raw()
        assert opening.startswith("0"), opening
        await self.send_raw("40" + NAMESPACE + "," + (json.dumps(auth) if auth is not None else ""))
        reply = await self._packet()
        if reply.packet_type == packet.CONNECT:
            self.sid = reply.data["sid"]
            return True
        assert reply.packet_type == packet.CONNECT_ERROR, reply.packet_type
        self.connect_error = reply.data
        return False

    async def send_raw(self, text: str) -> None:
        """Send one Engine.IO message as is (``4`` + a Socket.IO packet, or a malformed one)."""
        await self.communicator.send_to(text_data=text)

    async def emit(self, event, *args, ack: bool = True) -> int | None:
        """Emit ``event`` with ``args``; return the acknowledgement id when one is asked for."""
        ack_id = next(self._ack_ids) if ack else None
        await self.send_raw(
            "4" + packet.Packet(packet.EVENT, data=[event, *args], namespace=NAMESPACE, id=ack_id).encode()
        )
        return ack_id

    async def call(self, event, *args, timeout: float = 5):
        """Emit ``event`` and return its acknowledgement's first argument (events meanwhile are kept)."""
        ack_id = await self.emit(event, *args)
        while True:
            pkt = await self._packet(timeout)
            if pkt.packet_type == packet.ACK and pkt.id == ack_id:
                return pkt.data[0] if pkt.data else None
            self._keep(pkt)

    async def next_event(self, name: str | None = None, timeout: float = 2) -> list:
        """The next EVENT's ``[name, *args]`` (of ``name`` when given, skipping others)."""
        while True:
            while self.events:
                event = self.events.pop(0)
                if name is None or event[0] == name:
                    return event
            self._keep(await self._packet(timeout))

    async def assert_no_event(self, timeout: float = 0.3) -> None:
        """No EVENT arrives within ``timeout`` seconds (and none is waiting)."""
        assert not self.events, self.events
        try:
            pkt = await self._packet(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected packet {pkt.packet_type}: {pkt.data}")

    async def disconnected(self, timeout: float = 2) -> bool:
        """Whether the server disconnects this socket from ``/game`` (a DISCONNECT packet) within ``timeout``."""
        while True:
            pkt = await self._packet(timeout)
            if pkt.packet_type == packet.DISCONNECT:
                return True
            self._keep(pkt)

    async def close(self) -> None:
        await self.communicator.disconnect()

    def _keep(self, pkt: packet.Packet) -> None:
        if pkt.packet_type == packet.EVENT:
            self.events.append(pkt.data)
        elif pkt.packet_type == packet.DISCONNECT:
            raise AssertionError("disconnected by the server")

    async def _raw(self, timeout: float = 5) -> str:
        message = await asyncio.wait_for(self.communicator.output_queue.get(), timeout)
        assert message["type"] == "websocket.send", message
        return message["text"]

    async def _packet(self, timeout: float = 5) -> packet.Packet:
        while True:
            text = await self._raw(timeout)
            if text == "2":  # Engine.IO ping: answered, as every client does
                await self.send_raw("3")
                continue
            assert text.startswith("4"), text
            return packet.Packet(encoded_packet=text[1:])

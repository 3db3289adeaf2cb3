"""
A seed 003 socket that polls, then upgrades to WebSocket (socket.io-client's default), in process:
its room events go through engine.io's queue until the upgrade and until engine.io has written what
it holds, then through the server's direct writer (rooms/compat/engineio_upgrade.py), every event
once and in order. The direct writer is a stand-in here (a communicator has no server under it);
tests/e2e/test_seed003_over_daphne.py runs the real client on Daphne's.
"""

import asyncio
import json

import pytest
import socketio
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator
from engineio.async_drivers.asgi import WebSocket
from socketio import packet

from conftest import access_token
from realtime.versions import Tested as VersionRange
from rooms import checks, services
from rooms.compat import engineio_upgrade, seed003
from rooms.compat.seed003 import NAMESPACE, SOCKETIO_PATH, Seed003Endpoint

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]

ROOM = "game:5"
RECORD_SEPARATOR = "\x1e"  # between the packets of an Engine.IO long-polling payload


class StandInWriter:
    """The direct writer: onto the WebSocket's wire (``wire``: its communicator's output), noting each text."""

    def __init__(self):
        self.texts: list[str] = []
        self.wire: asyncio.Queue | None = None

    def write(self, frame) -> bool:
        self.texts.append(frame.text)
        self.wire.put_nowait({"type": "websocket.send", "text": frame.text})
        return True


def numbers(texts: list[str]) -> list[int]:
    """The ``seq`` events' numbers among Engine.IO messages ``texts``."""
    found = []
    for text in texts:
        if text.startswith("4"):
            pkt = packet.Packet(encoded_packet=text[1:])
            if pkt.packet_type == packet.EVENT and pkt.data[0] == "seq":
                found.append(pkt.data[1])
    return found


async def publish(*ns: int, interval_s: float = 0) -> None:
    for n in ns:
        await sync_to_async(services.publish_to_room)(room=ROOM, event="seq", data=n)
        await asyncio.sleep(interval_s)


async def next_text(ws: WebsocketCommunicator) -> str:
    """The next text engine.io wrote to ``ws`` (its sends carry both keys, which ``receive_from`` refuses)."""
    return (await asyncio.wait_for(ws.output_queue.get(), 5))["text"]


async def until(condition, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_an_upgraded_socket_gets_every_event_once_in_order_then_direct_writes(
    channel_layer, connect, alice, monkeypatch
):
    writer = StandInWriter()
    monkeypatch.setattr(seed003, "writer_for", lambda send: writer)
    # engine.io's writer task as slow as a busy network: a switch made while it still held
    # events would let later events overtake them.
    unhurried_send = WebSocket.send

    async def slow_send(self, message):
        await asyncio.sleep(0.01)
        await unhurried_send(self, message)

    monkeypatch.setattr(WebSocket, "send", slow_send)
    endpoint = Seed003Endpoint()
    assert endpoint.direct_upgrades
    application = socketio.ASGIApp(endpoint.server, socketio_path=SOCKETIO_PATH)
    base = f"/{SOCKETIO_PATH}/?EIO=4"

    async def request(method: str, query: str, body: str = "") -> list[str]:
        payload = body.encode()
        headers = [(b"content-length", str(len(payload)).encode())]  # engine.io reads that many bytes
        communicator = HttpCommunicator(application, method, f"{base}&{query}", body=payload, headers=headers)
        response = await communicator.get_response(timeout=5)
        assert response["status"] == 200, response
        return response["body"].decode().split(RECORD_SEPARATOR)

    opening = (await request("GET", "transport=polling"))[0]
    sid = json.loads(opening[1:])["sid"]
    polling = f"transport=polling&sid={sid}"
    await request("POST", polling, f"40{NAMESPACE}," + json.dumps({"token": access_token(alice)}))
    assert (await request("GET", polling))[0].startswith(f"40{NAMESPACE},")
    await request("POST", polling, f'42{NAMESPACE},1["joinRoom",{{"roomId":"{ROOM}"}}]')
    assert (await request("GET", polling))[0].startswith(f"43{NAMESPACE},1")

    # While it polls: engine.io's queue, read by GET.
    await publish(0, 1, 2)
    over_polling: list[str] = []
    while len(numbers(over_polling)) < 3:
        over_polling += await request("GET", polling)

    # The upgrade: the probe, events published meanwhile (held in engine.io's queue), UPGRADE,
    # events published right after (queued behind them, or direct once they are written).
    ws = WebsocketCommunicator(
        application,
        f"{base}&transport=websocket&sid={sid}",
        headers=[(b"upgrade", b"websocket"), (b"connection", b"Upgrade")],
    )
    assert (await ws.connect(timeout=5))[0]
    writer.wire = ws.output_queue
    await ws.send_to(text_data="2probe")
    assert await next_text(ws) == "3probe"
    await publish(3, 4, 5)
    await ws.send_to(text_data="5")
    await publish(*range(6, 12), interval_s=0.005)
    over_websocket: list[str] = []

    def received() -> list[int]:
        while not ws.output_queue.empty():
            over_websocket.append(ws.output_queue.get_nowait()["text"])
        return numbers(over_websocket)

    await until(lambda: len(received()) == 9)
    # Switched: later events take the direct writer alone.
    await publish(12, 13)
    await until(lambda: len(received()) == 11)

    assert numbers(over_polling) + received() == list(range(14))
    assert numbers(writer.texts)[-2:] == [12, 13]
    conn = next(iter(endpoint.connections.values()))
    assert conn.frame_writer is writer
    # Acknowledgements keep engine.io's queue after the switch, written on the WebSocket.
    leave = packet.Packet(packet.EVENT, ["leaveRoom", {"roomId": ROOM}], NAMESPACE, 2)
    await ws.send_to(text_data="4" + leave.encode())
    assert (await next_text(ws)).startswith(f"43{NAMESPACE},2")
    await ws.disconnect()
    await until(lambda: not endpoint.connections)
    assert not endpoint.by_eio_sid


async def test_outside_the_tested_engineio_upgraded_sockets_keep_its_queue_and_the_check_says_so(monkeypatch, settings):
    monkeypatch.setattr(engineio_upgrade, "TESTED", (VersionRange("python-engineio", "<1", "0.1"),))
    endpoint = Seed003Endpoint()
    assert not endpoint.direct_upgrades
    assert endpoint.server.eio._async["websocket"] is WebSocket
    monkeypatch.setattr(checks, "TESTED", engineio_upgrade.TESTED)
    assert [error.id for error in checks.check_engineio_version(None)] == ["rooms.E001"]
    settings.REALTIME = {**settings.REALTIME, "SERVER_PATCHES": False}
    monkeypatch.undo()
    assert not Seed003Endpoint().direct_upgrades

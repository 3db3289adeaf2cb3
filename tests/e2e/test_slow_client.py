"""
A client that stops reading while a busy conversation streams (issues 7 and 8): its send buffer
is bounded, it is closed (4413, then a TCP abort), the others get every message promptly, and it resumes
with every message once. Under Daphne (realtime/servers/daphne/send_buffer.py) and under uvicorn
(realtime/servers/uvicorn.py).
"""

import asyncio
import base64
import json
import os
import socket
import time
import urllib.request

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat import services
from tests.e2e.helpers import login, next_of_type
from tests.servers import Daphne, Uvicorn, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
BOUND = 256 * 1024  # MAX_SEND_BUFFER_BYTES for this test
# 150 frames of 60 KB (9 MB): far over the bound plus the kernel's own send buffer (up to 4 MB on
# loopback, net.ipv4.tcp_wmem), so the transport's buffer must grow.
MESSAGES = 150  # per phase
CONTENT = "x" * 60_000
# A delivery later than this would be noticed as a stall by the other readers.
MAX_DELIVERY_S = 5.0


@pytest.fixture(params=[Daphne, Uvicorn], ids=["daphne", "uvicorn"])
def server(request, django_db_setup):
    from django.db import connection

    daphne = request.param(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": os.environ["REDIS_URL"],
            "CHAT_MAX_MESSAGE_CHARS": "64000",
            "REALTIME_OVERRIDES": json.dumps(
                {
                    "CONNECTIONS_PER_IP_PER_MIN": 10_000,
                    "CONNECTIONS_PER_IP_PER_S": 10_000,
                    "RATE_PER_MIN": 1_000_000,
                    "RATE_BURST": 10_000,
                    "MAX_SEND_BUFFER_BYTES": BOUND,
                    "SLOW_CLIENT_GRACE_S": 1,
                }
            ),
        }
    )
    yield daphne
    daphne.stop()


def open_unread_socket(port: int, token: str) -> socket.socket:
    """A WebSocket handshake over a raw socket with a tiny receive buffer, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the TCP window
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)  # one byte at a time: leave the frames after the headers unread
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def drain(sock: socket.socket, timeout: float = 10) -> bytes:
    """Read until the server closes or drops the connection; return what arrived."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


async def stream(server, tokens: dict, conversation_id: int, first: int) -> tuple[list[int], list[float]]:
    """
    Bob sends MESSAGES messages (~50/s); return the seqs carol received, in arrival order, and their latencies (s).
    """
    seqs, latencies = [], []
    async with (
        websockets.connect(f"{server.url}?token={tokens['bob']}", max_size=None) as sender,
        websockets.connect(f"{server.url}?token={tokens['carol']}", max_size=None) as reader,
    ):
        await next_of_type(sender, "welcome")
        await next_of_type(reader, "welcome")
        sent_at = {}

        async def read_all():
            while len(latencies) < MESSAGES:
                frame = json.loads(await reader.recv())
                if frame["type"] == "chat.message":
                    seqs.append(frame["data"]["seq"])
                    latencies.append(time.perf_counter() - sent_at[frame["data"]["client_msg_id"]])

        async def discard(ws):  # the sender reads its acks and its own events, like any good client
            async for _ in ws:
                pass

        reading = asyncio.create_task(read_all())
        sender_reading = asyncio.create_task(discard(sender))
        for i in range(first, first + MESSAGES):
            sent_at[f"m{i}"] = time.perf_counter()
            await sender.send(
                json.dumps(
                    {
                        "type": "chat.send",
                        "ref": f"r{i}",
                        "data": {"conversation_id": conversation_id, "content": CONTENT, "client_msg_id": f"m{i}"},
                    }
                )
            )
            await asyncio.sleep(0.02)
        async with asyncio.timeout(30):
            await reading
        sender_reading.cancel()
    return seqs, latencies


async def test_slow_reader_is_closed_others_unaffected_and_it_resumes(server, alice, bob, carol):
    group = await sync_to_async(services.create_group)(owner=bob, title="busy", member_ids=[alice.pk, carol.pk])
    tokens = {name: await asyncio.to_thread(login, server, name, f"{name}-pass") for name in ("alice", "bob", "carol")}
    slow = open_unread_socket(server.port, tokens["alice"])
    seqs, latencies = await stream(server, tokens, group.pk, first=0)

    # The slow client was closed: 4413 after the frames it had not read, or a dropped connection.
    # The server dropped what was over the bound instead of holding it: the client got less than
    # was sent (the kernel's buffers, 64 KiB and the bound at most).
    received = await asyncio.to_thread(drain, slow)
    slow.close()
    assert len(received) < MESSAGES * len(CONTENT), "the slow client was sent everything: no bound"
    assert len(received) < 4_194_304 + 2 * 65536 + BOUND + len(CONTENT)
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        metrics_text = response.read().decode()
    assert "switchboard_ws_slow_client_closes_total 1.0" in metrics_text
    assert 'switchboard_ws_closes_total{code="4413"} 1.0' in metrics_text

    # The reader saw every message, in order, each within a few seconds even on a busy machine
    # (how its latency compares with no stalled client is a benchmark figure: make bench-floods).
    assert seqs == list(range(1, MESSAGES + 1))
    assert max(latencies) < MAX_DELIVERY_S, f"slowest delivery {max(latencies):.2f} s"

    # Alice reconnects and resumes: every message exactly once, in seq order.
    async with websockets.connect(f"{server.url}?token={tokens['alice']}", max_size=None) as again:
        await next_of_type(again, "welcome")
        seqs, after = [], 0
        while True:
            await again.send(
                json.dumps(
                    {
                        "type": "chat.join",
                        "ref": f"j{after}",
                        "data": {"conversation_id": group.pk, "after_seq": after, "limit": 10},
                    }
                )
            )
            ack = await next_of_type(again, "ack")
            seqs += [m["seq"] for m in ack["data"]["messages"]]
            if not ack["data"]["has_more"]:
                break
            after = seqs[-1]
    assert seqs == list(range(1, MESSAGES + 1))

"""
A Daphne process started while its Redis is down (issue 21): handshakes are refused cleanly, with
an ``unavailable`` error frame and close 1013 (never HTTP 500), and the process starts properly
once Redis is back, without a restart.
"""

import asyncio
import json
import time

import pytest
import websockets

from tests.e2e.helpers import login, next_of_type
from tests.servers import Daphne, RedisServer, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_handshake_refused_with_1013_while_redis_is_down_then_accepted(django_db_setup, tmp_path, alice):
    from django.db import connection

    redis = RedisServer(tmp_path)
    redis.stop()
    server = Daphne(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": redis.url,
            "REALTIME_OVERRIDES": json.dumps(
                {"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000}
            ),
        }
    )
    try:
        token = await asyncio.to_thread(login, server, "alice", "alice-pass")
        for _ in range(2):  # and again: a failed start leaves nothing half-done behind
            async with websockets.connect(f"{server.url}?token={token}") as ws:
                error = json.loads(await asyncio.wait_for(ws.recv(), 15))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 15)
            assert error["error"]["code"] == "unavailable"
            assert error["error"]["details"]["retry_after_ms"] > 0
            assert closed.value.rcvd.code == 1013

        redis.start()
        deadline = time.monotonic() + 30
        while True:
            async with websockets.connect(f"{server.url}?token={token}") as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if first["type"] == "welcome":
                    # A working process: it answers commands and fans out.
                    await ws.send(json.dumps({"type": "ping", "ref": 1}))
                    assert (await next_of_type(ws, "pong"))["ref"] == 1
                    break
            assert time.monotonic() < deadline, f"still refused after Redis came back: {first}"
            await asyncio.sleep(0.2)  # the client's own reconnect backoff
        output = server.output()
        assert "Exception inside application" not in output, output[-3000:]
    finally:
        server.stop()
        redis.stop()

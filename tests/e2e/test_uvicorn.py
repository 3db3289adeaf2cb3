"""
The same application under uvicorn (``--ws websockets``), beside Daphne behind one Redis: fan-out
frames written straight to uvicorn's transports (realtime/servers/uvicorn.py) arrive intact.
"""

import asyncio
import json
import os

import pytest
import websockets

from tests.e2e.helpers import login, next_of_type, request
from tests.servers import Daphne, Uvicorn, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def servers(django_db_setup):
    """uvicorn and Daphne on the test database and Redis, shared by this module's six cases."""
    from django.db import connection

    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": os.environ["REDIS_URL"],
        "REALTIME_OVERRIDES": json.dumps({"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000}),
    }
    started = [Uvicorn(env), Daphne(env)]
    yield started
    for server in started:
        server.stop()


@pytest.mark.parametrize(
    "content",
    [
        "short",
        # 4,000 four-byte characters: a 16 KB payload, the 16-bit extended length of RFC 6455 5.2.
        "\U0001f600" * 4000,
        "\u05e9\u05dc\u05d5\u05dd \u200d e\u0301 <b>x</b>",
    ],
)
@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_fan_out_from_uvicorn_reaches_members_on_both_servers_byte_for_byte(
    servers, conversation, content, compression
):
    uvicorn, daphne = servers
    alice_token = await asyncio.to_thread(login, daphne, "alice", "alice-pass")
    bob_token = await asyncio.to_thread(login, daphne, "bob", "bob-pass")
    async with (
        websockets.connect(f"{uvicorn.url}?token={alice_token}", max_size=None, compression=compression) as alice_ws,
        websockets.connect(
            f"{uvicorn.url}?token={bob_token}", max_size=None, compression=compression
        ) as bob_on_uvicorn,
        websockets.connect(f"{daphne.url}?token={bob_token}", max_size=None) as bob_on_daphne,
    ):
        for ws in (alice_ws, bob_on_uvicorn, bob_on_daphne):
            await next_of_type(ws, "welcome")
        ack = await request(
            alice_ws,
            "chat.send",
            {"conversation_id": conversation.pk, "content": content, "client_msg_id": "fan-out-1"},
            ref="s",
        )
        events = [await next_of_type(ws, "chat.message") for ws in (alice_ws, bob_on_uvicorn, bob_on_daphne)]

    assert ack["type"] == "ack"
    assert [event["data"] for event in events] == [ack["data"]["message"]] * 3
    assert events[0]["data"]["content"] == content

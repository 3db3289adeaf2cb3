"""Real clients (``websockets``) against two Daphne processes sharing one Redis channel layer."""

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from tests.e2e.helpers import login, next_of_type, request

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_message_crosses_processes_within_one_second_and_is_stored_once(daphnes, conversation):
    server_a, server_b = daphnes
    alice_token = await asyncio.to_thread(login, server_a, "alice", "alice-pass")
    bob_token = await asyncio.to_thread(login, server_b, "bob", "bob-pass")
    async with (
        websockets.connect(f"{server_a.url}?token={alice_token}") as alice_ws,
        websockets.connect(server_b.url, additional_headers={"Authorization": f"Bearer {bob_token}"}) as bob_ws,
    ):
        assert (await next_of_type(alice_ws, "welcome"))["data"]["user"]["username"] == "alice"
        assert (await next_of_type(bob_ws, "welcome"))["data"]["user"]["username"] == "bob"

        started = time.perf_counter()
        await alice_ws.send(
            json.dumps(
                {
                    "type": "chat.send",
                    "ref": "1",
                    "data": {
                        "conversation_id": conversation.pk,
                        "content": "hello over redis",
                        "client_msg_id": "e2e-1",
                    },
                }
            )
        )
        event = await next_of_type(bob_ws, "chat.message")
        elapsed = time.perf_counter() - started
        ack = await next_of_type(alice_ws, "ack")

    assert event["data"]["content"] == "hello over redis"
    assert event["data"] == ack["data"]["message"]
    assert elapsed < 1.0, f"delivery took {elapsed:.3f} s"
    stored = await sync_to_async(list)(Message.objects.values_list("content", "client_msg_id"))
    assert stored == [("hello over redis", "e2e-1")]


async def test_first_frame_auth_and_resume_after_reconnect(daphnes, alice, bob, conversation):
    server_a, server_b = daphnes
    bob_token = await asyncio.to_thread(login, server_b, "bob", "bob-pass")
    async with websockets.connect(server_b.url) as bob_ws:
        await bob_ws.send(json.dumps({"type": "auth", "data": {"token": bob_token}}))
        await next_of_type(bob_ws, "welcome")
        await sync_to_async(services.send_message)(sender=alice, conversation=conversation, content="one")
        seen = (await next_of_type(bob_ws, "chat.message"))["data"]["seq"]
    # Bob is offline while alice writes twice (from this process: the admin/REST path).
    for text in ("two", "three"):
        await sync_to_async(services.send_message)(sender=alice, conversation=conversation, content=text)
    async with websockets.connect(f"{server_a.url}?token={bob_token}") as bob_ws:
        await next_of_type(bob_ws, "welcome")
        await bob_ws.send(
            json.dumps(
                {"type": "chat.join", "ref": "j", "data": {"conversation_id": conversation.pk, "after_seq": seen}}
            )
        )
        ack = await next_of_type(bob_ws, "ack")
    assert [m["content"] for m in ack["data"]["messages"]] == ["two", "three"]
    assert ack["data"]["has_more"] is False


async def test_refused_token_gets_reason_frame_then_4401_from_daphne(daphnes):
    async with websockets.connect(f"{daphnes[0].url}?token=forged") as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert error["error"]["code"] == "unauthorized"
    assert ws.close_code == 4401


async def test_foreign_origin_handshake_is_rejected_by_daphne(daphnes, alice):
    with pytest.raises(websockets.InvalidStatus) as excinfo:
        async with websockets.connect(daphnes[0].url, origin="https://evil.example"):
            pass
    assert excinfo.value.response.status_code == 403


@pytest.mark.parametrize(
    "content",
    [
        "short",
        # 4,000 four-byte characters: a 16 KB payload, the 16-bit extended length of RFC 6455 5.2.
        "\U0001f600" * 4000,
        # Right-to-left text, a zero-width joiner and a combining mark must come out exactly as sent.
        "\u05e9\u05dc\u05d5\u05dd \u200d e\u0301 <b>x</b>",
    ],
)
async def test_fan_out_frame_reaches_members_on_both_processes_byte_for_byte(daphnes, conversation, content):
    """
    Daphne writes a fan-out event's frame, built once, straight to each member's socket
    (realtime/servers/daphne/writes.py): every member, local or behind Redis, reads the same intact event.
    """
    server_a, server_b = daphnes
    alice_token = await asyncio.to_thread(login, server_a, "alice", "alice-pass")
    bob_token = await asyncio.to_thread(login, server_a, "bob", "bob-pass")
    async with (
        websockets.connect(f"{server_a.url}?token={alice_token}", max_size=None) as alice_ws,
        websockets.connect(f"{server_a.url}?token={bob_token}", max_size=None) as bob_on_a,
        websockets.connect(f"{server_b.url}?token={bob_token}", max_size=None) as bob_on_b,
    ):
        for ws in (alice_ws, bob_on_a, bob_on_b):
            await next_of_type(ws, "welcome")
        ack = await request(
            alice_ws,
            "chat.send",
            {"conversation_id": conversation.pk, "content": content, "client_msg_id": "fan-out-1"},
            ref="s",
        )
        events = [await next_of_type(ws, "chat.message") for ws in (bob_on_a, bob_on_b)]

    assert ack["type"] == "ack"
    assert [event["data"] for event in events] == [ack["data"]["message"]] * 2
    assert events[0]["data"]["content"] == content

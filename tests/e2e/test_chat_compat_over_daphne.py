"""
The seed chat clients, written from their documents with raw ``websockets`` frames, against the
two shared Daphne processes (one Redis): seed 002 (support chat, /compat/002/ws), seed 004 (Go
chat, /ws), and both with a native client in one support conversation.
"""

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Conversation, Message
from tests.e2e.helpers import login, next_of_type

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def http_to_ws(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def seed002_session(server, token: str, user, session_id: int | None):
    """The seed document's JavaScript client: connected, auth, auth_success, join_session, joined_session."""
    ws = await websockets.connect(http_to_ws(server, "/compat/002/ws"))
    assert (await recv_json(ws))["type"] == "connected"
    await ws.send(json.dumps({"type": "auth", "user_id": user.pk, "token": token}))
    assert await recv_json(ws) == {"type": "auth_success", "user_id": user.pk, "username": user.username}
    join = {"type": "join_session"} if session_id is None else {"type": "join_session", "session_id": session_id}
    await ws.send(json.dumps(join))
    joined = await recv_json(ws)
    assert joined["type"] == "joined_session"
    return ws, joined["session_id"]


async def log_in(server, username: str) -> str:
    return await asyncio.to_thread(login, server, username, f"{username}-pass")


async def seed004_connection(server, token: str, *, header: bool = True):
    """The Go client: the JWT in the ``websocket`` header (or ``?token=``); no frame comes before a message."""
    if header:
        ws = await websockets.connect(http_to_ws(server, "/ws"), additional_headers={"websocket": token})
    else:
        ws = await websockets.connect(http_to_ws(server, f"/ws?token={token}"))
    # Not in the seed: a ping answered once the session has started, so the test sends no message before.
    await ws.send(json.dumps({"type": "ping"}))
    assert await recv_json(ws) == {"type": "pong"}
    return ws


async def test_seed002_support_chat_flow(daphnes, alice, make_user):
    server_a, server_b = daphnes
    staff = await sync_to_async(make_user)("agent", is_staff=True)
    user_token, staff_token = await log_in(server_a, "alice"), await log_in(server_b, "agent")
    user_ws, session_id = await seed002_session(server_a, user_token, alice, None)
    agent_ws, _ = await seed002_session(server_b, staff_token, staff, session_id)
    try:
        started = time.perf_counter()
        await user_ws.send(json.dumps({"type": "send_message", "session_id": session_id, "content": "你好"}))
        to_staff = await next_of_type(agent_ws, "new_message")
        elapsed = time.perf_counter() - started
        to_user = await next_of_type(user_ws, "new_message")
        await agent_ws.send(json.dumps({"type": "send_message", "session_id": session_id, "content": "您好"}))
        reply = await next_of_type(user_ws, "new_message")
        await user_ws.send(json.dumps({"type": "ping"}))
        assert await next_of_type(user_ws, "pong") == {"type": "pong"}
    finally:
        await user_ws.close()
        await agent_ws.close()

    assert elapsed < 1.0, f"delivery took {elapsed:.3f} s (the seed's requirement 10.3)"
    assert to_staff == to_user and to_staff["session_id"] == session_id
    assert (to_staff["message"]["content"], to_staff["message"]["sender_id"]) == ("你好", alice.pk)
    assert (reply["message"]["content"], reply["message"]["sender_id"]) == ("您好", staff.pk)
    stored = await sync_to_async(list)(Message.objects.order_by("seq").values_list("content", "conversation__kind"))
    assert stored == [("你好", "support"), ("您好", "support")]


async def test_seed002_bare_user_id_is_refused(daphnes, alice):
    async with websockets.connect(http_to_ws(daphnes[0], "/compat/002/ws")) as ws:
        assert (await recv_json(ws))["type"] == "connected"
        await ws.send(json.dumps({"type": "auth", "user_id": alice.pk}))
        error = await recv_json(ws)
    assert error["type"] == "error" and error["code"] == "unauthorized"


async def test_seed004_private_chat_flow(daphnes, alice, bob):
    server_a, server_b = daphnes
    alice_token, bob_token = await log_in(server_a, "alice"), await log_in(server_b, "bob")
    alice_ws = await seed004_connection(server_a, alice_token)
    bob_ws = await seed004_connection(server_b, bob_token, header=False)
    try:
        await alice_ws.send(json.dumps({"recvId": bob.pk, "sendId": alice.pk, "chatType": 2, "content": "hi bob"}))
        to_bob = await recv_json(bob_ws)
        echo = await recv_json(alice_ws)
        await bob_ws.send(
            json.dumps({"conversationId": to_bob["conversationId"], "recvId": alice.pk, "chatType": 2, "content": "hi"})
        )
        to_alice = await recv_json(alice_ws)
    finally:
        await alice_ws.close()
        await bob_ws.close()

    conversation = await Conversation.objects.aget(kind=Conversation.Kind.DIRECT)
    assert to_bob == echo
    assert {k: to_bob[k] for k in ("conversationId", "recvId", "sendId", "chatType", "content", "contentType")} == {
        "conversationId": conversation.pk,
        "recvId": bob.pk,
        "sendId": alice.pk,
        "chatType": 2,
        "content": "hi bob",
        "contentType": 1,
    }
    assert (to_alice["sendId"], to_alice["recvId"], to_alice["seq"]) == (bob.pk, alice.pk, 2)


async def test_seed002_seed004_and_native_clients_in_one_support_conversation(daphnes, alice, make_user):
    """
    Each sends in turn; each receives every message exactly once, in seq order, whatever protocol
    sent it. A sender waits for its own message to come back before the next one sends: the order
    of commits is then the order of publishes (concurrent senders on two processes may publish out
    of seq order, which native clients repair by seq: docs/protocol.md, "Resume").
    """
    server_a, server_b = daphnes
    agent = await sync_to_async(make_user)("agent", is_staff=True)
    await sync_to_async(make_user)("agent2", is_staff=True)
    conversation, _ = await sync_to_async(services.open_support)(user=alice)
    customer_token = await log_in(server_a, "alice")
    agent_token, native_token = await log_in(server_b, "agent"), await log_in(server_a, "agent2")

    customer = await seed004_connection(server_a, customer_token)  # the support user, a member
    desk, _ = await seed002_session(server_b, agent_token, agent, conversation.pk)  # staff on the other process
    native = await websockets.connect(f"{server_a.url}?token={native_token}")
    await next_of_type(native, "welcome")
    await native.send(json.dumps({"type": "chat.join", "ref": "j", "data": {"conversation_id": conversation.pk}}))
    assert (await next_of_type(native, "ack"))["ref"] == "j"

    def from_004(frame):
        return (frame["seq"], frame["content"]) if "conversationId" in frame else None

    def from_002(frame):
        return (frame["message"]["seq"], frame["message"]["content"]) if frame["type"] == "new_message" else None

    def from_native(frame):
        return (frame["data"]["seq"], frame["data"]["content"]) if frame["type"] == "chat.message" else None

    clients = {"004": (customer, from_004), "002": (desk, from_002), "native": (native, from_native)}
    seen: dict[str, list] = {name: [] for name in clients}

    async def read(name):
        ws, message_of = clients[name]
        async for text in ws:
            if (message := message_of(json.loads(text))) is not None:
                seen[name].append(message)

    def send_frame(name: str, content: str) -> str:
        if name == "004":
            return json.dumps({"conversationId": conversation.pk, "chatType": 1, "content": content})
        if name == "002":
            return json.dumps({"type": "send_message", "session_id": conversation.pk, "content": content})
        data = {"conversation_id": conversation.pk, "content": content}
        return json.dumps({"type": "chat.send", "ref": content, "data": data})

    async def until(condition, what: str) -> None:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.02)  # a poll under the deadline above
        assert condition(), what

    readers = [asyncio.create_task(read(name)) for name in clients]
    try:
        sent = [(name, f"{name}-{i}") for i in range(2) for name in clients] + [("native", "last")]
        for name, content in sent:
            await clients[name][0].send(send_frame(name, content))
            own = seen[name]
            await until(lambda own=own, content=content: any(c == content for _, c in own), f"{name}: {content}")
        # Every message before "last" was published before it: a duplicate would have come first.
        await until(lambda: all(any(c == "last" for _, c in got) for got in seen.values()), "everyone sees 'last'")
    finally:
        for task in readers:
            task.cancel()
        for ws, _ in clients.values():
            await ws.close()

    stored = await sync_to_async(list)(Message.objects.order_by("seq").values_list("seq", "content"))
    assert [content for _, content in stored] == [content for _, content in sent]
    assert seen == {name: stored for name in clients}  # exactly once each, in seq order

"""
Seed 000's compatibility endpoint (``/compat/000/ws``, workspaces.compat) in process, over both
layers: the seed's flat frames run the native commands, members on either endpoint see each
change, and bad input gets the seed's ``{"type": "error", "message"}`` without a write or a close.
"""

from unittest import mock

import pytest
from asgiref.sync import sync_to_async

from realtime.errors import CloseCode, ErrorCode
from workspaces.models import Workspace

pytestmark = pytest.mark.any_database

PATH = "/compat/000/ws"


async def compat(connect, user):
    client = await connect(user=user, path=PATH, expect_welcome=False)
    assert client.connected
    return client


async def test_the_seed_commands_reach_native_members_and_back(connect, alice, bob):
    seed_alice = await compat(connect, alice)
    native_alice = await connect(user=alice)
    await seed_alice.assert_nothing()  # no welcome, no connected: the seed sends nothing on open

    await seed_alice.send({"type": "workspace.create", "name": "Plans", "settings": {"color": "red"}})
    created = await seed_alice.receive()
    assert created["type"] == "workspace.created" and created["name"] == "Plans" and created["version"] == 1
    assert (await native_alice.receive_type("workspace.created"))["data"]["id"] == created["id"]
    await seed_alice.assert_nothing()  # the broadcast is the answer: no ack besides

    reply = await native_alice.request("workspace.share", {"id": created["id"], "user_id": bob.pk, "role": "editor"})
    assert reply["type"] == "ack"
    shared = await seed_alice.receive()
    assert shared["type"] == "workspace.shared" and shared["user_id"] == bob.pk
    seed_bob = await compat(connect, bob)

    await seed_bob.send({"type": "workspace.update", "id": created["id"], "version": 1, "changes": {"name": "B"}})
    for client in (seed_alice, seed_bob):
        updated = await client.receive()
        assert (updated["type"], updated["id"], updated["name"], updated["version"]) == (
            "workspace.updated",
            created["id"],
            "B",
            2,
        )
    assert (await native_alice.receive_type("workspace.updated"))["data"]["version"] == 2

    second = (await native_alice.request("workspace.create", {"name": "Second"}, ref="2"))["data"]["workspace"]
    assert (await seed_alice.receive())["id"] == second["id"]
    await seed_alice.send({"type": "workspace.reorder", "ids": [second["id"], created["id"]]})
    assert await seed_alice.receive() == {"type": "workspace.reordered", "ids": [second["id"], created["id"]]}

    await seed_alice.send({"type": "workspace.delete", "id": created["id"]})
    assert await seed_alice.receive() == {"type": "workspace.deleted", "id": created["id"]}
    assert await seed_bob.receive() == {"type": "workspace.deleted", "id": created["id"]}
    assert (await native_alice.receive_type("workspace.deleted"))["data"] == {"id": created["id"]}


async def test_the_seed_errors(connect, alice, bob):
    client = await compat(connect, alice)
    await client.send_text("{not json")
    assert (await client.receive())["type"] == "error"
    await client.send({"type": "chat.send", "content": "hi"})
    assert await client.receive() == {
        "type": "error",
        "message": "unknown message type: chat.send",
        "code": ErrorCode.UNKNOWN_TYPE,
    }
    await client.send({"type": "workspace.create", "name": 7})
    invalid = await client.receive()
    assert invalid["type"] == "error" and invalid["code"] == ErrorCode.INVALID and "name" in invalid["details"]
    await client.send({"name": "no type"})
    assert (await client.receive())["code"] == ErrorCode.BAD_FRAME
    await client.send([1, 2])
    assert (await client.receive())["code"] == ErrorCode.BAD_FRAME
    await client.send({"type": "workspace.update", "id": 10**6, "version": 1, "changes": {"name": "x"}})
    assert (await client.receive())["code"] == ErrorCode.NOT_FOUND
    assert await sync_to_async(Workspace.objects.count)() == 0
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


async def test_a_handler_failure_is_an_error_frame_not_a_dropped_socket(connect, alice):
    client = await compat(connect, alice)
    with mock.patch("workspaces.services.create_workspace", side_effect=RuntimeError("bug")):
        await client.send({"type": "workspace.create", "name": "x"})
        failed = await client.receive()
    assert failed["type"] == "error" and failed["code"] == ErrorCode.SERVER_ERROR
    await client.send({"type": "workspace.create", "name": "after"})
    assert (await client.receive())["type"] == "workspace.created"


async def test_the_handshake_authenticates_as_natively(connect):
    client = await connect(path=PATH)  # no cookie, no token: refused at once, no auth frame to wait for
    error = await client.receive()
    assert error["type"] == "error" and error["code"] == ErrorCode.UNAUTHORIZED
    assert await client.receive_close() == CloseCode.UNAUTHORIZED
    bad = await connect(path=PATH, token="not-a-jwt")
    assert (await bad.receive())["code"] == ErrorCode.UNAUTHORIZED
    assert await bad.receive_close() == CloseCode.UNAUTHORIZED


@pytest.mark.parametrize("frame_type", ["auth", "workspace.list", "workspace.share", "task.subscribe"])
async def test_only_the_seed_types_exist_here(connect, alice, frame_type):
    client = await compat(connect, alice)
    await client.send({"type": frame_type, "token": "x", "id": 1})
    assert (await client.receive())["message"] == f"unknown message type: {frame_type}"


async def test_session_cookie_works_too(connect, alice, session_cookie):
    client = await connect(path=PATH, headers=[(b"cookie", await session_cookie(alice))])
    await client.send({"type": "workspace.create", "name": "cookie"})
    assert (await client.receive())["name"] == "cookie"

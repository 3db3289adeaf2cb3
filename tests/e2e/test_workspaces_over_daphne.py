"""Workspaces end to end: real clients on two Daphne processes sharing one Redis."""

import asyncio

import pytest
import websockets

from tests.e2e.helpers import login, next_of_type, request
from workspaces.models import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_share_and_update_cross_processes(daphnes, alice, bob):
    server_a, server_b = daphnes
    alice_token = await asyncio.to_thread(login, server_a, "alice", "alice-pass")
    bob_token = await asyncio.to_thread(login, server_b, "bob", "bob-pass")
    async with (
        websockets.connect(f"{server_a.url}?token={alice_token}") as alice_ws,
        websockets.connect(f"{server_b.url}?token={bob_token}") as bob_ws,
    ):
        await next_of_type(alice_ws, "welcome")
        await next_of_type(bob_ws, "welcome")
        created = (await request(alice_ws, "workspace.create", {"name": "Cross"}, "1"))["data"]["workspace"]
        await request(alice_ws, "workspace.share", {"id": created["id"], "user_id": bob.pk, "role": "editor"}, "2")
        shared = await next_of_type(bob_ws, "workspace.shared")
        assert shared["data"]["workspace"]["id"] == created["id"]

        reply = await request(
            bob_ws, "workspace.update", {"id": created["id"], "version": 1, "changes": {"name": "Bob was here"}}, "3"
        )
        assert reply["type"] == "ack"
        updated = await next_of_type(alice_ws, "workspace.updated")
        assert (updated["data"]["name"], updated["data"]["version"]) == ("Bob was here", 2)
        stale = await request(
            alice_ws, "workspace.update", {"id": created["id"], "version": 1, "changes": {"name": "lost"}}, "4"
        )
        assert stale["error"]["code"] == "conflict"

    stored = await asyncio.to_thread(lambda: Workspace.objects.values_list("name", "version").get())
    assert stored == ("Bob was here", 2)

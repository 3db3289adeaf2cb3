"""workspace.list and GET /api/workspaces/ page with limit and cursor (docs/protocol.md, "Lists")."""

import orjson
import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from workspaces import services
from workspaces.selectors import workspaces_for

SETTINGS_30KB = {"blob": "x" * 30_000}


async def list_every_page(client, data=None) -> list[dict]:
    """Every ``workspace.list`` page from the first to ``next_cursor`` null; each reply checked."""
    pages, cursor = [], None
    while True:
        reply = await client.request("workspace.list", {**(data or {}), "cursor": cursor}, ref=f"p{len(pages)}")
        assert reply["type"] == "ack", reply
        page = reply["data"]
        assert set(page) == {"workspaces", "next_cursor", "has_more"}
        assert page["has_more"] == (page["next_cursor"] is not None)
        assert page["workspaces"], "a page before the end is never empty"
        pages.append(page["workspaces"])
        if page["next_cursor"] is None:
            return pages
        cursor = page["next_cursor"]


async def test_a_user_with_50_workspaces_of_30kb_settings_gets_every_one_in_pages(connect, alice, settings):
    # 50 x 30 KB is 1.5 MB: one reply of them all is over MAX_FRAME_BYTES (1,000,000).
    created = [
        await sync_to_async(services.create_workspace)(owner=alice, name=f"w{n}", settings=SETTINGS_30KB)
        for n in range(50)
    ]
    client = await connect(user=alice)
    pages = await list_every_page(client)
    assert [w["id"] for page in pages for w in page] == [w.pk for w in created]
    assert all(w["settings"] == SETTINGS_30KB for page in pages for w in page)
    assert len(pages) > 1  # the default limit (50) was cut by size
    limit = settings.REALTIME.get("MAX_FRAME_BYTES", 1_000_000)
    assert all(len(orjson.dumps({"type": "ack", "ref": "p0", "data": {"workspaces": page}})) < limit for page in pages)


async def test_limit_pages_the_users_order_each_workspace_once(connect, alice):
    created = [await sync_to_async(services.create_workspace)(owner=alice, name=f"w{n}") for n in range(7)]
    order = [w.pk for w in reversed(created)]
    await sync_to_async(services.reorder_workspaces)(user=alice, ids=order)
    client = await connect(user=alice)
    pages = await list_every_page(client, {"limit": 3})
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [w["id"] for page in pages for w in page] == order


async def test_the_default_page_of_a_few_workspaces_is_the_whole_list(connect, alice):
    created = await sync_to_async(services.create_workspace)(owner=alice, name="only")
    client = await connect(user=alice)
    reply = await client.request("workspace.list")
    assert reply["data"] == {"workspaces": [reply["data"]["workspaces"][0]], "next_cursor": None, "has_more": False}
    assert reply["data"]["workspaces"][0]["id"] == created.pk


@pytest.mark.parametrize(
    "data",
    [
        {"cursor": "not a cursor"},
        {"cursor": "W10"},  # base64url of "[]"
        {"cursor": 12},
        {"cursor": "x" * 1000},
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
    ],
)
async def test_a_malformed_cursor_or_limit_is_invalid(connect, alice, data):
    await sync_to_async(services.create_workspace)(owner=alice, name="w")
    client = await connect(user=alice)
    reply = await client.request("workspace.list", data)
    assert reply["error"]["code"] == "invalid"
    assert set(reply["error"]["details"]) == set(data)


async def test_a_cursor_of_another_list_is_invalid(connect, alice, bob):
    from chat.models import Conversation, Membership

    def two_conversations():
        for n in range(2):
            conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title=f"c{n}")
            Membership.objects.create(conversation=conversation, user=alice)

    await sync_to_async(two_conversations)()
    client = await connect(user=alice)
    foreign = (await client.request("chat.conversations", {"limit": 1}))["data"]["next_cursor"]
    assert foreign is not None
    reply = await client.request("workspace.list", {"cursor": foreign}, ref="r2")
    assert reply["error"]["code"] == "invalid" and "cursor" in reply["error"]["details"]


@pytest.mark.django_db
def test_rest_list_pages_like_the_socket(alice):
    created = [services.create_workspace(owner=alice, name=f"w{n}") for n in range(5)]
    client = APIClient()
    client.force_authenticate(alice)
    seen, url = [], "/api/workspaces/?limit=2"
    while True:
        page = client.get(url).json()
        seen += [w["id"] for w in page["workspaces"]]
        if page["next_cursor"] is None:
            assert page["has_more"] is False
            break
        url = f"/api/workspaces/?limit=2&cursor={page['next_cursor']}"
    assert seen == [w.pk for w in created] == [w.pk for w in workspaces_for(alice)]
    refused = client.get("/api/workspaces/?cursor=bogus")
    assert refused.status_code == 400 and refused.json()["error"]["details"]["cursor"]

"""workspace.* over the socket (docs/protocol.md, "Workspaces"), on the in-memory and Redis layers."""

import pytest
from asgiref.sync import sync_to_async

from workspaces import services
from workspaces.models import Workspace


async def test_create_acks_then_reaches_every_tab_of_the_owner_only(connect, alice, bob):
    tab1, tab2, other = await connect(user=alice), await connect(user=alice), await connect(user=bob)
    reply = await tab1.request("workspace.create", {"name": "Plans", "settings": {"theme": "dark"}})
    created = reply["data"]["workspace"]
    assert (created["name"], created["version"], created["owner_id"]) == ("Plans", 1, alice.pk)
    assert created["members"] == [
        {"user_id": alice.pk, "username": "alice", "name": "alice", "is_staff": False, "role": "owner"}
    ]
    assert (await tab1.receive_type("workspace.created"))["data"] == created
    assert (await tab2.receive_type("workspace.created"))["data"] == created
    await other.assert_nothing()


async def test_list_is_in_the_users_order(connect, alice):
    first = await sync_to_async(services.create_workspace)(owner=alice, name="first")
    second = await sync_to_async(services.create_workspace)(owner=alice, name="second")
    await sync_to_async(services.reorder_workspaces)(user=alice, ids=[second.pk, first.pk])
    client = await connect(user=alice)
    reply = await client.request("workspace.list")
    assert [w["name"] for w in reply["data"]["workspaces"]] == ["second", "first"]


async def test_update_reaches_every_member_and_no_one_else(connect, alice, bob, carol, make_user, shared_workspace):
    dora = await sync_to_async(make_user)("dora")
    editor, owner, viewer, stranger = [await connect(user=u) for u in (bob, alice, carol, dora)]
    reply = await editor.request(
        "workspace.update", {"id": shared_workspace.pk, "version": 1, "changes": {"name": "Renamed"}}
    )
    assert reply["data"]["workspace"]["version"] == 2
    for client in (editor, owner, viewer):
        event = await client.receive_type("workspace.updated")
        assert (event["data"]["name"], event["data"]["version"]) == ("Renamed", 2)
    await stranger.assert_nothing()


async def test_stale_version_is_a_conflict_carrying_the_current_workspace(connect, alice, bob, shared_workspace):
    await sync_to_async(services.update_workspace)(
        actor=bob, workspace_id=shared_workspace.pk, version=1, changes={"name": "Bob's"}
    )
    client = await connect(user=alice)
    reply = await client.request(
        "workspace.update", {"id": shared_workspace.pk, "version": 1, "changes": {"name": "Alice's"}}
    )
    assert reply["error"]["code"] == "conflict"
    assert reply["error"]["details"]["workspace"]["name"] == "Bob's"
    assert reply["error"]["details"]["workspace"]["version"] == 2
    assert (await sync_to_async(Workspace.objects.get)(pk=shared_workspace.pk)).name == "Bob's"


@pytest.mark.parametrize(
    ("frame_type", "data", "code", "field"),
    [
        ("workspace.create", {"name": "   "}, "invalid", "name"),
        ("workspace.create", {"name": "x" * 201}, "invalid", "name"),
        ("workspace.create", {"name": "ok", "settings": [1, 2]}, "invalid", "settings"),
        ("workspace.update", {"id": "WS", "version": 1, "changes": {"name": "x"}}, "invalid", "id"),
        ("workspace.update", {"version": 1, "changes": {"owner_id": 3}}, "invalid", "changes"),
        ("workspace.update", {"version": 1, "changes": {}}, "invalid", "changes"),
        ("workspace.update", {"version": 0, "changes": {"name": "x"}}, "invalid", "version"),
        ("workspace.reorder", {"ids": "1,2"}, "invalid", "ids"),
        ("workspace.share", {"user_id": 2, "role": "owner"}, "invalid", "role"),
    ],
)
async def test_validation_errors_name_the_field(connect, alice, shared_workspace, frame_type, data, code, field):
    client = await connect(user=alice)
    data = {"id": shared_workspace.pk, **data} if frame_type != "workspace.create" else data
    reply = await client.request(frame_type, data)
    assert reply["error"]["code"] == code
    assert field in reply["error"]["details"]
    assert (await sync_to_async(Workspace.objects.get)(pk=shared_workspace.pk)).version == 1


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "settings_value",
    [
        {"key\x00": 1},  # PostgreSQL's jsonb refuses NUL: it was a server error there
        {"key": "value\x00"},
        {"key": [{"deep": ["\x00"]}]},
        {"key": nested(300)},  # deeper than orjson encodes: it was a server error everywhere
    ],
)
async def test_settings_that_cannot_be_stored_are_invalid_and_store_nothing(connect, alice, settings_value):
    client = await connect(user=alice)
    reply = await client.request("workspace.create", {"name": "ok", "settings": settings_value})
    assert reply["error"]["code"] == "invalid"
    assert "settings" in reply["error"]["details"]
    assert not await sync_to_async(Workspace.objects.exists)()


async def test_roles_are_enforced(connect, bob, carol, make_user, shared_workspace):
    viewer, editor = await connect(user=carol), await connect(user=bob)
    stranger = await connect(user=await sync_to_async(make_user)("dora"))
    update = {"id": shared_workspace.pk, "version": 1, "changes": {"name": "x"}}
    assert (await viewer.request("workspace.update", update))["error"]["code"] == "forbidden"
    assert (await editor.request("workspace.delete", {"id": shared_workspace.pk}))["error"]["code"] == "forbidden"
    assert (
        await editor.request("workspace.share", {"id": shared_workspace.pk, "user_id": carol.pk, "role": "editor"})
    )["error"]["code"] == "forbidden"
    missing = await stranger.request("workspace.update", update)
    absent = await stranger.request("workspace.update", {**update, "id": 10**9})
    assert missing["error"] == absent["error"] == {"code": "not_found", "message": "Workspace not found"}


async def test_reorder_goes_only_to_the_users_own_connections(connect, alice, bob, shared_workspace):
    mine = await sync_to_async(services.create_workspace)(owner=bob, name="mine")
    bob1, bob2, owner = await connect(user=bob), await connect(user=bob), await connect(user=alice)
    ids = [mine.pk, shared_workspace.pk]
    assert (await bob1.request("workspace.reorder", {"ids": ids}))["data"] == {"ids": ids}
    assert (await bob2.receive_type("workspace.reordered"))["data"] == {"ids": ids}
    await owner.assert_nothing()
    bad = await bob1.request("workspace.reorder", {"ids": [mine.pk]}, ref="r2")
    assert bad["error"]["code"] == "invalid"


async def test_share_tells_the_newcomer_once_and_later_updates_reach_them(connect, alice, make_user, shared_workspace):
    dora = await sync_to_async(make_user)("dora")
    owner, newcomer = await connect(user=alice), await connect(user=dora)
    await owner.request("workspace.share", {"id": shared_workspace.pk, "user_id": dora.pk, "role": "viewer"})
    shared = await newcomer.receive_type("workspace.shared")
    assert shared["data"]["user_id"] == dora.pk and shared["data"]["role"] == "viewer"
    member = {"user_id": dora.pk, "username": "dora", "name": "dora", "is_staff": False, "role": "viewer"}
    assert member in shared["data"]["workspace"]["members"]
    await newcomer.assert_nothing()  # exactly once
    await owner.request(
        "workspace.update", {"id": shared_workspace.pk, "version": 1, "changes": {"description": "new"}}, ref="r2"
    )
    assert (await newcomer.receive_type("workspace.updated"))["data"]["description"] == "new"


async def test_unshare_and_delete_tell_members_then_stop_their_events(connect, alice, bob, carol, shared_workspace):
    owner, removed, staying = await connect(user=alice), await connect(user=carol), await connect(user=bob)
    await owner.request("workspace.unshare", {"id": shared_workspace.pk, "user_id": carol.pk})
    for client in (removed, staying):
        assert (await client.receive_type("workspace.unshared"))["data"] == {
            "id": shared_workspace.pk,
            "user_id": carol.pk,
        }
    await owner.request("workspace.delete", {"id": shared_workspace.pk}, ref="r2")
    assert (await staying.receive_type("workspace.deleted"))["data"] == {"id": shared_workspace.pk}
    await removed.assert_nothing()
    assert not await sync_to_async(Workspace.objects.filter(pk=shared_workspace.pk).exists)()


async def test_a_change_made_outside_the_socket_is_pushed_the_same_way(connect, alice, bob, shared_workspace):
    client = await connect(user=bob)
    await sync_to_async(services.update_workspace)(
        actor=alice, workspace_id=shared_workspace.pk, version=1, changes={"name": "From REST"}
    )
    assert (await client.receive_type("workspace.updated"))["data"]["name"] == "From REST"

"""The connection registry and presence, over the in-memory layer and Redis."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from realtime.delivery.connection_registry import ConnectionRecord, get_registry
from realtime.delivery.presence import online_user_ids, presence_of
from realtime.delivery.process import get_process
from realtime.tests.testapp.models import Room, RoomMember


async def room_of(*users, title: str = "p") -> Room:
    """A room of the test app with ``users`` as its members."""
    room = await Room.objects.acreate(title=title)
    await RoomMember.objects.abulk_create([RoomMember(room=room, user=user) for user in users])
    return room


@pytest.fixture
async def shared_room(alice, bob):
    """A room of alice and bob: the test app announces a user's presence to the members of their rooms."""
    return await room_of(alice, bob)


def record(connection_id: str, user_id: int) -> ConnectionRecord:
    return ConnectionRecord(
        connection_id=connection_id,
        user_id=user_id,
        username=f"u{user_id}",
        ip="10.0.0.1",
        user_agent="test",
        connected_at=int(time.time() * 1000),
        process="p1",
    )


async def test_first_connection_and_last_disconnect_are_announced_to_co_members(
    connect, alice, bob, carol, shared_room
):
    bob_client = await connect(user=bob)
    carol_client = await connect(user=carol)  # shares no room with alice
    first = await connect(user=alice)
    online = await bob_client.receive_type("presence.changed")
    assert online["data"] == {"user_id": alice.pk, "online": True, "last_seen": None}
    second = await connect(user=alice)  # already online: no second announcement
    await second.communicator.disconnect()
    await bob_client.assert_nothing()
    assert (await sync_to_async(presence_of)([alice.pk]))[alice.pk]["online"] is True
    before = int(time.time() * 1000)
    await first.communicator.disconnect()
    offline = await bob_client.receive_type("presence.changed")
    assert offline["data"]["online"] is False
    assert offline["data"]["last_seen"] >= before
    assert (await sync_to_async(presence_of)([alice.pk]))[alice.pk] == {
        "online": False,
        "last_seen": offline["data"]["last_seen"],
    }
    await carol_client.assert_nothing()


async def test_a_first_connection_does_not_hear_its_own_announcement(connect, alice, bob, shared_room):
    # It subscribes its groups just after announcing itself: whichever of that and the hub's
    # read of the announcement comes first, the announcement is for the others.
    bob_client = await connect(user=bob)
    for _ in range(3):
        alice_client = await connect(user=alice)
        assert (await bob_client.receive_type("presence.changed"))["data"]["online"] is True
        await alice_client.assert_nothing()
        await alice_client.communicator.disconnect()
        assert (await bob_client.receive_type("presence.changed"))["data"]["online"] is False


async def test_a_co_member_of_many_rooms_hears_each_change_once(connect, alice, bob, shared_room):
    for i in range(3):  # three more rooms of alice and bob: one announcement, not four
        await room_of(alice, bob, title=f"more {i}")
    bob_client = await connect(user=bob)
    alice_client = await connect(user=alice)
    assert (await bob_client.receive_type("presence.changed"))["data"]["online"] is True
    await bob_client.assert_nothing()
    await alice_client.communicator.disconnect()
    assert (await bob_client.receive_type("presence.changed"))["data"]["online"] is False
    await bob_client.assert_nothing()


async def test_registry_lists_open_connections_with_their_details(connect, alice, bob):
    await connect(user=alice, headers=[(b"user-agent", b"pytest-agent")])
    process = await get_process()
    (listed,) = await sync_to_async(get_registry().connections_of)(alice.pk)
    assert listed.user_agent == "pytest-agent"
    assert listed.process == process.id
    assert listed.username == "alice"
    assert await sync_to_async(online_user_ids)() == [alice.pk]


async def test_records_of_a_dead_process_expire_and_the_sweep_reports_them_once(channel_layer, settings):
    settings.REALTIME = {**settings.REALTIME, "REGISTRY_TTL_S": 1}
    registry = get_registry()
    assert (await registry.register(record("c1", 7))).came_online
    second = await registry.register(record("c2", 7))
    assert (second.user_connections, second.came_online) == (2, False)
    await registry.register(record("c3", 8))
    await registry.refresh([record("c3", 8)])  # user 8's process lives on ...
    assert await registry.sweep() == []
    await asyncio.sleep(0.6)
    await registry.refresh([record("c3", 8)])
    await asyncio.sleep(0.6)
    # ... user 7's process died 1.2 s ago without unregistering anything.
    ((user_id, last_seen),) = await registry.sweep()
    assert user_id == 7 and abs(last_seen - time.time() * 1000) < 1000
    assert await registry.sweep() == []
    assert await sync_to_async(registry.online_user_ids)() == [8]
    presence = await sync_to_async(registry.presence)([7, 8])
    assert presence[7]["online"] is False and presence[7]["last_seen"] is not None
    assert presence[8] == {"online": True, "last_seen": None}
    await registry.aclose()


@pytest.mark.parametrize("channel_layer", ["redis"], indirect=True)
async def test_a_refresh_restores_records_redis_lost_with_every_detail(channel_layer):
    registry = get_registry()
    records = [record(f"c{i}", 20 + i % 3) for i in range(5)]  # three users, two with two connections
    for each in records:
        await registry.register(each)
    client = registry._aclient()
    await client.delete(*[key async for key in client.scan_iter(f"{registry.prefix}:*")])  # a restart lost them
    await registry.refresh(records)
    for user_id in (20, 21, 22):
        listed = await sync_to_async(registry.connections_of)(user_id)
        assert sorted(listed, key=lambda r: r.connection_id) == [r for r in records if r.user_id == user_id]
    assert await sync_to_async(registry.online_user_ids)() == [20, 21, 22]
    assert await registry.sweep() == []
    await registry.aclose()


async def test_unregister_reports_offline_only_for_the_last_connection(channel_layer):
    registry = get_registry()
    await registry.register(record("c1", 9))
    await registry.register(record("c2", 9))
    assert await registry.unregister(record("c1", 9)) is None
    assert abs(await registry.unregister(record("c2", 9)) - time.time() * 1000) < 1000
    assert await registry.unregister(record("c2", 9)) is None  # a repeat is not a second transition
    await registry.aclose()


async def test_typing_reaches_other_viewers_not_the_sender(connect, alice, bob, shared_room):
    # exclude_connection: the event goes to the viewers group but the sending connection.
    data = {"room_id": shared_room.pk}
    bob_viewing, bob_elsewhere = await connect(user=bob), await connect(user=bob)
    alice_client = await connect(user=alice)
    await bob_viewing.request("lobby.join", data)
    await alice_client.request("lobby.join", data)
    await alice_client.request("lobby.typing", data)
    typing = await bob_viewing.receive_type("lobby.typing")
    assert typing["data"] == {"room_id": shared_room.pk, "user_id": alice.pk, "name": "alice"}
    await alice_client.assert_nothing()
    await bob_elsewhere.receive_type("presence.changed")  # alice came online; then nothing more
    await bob_elsewhere.assert_nothing()


@pytest.mark.parametrize("channel_layer", ["redis"], indirect=True)
async def test_a_user_drained_and_back_within_the_grace_is_never_announced_offline(connect, alice, bob, carol):
    await room_of(alice, bob, carol)
    bob_client = await connect(user=bob)
    alice_client = await connect(user=alice)
    assert (await bob_client.receive_type("presence.changed"))["data"] == {
        "user_id": alice.pk,
        "online": True,
        "last_seen": None,
    }
    process = await get_process()
    process.start_draining()  # SIGTERM: the drain closes alice's connection (1001)
    await alice_client.communicator.disconnect()
    await process.unregister_drained()
    process.draining = process.hub.leaving = False  # alice reconnects to the successor
    assert (await sync_to_async(presence_of)([alice.pk]))[alice.pk]["online"] is True
    await connect(user=alice)
    await connect(user=carol)
    # Had alice been announced offline and online again, those would reach bob before carol's.
    assert (await bob_client.receive_type("presence.changed"))["data"]["user_id"] == carol.pk


@pytest.mark.parametrize("channel_layer", ["redis"], indirect=True)
async def test_a_user_drained_and_not_back_goes_offline_when_the_grace_ends(channel_layer):
    registry = get_registry()
    await registry.register(record("c1", 31))
    assert await registry.unregister_many([record("c1", 31)], grace_s=0.3) == []
    assert (await sync_to_async(registry.presence)([31]))[31]["online"] is True
    assert await registry.sweep() == []
    deadline = time.monotonic() + 5
    while not (gone := await registry.sweep()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [user_id for user_id, _ in gone] == [31]
    assert await registry.sweep() == []
    assert (await sync_to_async(registry.presence)([31]))[31]["online"] is False
    # A later connection of theirs is a new "came online".
    assert (await registry.register(record("c2", 31))).came_online
    await registry.aclose()


@pytest.mark.parametrize("channel_layer", ["redis"], indirect=True)
async def test_a_connection_within_the_grace_is_not_a_new_came_online(channel_layer):
    registry = get_registry()
    await registry.register(record("c1", 32))
    await registry.unregister_many([record("c1", 32)], grace_s=30)
    back = await registry.register(record("c2", 32))
    assert (back.user_connections, back.came_online) == (1, False)
    assert await registry.unregister(record("c2", 32)) is not None  # an ordinary close: offline at once
    await registry.aclose()


@pytest.mark.parametrize("channel_layer", ["redis"], indirect=True)
async def test_a_drain_unregisters_together_and_only_users_left_with_nothing_go_offline(channel_layer):
    registry = get_registry()
    drained = [record("d1", 33), record("d2", 33), record("d3", 34)]
    for r in [*drained, record("elsewhere", 34)]:  # user 34 also has a connection on another process
        await registry.register(r)
    gone = await registry.unregister_many(drained, grace_s=0)
    assert [user_id for user_id, _ in gone] == [33]
    assert {u: p["online"] for u, p in (await sync_to_async(registry.presence)([33, 34])).items()} == {
        33: False,
        34: True,
    }
    assert await registry.unregister_many(drained, grace_s=0) == []  # unregistered once
    await registry.aclose()


@pytest.mark.parametrize("channel_layer", ["redis"], indirect=True)
async def test_connects_registered_together_come_online_once_per_user(channel_layer):
    # Registered at once, their commands share pipelines (realtime.delivery.coalesce): each
    # still gets its own answer, and each user comes online exactly once.
    registry = get_registry()
    records = [record(f"c{i}", 40 + i % 4) for i in range(40)]
    answers = await asyncio.gather(*(registry.register(r) for r in records))
    for user_id in range(40, 44):
        mine = [a for r, a in zip(records, answers, strict=True) if r.user_id == user_id]
        assert [a.came_online for a in mine] == [True] + [False] * 9
        assert sorted(a.user_connections for a in mine) == list(range(1, 11))
    gone = await asyncio.gather(*(registry.unregister(r) for r in records))
    assert sum(last_seen is not None for last_seen in gone) == 4
    await registry.aclose()

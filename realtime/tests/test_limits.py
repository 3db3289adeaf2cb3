"""Per-connection limits of /ws/ (docs/protocol.md, "Limits"), over the in-memory layer and Redis."""

import asyncio
import threading
import time

from realtime.consumer.limits import TokenBucket
from realtime.delivery.process import get_process
from realtime.errors import CloseCode, ErrorCode
from realtime.tests.testapp.models import Room, RoomMember


async def client_subscriptions(user) -> set[str]:
    """The groups of ``user``'s one open connection in this process."""
    process = await get_process()
    (conn,) = [c for c in process.connections.values() if c.user and c.user.pk == user.pk]
    return conn.subscriptions


def override(settings, **values):
    settings.REALTIME = {**settings.REALTIME, **values}


async def room_of(*users, title: str = "r") -> Room:
    """A room of the test app with ``users`` as its members."""
    room = await Room.objects.acreate(title=title)
    await RoomMember.objects.abulk_create([RoomMember(room=room, user=user) for user in users])
    return room


def test_token_bucket_allows_bursts_then_refills_at_the_rate():
    now = [0.0]
    bucket = TokenBucket(per_min=60, capacity=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == 1000  # one token per second: the next in 1 s
    now[0] = 0.5
    assert bucket.take() == 500
    now[0] = 1.0
    assert bucket.take() == 0


async def test_frames_over_the_rate_get_rate_limited_then_4429(connect, alice, settings):
    override(settings, RATE_PER_MIN=6, RATE_BURST=3, RATE_ABUSE_FRAMES=5)
    client = await connect(user=alice)  # the welcome costs no token: only client frames count
    for i in range(3):
        await client.send({"type": "ping", "ref": i})
        assert (await client.receive())["type"] == "pong"
    await client.send({"type": "ping", "ref": "over"})
    refused = await client.receive()
    assert refused["error"]["code"] == ErrorCode.RATE_LIMITED
    assert refused["ref"] == "over"  # the client can fail the command it waits on
    assert 9000 < refused["error"]["details"]["retry_after_ms"] <= 10000
    for _ in range(3):
        await client.send({"type": "ping"})
        assert (await client.receive())["error"]["code"] == ErrorCode.RATE_LIMITED
    await client.send({"type": "ping"})  # the 5th refusal within the window: abuse
    assert (await client.receive())["error"]["code"] == ErrorCode.RATE_LIMITED
    assert await client.receive_close() == CloseCode.RATE_LIMITED


async def test_typing_has_its_own_stricter_limit(connect, alice, bob, settings):
    override(settings, TYPE_RATE_LIMITS={"lobby.typing": {"per_min": 1, "burst": 2}})
    room = await room_of(alice, bob)
    client = await connect(user=alice)
    data = {"room_id": room.pk}
    assert (await client.request("lobby.typing", data, ref="1"))["type"] == "ack"
    assert (await client.request("lobby.typing", data, ref="2"))["type"] == "ack"
    refused = await client.request("lobby.typing", data, ref="3")
    assert refused["error"]["code"] == ErrorCode.RATE_LIMITED
    assert refused["error"]["details"]["limit"] == "lobby.typing"
    # Other frames are not held back by the typing bucket.
    assert (await client.request("lobby.join", data, ref="4"))["type"] == "ack"


async def test_connections_per_user_are_capped_with_1013(connect, alice, bob, settings):
    override(settings, MAX_CONNECTIONS_PER_USER=2)
    await connect(user=alice)
    await connect(user=alice)
    third = await connect(user=alice, expect_welcome=False)
    refused = await third.receive()
    assert refused["error"]["code"] == ErrorCode.LIMIT_EXCEEDED
    assert refused["error"]["details"] == {"limit": "MAX_CONNECTIONS_PER_USER"}
    assert await third.receive_close() == CloseCode.TRY_AGAIN_LATER
    # Another user is not affected, and a slot freed by a disconnect can be taken again.
    assert (await connect(user=bob)).welcome["type"] == "welcome"
    await third.communicator.disconnect()


async def test_a_freed_user_slot_can_be_used_again(connect, alice, settings):
    override(settings, MAX_CONNECTIONS_PER_USER=1)
    first = await connect(user=alice)
    await first.communicator.disconnect()
    assert (await connect(user=alice)).welcome["type"] == "welcome"


async def test_connections_per_process_are_capped_with_1013(connect, alice, bob, settings):
    override(settings, MAX_CONNECTIONS_PER_PROCESS=1)
    await connect(user=alice)
    second = await connect(user=bob, expect_welcome=False)
    assert (await second.receive())["error"]["details"] == {"limit": "MAX_CONNECTIONS_PER_PROCESS"}
    assert await second.receive_close() == CloseCode.TRY_AGAIN_LATER


async def test_new_connections_per_ip_are_capped_with_1013_after_a_delay(connect, alice, settings):
    override(settings, CONNECTIONS_PER_IP_PER_MIN=2, CONNECT_REFUSAL_DELAY_S=0.5)
    await connect(user=alice)
    await connect(user=alice)
    started = time.monotonic()
    third = await connect(user=alice, expect_welcome=False)
    assert (await third.receive())["error"]["details"] == {"limit": "CONNECTIONS_PER_IP_PER_MIN"}
    assert await third.receive_close() == CloseCode.TRY_AGAIN_LATER
    assert time.monotonic() - started >= 0.5  # a reconnect loop goes at the refusal's pace


async def test_new_connections_per_ip_per_second_are_capped_too(connect, alice, settings):
    override(settings, CONNECTIONS_PER_IP_PER_S=1, CONNECT_REFUSAL_DELAY_S=0)
    # Three quick connections span at most two seconds: two of them share one, and the later is refused.
    for _ in range(3):
        client = await connect(user=alice, expect_welcome=False)
        frame = await client.receive()
        if frame["type"] == "error":
            break
    assert frame["error"]["details"] == {"limit": "CONNECTIONS_PER_IP_PER_S"}
    assert await client.receive_close() == CloseCode.TRY_AGAIN_LATER


async def test_subscriptions_per_connection_are_capped(connect, alice, settings):
    rooms = [await Room.objects.acreate(title=str(i)) for i in range(2)]
    client = await connect(user=alice)
    for room in rooms:  # membership after connecting: no session groups yet
        await RoomMember.objects.acreate(user=alice, room=room)
    # A join asks for two groups (the room and its viewers); the user's and everyone's are the server's.
    override(settings, MAX_SUBSCRIPTIONS=2)
    assert (await client.request("lobby.join", {"room_id": rooms[0].pk}, ref="a"))["type"] == "ack"
    refused = await client.request("lobby.join", {"room_id": rooms[1].pk}, ref="b")
    assert refused["error"]["code"] == ErrorCode.LIMIT_EXCEEDED
    assert refused["error"]["details"] == {"limit": "MAX_SUBSCRIPTIONS"}
    # The refused join subscribed nothing, and the connection stays usable.
    await client.send({"type": "ping", "ref": "p"})
    assert (await client.receive())["type"] == "pong"
    assert len(await client_subscriptions(alice)) == 4


async def test_a_member_of_more_rooms_than_the_cap_follows_them_all_and_can_still_join(connect, alice, settings):
    # Found by bench/floods.py: a member of 2,000 conversations was refused every chat.join.
    rooms = [await room_of(alice, title=str(i)) for i in range(5)]
    override(settings, MAX_SUBSCRIPTIONS=1)  # one viewers group
    client = await connect(user=alice)
    assert len(await client_subscriptions(alice)) == 7  # the user's group, everyone's and the five rooms
    assert (await client.request("lobby.join", {"room_id": rooms[4].pk}))["type"] == "ack"
    refused = await client.request("lobby.join", {"room_id": rooms[3].pk})
    assert refused["error"]["details"] == {"limit": "MAX_SUBSCRIPTIONS"}


async def test_handshakes_beyond_the_bound_are_refused_at_once_until_one_finishes(connect, alice, bob, settings):
    from realtime import registry
    from realtime.consumer.connect_rate import Handshake

    override(settings, MAX_HANDSHAKES_IN_PROGRESS=1, CONNECT_REFUSAL_DELAY_S=5)
    release = threading.Event()
    read_groups = registry.groups_for_session

    def held_groups(user):  # alice's session start waits here: her handshake stays in progress
        if user.pk == alice.pk:
            release.wait(10)
        return read_groups(user)

    registry.groups_for_session = held_groups
    try:
        held = await connect(user=alice, expect_welcome=False)
        deadline = time.monotonic() + 5
        while Handshake.in_progress == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        refused = await connect(user=bob, expect_welcome=False)
        assert (await refused.receive())["error"]["details"] == {"limit": "MAX_HANDSHAKES_IN_PROGRESS"}
        assert await refused.receive_close() == CloseCode.TRY_AGAIN_LATER
        assert time.monotonic() - started < 5  # not held back like a reconnect loop's refusal
        release.set()
        assert (await held.receive_type("welcome", timeout=5))["data"]["user"]["id"] == alice.pk
        # Finished handshakes are no longer counted: the next client gets in.
        again = await connect(user=bob)
        assert again.welcome["data"]["user"]["id"] == bob.pk
        assert Handshake.in_progress == 0
    finally:
        registry.groups_for_session = read_groups
        release.set()

"""Generic rooms over the socket (room.join, room.leave, room.publish) and server pushes, on both channel layers."""

import pytest
from asgiref.sync import sync_to_async

from realtime.errors import NotFound
from rooms import services

pytestmark = pytest.mark.django_db(transaction=True)


async def test_members_of_a_room_receive_what_one_publishes_until_they_leave(connect, alice, bob):
    alice_client, bob_client = await connect(user=alice), await connect(user=bob)
    for client in (alice_client, bob_client):
        assert await client.request("room.join", {"room": "game:7"}) == {
            "type": "ack",
            "ref": "r1",
            "data": {"room": "game:7"},
        }

    reply = await alice_client.request("room.publish", {"room": "game:7", "event": "move", "data": {"x": 1}})
    assert reply["data"] == {"room": "game:7", "event": "move"}
    expected = {
        "room": "game:7",
        "event": "move",
        "data": {"x": 1},
        "from": {"id": alice.pk, "name": "alice", "is_staff": False},
        "connection_id": alice_client.welcome["data"]["connection_id"],
    }
    # The sender's own connection receives it too (it can tell its echo by connection_id).
    assert (await bob_client.receive_type("room.message"))["data"] == expected
    assert (await alice_client.receive_type("room.message"))["data"] == expected

    assert (await bob_client.request("room.leave", {"room": "game:7"}, ref="l"))["data"] == {"room": "game:7"}
    await alice_client.request("room.publish", {"room": "game:7", "event": "move"}, ref="p2")
    assert (await alice_client.receive_type("room.message"))["data"]["data"] is None
    await bob_client.assert_nothing()


async def test_namespace_rules_decide_who_joins_and_publishes(connect, settings, alice, bob, make_user):
    settings.REALTIME = {**settings.REALTIME, "MAX_SUBSCRIPTIONS": 1}
    staff = await sync_to_async(make_user)("agent", is_staff=True)
    alice_client, bob_client, staff_client = (
        await connect(user=alice),
        await connect(user=bob),
        await connect(user=staff),
    )

    def code(reply):
        return reply["error"]["code"] if reply["type"] == "error" else "ack"

    # game:* publishes for its members only: bob has not joined.
    assert code(await alice_client.request("room.join", {"room": "game:1"})) == "ack"
    assert code(await bob_client.request("room.publish", {"room": "game:1", "event": "move"})) == "forbidden"
    assert code(await alice_client.request("room.join", {"room": "nowhere"})) == "not_found"
    assert code(await alice_client.request("room.publish", {"room": "nowhere", "event": "x"})) == "not_found"
    assert code(await alice_client.request("room.join", {"room": "a b"})) == "invalid"
    assert code(await alice_client.request("room.join", {"room": 5})) == "invalid"
    assert code(await alice_client.request("room.publish", {"room": "game:1", "event": "a b"})) == "invalid"
    # A client-joined room counts against MAX_SUBSCRIPTIONS (1 here).
    assert code(await alice_client.request("room.join", {"room": "game:2"})) == "limit_exceeded"

    # announcements: anyone signed in joins, only staff publish (joined or not).
    assert code(await bob_client.request("room.join", {"room": "announcements"})) == "ack"
    assert code(await bob_client.request("room.publish", {"room": "announcements", "event": "news"})) == "forbidden"
    await bob_client.assert_nothing()
    assert code(await staff_client.request("room.publish", {"room": "announcements", "event": "news"})) == "ack"
    assert (await bob_client.receive_type("room.message"))["data"]["from"]["is_staff"] is True


async def test_except_self_leaves_out_only_the_sending_connection(connect, alice, bob):
    sending, other_tab, bob_client = await connect(user=alice), await connect(user=alice), await connect(user=bob)
    for client in (sending, other_tab, bob_client):
        await client.request("room.join", {"room": "game:3"})

    await sending.request("room.publish", {"room": "game:3", "event": "chat", "data": "gg", "except_self": True})
    assert (await other_tab.receive_type("room.message"))["data"]["data"] == "gg"
    assert (await bob_client.receive_type("room.message"))["data"]["data"] == "gg"
    await sending.assert_nothing()


async def test_server_pushes_reach_a_user_a_connection_and_everyone(connect, alice, bob):
    first, second, bob_client = await connect(user=alice), await connect(user=alice), await connect(user=bob)

    await sync_to_async(services.send_to_user)(user_id=alice.pk, event="invoice", data={"id": 3})
    for client in (first, second):
        assert (await client.receive_type("server.message"))["data"] == {
            "event": "invoice",
            "data": {"id": 3},
            "to": "user",
        }

    await sync_to_async(services.send_to_connection)(
        connection_id=second.welcome["data"]["connection_id"], event="kick", data=None
    )
    assert (await second.receive_type("server.message"))["data"]["to"] == "connection"

    await sync_to_async(services.send_to_everyone)(event="maintenance", data={"in_s": 60})
    for client in (first, second, bob_client):
        assert (await client.receive_type("server.message"))["data"]["event"] == "maintenance"
    # Nothing else arrived: bob got no user push, first no connection push.
    for client in (first, second, bob_client):
        await client.assert_nothing(0.1)

    # A back-end service publishes to a room without joining it: room.message from nobody.
    await first.request("room.join", {"room": "game:9"})
    await sync_to_async(services.publish_to_room)(room="game:9", event="tick", data=1)
    assert (await first.receive_type("room.message"))["data"]["from"] is None

    with pytest.raises(NotFound):
        await sync_to_async(services.send_to_connection)(connection_id="0" * 32, event="kick", data=None)

"""
Seed 003's Socket.IO endpoint in process (rooms/compat/seed003.py), over the in-memory layer and
Redis: the handshake's token order and refusals, room events with rooms.policy on each, delivery
between Socket.IO and native connections through the core, one registry for both, and the native
limits (connections per address, event rates by type) and frame counts applied to Socket.IO too.
"""

import pytest
import socketio
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from conftest import access_token
from realtime.delivery import get_process, get_registry
from realtime.groups import user_group
from realtime.publish import publish
from rooms import services
from rooms.compat.seed003 import SOCKETIO_PATH, Seed003Endpoint

from .sio import SioClient

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def sio(channel_layer, connect):
    """
    Factory: ``await sio(auth={"token": ...})`` (or ``query=``, ``headers=``) -> a ``SioClient``,
    opened; ``user=`` sends that user's token in ``auth``. One endpoint per test, closed at teardown
    (``connect`` closes the server process after).
    """
    application = socketio.ASGIApp(Seed003Endpoint().server, socketio_path=SOCKETIO_PATH)
    clients = []

    async def open_client(*, user=None, auth=None, query="", headers=None, expect_connected=True):
        if user is not None:
            auth = {"token": access_token(user)}
        client = SioClient(application, query=query, headers=headers)
        clients.append(client)
        connected = await client.open(auth)
        assert connected == expect_connected, client.connect_error
        return client

    yield open_client
    for client in clients:
        await client.close()


async def test_the_token_comes_from_auth_then_the_query_then_the_bearer_header(sio, alice, bob, carol):
    async def user_of(client):
        return (await client.call("joinRoom", {"roomId": "game:1"})) and (
            await client.call("sendToRoom", {"roomId": "game:1", "event": "who", "data": None})
        )

    first = await sio(
        auth={"token": access_token(alice)},
        query=f"token={access_token(bob)}",
        headers=[(b"authorization", f"Bearer {access_token(carol)}".encode())],
    )
    second = await sio(
        query=f"token={access_token(bob)}", headers=[(b"authorization", f"Bearer {access_token(carol)}".encode())]
    )
    third = await sio(headers=[(b"authorization", f"Bearer {access_token(carol)}".encode())])
    for client, user in ((first, alice), (second, bob), (third, carol)):
        assert await user_of(client) == {"status": "ok", "roomId": "game:1"}
        name, data, meta = await client.next_event("who")
        assert meta["from"]["id"] == user.pk and meta["connection_id"] == client.sid


async def test_no_token_or_a_refused_one_is_a_connect_error_with_the_reason(sio, alice):
    anonymous = await sio(expect_connected=False)
    assert anonymous.connect_error["message"].startswith("Send an access token")
    assert anonymous.connect_error["data"]["code"] == "unauthorized"
    forged = await sio(auth={"token": access_token(alice)[:-4] + "AAAA"}, expect_connected=False)
    assert forged.connect_error["data"]["code"] == "unauthorized"
    # An auth payload without a token falls through to the query string's.
    fallback = await sio(auth={"other": 1}, query=f"token={access_token(alice)}")
    assert fallback.sid


async def test_a_foreign_origin_is_refused_before_the_handshake(sio, alice):
    client = SioClient(
        socketio.ASGIApp(Seed003Endpoint().server, socketio_path=SOCKETIO_PATH),
        headers=[(b"origin", b"https://evil.example")],
    )
    assert not await client.open({"token": access_token(alice)})
    allowed = await sio(user=alice, headers=[(b"origin", b"http://localhost:8000")])
    assert allowed.sid


async def test_room_events_reach_every_member_once_and_except_skips_the_sender(sio, alice, bob):
    a, b = await sio(user=alice), await sio(user=bob)
    for client in (a, b):
        assert await client.call("joinRoom", {"roomId": "game:7"}) == {"status": "ok", "roomId": "game:7"}
    ack = await a.call("sendToRoom", {"roomId": "game:7", "event": "vote", "data": {"yes": True}})
    assert ack == {"status": "ok", "roomId": "game:7"}
    for client in (a, b):
        name, data, meta = await client.next_event()
        assert (name, data, meta["room"], meta["from"]["id"]) == ("vote", {"yes": True}, "game:7", alice.pk)
    await a.call("sendToRoom", {"roomId": "game:7", "event": "move", "data": 1, "except": True})
    assert (await b.next_event())[:2] == ["move", 1]
    await a.call("sendToRoom", {"roomId": "game:7", "event": "move", "data": 2, "except": a.sid})
    assert (await b.next_event())[:2] == ["move", 2]
    await a.assert_no_event()
    assert await b.call("leaveRoom", {"roomId": "game:7"}) == {"status": "ok", "roomId": "game:7"}
    await a.call("sendToRoom", {"roomId": "game:7", "event": "move", "data": 3})
    assert (await a.next_event())[:2] == ["move", 3]
    await b.assert_no_event()


@pytest.fixture
def staff(make_user):
    return make_user("staffer", is_staff=True)


async def test_every_event_is_authorised_by_the_room_policy(sio, alice, staff):
    client = await sio(user=alice)
    # Publishing to a game room needs membership; announcements take staff publishers only.
    refused = await client.call("sendToRoom", {"roomId": "game:1", "event": "vote", "data": 1})
    assert (refused["status"], refused["code"]) == ("error", "forbidden")
    assert (await client.next_event("exception"))[1] == refused
    assert (await client.call("joinRoom", {"roomId": "announcements"}))["status"] == "ok"
    forbidden = await client.call("sendToRoom", {"roomId": "announcements", "event": "news", "data": 1})
    assert forbidden["code"] == "forbidden"
    assert (await client.call("joinRoom", {"roomId": "nowhere:1"}))["code"] == "not_found"
    invalid = await client.call("joinRoom", {"roomId": "bad name!"})
    assert (invalid["code"], list(invalid["details"])) == ("invalid", ["room"])
    announcer = await sio(user=staff)
    assert (await announcer.call("sendToRoom", {"roomId": "announcements", "event": "news", "data": 2}))[
        "status"
    ] == "ok"
    assert (await client.next_event("news"))[1] == 2


async def test_bad_input_is_an_exception_event_in_the_seed_shape_and_the_socket_stays(sio, alice):
    client = await sio(user=alice)
    cases = [
        ("joinRoom", [], "invalid"),
        ("joinRoom", ["game:1"], "invalid"),
        ("sendToRoom", [{"roomId": "game:1", "event": "connect", "data": 1}], "invalid"),
        ("sendToRoom", [{"roomId": "game:1", "event": "", "data": 1}], "invalid"),
        ("sendToRoom", [{"roomId": "game:1", "event": "x", "except": "someone-else"}], "invalid"),
        ("chat.send", [{"content": "hi"}], "unknown_type"),
        # python-socketio passes these names to the connection handlers: neither runs again.
        ("connect", [{"asgi.scope": {}}, {"token": "x"}], "unknown_type"),
        ("disconnect", ["transport close"], "unknown_type"),
    ]
    for event, args, code in cases:
        reply = await client.call(event, *args)
        assert reply["status"] == "error" and reply["code"] == code, (event, reply)
        assert set(reply) <= {"status", "message", "code", "details"} and isinstance(reply["message"], str)
        assert (await client.next_event("exception"))[1] == reply
    # Without an acknowledgement the error still arrives, as the seed's exception event.
    await client.emit("joinRoom", 42, ack=False)
    assert (await client.next_event("exception"))[1]["code"] == "invalid"
    # Malformed Socket.IO packets are dropped (python-socketio logs them); the socket answers on.
    for raw in ("4", "42/game,", "42/game,[]", "42/game,{", "49/game,[1]", "4x"):
        await client.send_raw(raw)
    assert (await client.call("joinRoom", {"roomId": "game:1"}))["status"] == "ok"


async def test_native_and_socketio_members_of_a_room_get_each_others_events(sio, connect, alice, bob):
    native = await connect(user=bob)
    assert (await native.request("room.join", {"room": "game:3"}))["type"] == "ack"
    socket = await sio(user=alice)
    await socket.call("joinRoom", {"roomId": "game:3"})
    await socket.call("sendToRoom", {"roomId": "game:3", "event": "vote", "data": [1, 2]})
    event = (await native.receive_type("room.message"))["data"]
    assert (event["event"], event["data"], event["from"]["id"]) == ("vote", [1, 2], alice.pk)
    assert event["connection_id"] == socket.sid
    assert (await socket.next_event("vote"))[1] == [1, 2]
    await native.request("room.publish", {"room": "game:3", "event": "tick", "data": 5, "except_self": True})
    name, data, meta = await socket.next_event("tick")
    assert (data, meta["room"], meta["from"]["id"]) == (5, "game:3", bob.pk)
    assert meta["connection_id"] == native.welcome["data"]["connection_id"]
    await socket.assert_no_event()


async def test_server_pushes_reach_a_socket_by_user_connection_and_everyone(sio, alice):
    socket = await sio(user=alice)
    await sync_to_async(services.send_to_user)(user_id=alice.pk, event="hand", data=[1])
    assert await socket.next_event() == ["hand", [1], {"to": "user"}]
    await sync_to_async(services.send_to_connection)(connection_id=socket.sid, event="secret", data=2)
    assert await socket.next_event() == ["secret", 2, {"to": "connection"}]
    await sync_to_async(services.send_to_everyone)(event="news", data=3)
    assert await socket.next_event() == ["news", 3, {"to": "everyone"}]
    await sync_to_async(services.publish_to_room)(room="game:9", event="nobody", data=None)
    # Events a Socket.IO client has no use for (presence, chat) are not sent to it.
    await sync_to_async(publish)(user_group(alice.pk), "presence.changed", {"user_id": alice.pk, "online": True})
    await socket.assert_no_event()


async def test_one_registry_for_both_protocols(sio, connect, alice, settings):
    native = await connect(user=alice)
    socket = await sio(user=alice)
    registry = get_registry()
    records = await sync_to_async(registry.connections_of)(alice.pk)
    assert {r.connection_id for r in records} == {native.welcome["data"]["connection_id"], socket.sid}
    assert await sync_to_async(registry.online_user_ids)() == [alice.pk]
    await native.communicator.disconnect()
    assert (await sync_to_async(registry.presence)([alice.pk]))[alice.pk]["online"] is True
    await socket.close()
    assert (await sync_to_async(registry.presence)([alice.pk]))[alice.pk]["online"] is False
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 1}
    await connect(user=alice)
    over = await sio(user=alice, expect_connected=False)
    assert over.connect_error["data"]["code"] == "limit_exceeded"
    assert over.connect_error["data"]["details"] == {"limit": "MAX_CONNECTIONS_PER_USER"}


async def test_the_admins_disconnect_and_token_expiry_end_a_socket(sio, alice, settings):
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    from realtime.errors import CloseCode, Unauthorized
    from realtime.publish import close_user_connections

    socket = await sio(user=alice)
    await sync_to_async(close_user_connections)(alice.pk, CloseCode.UNAUTHORIZED, Unauthorized("Logged out"))
    name, error = await socket.next_event("exception")
    assert error == {"status": "error", "message": "Logged out", "code": "unauthorized"}
    assert await socket.disconnected()
    token = AccessToken.for_user(alice)
    # 2 s: the expiry is stored in whole seconds (rounded down), so 1 s could be gone at once.
    token.set_exp(lifetime=timedelta(seconds=2))
    short = await sio(auth={"token": str(token)})
    assert (await short.next_event("exception", timeout=5))[1]["message"].startswith("Token expired")
    assert await short.disconnected()


async def test_the_native_event_rate_applies_and_sustained_abuse_disconnects(sio, alice, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_PER_MIN": 6, "RATE_BURST": 2, "RATE_ABUSE_FRAMES": 3}
    client = await sio(user=alice)
    replies = [await client.call("leaveRoom", {"roomId": "game:1"}) for _ in range(4)]
    assert [reply["status"] for reply in replies] == ["ok", "ok", "error", "error"]
    assert replies[2]["code"] == "rate_limited" and replies[2]["details"]["retry_after_ms"] > 0
    await client.emit("leaveRoom", {"roomId": "game:1"}, ack=False)
    assert await client.disconnected()


async def test_single_session_closes_the_other_protocols_connections(sio, connect, alice, settings):
    settings.REALTIME = {**settings.REALTIME, "SINGLE_SESSION": True}
    native = await connect(user=alice)
    socket = await sio(user=alice)
    assert (await native.receive_type("error"))["error"]["code"] == "session_replaced"
    await connect(user=alice)
    assert (await socket.next_event("exception"))[1]["code"] == "session_replaced"
    assert await socket.disconnected()


async def test_the_per_address_connection_budget_counts_and_refuses_socketio_handshakes(sio, connect, alice, settings):
    settings.REALTIME = {**settings.REALTIME, "CONNECTIONS_PER_IP_PER_MIN": 2, "CONNECT_REFUSAL_DELAY_S": 0}
    await connect(user=alice)
    await sio(user=alice)
    # One budget for both protocols: the native connection and the socket spent it.
    over = await sio(user=alice, expect_connected=False)
    assert over.connect_error["message"] == "Too many new connections from this address"
    assert over.connect_error["data"] == {
        "code": "limit_exceeded",
        "message": "Too many new connections from this address",
        "details": {"limit": "CONNECTIONS_PER_IP_PER_MIN"},
    }
    native = await connect(user=alice, expect_welcome=False)
    assert (await native.receive())["error"]["details"] == {"limit": "CONNECTIONS_PER_IP_PER_MIN"}


def frames_received(frame_type: str) -> float:
    return REGISTRY.get_sample_value("switchboard_ws_frames_received_total", {"type": frame_type}) or 0


async def test_type_rate_limits_and_the_frame_counts_cover_socketio_events(sio, alice, settings):
    settings.REALTIME = {**settings.REALTIME, "TYPE_RATE_LIMITS": {"room.publish": {"per_min": 1, "burst": 1}}}
    client = await sio(user=alice)
    stats = (await get_process()).stats
    received = stats.received
    counted = {kind: frames_received(kind) for kind in ("room.join", "room.publish", "unknown")}
    assert (await client.call("joinRoom", {"roomId": "game:2"}))["status"] == "ok"
    assert (await client.call("sendToRoom", {"roomId": "game:2", "event": "vote", "data": 1}))["status"] == "ok"
    refused = await client.call("sendToRoom", {"roomId": "game:2", "event": "vote", "data": 2})
    assert (refused["status"], refused["code"]) == ("error", "rate_limited")
    assert refused["details"]["limit"] == "room.publish" and refused["details"]["retry_after_ms"] > 0
    assert (await client.next_event("exception"))[1] == refused
    # Only that type's bucket: joining is not held back.
    assert (await client.call("joinRoom", {"roomId": "game:3"}))["status"] == "ok"
    assert (await client.call("chat.send", {"content": "hi"}))["code"] == "unknown_type"
    assert stats.received - received == 5
    assert {kind: frames_received(kind) - before for kind, before in counted.items()} == {
        "room.join": 2,
        "room.publish": 2,
        "unknown": 1,
    }

"""The envelope, auth gate and error frames of /ws/, over the in-memory layer and Redis."""

import asyncio
import datetime
import gc

import pytest
from asgiref.sync import sync_to_async
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from conftest import access_token
from realtime import registry
from realtime.errors import ErrorCode


async def test_token_in_query_string_gets_welcome(connect, alice):
    client = await connect(user=alice)
    welcome = client.welcome["data"]
    assert welcome["user"] == {"id": alice.pk, "username": "alice"}
    assert len(welcome["connection_id"]) == 32
    assert welcome["heartbeat_s"] == 25
    assert abs(welcome["server_time"] - client.welcome["ts"]) < 1000


async def test_bearer_header_authenticates(connect, alice):
    client = await connect(headers=[(b"authorization", f"Bearer {access_token(alice)}".encode())])
    welcome = await client.receive()
    assert welcome["type"] == "welcome"
    assert welcome["data"]["user"]["id"] == alice.pk


async def test_websocket_header_authenticates_as_seed_004s_clients_send_it(connect, alice):
    client = await connect(headers=[(b"websocket", access_token(alice).encode())])
    welcome = await client.receive()
    assert welcome["type"] == "welcome"
    assert welcome["data"]["user"]["id"] == alice.pk


def test_token_sources_in_order():
    from realtime.consumer.auth import token_from_scope

    everywhere = {"query_string": b"token=q", "headers": [(b"websocket", b"w"), (b"authorization", b"Bearer b")]}
    assert token_from_scope(everywhere) == "q"
    assert token_from_scope({**everywhere, "query_string": b""}) == "b"
    assert token_from_scope({"headers": [(b"websocket", b" w ")]}) == "w"
    assert token_from_scope({"headers": [(b"websocket", b"  ")]}) is None


async def test_auth_frame_authenticates_anonymous_connection(connect, alice):
    client = await connect()
    await client.assert_nothing()
    await client.send({"type": "auth", "ref": "a1", "data": {"token": access_token(alice)}})
    welcome = await client.receive()
    assert welcome["type"] == "welcome"
    assert welcome["data"]["user"]["username"] == "alice"
    reply = await client.request("lobby.join", {"room_id": 999})
    assert reply["error"]["code"] == ErrorCode.NOT_FOUND  # authenticated now, not "unauthorized"


async def test_ping_gets_pong_with_ref_and_server_time(connect, alice):
    client = await connect(user=alice)
    await client.send({"type": "ping", "ref": 7})
    pong = await client.receive()
    assert pong["type"] == "pong"
    assert pong["ref"] == 7
    assert isinstance(pong["ts"], int)


async def test_ping_works_before_auth(connect):
    client = await connect()
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"


async def test_command_before_auth_is_unauthorized_and_connection_stays(connect, alice):
    client = await connect()
    reply = await client.request("lobby.join", {"room_id": 1}, ref="x")
    assert reply["error"]["code"] == ErrorCode.UNAUTHORIZED
    await client.send({"type": "auth", "data": {"token": access_token(alice)}})
    assert (await client.receive())["type"] == "welcome"


def _expired_token(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-datetime.timedelta(seconds=1))
    return str(token)


@pytest.mark.parametrize(
    "make_token, reason",
    [
        (lambda user: "not-a-jwt", "Token is invalid"),
        (lambda user: access_token(user)[:-4] + "AAAA", "Token is invalid"),  # forged signature
        (_expired_token, "Token is expired"),
        (lambda user: str(RefreshToken.for_user(user)), "Token has wrong type"),
    ],
    ids=["garbage", "forged", "expired", "refresh-token"],
)
async def test_refused_token_in_query_gets_reason_then_4401(connect, alice, make_token, reason):
    client = await connect(token=make_token(alice))
    error = await client.receive()
    assert error["type"] == "error"
    assert error["error"]["code"] == ErrorCode.UNAUTHORIZED
    assert reason in error["error"]["message"]
    assert await client.receive_close() == 4401


async def test_inactive_user_is_refused_with_4401(connect, make_user):
    dora = await sync_to_async(make_user)("dora", is_active=False)
    client = await connect(token=access_token(dora))
    error = await client.receive()
    assert "inactive" in error["error"]["message"].lower()
    assert await client.receive_close() == 4401


async def test_refused_auth_frame_gets_reason_then_4401(connect, alice):
    client = await connect()
    await client.send({"type": "auth", "ref": "a", "data": {"token": _expired_token(alice)}})
    error = await client.receive()
    assert error["ref"] == "a"
    assert "expired" in error["error"]["message"]
    assert await client.receive_close() == 4401


async def test_auth_frame_without_token_is_invalid(connect):
    client = await connect()
    reply = await client.request("auth", {}, ref="a")
    assert reply["error"]["code"] == ErrorCode.INVALID
    assert "token" in reply["error"]["details"]


async def test_second_auth_frame_is_invalid(connect, alice):
    client = await connect(user=alice)
    reply = await client.request("auth", {"token": access_token(alice)})
    assert reply["error"]["code"] == ErrorCode.INVALID


async def test_no_auth_frame_in_time_closes_4408(connect, settings):
    settings.REALTIME = {"AUTH_TIMEOUT_S": 0.2}
    client = await connect()
    error = await client.receive()
    assert error["error"]["code"] == ErrorCode.UNAUTHORIZED
    assert await client.receive_close() == 4408


async def test_session_cookie_authenticates(connect, alice, session_cookie):
    cookie = await session_cookie(alice)
    client = await connect(headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    welcome = await client.receive()
    assert welcome["data"]["user"]["id"] == alice.pk


@pytest.mark.parametrize(
    "text, code",
    [
        ("{not json", ErrorCode.BAD_JSON),
        ('{"type": "ping", "x": NaN}', ErrorCode.BAD_JSON),
        ('"\\ud800"', ErrorCode.BAD_JSON),
        ("[1, 2]", ErrorCode.BAD_FRAME),
        ('{"data": {}}', ErrorCode.BAD_FRAME),
        ('{"type": ""}', ErrorCode.BAD_FRAME),
        ('{"type": 5}', ErrorCode.BAD_FRAME),
        ('{"type": "lobby.send", "data": [1]}', ErrorCode.BAD_FRAME),
        ('{"type": "lobby.send", "ref": true}', ErrorCode.BAD_FRAME),
        ('{"type": "lobby.send", "ref": {"a": 1}}', ErrorCode.BAD_FRAME),
        ('{"type": "lobby.send", "ref": "' + "r" * 65 + '"}', ErrorCode.BAD_FRAME),
        ('{"type": "no.such.type", "ref": "u"}', ErrorCode.UNKNOWN_TYPE),
    ],
)
async def test_bad_frames_get_error_and_connection_stays_open(connect, alice, text, code):
    client = await connect(user=alice)
    await client.send_text(text)
    error = await client.receive()
    assert error["type"] == "error"
    assert error["error"]["code"] == code
    # Still usable afterwards.
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"


async def test_unknown_type_echoes_ref(connect, alice):
    client = await connect(user=alice)
    reply = await client.request("no.such.type", ref="u1")
    assert reply == {
        "type": "error",
        "ref": "u1",
        "error": {"code": "unknown_type", "message": "Unknown message type: no.such.type"},
    }


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "lobby.send", "ref": "r2", "data": "x"}',
        '{"type": "lobby.send", "ref": "r2", "data": [1]}',
        '{"type": "", "ref": "r2"}',
        '{"type": 5, "ref": "r2", "data": {}}',
    ],
)
async def test_bad_frame_with_a_readable_ref_echoes_it(connect, alice, text):
    client = await connect(user=alice)
    await client.send_text(text)
    error = await client.receive()
    assert (error["type"], error["ref"], error["error"]["code"]) == ("error", "r2", ErrorCode.BAD_FRAME)


async def test_binary_frame_is_bad_frame(connect, alice):
    client = await connect(user=alice)
    await client.communicator.send_to(bytes_data=b"\x00\x01")
    error = await client.receive()
    assert error["error"]["code"] == ErrorCode.BAD_FRAME
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"


async def test_frame_over_limit_gets_error_then_1009(connect, alice, settings):
    settings.REALTIME = {"MAX_FRAME_BYTES": 1000}
    client = await connect(user=alice)
    # 435 characters, 1,235 UTF-8 bytes: the limit is in bytes.
    await client.send_text('{"type": "ping", "data": {"x": "' + "€" * 400 + '"}}')
    error = await client.receive()
    assert error["error"]["code"] == ErrorCode.MESSAGE_TOO_BIG
    assert await client.receive_close() == 1009


@pytest.mark.parametrize("frame_type", ["lobby.typing", "lobby.send"], ids=["handler", "batch-handler"])
async def test_handler_exception_is_server_error_and_connection_stays(connect, alice, monkeypatch, frame_type):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(registry._handlers, frame_type, broken)
    client = await connect(user=alice)
    reply = await client.request(frame_type, {}, ref="b")
    assert reply["error"] == {"code": "server_error", "message": "Server error"}
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"


async def test_foreign_origin_is_refused_at_handshake(connect, alice):
    client = await connect(user=alice, headers=[(b"origin", b"https://evil.example")], expect_welcome=False)
    assert client.connected is False


async def test_null_origin_is_refused(connect, alice):
    client = await connect(user=alice, headers=[(b"origin", b"null")], expect_welcome=False)
    assert client.connected is False


async def test_same_site_origin_is_accepted(connect, alice):
    client = await connect(user=alice, headers=[(b"origin", b"http://localhost:8000")])
    assert client.welcome["type"] == "welcome"


async def test_missing_origin_is_accepted_but_must_authenticate(connect):
    client = await connect()
    assert client.connected
    reply = await client.request("lobby.typing", {"room_id": 1})
    assert reply["error"]["code"] == ErrorCode.UNAUTHORIZED


async def test_welcome_is_the_first_frame_even_while_events_stream(connect, alice, bob):
    from realtime.delivery.outbox import send_to_layer
    from realtime.groups import user_group

    async def stream():
        for i in range(200):
            await send_to_layer(
                user_group(alice.pk),
                {
                    "type": "realtime.event",
                    "group": user_group(alice.pk),
                    "text": f'{{"type":"tick","data":{i}}}',
                    "event": "tick",
                    "ts": 0.0,
                },
            )
            await asyncio.sleep(0.001)

    await connect(user=bob)  # starts the process hub before the stream
    streaming = asyncio.create_task(stream())
    client = await connect(user=alice, expect_welcome=False)
    first = await client.receive()
    await streaming
    assert first["type"] == "welcome"
    assert (await client.receive())["type"] == "tick"  # what arrived meanwhile follows it


async def test_cross_site_websocket_hijacking_with_a_valid_session_cookie_is_refused(connect, alice, session_cookie):
    cookie = await session_cookie(alice)
    hijack = await connect(headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)], expect_welcome=False)
    assert hijack.connected is False
    same_site = await connect(headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)], expect_welcome=False)
    assert (await same_site.receive_type("welcome"))["data"]["user"]["username"] == "alice"


async def test_a_closed_connection_is_freed_at_once_not_left_to_the_cycle_collector(connect, alice):
    """Its objects go when it closes: cyclic garbage waits for a full collection, a pause for every connection."""
    from realtime.consumer.consumer import RealtimeConsumer

    client = await connect(user=alice)  # a token connection: it has a timer until the token expires
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await client.communicator.disconnect()
        await asyncio.sleep(0.1)
        gc.collect()
        left_in_cycles = [obj for obj in gc.garbage if isinstance(obj, RealtimeConsumer)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left_in_cycles == []

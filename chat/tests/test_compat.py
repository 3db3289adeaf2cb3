"""
The seed chat endpoints in process (Channels communicator): seed 002 at /compat/002/ws, seed 004
at /ws. Authentication rules, the translation onto chat's services, and bad input: each endpoint
answers in its own error shape, never closes, never writes.
"""

import pytest

from chat.models import Conversation, Membership, Message
from conftest import access_token
from realtime.errors import CloseCode

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]

P002 = "/compat/002/ws"
P004 = "/ws"


async def open_002(connect, user=None, **kwargs):
    path = f"{P002}?token={access_token(user)}" if user is not None else P002
    client = await connect(path=path, **kwargs)
    assert (await client.receive())["type"] == "connected"
    if user is not None:
        assert (await client.receive())["type"] == "auth_success"
    return client


async def open_004(connect, user, *, header=True):
    if header:
        client = await connect(path=P004, headers=[(b"websocket", access_token(user).encode())])
    else:
        client = await connect(path=f"{P004}?token={access_token(user)}")
    # Answered once the connection's session has started (the seed has no welcome frame).
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    return client


async def stored():
    return await Message.objects.acount(), await Conversation.objects.acount(), await Membership.objects.acount()


# -- seed 002 -----------------------------------------------------------------------------------


async def test_002_a_bare_user_id_authenticates_nobody(connect, alice):
    client = await open_002(connect)
    await client.send({"type": "auth", "user_id": alice.pk})
    error = await client.receive()
    assert error["type"] == "error" and error["code"] == "unauthorized"
    await client.send({"type": "join_session", "session_id": 1})
    assert (await client.receive())["code"] == "unauthorized"


async def test_002_auth_with_a_token_of_another_user_is_refused_and_the_right_one_accepted(connect, alice, bob):
    client = await open_002(connect)
    await client.send({"type": "auth", "user_id": bob.pk, "token": access_token(alice)})
    error = await client.receive()
    assert (error["type"], error["code"], list(error["details"])) == ("error", "forbidden", ["user_id"])
    await client.send({"type": "auth", "user_id": alice.pk, "token": access_token(alice)})
    assert await client.receive() == {"type": "auth_success", "user_id": alice.pk, "username": "alice"}


async def test_002_session_cookie_then_the_seed_auth_confirms_only_its_own_user(connect, alice, bob, session_cookie):
    client = await connect(path=P002, headers=[(b"cookie", await session_cookie(alice))])
    assert [(await client.receive())["type"] for _ in range(2)] == ["connected", "auth_success"]
    await client.send({"type": "auth", "user_id": bob.pk})
    assert (await client.receive())["code"] == "forbidden"
    await client.send({"type": "auth", "user_id": alice.pk, "ref": 7})
    assert await client.receive() == {"type": "auth_success", "user_id": alice.pk, "username": "alice", "ref": 7}


async def test_002_support_session_user_and_staff_exchange_messages_stored_first(connect, alice, make_user):
    staff = await make_user_async(make_user, "agent", is_staff=True)
    user = await open_002(connect, alice)
    await user.send({"type": "join_session"})  # no session_id: the user's own support conversation
    joined = await user.receive()
    session_id = joined["session_id"]
    assert joined["type"] == "joined_session"
    agent = await open_002(connect, staff)
    await agent.send({"type": "join_session", "session_id": session_id})
    assert await agent.receive() == {"type": "joined_session", "session_id": session_id}

    await user.send({"type": "send_message", "session_id": session_id, "content": "你好"})
    for client in (user, agent):
        frame = await client.receive_type("new_message")
        assert frame["session_id"] == session_id
        assert (frame["message"]["content"], frame["message"]["sender_id"]) == ("你好", alice.pk)
    await agent.send({"type": "send_message", "session_id": session_id, "content": "hello"})
    assert (await user.receive_type("new_message"))["message"]["sender_id"] == staff.pk
    assert (await agent.receive_type("new_message"))["message"]["seq"] == 2
    assert [m async for m in Message.objects.values_list("content", flat=True).order_by("seq")] == ["你好", "hello"]

    await agent.send({"type": "leave_session", "session_id": session_id})
    assert await agent.receive() == {"type": "left_session", "session_id": session_id}
    await user.send({"type": "send_message", "session_id": session_id, "content": "still there?"})
    await user.receive_type("new_message")
    await agent.assert_nothing()  # a staff member who left no longer receives the session


async def test_002_another_users_session_is_not_found(connect, alice, bob):
    conversation = await Conversation.objects.acreate(kind=Conversation.Kind.SUPPORT, support_user=bob)
    client = await open_002(connect, alice)
    await client.send({"type": "join_session", "session_id": conversation.pk})
    assert (await client.receive())["code"] == "not_found"
    await client.send({"type": "send_message", "session_id": conversation.pk, "content": "x"})
    assert (await client.receive())["code"] == "not_found"
    assert await Message.objects.acount() == 0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": 5}', "bad_frame"),
        ('{"user_id": 1}', "bad_frame"),
        ('{"type": "chat.send", "data": {"conversation_id": 1, "content": "x"}}', "unknown_type"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": "join_session", "session_id": "1"}', "invalid"),
        ('{"type": "join_session", "session_id": true}', "invalid"),
        ('{"type": "send_message", "session_id": 1.0, "content": "x"}', "invalid"),
        ('{"type": "send_message", "content": "x"}', "invalid"),
        ('{"type": "send_message", "session_id": 1, "content": 5}', "invalid"),
        ('{"type": "send_message", "session_id": 1, "content": "  "}', "invalid"),
        ('{"type": "leave_session", "session_id": [1]}', "invalid"),
        ('{"type": "auth", "user_id": "1"}', "invalid"),
        ('{"type": "auth", "token": 5}', "invalid"),
        ('{"type": "ping", "ref": true}', "bad_frame"),
    ],
)
async def test_002_bad_input_gets_the_seeds_error_shape_and_stores_nothing(connect, alice, text, code):
    client = await open_002(connect, alice)
    before = await stored()
    await client.send_text(text)
    error = await client.receive()
    assert error["type"] == "error" and error["code"] == code, error
    assert set(error) <= {"type", "code", "message", "details", "ref"}
    if code == "invalid" and "details" in error:
        assert "conversation_id" not in error["details"]  # this protocol's field names
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}  # still open
    assert await stored() == before


# -- seed 004 -----------------------------------------------------------------------------------


async def test_004_private_message_creates_the_pair_conversation_and_pushes_the_flat_frame(connect, alice, bob):
    a = await open_004(connect, alice)
    b = await open_004(connect, bob, header=False)
    await a.send({"recvId": bob.pk, "sendId": alice.pk, "chatType": 2, "content": "hi", "contentType": 1})
    pushed = [await b.receive(), await a.receive()]
    conversation = await Conversation.objects.aget(kind=Conversation.Kind.DIRECT)
    message = await Message.objects.aget()
    for frame in pushed:
        assert frame == {
            "conversationId": conversation.pk,
            "recvId": bob.pk,
            "sendId": alice.pk,
            "chatType": 2,
            "content": "hi",
            "contentType": 1,
            "id": message.pk,
            "seq": 1,
            "sendTime": frame["sendTime"],
            "attachment": None,
        }
    # The reply goes to the same conversation, found again by recvId.
    await b.send({"recvId": alice.pk, "chatType": 2, "content": "hey"})
    assert (await a.receive())["recvId"] == alice.pk
    assert await Conversation.objects.acount() == 1


async def test_004_messages_published_against_seq_order_arrive_in_seq_order(connect, alice, bob, conversation):
    """Two server processes that commit seq 2 and 3 a moment apart may publish them the other way round."""
    from asgiref.sync import sync_to_async

    from chat import services
    from realtime.delivery import collecting_publishes, flush_collected

    b = await open_004(connect, bob)

    def write(*contents):
        with collecting_publishes() as collected:
            for content in contents:
                services.send_message(sender=alice, conversation=conversation, content=content)
        return collected

    await flush_collected(await sync_to_async(write)("first"))
    assert (await b.receive())["content"] == "first"
    await flush_collected(list(reversed(await sync_to_async(write)("second", "third"))))
    assert [(await b.receive())["seq"] for _ in range(2)] == [2, 3]


async def test_004_the_sender_is_the_tokens_user(connect, alice, bob, carol):
    a = await open_004(connect, alice)
    await a.send({"recvId": bob.pk, "sendId": carol.pk, "chatType": 2, "content": "spoof"})
    error = await a.receive()
    assert (error["type"], error["code"], list(error["details"])) == ("error", "forbidden", ["sendId"])
    assert await Message.objects.acount() == 0


async def test_004_group_message_to_a_member_conversation_only(connect, alice, bob, carol, conversation):
    a = await open_004(connect, alice)
    c = await open_004(connect, carol)
    await c.send({"conversationId": conversation.pk, "chatType": 1, "content": "let me in"})
    assert (await c.receive())["code"] == "not_found"
    await a.send({"conversationId": conversation.pk, "chatType": 1, "content": "group hi"})
    frame = await a.receive()
    assert (frame["chatType"], frame["recvId"], frame["conversationId"]) == (1, None, conversation.pk)
    assert await Message.objects.acount() == 1


async def test_004_without_a_token_is_refused_at_once_and_nothing_is_sent(connect, alice, bob):
    client = await connect(path=P004)  # the seed had no auth frame: no waiting for one
    assert (await client.receive())["code"] == "unauthorized"
    assert await client.receive_close() == CloseCode.UNAUTHORIZED
    assert await Message.objects.acount() == 0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_json"),
        ('"text"', "bad_frame"),
        ("[]", "bad_frame"),
        ("{}", "invalid"),
        ('{"type": "auth", "data": {"token": "x"}}', "invalid"),
        ('{"chatType": 3, "recvId": 2, "content": "x"}', "invalid"),
        ('{"chatType": "2", "recvId": 2, "content": "x"}', "invalid"),
        ('{"chatType": 2, "recvId": "2", "content": "x"}', "invalid"),
        ('{"chatType": 2, "content": "x"}', "invalid"),
        ('{"chatType": 1, "recvId": 2, "content": "x"}', "invalid"),
        ('{"chatType": 2, "recvId": 2, "content": 7}', "invalid"),
        ('{"chatType": 2, "recvId": 2, "content": "x", "contentType": 2}', "invalid"),
        ('{"chatType": 2, "recvId": 2, "content": "x", "contentType": 1.5}', "invalid"),
        ('{"chatType": 2, "recvId": 99999, "content": "x"}', "not_found"),
    ],
)
async def test_004_bad_input_gets_an_error_frame_and_stores_nothing(connect, alice, text, code):
    client = await open_004(connect, alice)
    before = await stored()
    await client.send_text(text)
    error = await client.receive()
    assert error["type"] == "error" and error["code"] == code, error
    assert set(error) <= {"type", "code", "message", "details"}
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    assert await stored() == before


async def make_user_async(make_user, username, **fields):
    from asgiref.sync import sync_to_async

    return await sync_to_async(make_user)(username, **fields)


# -- seed 004's single sign-on (CHAT_SEED004_SINGLE_SESSION) --------------------------------------


async def still_open_004(client) -> bool:
    await client.send({"type": "ping"})
    return await client.receive() == {"type": "pong"}


@pytest.mark.parametrize(("scope", "native_replaced"), [("endpoint", False), ("user", True)])
async def test_004_a_new_connection_replaces_older_ones(connect, alice, bob, settings, scope, native_replaced):
    settings.CHAT_SEED004_SINGLE_SESSION = scope
    old = await open_004(connect, alice)
    native = await connect(user=alice)
    other_user = await open_004(connect, bob)
    new = await open_004(connect, alice, header=False)

    error = await old.receive()
    assert (error["type"], error["code"]) == ("error", "session_replaced")
    assert await old.receive_close() == CloseCode.SESSION_REPLACED
    if native_replaced:
        assert (await native.receive_type("error"))["error"]["code"] == "session_replaced"
        assert await native.receive_close() == CloseCode.SESSION_REPLACED
    else:
        assert (await native.request("chat.conversations", {}))["type"] == "ack"
    assert await still_open_004(other_user) and await still_open_004(new)
    await new.send({"recvId": bob.pk, "chatType": 2, "content": "from the new one"})
    assert (await other_user.receive())["content"] == "from the new one"


async def test_004_single_sign_on_off_keeps_every_connection(connect, alice, settings):
    settings.CHAT_SEED004_SINGLE_SESSION = "off"
    first = await open_004(connect, alice)
    second = await open_004(connect, alice)
    assert await still_open_004(first) and await still_open_004(second)

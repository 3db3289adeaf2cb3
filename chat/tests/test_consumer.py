"""Chat over /ws/: join, leave, send, direct messages, history, resume; memory and Redis layers."""

from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message


def send_data(conversation, content="hello", **extra):
    return {"conversation_id": conversation.pk, "content": content, **extra}


async def test_send_acks_stored_message_then_fans_out_to_members(connect, alice, bob, carol, conversation):
    sender = await connect(user=alice)
    receiver = await connect(user=bob)  # never joined: members get messages anyway
    outsider = await connect(user=carol)

    ack = await sender.request("chat.send", send_data(conversation, "hi bob", client_msg_id="m1"), ref="s1")
    assert ack["type"] == "ack" and ack["ref"] == "s1"
    message = ack["data"]["message"]
    assert ack["data"]["duplicate"] is False
    assert message["seq"] == 1
    assert message["sender_id"] == alice.pk
    assert message["content"] == "hi bob"
    assert message["client_msg_id"] == "m1"

    event = await receiver.receive_type("chat.message")
    assert event["data"] == message
    assert isinstance(event["ts"], int)
    # The sender's own connection sees the ack first, then the event.
    assert (await sender.receive())["data"] == message
    await outsider.assert_nothing()

    stored = await sync_to_async(list)(Message.objects.values_list("content", "seq", "sender_id"))
    assert stored == [("hi bob", 1, alice.pk)]


async def test_seq_increases_per_conversation(connect, alice, conversation):
    client = await connect(user=alice)
    seqs = []
    for n in range(3):
        ack = await client.request("chat.send", send_data(conversation, f"m{n}"), ref=f"r{n}")
        seqs.append(ack["data"]["message"]["seq"])
    assert seqs == [1, 2, 3]


async def test_repeated_client_msg_id_returns_original_and_stores_once(connect, alice, bob, conversation):
    sender = await connect(user=alice)
    receiver = await connect(user=bob)
    first = await sender.request("chat.send", send_data(conversation, "once", client_msg_id="k"), ref="a")
    await receiver.receive_type("chat.message")
    retry = await sender.request("chat.send", send_data(conversation, "once", client_msg_id="k"), ref="b")
    assert retry["data"] == {"message": first["data"]["message"], "duplicate": True}
    await receiver.assert_nothing()  # a retry is not pushed again
    assert await Message.objects.acount() == 1


async def test_send_to_non_member_conversation_is_not_found(connect, carol, conversation):
    client = await connect(user=carol)
    reply = await client.request("chat.send", send_data(conversation))
    assert reply["error"] == {"code": "not_found", "message": "Conversation not found"}
    assert await Message.objects.acount() == 0


async def test_send_to_unknown_conversation_is_not_found(connect, alice):
    client = await connect(user=alice)
    reply = await client.request("chat.send", {"conversation_id": 424242, "content": "x"})
    assert reply["error"]["code"] == "not_found"


async def test_invalid_send_data_names_the_field(connect, alice, conversation, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    client = await connect(user=alice)
    cases = [
        (send_data(conversation, "   "), "content"),
        (send_data(conversation, "x" * 11), "content"),
        ({"conversation_id": conversation.pk}, "content"),
        (send_data(conversation, content_type="video"), "content_type"),
        ({"content": "x"}, "conversation_id"),
        ({"conversation_id": conversation.pk, "recipient_id": 1, "content": "x"}, "conversation_id"),
        ({"conversation_id": "abc", "content": "x"}, "conversation_id"),
        ({"conversation_id": -1, "content": "x"}, "conversation_id"),
        (send_data(conversation, client_msg_id="k" * 65), "client_msg_id"),
        (send_data(conversation, "nul\x00byte"), "content"),
    ]
    for n, (data, field) in enumerate(cases):
        reply = await client.request("chat.send", data, ref=f"v{n}")
        assert reply["error"]["code"] == "invalid", data
        assert field in reply["error"]["details"], (data, reply)
    assert await Message.objects.acount() == 0


async def test_content_is_stored_exactly_as_sent(connect, alice, conversation):
    client = await connect(user=alice)
    content = "  spaced\u200b and \u202eRTL and emoji \U0001f600  "
    ack = await client.request("chat.send", send_data(conversation, content))
    assert ack["data"]["message"]["content"] == content
    assert (await Message.objects.aget()).content == content


async def test_direct_message_creates_conversation_and_reaches_recipient(connect, alice, bob):
    sender = await connect(user=alice)
    receiver = await connect(user=bob)
    ack = await sender.request("chat.send", {"recipient_id": bob.pk, "content": "hey"}, ref="d1")
    message = ack["data"]["message"]
    event = await receiver.receive_type("chat.message")
    assert event["data"] == message
    # The second message goes through the conversation group both are now subscribed to.
    ack2 = await sender.request("chat.send", {"recipient_id": bob.pk, "content": "again"}, ref="d2")
    assert ack2["data"]["message"]["conversation_id"] == message["conversation_id"]
    assert ack2["data"]["message"]["seq"] == 2
    assert (await receiver.receive_type("chat.message"))["data"]["content"] == "again"
    # Either side finds the same conversation.
    reply = await receiver.request("chat.send", {"recipient_id": alice.pk, "content": "yo"}, ref="d3")
    assert reply["data"]["message"]["conversation_id"] == message["conversation_id"]


async def test_direct_message_to_self_or_unknown_or_inactive_user(connect, alice, make_user):
    dora = await sync_to_async(make_user)("dora", is_active=False)
    client = await connect(user=alice)
    assert (await client.request("chat.send", {"recipient_id": alice.pk, "content": "x"}, ref="1"))["error"][
        "code"
    ] == "invalid"
    assert (await client.request("chat.send", {"recipient_id": 999999, "content": "x"}, ref="2"))["error"][
        "code"
    ] == "not_found"
    assert (await client.request("chat.send", {"recipient_id": dora.pk, "content": "x"}, ref="3"))["error"][
        "code"
    ] == "not_found"


async def test_join_returns_conversation_and_missed_messages(connect, alice, bob, conversation):
    for n in range(5):
        await sync_to_async(services.send_message)(sender=bob, conversation=conversation, content=f"m{n + 1}")
    client = await connect(user=alice)
    reply = await client.request("chat.join", {"conversation_id": conversation.pk, "after_seq": 2, "limit": 2})
    data = reply["data"]
    assert data["conversation"]["id"] == conversation.pk
    assert data["conversation"]["members"] == sorted(
        [
            {"user_id": alice.pk, "username": "alice", "name": "alice", "is_staff": False, "role": "member"},
            {"user_id": bob.pk, "username": "bob", "name": "bob", "is_staff": False, "role": "member"},
        ],
        key=lambda m: m["user_id"],
    )
    assert data["conversation"]["last_seq"] == 5
    assert [m["seq"] for m in data["messages"]] == [3, 4]
    assert data["has_more"] is True
    rest = await client.request("chat.join", {"conversation_id": conversation.pk, "after_seq": 4}, ref="r2")
    assert [m["content"] for m in rest["data"]["messages"]] == ["m5"]
    assert rest["data"]["has_more"] is False


async def test_join_without_after_seq_sends_no_backlog(connect, alice, conversation):
    client = await connect(user=alice)
    reply = await client.request("chat.join", {"conversation_id": conversation.pk})
    assert "messages" not in reply["data"]


async def test_join_refusals(connect, carol, conversation):
    client = await connect(user=carol)
    hidden = await client.request("chat.join", {"conversation_id": conversation.pk}, ref="f")
    assert "alice" not in str(hidden)
    missing = await client.request("chat.join", {"conversation_id": 987654}, ref="n")
    assert missing["error"]["code"] == "not_found"
    assert hidden["error"] == missing["error"]  # not a member and not there look the same
    invalid = await client.request("chat.join", {}, ref="i")
    assert invalid["error"]["code"] == "invalid"


async def test_leave_acks_and_member_still_gets_messages(connect, alice, bob, conversation):
    client = await connect(user=alice)
    await client.request("chat.join", {"conversation_id": conversation.pk}, ref="j")
    reply = await client.request("chat.leave", {"conversation_id": conversation.pk}, ref="l")
    assert reply["data"] == {"conversation_id": conversation.pk}
    await sync_to_async(services.send_message)(sender=bob, conversation=conversation, content="still here")
    assert (await client.receive_type("chat.message"))["data"]["content"] == "still here"


async def test_history_pages_backwards(connect, alice, conversation):
    for n in range(7):
        await sync_to_async(services.send_message)(sender=alice, conversation=conversation, content=f"m{n + 1}")
    client = await connect(user=alice)
    page = await client.request("chat.history", {"conversation_id": conversation.pk, "limit": 3})
    assert [m["seq"] for m in page["data"]["messages"]] == [5, 6, 7]
    assert page["data"]["has_more"] is True
    older = await client.request("chat.history", {"conversation_id": conversation.pk, "before_seq": 5, "limit": 3})
    assert [m["seq"] for m in older["data"]["messages"]] == [2, 3, 4]
    oldest = await client.request("chat.history", {"conversation_id": conversation.pk, "before_seq": 2}, ref="o")
    assert [m["seq"] for m in oldest["data"]["messages"]] == [1]
    assert oldest["data"]["has_more"] is False
    too_many = await client.request("chat.history", {"conversation_id": conversation.pk, "limit": 101}, ref="t")
    assert too_many["error"]["code"] == "invalid"


async def test_message_sent_by_service_reaches_every_connection_of_member(connect, alice, bob, conversation):
    tab1 = await connect(user=bob)
    tab2 = await connect(user=bob)
    await sync_to_async(services.send_message)(sender=alice, conversation=conversation, content="from admin")
    assert (await tab1.receive_type("chat.message"))["data"]["content"] == "from admin"
    assert (await tab2.receive_type("chat.message"))["data"]["content"] == "from admin"


async def test_member_added_later_gets_messages_on_open_connection(connect, alice, carol, conversation):
    client = await connect(user=carol)
    await sync_to_async(services.add_member)(actor=None, conversation=conversation, user=carol)
    assert (await client.receive_type("chat.member_added"))["data"]["user_id"] == carol.pk
    await sync_to_async(services.send_message)(sender=alice, conversation=conversation, content="welcome carol")
    assert (await client.receive_type("chat.message"))["data"]["content"] == "welcome carol"


async def test_disconnected_connection_leaves_its_groups(connect, alice, bob, conversation):
    from realtime.delivery.process import get_process

    client = await connect(user=bob)
    hub = (await get_process()).hub
    assert hub.local_members(f"chat.conversation.{conversation.pk}") == 1
    await client.communicator.disconnect()
    assert hub.local_members(f"chat.conversation.{conversation.pk}") == 0


async def test_a_reply_over_the_frame_limit_is_an_error_not_silence(connect, alice, bob, conversation, settings):
    settings.REALTIME = {**getattr(settings, "REALTIME", {}), "MAX_FRAME_BYTES": 5000}
    for _ in range(3):
        await sync_to_async(services.send_message)(sender=bob, conversation=conversation, content="y" * 3000)
    client = await connect(user=alice)
    # A page is cut to fit a frame (realtime/paging.py): one 3,000-character message each.
    paged = await client.request("chat.join", {"conversation_id": conversation.pk, "after_seq": 0})
    assert [m["seq"] for m in paged["data"]["messages"]] == [1] and paged["data"]["has_more"]
    # A single message over the limit cannot be cut: the reply is an error, not silence.
    settings.REALTIME = {**settings.REALTIME, "MAX_FRAME_BYTES": 2500}
    reply = await client.request("chat.join", {"conversation_id": conversation.pk, "after_seq": 0}, ref="2")
    assert reply["error"]["code"] == "message_too_big" and "limit" in reply["error"]["message"]

"""Read receipts and unread counts: chat.read, chat.conversations, over both layers."""

from asgiref.sync import sync_to_async

from chat import services
from realtime.errors import ErrorCode


async def send(sender, conversation, text):
    return (await sync_to_async(services.send_message)(sender=sender, conversation=conversation, content=text))[0]


async def test_reading_tells_the_members_and_never_moves_backwards(connect, alice, bob, carol, conversation):
    for text in ("one", "two", "three"):
        await send(alice, conversation, text)
    alice_client, bob_client = await connect(user=alice), await connect(user=bob)
    reply = await bob_client.request("chat.read", {"conversation_id": conversation.pk, "seq": 2})
    assert reply["data"] == {"conversation_id": conversation.pk, "last_read_seq": 2, "unread": 1}
    receipt = await alice_client.receive_type("chat.read")
    assert receipt["data"] == {"conversation_id": conversation.pk, "user_id": bob.pk, "name": "bob", "seq": 2}
    older = await bob_client.request("chat.read", {"conversation_id": conversation.pk, "seq": 1}, ref="2")
    assert older["data"]["last_read_seq"] == 2  # stays
    beyond = await bob_client.request("chat.read", {"conversation_id": conversation.pk, "seq": 99}, ref="3")
    assert beyond["data"] == {"conversation_id": conversation.pk, "last_read_seq": 3, "unread": 0}  # clamped
    assert (await alice_client.receive_type("chat.read"))["data"]["seq"] == 3  # one event per move
    await alice_client.assert_nothing()
    carol_client = await connect(user=carol)
    refused = await carol_client.request("chat.read", {"conversation_id": conversation.pk, "seq": 1})
    assert refused["error"]["code"] == ErrorCode.NOT_FOUND


async def test_conversation_list_has_last_message_and_unread_counts(connect, alice, bob, conversation):
    await send(alice, conversation, "hello")
    await send(alice, conversation, "are you there?")
    bob_client = await connect(user=bob)
    (listed,) = (await bob_client.request("chat.conversations", {}))["data"]["conversations"]
    assert listed["id"] == conversation.pk and listed["unread"] == 2 and listed["last_read_seq"] == 0
    assert listed["last_message"]["content"] == "are you there?"
    assert [m["username"] for m in listed["members"]] == ["alice", "bob"]
    alice_client = await connect(user=alice)
    (own,) = (await alice_client.request("chat.conversations", {}))["data"]["conversations"]
    assert own["unread"] == 0  # sending reads up to one's own message


async def test_join_tells_how_far_each_member_has_read(connect, alice, bob, carol, staff, conversation):
    # A page opened (or reloaded) after the chat.read events shows "Seen by ..." from these (issue 24).
    for text in ("one", "two", "three"):
        await send(alice, conversation, text)
    await sync_to_async(services.mark_read)(user=bob, conversation=conversation, seq=2)
    alice_client = await connect(user=alice)
    reply = await alice_client.request("chat.join", {"conversation_id": conversation.pk, "after_seq": 3})
    assert reply["data"]["read_positions"] == sorted(
        [{"user_id": alice.pk, "seq": 3}, {"user_id": bob.pk, "seq": 2}], key=lambda p: p["user_id"]
    )
    assert "last_read_seq" not in reply["data"]["conversation"]["members"][0]  # member entries keep their shape

    # A support conversation adds the desk's shared mark (user_id null), as its chat.read events do.
    support, _ = await sync_to_async(services.open_support)(user=carol)
    await send(carol, support, "help")
    await sync_to_async(services.mark_read)(user=staff, conversation=support, seq=1)
    carol_client = await connect(user=carol)
    joined = await carol_client.request("chat.join", {"conversation_id": support.pk})
    assert joined["data"]["read_positions"] == [{"user_id": carol.pk, "seq": 1}, {"user_id": None, "seq": 1}]

"""
Chat's presence and typing over /ws/: who hears ``presence.changed`` (chat/presence.py) and
``chat.typing``. When presence is announced (once per user, first connection and last
disconnect) is the core's, tested with realtime's own test app (realtime/tests/test_presence.py).
"""

from chat.models import Conversation, Membership


async def test_presence_reaches_the_members_of_the_users_conversations_only(connect, alice, bob, carol, conversation):
    bob_client = await connect(user=bob)
    carol_client = await connect(user=carol)  # shares no conversation with alice
    alice_client = await connect(user=alice)
    online = await bob_client.receive_type("presence.changed")
    assert online["data"] == {"user_id": alice.pk, "online": True, "last_seen": None}
    await alice_client.communicator.disconnect()
    offline = await bob_client.receive_type("presence.changed")
    assert offline["data"]["user_id"] == alice.pk and offline["data"]["online"] is False
    await carol_client.assert_nothing()


async def test_a_co_member_of_many_conversations_hears_each_change_once(connect, alice, bob, conversation):
    for i in range(3):  # three more conversations of alice and bob: one announcement, not four
        more = await Conversation.objects.acreate(kind=Conversation.Kind.GROUP, title=f"more {i}")
        await Membership.objects.abulk_create(
            [Membership(user=alice, conversation=more), Membership(user=bob, conversation=more)]
        )
    bob_client = await connect(user=bob)
    await connect(user=alice)
    assert (await bob_client.receive_type("presence.changed"))["data"]["online"] is True
    await bob_client.assert_nothing()


async def test_no_presence_events_in_conversations_over_the_size_limit(connect, alice, bob, conversation, settings):
    settings.CHAT_PRESENCE_MAX_MEMBERS = 1  # the shared conversation has 2
    bob_client = await connect(user=bob)
    await connect(user=alice)
    await bob_client.assert_nothing(timeout=0.3)


async def test_typing_reaches_other_viewers_not_the_sender(connect, alice, bob, conversation):
    data = {"conversation_id": conversation.pk}
    bob_viewing, bob_elsewhere = await connect(user=bob), await connect(user=bob)
    alice_client = await connect(user=alice)
    await bob_viewing.request("chat.join", data)
    await alice_client.request("chat.join", data)
    await alice_client.request("chat.typing", data)
    typing = await bob_viewing.receive_type("chat.typing")
    assert typing["data"] == {"conversation_id": conversation.pk, "user_id": alice.pk, "name": "alice"}
    await alice_client.assert_nothing()
    await bob_elsewhere.receive_type("presence.changed")  # alice came online; then nothing more
    await bob_elsewhere.assert_nothing()

"""Group management, support conversations, single-session mode and attachments over the socket."""

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile

from chat import services
from chat.models import Conversation, Membership, Message
from chat.tests.conftest import png_bytes
from realtime.errors import ProtocolError

pytestmark = pytest.mark.django_db(transaction=True)


async def test_group_created_over_the_socket_reaches_every_member_once(connect, alice, bob, carol):
    owner = await connect(user=alice)
    bob_tab = await connect(user=bob)
    reply = await owner.request("chat.create_group", {"title": "Team", "member_ids": [bob.pk, carol.pk, bob.pk]})
    conversation = reply["data"]["conversation"]
    assert {(m["username"], m["role"]) for m in conversation["members"]} == {
        ("alice", "owner"),
        ("bob", "member"),
        ("carol", "member"),
    }
    added = await bob_tab.receive_type("chat.member_added")
    assert added["data"]["user_id"] == bob.pk and added["data"]["conversation"]["id"] == conversation["id"]
    await bob_tab.assert_nothing()
    # Bob's open connection now receives the group's messages without joining.
    await owner.request("chat.send", {"conversation_id": conversation["id"], "content": "hi team"}, ref="2")
    assert (await bob_tab.receive_type("chat.message"))["data"]["content"] == "hi team"


async def test_only_owner_and_admins_manage_members(connect, alice, bob, carol, make_user):
    dave = await sync_to_async(make_user)("dave")
    group = await sync_to_async(services.create_group)(owner=alice, title="g", member_ids=[bob.pk])
    bob_client = await connect(user=bob)
    refused = await bob_client.request("chat.add_member", {"conversation_id": group.pk, "user_id": carol.pk})
    assert refused["error"]["code"] == "forbidden"
    owner = await connect(user=alice)
    await owner.request("chat.add_member", {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin"})
    # bob was already a member: nothing changes (no role change through add)
    assert await sync_to_async(Membership.objects.get)(conversation=group, user=bob) is not None
    membership = await sync_to_async(Membership.objects.get)(conversation=group, user=bob)
    membership.role = Membership.Role.ADMIN
    await sync_to_async(membership.save)()
    ok = await bob_client.request("chat.add_member", {"conversation_id": group.pk, "user_id": carol.pk}, ref="2")
    assert "ack" == ok["type"]
    admin_naming_admin = await bob_client.request(
        "chat.add_member", {"conversation_id": group.pk, "user_id": dave.pk, "role": "admin"}, ref="3"
    )
    assert admin_naming_admin["error"]["code"] == "forbidden"
    cannot_remove_owner = await bob_client.request(
        "chat.remove_member", {"conversation_id": group.pk, "user_id": alice.pk}, ref="4"
    )
    assert cannot_remove_owner["error"]["code"] == "forbidden"
    outsider = await connect(user=dave)
    hidden = await outsider.request("chat.add_member", {"conversation_id": group.pk, "user_id": dave.pk})
    assert hidden["error"] == {"code": "not_found", "message": "Conversation not found"}  # not a member: unseen


async def test_the_owner_changes_a_members_role_and_every_member_is_told(connect, alice, bob, carol):
    group = await sync_to_async(services.create_group)(owner=alice, title="roles", member_ids=[bob.pk, carol.pk])
    carol_socket = await connect(user=carol)
    change = sync_to_async(services.change_role)

    await change(actor=alice, conversation=group, user_id=bob.pk, role=Membership.Role.ADMIN)
    told = (await carol_socket.receive_type("chat.member_role_changed"))["data"]
    assert told == {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin", "by": alice.pk}
    await change(actor=alice, conversation=group, user_id=bob.pk, role=Membership.Role.ADMIN)  # no change, no event
    await carol_socket.assert_nothing()

    refusals = [
        (dict(actor=bob, user_id=carol.pk, role="admin"), "forbidden"),  # an admin does not name admins
        (dict(actor=alice, user_id=alice.pk, role="member"), "invalid"),  # the owner stays owner
        (dict(actor=alice, user_id=bob.pk, role="owner"), "invalid"),
        (dict(actor=alice, user_id=999_999, role="admin"), "not_found"),
    ]
    for kwargs, code in refusals:
        with pytest.raises(ProtocolError) as refused:
            await change(conversation=group, **kwargs)
        assert refused.value.code == code, kwargs
    roles = await sync_to_async(lambda: dict(group.memberships.values_list("user_id", "role")))()
    assert roles == {alice.pk: "owner", bob.pk: "admin", carol.pk: "member"}


async def test_the_owner_makes_a_member_admin_over_the_socket_and_every_member_sees_it(connect, alice, bob, carol):
    """chat.change_role: the ack names the new role; every member's connections (the promoted
    one's and the owner's other tab included) get chat.member_role_changed; the role is stored;
    the promoted admin may then add people."""
    group = await sync_to_async(services.create_group)(owner=alice, title="roles", member_ids=[bob.pk, carol.pk])
    owner = await connect(user=alice)
    owner_other_tab = await connect(user=alice)
    bob_socket, carol_socket = await connect(user=bob), await connect(user=carol)

    reply = await owner.request("chat.change_role", {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin"})
    assert reply["type"] == "ack" and reply["data"] == {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin"}
    event = {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin", "by": alice.pk}
    for socket in (owner_other_tab, bob_socket, carol_socket):
        assert (await socket.receive_type("chat.member_role_changed"))["data"] == event
    assert await sync_to_async(lambda: group.memberships.get(user=bob).role)() == "admin"
    summary = (await bob_socket.request("chat.join", {"conversation_id": group.pk}, ref="j"))["data"]["conversation"]
    assert {m["user_id"]: m["role"] for m in summary["members"]}[bob.pk] == "admin"

    # Back to a plain member: told the same way; the same role again tells nobody.
    demoted = {"conversation_id": group.pk, "user_id": bob.pk, "role": "member"}
    assert (await owner.request("chat.change_role", demoted, ref="2"))["data"] == demoted
    assert (await carol_socket.receive_type("chat.member_role_changed"))["data"] == {**demoted, "by": alice.pk}
    assert (await owner.request("chat.change_role", demoted, ref="3"))["data"] == demoted
    await carol_socket.assert_nothing()


async def test_a_refused_role_change_says_why_and_changes_nothing(connect, alice, bob, carol, make_user):
    """Only the owner changes roles (forbidden for admins and members, who see the group);
    not_found for a group one may not see and for someone not in it; invalid for the owner's own
    role, for "owner" and for a direct conversation. Nobody is told anything."""
    dave = await sync_to_async(make_user)("dave")
    group = await sync_to_async(services.create_group)(owner=alice, title="roles", member_ids=[bob.pk, carol.pk])
    await sync_to_async(services.change_role)(actor=alice, conversation=group, user_id=bob.pk, role="admin")
    direct, _ = await sync_to_async(services.send_as)(alice, recipient_id=bob.pk, content="hi")
    sockets = {user.username: await connect(user=user) for user in (alice, bob, carol, dave)}
    watcher = await connect(user=carol)

    def change(user_id: int, role: str, conversation_id: int = group.pk) -> dict:
        return {"conversation_id": conversation_id, "user_id": user_id, "role": role}

    refusals = [
        ("bob", change(carol.pk, "admin"), "forbidden"),  # an admin does not name admins
        ("bob", change(bob.pk, "member"), "forbidden"),  # nor steps down by this frame
        ("carol", change(carol.pk, "admin"), "forbidden"),  # a plain member promotes nobody
        ("alice", change(alice.pk, "member"), "invalid"),  # the owner stays owner
        ("alice", change(bob.pk, "owner"), "invalid"),
        ("alice", change(dave.pk, "admin"), "not_found"),  # not a member of the group
        ("dave", change(bob.pk, "member"), "not_found"),  # a group dave may not see
        ("alice", change(bob.pk, "admin", direct.conversation_id), "invalid"),
    ]
    for n, (who, data, code) in enumerate(refusals):
        reply = await sockets[who].request("chat.change_role", data, ref=str(n))
        assert reply["type"] == "error" and reply["error"]["code"] == code, (who, data, reply)
    hidden = await sockets["dave"].request("chat.change_role", change(bob.pk, "member"), ref="hidden")
    unknown = await sockets["dave"].request("chat.change_role", change(bob.pk, "member", 10**9), ref="unknown")
    assert hidden["error"] == unknown["error"] == {"code": "not_found", "message": "Conversation not found"}
    owner_role = await sockets["alice"].request("chat.change_role", change(bob.pk, "owner"), ref="owner")
    assert owner_role["error"]["details"] == {"role": ['"owner" is not a valid choice.']}

    roles = await sync_to_async(lambda: dict(group.memberships.values_list("user_id", "role")))()
    assert roles == {alice.pk: "owner", bob.pk: "admin", carol.pk: "member"}
    await watcher.assert_nothing()


async def test_removed_member_is_told_and_stops_receiving(connect, alice, bob, carol):
    group = await sync_to_async(services.create_group)(owner=alice, title="g", member_ids=[bob.pk, carol.pk])
    owner = await connect(user=alice)
    bob_client = await connect(user=bob)
    await bob_client.request("chat.join", {"conversation_id": group.pk})
    await owner.request("chat.remove_member", {"conversation_id": group.pk, "user_id": bob.pk})
    removed = await bob_client.receive_type("chat.member_removed")
    assert removed["data"] == {"conversation_id": group.pk, "user_id": bob.pk, "by": alice.pk, "owner_id": alice.pk}
    await owner.request("chat.send", {"conversation_id": group.pk, "content": "after bob"}, ref="2")
    await bob_client.assert_nothing(0.3)
    again = await bob_client.request("chat.history", {"conversation_id": group.pk}, ref="3")
    assert again["error"]["code"] == "not_found"


async def test_owner_leaving_hands_the_group_on(connect, alice, bob, carol):
    group = await sync_to_async(services.create_group)(owner=alice, title="g", member_ids=[bob.pk, carol.pk])
    await sync_to_async(Membership.objects.filter(conversation=group, user=carol).update)(role="admin")
    bob_client = await connect(user=bob)
    owner = await connect(user=alice)
    await owner.request("chat.remove_member", {"conversation_id": group.pk, "user_id": alice.pk})
    event = await bob_client.receive_type("chat.member_removed")
    assert event["data"]["user_id"] == alice.pk and event["data"]["owner_id"] == carol.pk


async def test_direct_conversations_have_no_members_to_manage(connect, alice, bob, carol):
    message, _ = await sync_to_async(services.send_as)(alice, recipient_id=bob.pk, content="hi")
    client = await connect(user=alice)
    reply = await client.request("chat.add_member", {"conversation_id": message.conversation_id, "user_id": carol.pk})
    assert reply["error"]["code"] == "invalid"


async def test_support_conversation_reaches_staff_desk_and_staff_reply_reaches_user(connect, alice, staff):
    user = await connect(user=alice)
    agent = await connect(user=staff)
    opened = (await user.request("chat.support", {}))["data"]["conversation"]
    assert opened["kind"] == "support" and opened["support_user_id"] == alice.pk and not opened["closed"]
    again = (await user.request("chat.support", {}, ref="2"))["data"]["conversation"]
    assert again["id"] == opened["id"]  # one open per user
    await user.request("chat.send", {"conversation_id": opened["id"], "content": "help, please"}, ref="3")
    row = (await agent.receive_type("support.updated"))["data"]
    assert row["conversation_id"] == opened["id"] and row["unread"] == 1 and row["waiting_since"]
    # Any staff member may join, read and reply; the user sees the reply.
    joined = await agent.request("chat.join", {"conversation_id": opened["id"], "after_seq": 0})
    assert [m["content"] for m in joined["data"]["messages"]] == ["help, please"]
    await agent.request("chat.send", {"conversation_id": opened["id"], "content": "on it"}, ref="4")
    assert (await user.receive_type("chat.message"))["data"]["content"] == "help, please"  # its own, first
    reply = (await user.receive_type("chat.message"))["data"]
    assert reply["content"] == "on it" and reply["sender_id"] == staff.pk
    row = (await agent.receive_type("support.updated"))["data"]
    assert row["waiting_since"] is None and row["unread"] == 0


async def test_support_is_private_to_its_user_and_staff(connect, alice, bob):
    conversation, _ = await sync_to_async(services.open_support)(user=alice)
    other = await connect(user=bob)
    reply = await other.request("chat.join", {"conversation_id": conversation.pk})
    assert reply["error"] == {"code": "not_found", "message": "Conversation not found"}


async def test_closed_support_refuses_messages_and_a_new_one_opens(connect, alice):
    conversation, _ = await sync_to_async(services.open_support)(user=alice)
    client = await connect(user=alice)
    await sync_to_async(services.close_support)(conversation=conversation)
    assert (await client.receive_type("support.closed"))["data"] == {"conversation_id": conversation.pk}
    reply = await client.request("chat.send", {"conversation_id": conversation.pk, "content": "hello?"})
    assert reply["error"]["code"] == "conflict"
    assert await sync_to_async(Message.objects.filter(conversation=conversation).count)() == 0
    fresh = (await client.request("chat.support", {}, ref="2"))["data"]["conversation"]
    assert fresh["id"] != conversation.pk


async def test_single_session_mode_closes_older_connections_with_4409(connect, alice, bob, settings):
    settings.REALTIME = {**getattr(settings, "REALTIME", {}), "SINGLE_SESSION": True}
    first = await connect(user=alice)
    other_user = await connect(user=bob)
    second = await connect(user=alice)
    error = await first.receive_type("error")
    assert error["error"]["code"] == "session_replaced"
    assert await first.receive_close() == 4409
    await other_user.assert_nothing()
    reply = await second.request("chat.conversations", {})
    assert reply["type"] == "ack"


async def test_image_message_references_its_upload(connect, alice, bob, conversation, media_root):
    upload = SimpleUploadedFile("cat.png", png_bytes())
    attachment = await sync_to_async(services.upload_attachment)(uploader=alice, file=upload, mime_type="image/png")
    sender = await connect(user=alice)
    receiver = await connect(user=bob)
    reply = await sender.request(
        "chat.send", {"conversation_id": conversation.pk, "content_type": "image", "attachment_id": attachment.pk}
    )
    message = reply["data"]["message"]
    assert message["content"] == "cat.png"
    assert message["attachment"]["mime_type"] == "image/png" and message["attachment"]["url"].endswith(
        f"/{attachment.pk}"
    )
    assert (await receiver.receive_type("chat.message"))["data"]["attachment"]["id"] == attachment.pk
    reused = await sender.request(
        "chat.send",
        {"conversation_id": conversation.pk, "content_type": "image", "attachment_id": attachment.pk},
        ref="2",
    )
    assert reused["error"]["code"] == "conflict"
    someone_elses = await receiver.request(
        "chat.send",
        {"conversation_id": conversation.pk, "content_type": "file", "attachment_id": attachment.pk},
        ref="3",
    )
    assert someone_elses["error"]["code"] == "not_found"
    missing = await sender.request("chat.send", {"conversation_id": conversation.pk, "content_type": "image"}, ref="4")
    assert missing["error"]["details"]["attachment_id"]
    assert await sync_to_async(Conversation.objects.values_list("last_seq", flat=True).get)(pk=conversation.pk) == 1

"""Chat writes from REST and the admin support desk reach open sockets exactly like socket writes."""

import re

import pytest
from asgiref.sync import sync_to_async
from django.test import Client as DjangoClient

from chat import services
from chat.models import Conversation, Membership, Message

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user) -> DjangoClient:
    client = DjangoClient()
    client.force_login(user)
    return client


async def test_rest_send_is_pushed_to_members(connect, alice, bob, conversation):
    socket = await connect(user=bob)

    def rest_send():
        return logged_in(alice).post(
            f"/api/chat/conversations/{conversation.pk}/messages/",
            {"content": "via REST"},
            content_type="application/json",
        )

    response = await sync_to_async(rest_send)()
    assert response.status_code == 201
    assert (await socket.receive_type("chat.message"))["data"]["content"] == "via REST"


def desk_reply(staff, conversation_id, content, client_msg_id="desk-1"):
    return logged_in(staff).post(
        f"/admin/chat/supportconversation/{conversation_id}/change/",
        {"content": content, "client_msg_id": client_msg_id, "reply": "Send reply"},
    )


async def test_admin_desk_reply_is_pushed_to_the_user_once(connect, alice, staff):
    conversation, _ = await sync_to_async(services.open_support)(user=alice)
    await sync_to_async(services.send_message)(sender=alice, conversation=conversation, content="hello?")
    socket = await connect(user=alice)
    response = await sync_to_async(desk_reply)(staff, conversation.pk, "Hi, how can I help?")
    assert response.status_code == 302
    event = (await socket.receive_type("chat.message"))["data"]
    assert (event["content"], event["sender_id"]) == ("Hi, how can I help?", staff.pk)
    # The same form posted twice (double click, browser resend) stores and pushes one reply.
    await sync_to_async(desk_reply)(staff, conversation.pk, "Hi, how can I help?")
    await socket.assert_nothing(0.3)
    assert await sync_to_async(Message.objects.filter(conversation=conversation).count)() == 2


def test_desk_lists_who_waits_longest_first_with_unread_and_escapes_content(alice, bob, carol, staff):
    for user, text in ((bob, "first"), (alice, "<script>alert(1)</script>")):
        conversation, _ = services.open_support(user=user)
        services.send_message(sender=user, conversation=conversation, content=text)
    answered, _ = services.open_support(user=carol)
    services.send_message(sender=carol, conversation=answered, content="q")
    services.send_message(sender=staff, conversation=answered, content="a")
    page = logged_in(staff).get("/admin/chat/supportconversation/").content.decode()
    order = [m for m in re.findall(r'data-desk-conversation="\d+">(\w+)<', page)]
    assert order == ["bob", "alice", "carol"]
    assert re.findall(r'class="desk-unread" data-conversation="\d+">(\d+)<', page) == ["1", "1", "0"]
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    thread = (
        logged_in(staff)
        .get(f"/admin/chat/supportconversation/{Conversation.objects.get(support_user=alice).pk}/change/")
        .content.decode()
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread and "<script>alert(1)" not in thread
    # Viewing the conversation marks it read for the whole desk.
    assert Conversation.objects.get(support_user=alice).support_read_seq == 1


def test_desk_is_for_staff_only(alice, conversation):
    support, _ = services.open_support(user=alice)
    assert logged_in(alice).get("/admin/chat/supportconversation/").status_code == 302  # to the admin login
    assert (
        logged_in(alice).post(f"/admin/chat/supportconversation/{support.pk}/change/", {"content": "x"}).status_code
        == 302
    )
    assert Message.objects.count() == 0


def test_desk_closes_a_conversation_and_refuses_blank_replies(alice, staff):
    conversation, _ = services.open_support(user=alice)
    blank = logged_in(staff).post(
        f"/admin/chat/supportconversation/{conversation.pk}/change/",
        {"content": "  ", "reply": "Send reply"},
        follow=True,
    )
    assert "cannot be empty" in blank.content.decode()
    logged_in(staff).post(f"/admin/chat/supportconversation/{conversation.pk}/change/", {"close": "Close"})
    conversation.refresh_from_db()
    assert conversation.closed_at is not None
    refused = desk_reply(staff, conversation.pk, "too late")
    assert refused.status_code == 302 and Message.objects.count() == 0


def admin_add_message(superuser, conversation_id, content, **extra):
    return logged_in(superuser).post(
        "/admin/chat/message/add/",
        {"conversation": conversation_id, "content": content, "client_msg_id": "", **extra},
        follow=True,
    )


async def test_admin_message_is_sent_as_the_staff_user_pushed_and_gets_the_next_seq(
    connect, make_user, alice, bob, conversation
):
    superuser = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True, first_name="Ruth")
    await sync_to_async(Membership.objects.create)(conversation=conversation, user=superuser)
    socket = await connect(user=bob)
    # A crafted sender (alice) is ignored: the message is the logged-in staff user's.
    response = await sync_to_async(admin_add_message)(superuser, conversation.pk, "from the admin", sender=alice.pk)
    assert response.status_code == 200 and response.redirect_chain[-1][1] == 302
    event = (await socket.receive_type("chat.message"))["data"]
    assert (event["content"], event["seq"], event["sender_id"]) == ("from the admin", 1, superuser.pk)
    assert event["sender"] == {"id": superuser.pk, "name": "Ruth", "is_staff": True}
    stored = await sync_to_async(Message.objects.get)(conversation=conversation)
    assert stored.sender_id == superuser.pk
    page = response.content.decode()
    assert "#None" not in page and "Message 1 in alice and bob by Ruth" in page
    stored_page = await sync_to_async(lambda: logged_in(superuser).get(f"/admin/chat/message/{stored.pk}/change/"))()
    assert stored_page.status_code == 200 and 'name="content"' not in stored_page.content.decode()  # read-only


def test_admin_message_form_has_no_sender_field(make_user):
    superuser = make_user("root", is_staff=True, is_superuser=True)
    page = logged_in(superuser).get("/admin/chat/message/add/").content.decode()
    assert 'name="conversation"' in page and 'name="sender"' not in page


def test_admin_message_in_a_conversation_the_staff_may_not_post_in_is_refused_on_the_form(
    make_user, alice, conversation
):
    superuser = make_user("root", is_staff=True, is_superuser=True)
    response = admin_add_message(superuser, conversation.pk, "let me in", sender=alice.pk)
    assert response.status_code == 200 and not response.redirect_chain
    assert "You are not a member of this conversation" in response.content.decode()
    assert Message.objects.count() == 0


def test_admin_message_refused_by_the_send_after_the_form_check_is_not_added(
    make_user, alice, conversation, monkeypatch
):
    from django.contrib.admin.models import LogEntry

    from chat import admin as chat_admin

    superuser = make_user("root", is_staff=True, is_superuser=True)
    # As if the staff user left the conversation between the form's check and the send.
    monkeypatch.setattr(chat_admin.selectors, "access_conversation", lambda user, conversation_id: None)
    response = admin_add_message(superuser, conversation.pk, "let me in")
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/admin/chat/message/add/"
    assert "Message not sent: You are not a member of this conversation." in page and "successfully" not in page
    assert Message.objects.count() == 0 and LogEntry.objects.count() == 0


async def test_admin_message_in_a_support_conversation_is_a_staff_reply(connect, make_user, alice):
    superuser = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    conversation, _ = await sync_to_async(services.open_support)(user=alice)
    socket = await connect(user=alice)
    await sync_to_async(admin_add_message)(superuser, conversation.pk, "hello from support", sender=alice.pk)
    event = (await socket.receive_type("chat.message"))["data"]
    assert (event["content"], event["sender_id"]) == ("hello from support", superuser.pk)


def test_admin_message_follows_the_content_rules(make_user, alice, conversation):
    superuser = make_user("root", is_staff=True, is_superuser=True)
    Membership.objects.create(conversation=conversation, user=superuser)
    response = admin_add_message(superuser, conversation.pk, "   ")
    assert response.status_code == 200 and "cannot be empty" in response.content.decode()
    assert Message.objects.count() == 0


def members_form(group, roles: dict[int, str]) -> dict:
    """The admin's conversation form as it shows ``group``'s members, with ``roles`` (user id -> role) changed."""
    members = list(group.memberships.order_by("pk"))
    form = {
        "kind": "group",
        "title": group.title,
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": str(len(members)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, membership in enumerate(members):
        form.update(
            {
                f"memberships-{i}-id": membership.pk,
                f"memberships-{i}-conversation": group.pk,
                f"memberships-{i}-user": membership.user_id,
                f"memberships-{i}-role": roles.get(membership.user_id, membership.role),
            }
        )
    return form


async def test_admin_member_changes_are_pushed(connect, make_user, alice, bob, carol):
    superuser = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    group = await sync_to_async(services.create_group)(owner=alice, title="g", member_ids=[bob.pk])
    carol_socket = await connect(user=carol)
    bob_socket = await connect(user=bob)

    def edit_members():
        form = members_form(group, roles={})
        form["memberships-1-DELETE"] = "on"  # bob
        form.update(
            {
                "memberships-TOTAL_FORMS": "3",
                "memberships-2-user": carol.pk,
                "memberships-2-role": "member",
                "memberships-2-conversation": group.pk,
            }
        )
        return logged_in(superuser).post(f"/admin/chat/conversation/{group.pk}/change/", form)

    response = await sync_to_async(edit_members)()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (await carol_socket.receive_type("chat.member_added"))["data"]["user_id"] == carol.pk
    assert (await bob_socket.receive_type("chat.member_removed"))["data"]["user_id"] == bob.pk


async def test_an_admin_role_change_goes_through_the_service_and_is_pushed(connect, make_user, alice, bob):
    superuser = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    group = await sync_to_async(services.create_group)(owner=alice, title="g", member_ids=[bob.pk])
    alice_socket = await connect(user=alice)

    def set_bobs_role(role: str):
        form = members_form(group, roles={bob.pk: role})
        return logged_in(superuser).post(f"/admin/chat/conversation/{group.pk}/change/", form)

    assert (await sync_to_async(set_bobs_role)("admin")).status_code == 302
    told = (await alice_socket.receive_type("chat.member_role_changed"))["data"]
    assert told == {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin", "by": None}
    # The owner's role is the service's to refuse, on the form's page.
    response = await sync_to_async(set_bobs_role)("owner")
    assert await sync_to_async(lambda: group.memberships.get(user=bob).role)() == "admin"
    assert response.status_code == 302


async def test_a_role_change_is_pushed_alike_from_the_socket_rest_and_the_admin(connect, make_user, alice, bob, carol):
    """The three ways to change a role call services.change_role: each stores the role and pushes
    one chat.member_role_changed of the same shape (``by`` the owner, null from the admin site)."""
    superuser = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    group = await sync_to_async(services.create_group)(owner=alice, title="g", member_ids=[bob.pk, carol.pk])
    owner = await connect(user=alice)
    carol_socket = await connect(user=carol)

    def rest_patch(role: str):
        return logged_in(alice).patch(
            f"/api/chat/conversations/{group.pk}/members/{bob.pk}/", {"role": role}, content_type="application/json"
        )

    def admin_form(role: str):
        form = members_form(group, roles={bob.pk: role})
        return logged_in(superuser).post(f"/admin/chat/conversation/{group.pk}/change/", form)

    async def bobs_role() -> str:
        return await sync_to_async(lambda: group.memberships.get(user=bob).role)()

    reply = await owner.request("chat.change_role", {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin"})
    assert reply["type"] == "ack"
    socket_event = (await carol_socket.receive_type("chat.member_role_changed"))["data"]
    assert await bobs_role() == "admin"

    response = await sync_to_async(rest_patch)("member")
    assert response.status_code == 200
    assert response.json() == {"conversation_id": group.pk, "user_id": bob.pk, "role": "member"}
    rest_event = (await carol_socket.receive_type("chat.member_role_changed"))["data"]
    assert await bobs_role() == "member"

    assert (await sync_to_async(admin_form)("admin")).status_code == 302
    admin_event = (await carol_socket.receive_type("chat.member_role_changed"))["data"]
    assert await bobs_role() == "admin"

    assert socket_event == {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin", "by": alice.pk}
    assert rest_event == {**socket_event, "role": "member"}
    assert admin_event == {**socket_event, "by": None}
    await carol_socket.assert_nothing()

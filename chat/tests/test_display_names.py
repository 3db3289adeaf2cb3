"""
Events carry what a client shows (issue 20, item 5): the sender's display name and staff flag on
every message, names on members, typing and read receipts; built without a query per message.
"""

import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient

from chat import handlers, selectors, services
from chat.events import message_event
from chat.models import Conversation, Membership, Message
from realtime.context import HandlerContext
from realtime.users import display_name, member_entry, member_entry_from_values, user_fields, user_ref


@pytest.fixture
def ann(make_user):
    """A support agent with a full name."""
    return make_user("ann", is_staff=True, first_name="Ann", last_name="Lee")


def test_display_name_is_the_full_name_else_the_username(make_user):
    assert display_name(make_user("u1", first_name="Ann", last_name="Lee")) == "Ann Lee"
    assert display_name(make_user("u2", first_name="Ann")) == "Ann"
    assert display_name(make_user("u3", first_name="  ", last_name="")) == "u3"
    staff = make_user("u4", is_staff=True)
    assert user_ref(staff) == {"id": staff.pk, "name": "u4", "is_staff": True}


def test_member_entries_read_as_values_name_users_as_display_name_does(make_user):
    users = [
        make_user("v1", first_name="Ann", last_name="Lee"),
        make_user("v2", last_name="Lee"),
        make_user("v3", first_name=" ", last_name=" "),
        make_user("v4", is_staff=True),
    ]
    values = get_user_model().objects.filter(pk__in=[u.pk for u in users]).order_by("pk")
    for user, (pk, *display) in zip(users, values.values_list("pk", *user_fields()), strict=True):
        assert member_entry_from_values(pk, "admin", display) == member_entry(user, "admin")


def test_message_event_carries_the_sender(alice, ann):
    conversation, _ = services.open_support(user=alice)
    services.send_message(sender=alice, conversation=conversation, content="help")
    services.send_message(sender=ann, conversation=conversation, content="on it")
    events = [message_event(m) for m in selectors.messages_before(conversation, None, 10)[0]]
    assert [(e["sender_id"], e["sender"]) for e in events] == [
        (alice.pk, {"id": alice.pk, "name": "alice", "is_staff": False}),
        (ann.pk, {"id": ann.pk, "name": "Ann Lee", "is_staff": True}),
    ]


@pytest.mark.django_db(transaction=True)
async def test_support_reply_reaches_the_user_with_the_agents_name(connect, alice, ann):
    conversation, _ = await sync_to_async(services.open_support)(user=alice)
    user = await connect(user=alice)
    await sync_to_async(services.send_message)(sender=ann, conversation=conversation, content="Hi!")
    event = (await user.receive_type("chat.message"))["data"]
    assert event["sender"] == {"id": ann.pk, "name": "Ann Lee", "is_staff": True}
    assert event["sender_id"] == ann.pk  # kept for existing clients


def test_members_carry_name_and_staff_flag(alice, bob, ann, conversation):
    Membership.objects.create(conversation=conversation, user=ann)
    expected = [
        {"user_id": alice.pk, "username": "alice", "name": "alice", "is_staff": False, "role": "member"},
        {"user_id": bob.pk, "username": "bob", "name": "bob", "is_staff": False, "role": "member"},
        {"user_id": ann.pk, "username": "ann", "name": "Ann Lee", "is_staff": True, "role": "member"},
    ]
    (summary,) = handlers.join([(HandlerContext(user=alice, connection_id="c1"), {"conversation_id": conversation.pk})])
    assert summary["conversation"]["members"] == expected
    (listed,) = selectors.conversations_for(alice)
    assert [{k: v for k, v in m.items() if k != "online"} for m in listed["members"]] == expected


@pytest.mark.django_db(transaction=True)
async def test_typing_and_read_receipts_carry_the_name(connect, alice, ann, conversation):
    await sync_to_async(Membership.objects.create)(conversation=conversation, user=ann)
    await sync_to_async(services.send_message)(sender=alice, conversation=conversation, content="hello")
    data = {"conversation_id": conversation.pk}
    alice_client, ann_client = await connect(user=alice), await connect(user=ann)
    await alice_client.request("chat.join", data)
    await ann_client.request("chat.typing", data)
    typing = await alice_client.receive_type("chat.typing")
    assert typing["data"] == {"conversation_id": conversation.pk, "user_id": ann.pk, "name": "Ann Lee"}
    await ann_client.request("chat.read", {**data, "seq": 1}, ref="2")
    receipt = await alice_client.receive_type("chat.read")
    assert receipt["data"] == {"conversation_id": conversation.pk, "user_id": ann.pk, "name": "Ann Lee", "seq": 1}


@pytest.fixture
def busy_group(alice, bob, ann):
    """A group of alice, bob and ann with 20 messages from the three of them."""
    group = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="busy")
    for user in (alice, bob, ann):
        Membership.objects.create(conversation=group, user=user)
    senders = [alice, bob, ann]
    for n in range(20):
        services.send_message(sender=senders[n % 3], conversation=group, content=f"m{n}")
    return group


def test_history_of_many_senders_costs_three_queries(alice, ann, busy_group, django_assert_num_queries):
    ctx = HandlerContext(user=alice, connection_id="c1")
    with django_assert_num_queries(3):  # the conversation, the membership, the page with its senders
        reply = handlers.history(ctx, {"conversation_id": busy_group.pk, "limit": 50})
    assert len(reply["messages"]) == 20
    assert {m["sender"]["name"] for m in reply["messages"]} == {"alice", "bob", "Ann Lee"}


def test_join_resume_loads_senders_in_the_page_query(alice, busy_group, django_assert_num_queries):
    ctx = HandlerContext(user=alice, connection_id="c1")
    with django_assert_num_queries(3):  # the conversation, its members with their read positions, the page
        (reply,) = handlers.join([(ctx, {"conversation_id": busy_group.pk, "after_seq": 0})])
    assert [m["sender"]["name"] for m in reply["messages"][:3]] == ["alice", "bob", "Ann Lee"]


def test_conversation_list_loads_last_senders_with_the_last_messages(
    alice, bob, ann, busy_group, django_assert_num_queries
):
    other = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="other")
    for user in (alice, ann):
        Membership.objects.create(conversation=other, user=user)
    services.send_message(sender=ann, conversation=other, content="hi")
    with django_assert_num_queries(3):  # memberships, last messages with senders, members
        listed = selectors.conversations_for(alice)
    assert {c["title"]: c["last_message"]["sender"]["name"] for c in listed} == {"busy": "bob", "other": "Ann Lee"}


def test_repeated_sends_answer_with_the_stored_sender_in_the_lookup_query(
    alice, bob, busy_group, django_assert_num_queries
):
    requests = [
        services.SendRequest(sender=user, conversation_id=busy_group.pk, content="x", client_msg_id="k")
        for user in (alice, bob)
    ]
    services.send_many(requests)
    outcomes = services.send_many(requests)  # both repeats: answered with the stored messages
    assert [created for _, created in outcomes] == [False, False]
    with django_assert_num_queries(0):
        events = [message_event(message) for message, _ in outcomes]
    assert [e["sender"]["name"] for e in events] == ["alice", "bob"]


def test_a_send_batch_names_its_senders_without_a_query_per_sender(alice, bob, ann, busy_group, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    published = []
    monkeypatch.setattr(services, "publish_on_commit", lambda group, type_, data, **options: published.append(data))

    def batch(senders) -> int:
        with CaptureQueriesContext(connection) as queries:
            services.send_many(
                [services.SendRequest(sender=user, conversation_id=busy_group.pk, content="x") for user in senders]
            )
        return len(queries)

    assert batch([alice, bob, ann]) == batch([alice, alice, alice])
    assert [event["sender"]["name"] for event in published[:3]] == ["alice", "bob", "Ann Lee"]


def test_support_desk_shows_names_and_marks_staff_replies(alice, ann):
    conversation, _ = services.open_support(user=alice)
    services.send_message(sender=alice, conversation=conversation, content="help")
    services.send_message(sender=ann, conversation=conversation, content="on it")
    client = DjangoClient()
    client.force_login(ann)
    page = client.get(f"/admin/chat/supportconversation/{conversation.pk}/change/").content.decode()
    names = re.findall(r'<strong class="who">([^<]*)</strong>', page)
    assert names == ["alice", "Ann Lee (support)"]
    assert not re.search(r"user \d+", page)
    row = selectors.support_queue()[0]
    assert row["user"] == {"id": alice.pk, "username": "alice", "name": "alice"}
    assert row["last_message"]["sender"]["name"] == "Ann Lee"


def test_message_str_names_its_place_and_never_says_none(alice, conversation):
    assert "None" not in str(Message(conversation=conversation, sender=alice, content="x"))
    message, _ = services.send_message(sender=alice, conversation=conversation, content="x")
    assert str(message) == "Message 1 in alice and bob by alice"


def test_demo_staff_user_has_a_full_name(db):
    import io

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    staff = get_user_model().objects.get(username="admin")
    assert staff.is_staff and display_name(staff) == "Ann Lee"
    get_user_model().objects.filter(pk=staff.pk).update(first_name="", last_name="")  # seeded before names
    call_command("seed_demo", stdout=io.StringIO())
    assert display_name(get_user_model().objects.get(username="admin")) == "Ann Lee"

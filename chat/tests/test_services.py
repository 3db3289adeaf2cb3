"""chat.services: the one write path, its transactions and what it publishes."""

import pytest
from django.db import OperationalError, connection, transaction

from chat import services
from chat.models import Conversation, Message
from realtime.delivery import outbox
from realtime.errors import Conflict, NotFound


@pytest.fixture
def published(monkeypatch):
    """Record the events that reach the channel layer as (group, encoded frame) pairs."""
    sent = []

    async def record(group, message):
        sent.append((group, message["text"]))

    monkeypatch.setattr(outbox, "send_to_layer", record)
    return sent


def test_send_message_publishes_after_commit_only(published, alice, conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message, created = services.send_message(sender=alice, conversation=conversation, content="hi")
    assert created
    assert [group for group, _ in published] == [f"chat.conversation.{conversation.pk}"]
    assert f'"seq":{message.seq}' in published[0][1]


def test_rolled_back_send_publishes_nothing(published, alice, conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                services.send_message(sender=alice, conversation=conversation, content="hi")
                raise RuntimeError("rollback")
    assert published == []
    assert Message.objects.count() == 0
    conversation.refresh_from_db()
    assert conversation.last_seq == 0


def test_idempotency_key_is_per_sender(alice, bob, conversation):
    first, created1 = services.send_message(sender=alice, conversation=conversation, content="a", client_msg_id="k")
    again, created2 = services.send_message(sender=alice, conversation=conversation, content="b", client_msg_id="k")
    other, created3 = services.send_message(sender=bob, conversation=conversation, content="c", client_msg_id="k")
    assert (created1, created2, created3) == (True, False, True)
    assert again.pk == first.pk and again.content == "a"
    assert other.pk != first.pk
    assert list(Message.objects.values_list("seq", flat=True)) == [1, 2]


def test_one_direct_conversation_per_pair(alice, bob):
    one, created = services.get_or_create_direct_conversation(user=alice, other=bob)
    two, created_again = services.get_or_create_direct_conversation(user=bob, other=alice)
    assert created and not created_again
    assert one.pk == two.pk
    assert one.kind == Conversation.Kind.DIRECT
    assert set(one.memberships.values_list("user_id", flat=True)) == {alice.pk, bob.pk}


def test_send_many_answers_each_request_and_stores_the_accepted_in_order(
    published, alice, bob, carol, staff, conversation, django_capture_on_commit_callbacks
):
    support, _ = services.open_support(user=carol)
    closed, _ = services.open_support(user=bob)
    services.close_support(conversation=closed)
    other = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="not carol's")
    requests = [
        services.SendRequest(sender=alice, content="one", conversation_id=conversation.pk, client_msg_id="k1"),
        services.SendRequest(sender=carol, content="not mine", conversation_id=other.pk),
        services.SendRequest(sender=bob, content="two", conversation_id=conversation.pk),
        services.SendRequest(sender=alice, content="one again", conversation_id=conversation.pk, client_msg_id="k1"),
        services.SendRequest(sender=alice, content="nowhere", conversation_id=10**9),
        services.SendRequest(sender=staff, content="help", conversation_id=support.pk),
        services.SendRequest(sender=bob, content="late", conversation_id=closed.pk),
        services.SendRequest(sender=carol, content="hi bob", recipient_id=bob.pk),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = services.send_many(requests)

    one, not_carols, two, repeat, not_found, help_reply, conflict, direct = outcomes
    assert isinstance(not_found, NotFound) and isinstance(conflict, Conflict)
    assert not_carols.as_dict() == not_found.as_dict()  # not hers to see answers like an unknown id
    assert (one[0].seq, one[1]) == (1, True) and (two[0].seq, two[1]) == (2, True)
    assert repeat == (one[0], False)  # the idempotency key's first message, from the same batch
    assert help_reply[1] and help_reply[0].seq == 1
    assert direct[1] and direct[0].conversation.kind == Conversation.Kind.DIRECT
    assert list(conversation.messages.values_list("seq", "content", "sender_id")) == [
        (1, "one", alice.pk),
        (2, "two", bob.pk),
    ]
    assert Message.objects.count() == 4
    conversation.refresh_from_db()
    assert conversation.last_seq == 2
    assert conversation.memberships.get(user=alice).last_read_seq == 1
    assert conversation.memberships.get(user=bob).last_read_seq == 2
    # One chat.message per stored message, after commit; the new direct conversation's to both users.
    groups = [group for group, text in published if '"type":"chat.message"' in text]
    assert groups[:3] == [f"chat.conversation.{conversation.pk}"] * 2 + [f"chat.conversation.{support.pk}"]
    assert sorted(groups[3:]) == sorted([f"realtime.user.{carol.pk}", f"realtime.user.{bob.pk}"])


def test_send_many_stores_nothing_when_its_transaction_fails(published, alice, bob, conversation):
    def fail_the_insert(execute, sql, params, many, context):
        if f'INSERT INTO "{Message._meta.db_table}"' in sql:
            raise OperationalError("database is locked")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_the_insert), pytest.raises(OperationalError):
        services.send_many(
            [services.SendRequest(sender=user, content="x", conversation_id=conversation.pk) for user in (alice, bob)]
        )
    assert Message.objects.count() == 0
    conversation.refresh_from_db()
    assert conversation.last_seq == 0
    assert published == []


def test_idempotency_key_stored_meanwhile_by_another_process_is_answered_with_its_message(
    alice, bob, conversation, monkeypatch
):
    # Another process stored alice's "k" just after this batch looked the key up (the race the
    # unique constraint settles): the batch's transaction rolls back and each request is sent alone.
    Message.objects.create(conversation=conversation, sender=alice, content="first", seq=1, client_msg_id="k")
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=1)
    looked_up = services._stored_by_key
    lookups = []

    def before_the_other_commit(keys):
        lookups.append(len(keys))
        return {} if len(lookups) == 1 else looked_up(keys)

    monkeypatch.setattr(services, "_stored_by_key", before_the_other_commit)
    retry, other = services.send_many(
        [
            services.SendRequest(sender=alice, content="first", conversation_id=conversation.pk, client_msg_id="k"),
            services.SendRequest(sender=bob, content="second", conversation_id=conversation.pk),
        ]
    )
    assert retry[1] is False and retry[0].content == "first" and retry[0].seq == 1
    assert other[1] is True and other[0].seq == 2
    assert list(conversation.messages.values_list("seq", "client_msg_id")) == [(1, "k"), (2, None)]
    assert lookups == [1, 1, 0]  # the batch's one key, then each request alone (bob's has none)

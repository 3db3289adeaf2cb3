"""chat.services: the one write path, its transactions and what it publishes."""

import pytest
from django.db import transaction

from chat import services
from chat.models import Conversation, Message
from realtime import publish


@pytest.fixture
def published(monkeypatch):
    """Record the events that reach the channel layer as (group, encoded frame) pairs."""
    sent = []

    async def record(group, message):
        sent.append((group, message["text"]))

    monkeypatch.setattr(publish, "send_to_layer", record)
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

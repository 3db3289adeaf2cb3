import pytest

from chat.models import Conversation, Membership


@pytest.fixture
def conversation(alice, bob):
    """A group conversation of alice and bob."""
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="alice and bob")
    Membership.objects.create(conversation=conversation, user=alice)
    Membership.objects.create(conversation=conversation, user=bob)
    return conversation

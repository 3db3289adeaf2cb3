"""Chat group names and event payloads: the only place that builds them."""

from .models import Conversation, Message


def conversation_group(conversation_id: int) -> str:
    """Every open connection of every member: ``chat.conversation.<id>`` (chat.message goes here)."""
    return f"chat.conversation.{conversation_id}"


def viewers_group(conversation_id: int) -> str:
    """Connections that sent ``chat.join`` (viewing the conversation): ``chat.viewers.<id>``."""
    return f"chat.viewers.{conversation_id}"


def message_event(message: Message) -> dict:
    """The ``chat.message`` payload; ``created_at`` in epoch ms."""
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "content": message.content,
        "content_type": message.content_type,
        "client_msg_id": message.client_msg_id,
        "created_at": int(message.created_at.timestamp() * 1000),
    }


def conversation_summary(conversation: Conversation, members: list[dict] | None = None) -> dict:
    """A conversation as listed to its members; ``members`` ([{id, username}]) when already loaded."""
    if members is None:
        members = [
            {"id": user_id, "username": username}
            for user_id, username in conversation.memberships.order_by("user_id").values_list("user_id", "user__username")
        ]
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "title": conversation.title,
        "last_seq": conversation.last_seq,
        "members": members,
    }
